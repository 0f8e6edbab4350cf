"""The simulator served over rtl_tcp for the live tests: `sdrwatch simulate SCENE --rtl-tcp` as a real
process on loopback, waited for until it says where it serves, killed for real, restarted on the same
port, stopped at the end. Tests take it through the ``sim_server`` fixture (tests/conftest.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from sdrwatch.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def env() -> dict:
    """The environment for sdrwatch subprocesses: this checkout's sdrwatch first."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


class SimServer:
    """``sdrwatch simulate SCENE --rtl-tcp 127.0.0.1:PORT`` (port 0: a free one, read from what it
    prints). ``scene`` is a scene file, optionally with a ``?t0=S`` query. Its output goes to
    ``log_dir/simulate-N.log``, named in every failure."""

    count = 0

    def __init__(self, scene: str | Path, log_dir: Path, port: int = 0, start_timeout_s: float = 60.0):
        self.scene, self.port, self.log_dir = str(scene), port, Path(log_dir)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def uri(self) -> str:
        return f"rtl_tcp://127.0.0.1:{self.port}"

    def start(self) -> "SimServer":
        """Start the process (on the port it had, after a kill) and wait until it serves."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        SimServer.count += 1
        self.log = self.log_dir / f"simulate-{SimServer.count}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(CLI + ["simulate", self.scene, "--rtl-tcp", f"127.0.0.1:{self.port}"], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env())
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            text = self.log.read_text(errors="replace")
            line = next((x for x in text.splitlines() if x.startswith("serving ")), None)
            if line is not None:
                self.port = int(line.split(" as rtl_tcp on ", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"sdrwatch simulate {self.scene} did not start serving ({self.log}): {text[-2000:]}")
            time.sleep(0.02)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL: gone at once, no goodbye to the client) and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
