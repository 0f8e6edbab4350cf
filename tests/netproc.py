"""Real processes for the network tests: a collector, and an agent-side uplink over an outbox.

``python tests/netproc.py uplink OUTBOX ENDPOINT KEYS NAME [options]`` runs an Uplink over the
outbox (optionally appending alerts first or while it runs) and prints its status as JSON lines.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

T = "2026-06-01T08:00:00Z"
CLI = [sys.executable, "-c", "from sdrwatch.cli import main; main()"]


def alert(i: int, site: str, prefix: str = "a") -> dict:
    return {"type": "alert", "alert_id": f"{prefix}-{i}", "event": "open", "site": site, "receiver": "rx0", "time": T,
            "session": "maths", "center_hz": 446.00625e6, "bandwidth_hz": 12500.0, "snr_db": 20.0, "label": "nbfm_voice",
            "severity": 0.9}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CollectorProc:
    """``sdrwatch collector`` as a real process on loopback."""

    def __init__(self, db: Path, keys: Path, port: int | None = None, extra: list[str] | None = None):
        self.db, self.keys = db, keys
        self.port = port or free_port()
        self.pub_port = free_port()
        self.extra = extra or []
        self.proc = None
        self.endpoint = f"tcp://127.0.0.1:{self.port}"

    def start(self) -> "CollectorProc":
        self.proc = subprocess.Popen(
            CLI + ["collector", "--bind", self.endpoint, "--pub-bind", f"tcp://127.0.0.1:{self.pub_port}", "--db", str(self.db),
                   "--keys", str(self.keys), "--stats-interval", "1", *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if '"listening"' not in line:
            self.proc.kill()
            raise RuntimeError(f"collector did not start: {line} {self.proc.stderr.read()}")
        return self

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, err = self.proc.communicate(timeout=20)
        return out, err

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_status(self, pred, timeout_s: float = 20.0, what: str = "a status line"):
        """The first status line the collector prints (JSON, every --stats-interval s) that ``pred``
        accepts: for what a test cannot see from outside, e.g. that it has re-read its allowlist."""
        import select

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            try:
                status = json.loads(line)
            except ValueError:
                continue
            if isinstance(status, dict) and pred(status):
                return status
        raise AssertionError(f"timed out waiting for {what}")


def uplink_proc(outbox: Path, endpoint: str, keys: Path, name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "uplink", str(outbox), endpoint, str(keys), name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("outbox")
    ap.add_argument("endpoint")
    ap.add_argument("keys")
    ap.add_argument("name")
    ap.add_argument("--site", default=None)
    ap.add_argument("--append", type=int, default=0, help="append this many alerts before starting")
    ap.add_argument("--append-live", type=int, default=0, help="then append this many more, one per --every s")
    ap.add_argument("--every", type=float, default=0.001)
    ap.add_argument("--chunk", type=int, default=1, help="append live alerts this many at a time")
    ap.add_argument("--quiet", action="store_true", help="do not print a line per appended alert")
    ap.add_argument("--prefix", default="a")
    ap.add_argument("--backoff-max", type=float, default=30.0)
    ap.add_argument("--backoff-initial", type=float, default=2.0)
    ap.add_argument("--exit-when-acked", action="store_true")
    ap.add_argument("--status-every", type=float, default=0.5)
    a = ap.parse_args()
    from sdrwatch.net.link import Uplink
    from sdrwatch.net.outbox import Outbox

    keys = Path(a.keys)
    site = a.site or a.name
    ob = Outbox(a.outbox)
    if a.append:
        ob.append_many([alert(i, site, a.prefix) for i in range(a.append)])
    up = Uplink(ob, a.endpoint, keys / "collector.key", keys / f"{a.name}.key_secret",
                backoff_initial_s=a.backoff_initial, backoff_max_s=a.backoff_max).start()
    last = 0.0
    i = a.append
    live_end = a.append + a.append_live
    while True:
        now = time.monotonic()
        if i < live_end:
            n = min(a.chunk, live_end - i)
            seqs = ob.append_many([alert(j, site, a.prefix) for j in range(i, i + n)])
            for j, seq in zip(range(i, i + n), seqs):
                if not a.quiet:
                    print(json.dumps({"appended": j, "seq": seq}), flush=True)
            i += n
            time.sleep(a.every)
        else:
            time.sleep(0.05)
        if now - last >= a.status_every:
            last = now
            st = up.status()
            print(json.dumps(st), flush=True)
            if a.exit_when_acked and i >= live_end and ob.unacked_count() == 0:
                up.stop()
                print(json.dumps({**up.status(), "done": True, "unacked": ob.unacked_count()}), flush=True)
                return


if __name__ == "__main__":
    main()
