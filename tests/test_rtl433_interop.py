"""Our rtl_tcp server against a real third-party client: Debian's ``rtl_433`` decodes an EV1527 remote.

Two ways in: the server in-process serving a small OOK source defined here, and ``sdrwatch simulate`` as
a real subprocess serving the ``rtl433-interop`` scene. Skipped (with the reason) without ``rtl_433``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdrwatch.radio.base import Block, Source, SourceInfo
from sdrwatch.radio.rtl_tcp import RtlTcpServer

REPO = Path(__file__).resolve().parent.parent
RTL_433 = shutil.which("rtl_433")
SCENE = REPO / "recordings" / "scenes" / "rtl433-interop.toml"

pytestmark = pytest.mark.skipif(RTL_433 is None, reason="rtl_433 not on PATH (apt install rtl-433)")


class Ev1527Source(Source):
    """An EV1527 remote (16-bit id, 8-bit command) keyed on a carrier at ``rf_hz``, repeating forever.

    Bits as rtl_433's Generic-Remote decoder reads them: long pulse (1404 us) = 1, short (464 us) = 0,
    1868 us per bit, then a short stop pulse and a gap longer than the 1800 us reset limit.
    """

    def __init__(self, house: int = 0x5A3C, cmd: int = 0x81, rf_hz: float = 433.95e6, seed: int = 1) -> None:
        self.rf_hz = rf_hz
        self.center_hz, self.sample_rate_hz, self.gain_db, self.ppm = 433.92e6, 250_000.0, None, 0
        self.n = 0
        self.rng = np.random.default_rng(seed)
        bits = [(house >> (15 - i)) & 1 for i in range(16)] + [(cmd >> (7 - i)) & 1 for i in range(8)] + [0]
        us = 1e-6 * self.sample_rate_hz
        high = np.where(np.array(bits) == 1, round(1404 * us), round(464 * us))
        period = round(1868 * us)
        frame = np.zeros(len(bits) * period + round(10_000 * us), dtype=np.float32)
        starts = np.arange(len(bits)) * period
        idx = np.arange(period)[None, :]
        frame[(starts[:, None] + idx)[idx < high[:, None]]] = 1.0
        self.envelope = np.concatenate([np.tile(frame, 4), np.zeros(round(100_000 * us), dtype=np.float32)])

    def tune(self, center_hz: float) -> None:
        self.center_hz = center_hz

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        self.sample_rate_hz = sample_rate_hz  # the burst timing is built for 250 kS/s (rtl_433's default)

    def set_gain(self, gain_db: float | None) -> None:
        self.gain_db = gain_db

    def set_ppm(self, ppm: int) -> None:
        self.ppm = ppm

    def read(self, num_samples: int) -> Block:
        k = self.n + np.arange(num_samples)
        offset = self.rf_hz - self.center_hz
        on = self.envelope[k % len(self.envelope)] if abs(offset) < self.sample_rate_hz / 2 else 0.0
        x = 0.5 * on * np.exp(2j * np.pi * offset * k / self.sample_rate_hz)
        x = x + 0.01 * (self.rng.standard_normal(num_samples) + 1j * self.rng.standard_normal(num_samples))
        block = Block(x.astype(np.complex64), self.center_hz, self.sample_rate_hz, self.n)
        self.n += num_samples
        return block

    def describe(self) -> SourceInfo:
        return SourceInfo(driver="test", tuner="R820T")


def run_rtl_433(port: int, *extra: str, seconds: int = 10) -> tuple[list[dict], str]:
    """rtl_433 as a client of rtl_tcp://127.0.0.1:PORT; quits after the first decoded event."""
    proc = subprocess.run(
        [RTL_433, "-d", f"rtl_tcp://127.0.0.1:{port}", "-f", "433.92M", "-s", "250k", *extra,
         "-R", "30", "-F", "json", "-E", "quit", "-T", str(seconds)],
        capture_output=True, text=True, timeout=seconds + 15)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return events, proc.stderr


def test_rtl_433_decodes_our_server_in_process():
    src = Ev1527Source()
    with RtlTcpServer(src, "127.0.0.1", 0) as server:
        events, stderr = run_rtl_433(server.port, "-g", "20")
        commands = list(server.commands)
    assert "rtl_tcp connected" in stderr and "R820T" in stderr
    assert events, f"rtl_433 decoded nothing; stderr:\n{stderr}"
    assert events[0]["model"] == "Generic-Remote"
    assert (events[0]["id"], events[0]["cmd"]) == (0x5A3C, 0x81)
    # rtl_433 configured the "dongle" through our command parser
    assert (0x02, 250_000) in commands and (0x01, 433_920_000) in commands and (0x04, 200) in commands
    assert src.center_hz == 433.92e6 and src.gain_db == 20.0


@pytest.mark.skipif(not SCENE.exists(), reason=f"{SCENE.relative_to(REPO)} not present")
def test_rtl_433_decodes_sdrwatch_simulate_subprocess():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    sim = subprocess.Popen(
        [sys.executable, "-c", "from sdrwatch.cli import main; main()", "simulate", str(SCENE),
         "--rtl-tcp", "127.0.0.1:0", "--seed", "7"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        line = sim.stdout.readline()
        match = re.search(r"rtl_tcp on 127\.0\.0\.1:(\d+)", line)
        assert match, f"unexpected first line {line!r}; stderr: {sim.stderr.read() if sim.poll() is not None else ''}"
        assert "rtl_433 -d rtl_tcp://127.0.0.1:" in line
        # automatic gain: the scene's levels are set at its reference gain (a manual -g 20 is 10 dB lower)
        events, stderr = run_rtl_433(int(match.group(1)), seconds=15)
        assert events, f"rtl_433 decoded nothing; stderr:\n{stderr}"
        remote = events[0]
        assert remote["model"] == "Generic-Remote"
        assert (remote["id"], remote["cmd"]) == _scene_remote() == (23100, 129)
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            rc = sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
            raise
    err = sim.stderr.read()
    assert rc == 0 and "Traceback" not in err, err


def _scene_remote() -> tuple[int, int]:
    """(id, cmd) of the scene's OOK remote: its 24-bit EV1527 ``code`` is a 16-bit id and an 8-bit command."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    scene = tomllib.loads(SCENE.read_text())
    code = next(int(e["code"]) for e in scene["emitter"] if e.get("kind") == "ook")
    return (code >> 8) & 0xFFFF, code & 0xFF
