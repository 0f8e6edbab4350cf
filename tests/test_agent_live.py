"""The agent end to end: `sdrwatch simulate SCENE --rtl-tcp` as a real process, the agent as another,
over real TCP in real time; baseline layers captured by `sdrwatch baseline capture`; the same scene in
process gives the same alert; SIGTERM closes open emissions; a lost receiver is retried and regained.

The scene (recordings/scenes/exam-site.toml) keys a cheating NBFM voice link at 220.25 MHz 30 s in;
benign users (a keyed walkie-talkie, pager bursts, a spur) are on from the start, so they are in the
baseline, which is captured from the scene's first 12 s (before the cheater keys). The agent starts
the scene at t0 = 20 s, so the cheater keys 10 s into the run, 30 s into the session.
"""
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sdrwatch.agent.config import SCENE_BANDS, BandConfig, load_config, site_config_toml
from sdrwatch.agent.layers import diff_layers, load_layer
from sdrwatch.agent.loop import Agent, AgentHook
from sdrwatch.net import schema
from sdrwatch.net.outbox import Outbox

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "recordings" / "scenes" / "exam-site.toml"
CHEAT_HZ = 220.25e6
T0 = 20.0  # scene start offset of the agent's run
KEY_S = 30.0  # the cheater keys at this scene time
CLI = [sys.executable, "-c", "from sdrwatch.cli import main; main()"]

