"""Live, against the simulator served over rtl_tcp (a real `sdrwatch simulate` process and a real TCP
link): an antenna coming off raises a health alert within 5 s; a killed server raises receiver_lost
within 5 s and the agent resumes by itself when the server is back."""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from sdrwatch.agent.config import load_config, site_config_toml
from sdrwatch.agent.loop import Agent

SCENE = """
[scene]
name = "live-health"
seed = 11
noise_dbfs_hz = -100.0
[[emitter]]
kind = "wfm"
label = "fm-station"
freq_hz = 100.3e6
power_dbfs = -30.0
{faults}
"""


def site(tmp: Path, uri: str) -> Path:
    cfg = tmp / "site.toml"
    cfg.write_text(site_config_toml("school-live", uri, [("fm", 100.0e6, 100.7e6, True)], sample_rate_hz=1.024e6,
                                    timezone="Asia/Shanghai", sweep={"dwell_s": 0.1, "priority_revisit_s": 1.0, "background": "none"}))
    return cfg


class SceneClock:
    """A hook that notes when the stream the agent reads reaches a scene time: the rtl_tcp client's
    bytes consumed on the connection, 2 per sample, count the scene's samples since it connected."""

    def __init__(self, at_s: float):
        self.at_s = at_s
        self.reached: float | None = None

    def __call__(self, rx):
        return self

    def block(self, rx, block, events):
        src = rx.source
        if self.reached is None and src is not None and getattr(src, "_stream_bytes", 0) / 2 / rx.sample_rate_hz >= self.at_s:
            self.reached = time.monotonic()


class Run:
    """An agent in a thread; every record with the monotonic time it came out."""

    def __init__(self, cfg: Path, duration_s: float, hooks=()):
        self.records: list[tuple[float, dict]] = []
        self.agent = Agent(load_config(cfg), out=lambda r: self.records.append((time.monotonic(), r)), outbox_path=False,
                           heartbeat_s=1.0, hooks=list(hooks))
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self.agent.run, kwargs={"duration_s": duration_s}, daemon=True)
        self.thread.start()

    def first(self, kind: str, after: float = 0.0, timeout_s: float = 30.0) -> tuple[float, dict] | None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for t, r in list(self.records):
                if t >= after and r.get("type") == "health" and r.get("kind") == kind:
                    return t, r
            time.sleep(0.05)
        return None

    def stop(self):
        self.agent.stop()
        self.thread.join(20)


@pytest.mark.timeout(120)
def test_antenna_disconnect_raises_a_health_alert_within_5_s(tmp_path, sim_server):
    server = sim_server(SCENE.format(faults='[[fault]]\nkind = "antenna_off"\nat_s = 6.0\ndrop_db = 12.0\n'))
    clock = SceneClock(6.0)
    run = Run(site(tmp_path, server.uri), 40, hooks=[clock])
    try:
        got = run.first("noise_floor_low", timeout_s=40)
        assert got is not None, [r for _, r in run.records if r["type"] == "health"]
        t, rec = got
        assert clock.reached is not None and t >= clock.reached - 0.5  # not before the antenna came off
        assert t - clock.reached < 5.0, (t - clock.reached, rec)  # within 5 s of it
        assert rec["severity"] >= 0.8 and rec["drift_db"] <= -6
    finally:
        run.stop()


@pytest.mark.timeout(120)
def test_killed_server_raises_receiver_lost_within_5_s_and_the_agent_resumes(tmp_path, sim_server):
    server = sim_server(SCENE.format(faults=""))
    run = Run(site(tmp_path, server.uri), 60)
    try:
        assert run.first("heartbeat", timeout_s=20)
        time.sleep(1.0)
        killed = time.monotonic()
        server.kill(signal.SIGKILL)
        got = run.first("receiver_lost", after=killed, timeout_s=20)
        assert got is not None and got[0] - killed < 5.0, got
        time.sleep(1.0)  # down long enough for a retry to fail
        back = time.monotonic()
        server.start()  # the same scene on the same port
        regained = run.first("receiver_regained", after=back, timeout_s=40)
        assert regained is not None, [r for _, r in run.records if r["type"] == "health"][-5:]
        # and it sweeps again: a heartbeat after that says online with more dwells than before the kill
        before = max(r["dwells"] for t, r in run.records if t < killed and r.get("kind") == "heartbeat")
        end = time.monotonic() + 15
        while time.monotonic() < end and not [r for t, r in list(run.records) if t > regained[0] and r.get("kind") == "heartbeat"
                                              and r["dwells"] > before]:
            time.sleep(0.1)
        beats = [r for t, r in run.records if t > regained[0] and r.get("kind") == "heartbeat"]
        assert beats and beats[-1]["online"] is True and beats[-1]["dwells"] > before, beats[-1:]
    finally:
        run.stop()
