"""A real collector on loopback for the views' tests: keys made by `sdrwatch keys`, the collector as its
own process, and agents' records sent the agents' way (an outbox and its uplink over ZeroMQ+CURVE)."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from sdrwatch.cli import main
from simserver import free_port, stop_process


def make_keys(keys: Path, sites=("school-12",), consoles=("console",)) -> Path:
    run = CliRunner()
    r = run.invoke(main, ["keys", "init", "--dir", str(keys)])
    assert r.exit_code == 0, r.output
    for s in sites:
        r = run.invoke(main, ["keys", "new", s, "--site", s, "--dir", str(keys)])
        assert r.exit_code == 0, r.output
    for c in consoles:
        r = run.invoke(main, ["keys", "new", c, "--console", "--dir", str(keys)])
        assert r.exit_code == 0, r.output
    return keys


@contextlib.contextmanager
def collector(tmp: Path, keys: Path):
    """Yields (endpoint, db path) of a collector process; stopped with SIGTERM at the end."""
    port = free_port()
    pub = free_port()
    db = tmp / "collector.db"
    endpoint = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", "from sdrwatch.cli import main; main()", "collector", "--bind", endpoint,
                             "--pub-bind", f"tcp://127.0.0.1:{pub}", "--db", str(db), "--keys", str(keys)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not db.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        yield endpoint, db
    finally:
        stop_process(proc)


class Agent:
    """A site's records sent as the agent sends them: outbox + uplink."""

    def __init__(self, tmp: Path, keys: Path, endpoint: str, site: str):
        from sdrwatch.net.link import Uplink
        from sdrwatch.net.outbox import Outbox

        self.outbox = Outbox(tmp / f"{site}-outbox.db")
        self.uplink = Uplink(self.outbox, endpoint, keys / "collector.key", keys / f"{site}.key_secret", backoff_initial_s=0.2, backoff_max_s=2.0).start()

    def send(self, *records: dict) -> None:
        self.outbox.append_many(list(records))

    def wait_sent(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.outbox.unsent(1):
                return
            time.sleep(0.05)
        raise AssertionError(f"records not acked within {timeout_s} s: {self.uplink.status()}")

    def close(self) -> None:
        self.uplink.stop()
        self.outbox.close()


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def now_iso(offset_s: float = 0.0) -> str:
    import datetime as dt

    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def alert(site: str, alert_id: str, center_hz: float, *, event: str = "open", severity: float = 0.9, label: str = "nbfm-voice",
          session: str = "maths-am", receiver: str = "rx0", snr_db: float = 18.0, bandwidth_hz: float = 12.5e3, duration_s: float = 5.0) -> dict:
    return {"type": "alert", "alert_id": alert_id, "event": event, "site": site, "receiver": receiver, "time": now_iso(-duration_s),
            "session": session, "center_hz": center_hz, "bandwidth_hz": bandwidth_hz, "snr_db": snr_db, "peak_dbfs": -40.0,
            "duration_s": duration_s, "label": label, "severity": severity, "novelty": "new", "reasons": []}


def heartbeat(site: str, receiver: str = "rx0", noise_floor_db: float = -98.0) -> dict:
    return {"type": "health", "kind": "heartbeat", "site": site, "receiver": None, "time": now_iso(), "severity": 0.0, "message": "ok",
            "receivers": [{"receiver": receiver, "revisit_s": 2.1, "planned_revisit_s": 2.0, "noise_floor_db": noise_floor_db, "online": True}]}


def start(site: str, session: str = "maths-am", receivers=("rx0",)) -> dict:
    return {"type": "health", "kind": "start", "site": site, "receiver": None, "time": now_iso(), "severity": 0.0, "message": "agent started",
            "sessions": [{"name": session, "start": now_iso(-60), "end": now_iso(3600)}],
            "bands": [{"name": "ism433", "start_hz": 433.05e6, "stop_hz": 434.79e6, "priority": 1}], "receivers": list(receivers)}


def fault(site: str, kind: str = "noise_floor_low", receiver: str = "rx0", message: str = "noise floor 25 dB below its baseline: antenna?") -> dict:
    return {"type": "health", "kind": kind, "site": site, "receiver": receiver, "time": now_iso(), "severity": 0.8, "message": message}