def write_config(path: Path, uri: str, session_start: dt.datetime, **options) -> Path:
    """The test site: the scene's two priority bands, one pass a second, one 2 h session "chinese"."""
    path.write_text(site_config_toml("test-school", uri, timezone="Asia/Shanghai",
                                     sweep={"dwell_s": 0.1, "priority_revisit_s": 1.0, "background": "none"},
                                     sessions=[("chinese", session_start, session_start + dt.timedelta(hours=2))], **options))
    return path


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site directory with a baseline layer captured (fast, in a subprocess) from the first 12 s of
    the scene, and a second layer from 34-44 s (the cheater on), each by `sdrwatch baseline capture`."""
    d = tmp_path_factory.mktemp("site")
    now = dt.datetime.now(dt.timezone.utc)
    fast = write_config(d / "capture.toml", f"sim:{SCENE}?realtime=0", now)
    r = subprocess.run(CLI + ["baseline", "capture", "--config", str(fast), "--duration", "12", "--layer", "pre-session"],
                       capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "pre-session" in r.stdout and "no earlier layer" in r.stdout
    late = write_config(d / "capture-late.toml", f"sim:{SCENE}?realtime=0&t0=34", now)
    r2 = subprocess.run(CLI + ["baseline", "capture", "--config", str(late), "--duration", "10", "--layer", "late", "--json"],
                        capture_output=True, text=True, env=env(), timeout=300)
    assert r2.returncode == 0, r2.stderr
    return d, [json.loads(line) for line in r2.stdout.splitlines()]


def test_capture_lists_what_the_previous_layer_lacked(site):
    d, diff = site
    found = [r for r in diff if "center_hz" in r]
    assert len(found) == 1, diff
    assert found[0]["center_hz"] == pytest.approx(CHEAT_HZ, abs=3e3) and found[0]["old"] == "pre-session"
    cfg = load_config(d / "capture.toml")
    a, b = load_layer("pre-session", cfg.state_dir), load_layer("late", cfg.state_dir)
    assert not [r for r in diff_layers(a, a) if "center_hz" in r]
    assert not [r for r in diff_layers(b, a) if "center_hz" in r]  # everything of pre-session is in late too
    r = subprocess.run(CLI + ["baseline", "diff", "--config", str(d / "capture.toml"), "pre-session", "late"],
                       capture_output=True, text=True, env=env())
    assert r.returncode == 0 and "1 emitter(s) in late that pre-session did not have" in r.stdout, r
    mhz = float(re.search(r"rx0\s+([\d.]+) MHz", r.stdout).group(1))
    assert mhz == pytest.approx(CHEAT_HZ / 1e6, abs=0.003)


def _serve(port: int, t0: float):
    proc = subprocess.Popen(CLI + ["simulate", f"{SCENE}?t0={t0:g}", "--rtl-tcp", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    line = proc.stdout.readline()
    m = re.search(r"on 127\.0\.0\.1:(\d+)", line)
    assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, int(m.group(1))


class Reader(threading.Thread):
    """Collects the agent's JSON lines as they arrive."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.records, self.raw = stream, [], []

    def run(self):
        for line in self.stream:
            self.raw.append(line)
            self.records.append(json.loads(line))

    def wait_for(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(pred(r) for r in list(self.records)):
                return True
            time.sleep(0.05)
        return False


def alerts(records):
    return [r for r in records if r["type"] == "alert"]


def test_cheater_over_rtl_tcp_raises_one_alert_then_sigterm_closes_it(site):
    d, _ = site
    server, port = _serve(0, T0)
    agent = None
    try:
        session_start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=KEY_S - T0 - 0.0) - dt.timedelta(seconds=20)
        cfg = write_config(d / "live.toml", f"rtl_tcp://127.0.0.1:{port}", session_start)
        agent = subprocess.Popen(CLI + ["agent", "--config", str(cfg), "--format", "jsonl", "--duration", "60", "--baseline", "pre-session"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        reader = Reader(agent.stdout)
        reader.start()
        assert reader.wait_for(lambda r: r["type"] == "health" and r["kind"] == "start", 20), agent.stderr.read() if agent.poll() else ""
        assert reader.wait_for(lambda r: r["type"] == "alert", 16), reader.raw
        # on for long enough to be classed by its time pattern before the receiver goes away
        assert reader.wait_for(lambda r: r["type"] == "alert" and r["event"] == "update" and r["duration_s"] >= 1.5, 12), reader.raw[-3:]
        # the receiver goes away (the server is killed) and comes back: lost, retried, regained
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        assert reader.wait_for(lambda r: r.get("kind") == "receiver_lost", 15), reader.raw[-3:]
        server, _ = _serve(port, KEY_S + 5)
        assert reader.wait_for(lambda r: r.get("kind") == "receiver_regained", 20), reader.raw[-3:]
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0, agent.stderr.read()
        reader.join(5)
    finally:
        for p in (agent, server):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    recs = reader.records
    start = next(r for r in recs if r.get("kind") == "start")
    assert start["sessions"][0]["name"] == "chinese" and start["receivers"] == ["rx0"]
    assert recs[-1]["type"] == "health" and recs[-1]["kind"] == "stop"
    al = alerts(recs)
    ids = {r["alert_id"] for r in al}
    assert len(ids) == 1, [(r["event"], r["center_hz"], r["label"], r["time"]) for r in al]  # benign users raise nothing
    first = al[0]
    assert first["event"] == "open" and first["center_hz"] == pytest.approx(CHEAT_HZ, abs=3e3)
    assert first["session"] == "chinese" and first["receiver"] == "rx0"
    # the class: a voice link once it has been on for a second (the open may call it a burst)
    assert {r["label"] for r in al if r["duration_s"] >= 1.5} == {"nbfm-voice"}
    assert first["site"] == "test-school" and first["alert_id"].startswith("test-school-rx0-")
    # onset: the scene clock runs from the agent's connection (its "start" record) at t0
    t_start = dt.datetime.fromisoformat(start["time"].replace("Z", "+00:00"))
    onset = dt.datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    expected = t_start + dt.timedelta(seconds=KEY_S - T0)
    assert abs((onset - expected).total_seconds()) < 1.0 + 1.5, (onset, expected)
    # 30 s into a 2 h session the schedule weight is 0.70 (it rises to 1.0 at the end)
    assert 0 < first["severity"] <= 0.71
    # SIGTERM closed it as open-ended, and every record is in the outbox
    closes = [r for r in al if r["event"] == "close"]
    assert len(closes) == 1 and closes[0]["open_ended"] is True
    for r in recs:
        schema.validate(r)
    ob = Outbox(d / "state" / "outbox.db")
    try:
        stored = [r for r in ob.records() if r.get("site") == "test-school"]
    finally:
        ob.close()
    assert [r for r in stored if r["type"] == "alert"] == al
    assert len(stored) >= len(recs)


class DwellLog(AgentHook):
    dwells: list = []

    def __init__(self, rx):
        self.t = None

    def block(self, rx, block, events):
        if self.t is None:
            self.t = block.timestamp

    def dwell_end(self, rx, hop):
        DwellLog.dwells.append((self.t, rx.hop.start_hz, rx.hop.stop_hz))
        self.t = None


def test_the_same_scene_in_process_gives_the_same_alert(site, tmp_path):
    """Fast (not real time) in this process: the same single alert, frequency, class, session and
    onset (scene time), and the sweep follows the plan's timing."""
    d, _ = site
    now = dt.datetime.now(dt.timezone.utc)
    cfg = load_config(write_config(tmp_path / "inproc.toml", f"sim:{SCENE}?t0={T0:g}&realtime=0", now - dt.timedelta(seconds=20)))
    layer = load_layer("pre-session", d / "state")
    got = []
    DwellLog.dwells = []
    from sdrwatch.agent.spectrum_log import SpectrumLog

    slog = SpectrumLog(tmp_path / "sweep.csv")
    agent = Agent(cfg, baselines={"rx0": layer.for_receiver("rx0")}, out=got.append, outbox_path=tmp_path / "outbox.db",
                  hooks=[DwellLog, slog.hook], load_default_hooks=False)
    summary = agent.run(duration_s=16)
    slog.close()
    # the spectrum log: one rtl_power line per dwell, bins = (high - low) / step
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert len(lines) == len(DwellLog.dwells)
    for line in lines[:4]:
        f = [x.strip() for x in line.split(",")]
        low, high, step, nsamp = float(f[2]), float(f[3]), float(f[4]), int(f[5])
        assert len(f) - 6 == round((high - low) / step) == 768 and nsamp == 240000
        assert re.match(r"\d{4}-\d\d-\d\d$", f[0]) and re.match(r"\d\d:\d\d:\d\d$", f[1])
        assert -120 < np.median([float(x) for x in f[6:]]) < -40
    al = alerts(got)
    assert summary.alerts == 1 and len({r["alert_id"] for r in al}) == 1, [(r["center_hz"], r["label"]) for r in al]
    first = al[0]
    assert first["center_hz"] == pytest.approx(CHEAT_HZ, abs=3e3) and first["session"] == "chinese"
    assert {r["label"] for r in al if r["duration_s"] >= 1.5} == {"nbfm-voice"}
    t_start = dt.datetime.fromisoformat(next(r for r in got if r.get("kind") == "start")["time"].replace("Z", "+00:00"))
    onset = dt.datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    # the scene clock starts when the source opened (just before the start record)
    assert abs((onset - t_start).total_seconds() - (KEY_S - T0)) < agent.plan.receivers[0].pass_s + 1.0
    assert al[-1]["event"] == "close" and al[-1]["open_ended"] is True  # the run ended with it on
    # revisit achieved against planned (scene clock)
    beat = summary.receivers["rx0"]
    assert beat["revisit_s"] == pytest.approx(beat["planned_revisit_s"], rel=0.05)
    # the POI of the run's own dwell timeline matches the plan's
    from sdrwatch.sweep.plan import simulate_intercepts

    plan = agent.plan
    r = plan.receivers[0]
    starts = np.array([t for t, _lo, _hi in DwellLog.dwells])
    tl = [(t, t + r.priority[0].dwell_s, lo, hi) for t, lo, hi in DwellLog.dwells]
    assert len(tl) > 50 and np.all(np.diff(starts) > 0)
    for L in (0.05, 0.2, 0.5):
        planned = plan.poi(219.4e6, 221.2e6, L)
        measured = simulate_intercepts(tl, 219.4e6, 221.2e6, L, cfg.sweep.min_overlap_s, trials=4000)
        assert measured == pytest.approx(planned, abs=0.04), L


def test_agent_refuses_a_baseline_that_does_not_fit_and_a_missing_layer(site, tmp_path):
    d, _ = site
    cfg = write_config(tmp_path / "other.toml", f"sim:{SCENE}?realtime=0", dt.datetime.now(dt.timezone.utc), state_dir=d / "state",
                       bands=(SCENE_BANDS[0], BandConfig("voice-220", 300e6, 301.8e6, True)))
    r = subprocess.run(CLI + ["agent", "--config", str(cfg), "--duration", "1", "--baseline", "pre-session"],
                       capture_output=True, text=True, env=env(), timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "has no hop at 300.9000 MHz" in r.stderr, r.stderr
    r = subprocess.run(CLI + ["agent", "--config", str(cfg), "--duration", "1", "--baseline", "no-such-layer"],
                       capture_output=True, text=True, env=env(), timeout=120)
    assert r.returncode == 1 and "no baseline layer 'no-such-layer'" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = subprocess.run(CLI + ["agent", "--config", str(cfg), "--duration", "-3"], capture_output=True, text=True, env=env())
    assert r.returncode == 1 and "--duration -3" in r.stderr
    r = subprocess.run(CLI + ["baseline", "capture", "--config", str(cfg), "--duration", "1", "--layer", "bad name"],
                       capture_output=True, text=True, env=env())
    assert r.returncode == 1 and "layer name 'bad name'" in r.stderr


def test_sim_offset_starts_the_scene_later():
    from sdrwatch.radio.sim import open_sim
    from sdrwatch.errors import SourceError

    a = open_sim(f"sim:{SCENE}?t0=30", sample_rate_hz=2.4e6, center_hz=220.3e6)
    b = open_sim(f"sim:{SCENE}", sample_rate_hz=2.4e6, center_hz=220.3e6, start_s=30.0)
    assert a.time_s == pytest.approx(30.0)
    assert np.array_equal(a.read(4096).iq, b.read(4096).iq)
    for bad in ("t0=x", "t0=-1", "t0=inf", "seed=1.5", "realtime=maybe", "speed=3", "t0"):
        with pytest.raises(SourceError) as info:
            open_sim(f"sim:{SCENE}?{bad}")
        assert "\n" not in str(info.value)


def test_passes_keep_the_revisit_when_retunes_cost_more_than_planned(tmp_path):
    """A receiver whose retunes take 80 ms (it says 0): the agent measures the overhead and puts
    fewer background hops into each pass, so the priority revisit stays within the target."""
    from sdrwatch.agent.config import BandConfig
    from sdrwatch.bench_agent import LoopSource

    class SlowRetunes(LoopSource):
        def tune(self, center_hz):
            super().tune(center_hz)
            self.t0 += 0.08  # the receiver's clock runs on while it settles

    cfg = load_config(write_config(tmp_path / "slow.toml", "rtl_tcp://127.0.0.1:1", dt.datetime.now(dt.timezone.utc)))
    bands = (BandConfig("prio", 169.4e6 - 0.9e6, 169.4e6 + 0.9e6, True), BandConfig("bg", 400e6, 418e6, False))
    from dataclasses import replace

    cfg = replace(cfg, bands=bands, sweep=replace(cfg.sweep, background="bands", background_dwell_s=0.05, priority_revisit_s=1.0))
    from sdrwatch.sweep.plan import build_plan

    plan = build_plan(cfg, retune_s={"rx0": 0.0})
    centers = [h.center_hz for h in plan.receivers[0].priority + plan.receivers[0].background]
    rng = np.random.default_rng(1)
    iq = {c: (0.01 * (rng.standard_normal(240000) + 1j * rng.standard_normal(240000))).astype(np.complex64) for c in centers}
    agent = Agent(cfg, outbox_path=False, load_default_hooks=False, sources={"rx0": SlowRetunes(iq, 2.4e6)})
    summary = agent.run(duration_s=30)
    rp = agent.plan.receivers[0]
    assert rp.retune_s == 0.0 and rp.background_per_pass == 10 and rp.pass_s == pytest.approx(0.6)
    beat = summary.receivers["rx0"]
    # unadapted a pass would take 0.18 + 10 x 0.13 = 1.48 s; adapted: 6 background hops, 0.96 s
    assert beat["background_per_pass"] == 6
    assert beat["revisit_s"] <= 1.0 * 1.02


def test_the_agent_can_return_freed_heap_to_the_system():
    """The agent trims glibc's arenas every TRIM_S (numpy temporaries freed by the receiver threads)."""
    import sys as _sys

    from sdrwatch.agent.loop import TRIM_S, heap_trimmer

    trim = heap_trimmer()
    if not _sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    assert trim is not None and trim() in (0, 1) and 0 < TRIM_S <= 60
