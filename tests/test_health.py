"""Receiver health measurements and the simulator's fault injection."""
from types import SimpleNamespace

import numpy as np
import pytest

from sdrwatch.agent.health import HealthMonitor, clipping_share, noise_floor_db
from sdrwatch.errors import SourceError
from sdrwatch.radio.sim.scene import Scene
from sdrwatch.radio.sim.source import SimSource

FS = 1.024e6
CW = {"kind": "cw", "label": "carrier", "freq_hz": 100.2e6, "power_dbfs": -30.0}


def scene(*faults, emitters=(CW,)):
    return Scene.from_dict({"scene": {"seed": 3, "noise_dbfs_hz": -95.0, "floor_dbfs_hz": -130.0},
                            "emitter": list(emitters), "fault": list(faults)})


def test_antenna_off_drops_the_floor_and_removes_emitters_from_its_time_on():
    sc = scene({"kind": "antenna_off", "at_s": 1.0, "until_s": 2.0, "drop_db": 12.0})
    before = sc.render(100e6, FS, 0, 1 << 16)
    during = sc.render(100e6, FS, int(1.2 * FS), 1 << 16)
    after = sc.render(100e6, FS, int(2.2 * FS), 1 << 16)
    f0, f1, f2 = (noise_floor_db(x, FS) for x in (before, during, after))
    assert 9 < f0 - f1 < 14 and abs(f2 - f0) < 1
    spec = lambda x: np.abs(np.fft.fftshift(np.fft.fft(x))) ** 2  # noqa: E731
    k = int((0.2e6 / FS + 0.5) * len(before))
    assert spec(before)[k - 2:k + 3].max() > 1e3 * np.median(spec(before))
    assert spec(during)[k - 2:k + 3].max() < 30 * np.median(spec(during))


def test_faults_render_the_same_samples_for_any_block_split():
    sc = scene({"kind": "antenna_off", "at_s": 0.1}, {"kind": "gain_step", "at_s": 0.05, "step_db": -6.0})
    whole = sc.render(100e6, FS, 0, 200_000)
    parts = np.concatenate([sc.render(100e6, FS, a, b - a) for a, b in [(0, 51_000), (51_000, 102_500), (102_500, 200_000)]])
    np.testing.assert_array_equal(whole, parts)


def test_gain_step_moves_the_floor_by_its_step():
    sc = scene({"kind": "gain_step", "at_s": 0.5, "step_db": -10.0}, emitters=())
    a = noise_floor_db(sc.render(100e6, FS, 0, 1 << 16), FS)
    b = noise_floor_db(sc.render(100e6, FS, int(0.6 * FS), 1 << 16), FS)
    assert 8 < a - b < 11


def test_stream_stop_makes_the_source_fail_and_resume_after_it():
    src = SimSource(scene({"kind": "stream_stop", "at_s": 0.3, "until_s": 0.5}), sample_rate_hz=FS, center_hz=100e6)
    src.read(200_000)
    with pytest.raises(SourceError, match="stream stopped at scene time 0.30"):
        src.read(200_000)
    assert src.read(1000).iq.size == 1000  # after the stop (not real time: no wait)


@pytest.mark.parametrize("fault,why", [
    ({"kind": "unplug", "at_s": 1}, "kind must be one of"),
    ({"kind": "antenna_off"}, "missing field 'at_s'"),
    ({"kind": "antenna_off", "at_s": 2, "until_s": 1}, "until_s must be after"),
    ({"kind": "gain_step", "at_s": 2}, "needs step_db"),
    ({"kind": "antenna_off", "at_s": 2, "colour": 1}, "unknown field 'colour'"),
    ({"kind": "antenna_off", "at_s": "soon"}, "must be a number"),
])
def test_bad_faults_are_one_line(fault, why):
    with pytest.raises(SourceError, match=why) as exc:
        scene(fault)
    assert "\n" not in str(exc.value)


def test_clipping_share_counts_samples_at_the_end_stops():
    x = np.full(10_000, 0.1 + 0.1j, np.complex64)
    x[:150] = 1.0 + 0.0j
    assert clipping_share(x) == pytest.approx(0.015, abs=1e-3)


def _rx(emitted, tmp_path):
    return SimpleNamespace(name="rx0", site="school", emit=emitted.append, sample_rate_hz=FS, plan=SimpleNamespace(crop=0.25),
                           state_dir=tmp_path, source=None, info=None)


def test_monitor_reports_a_collapsed_floor_once_then_clears(tmp_path):
    sc = scene({"kind": "antenna_off", "at_s": 2.0, "until_s": 4.0})
    emitted = []
    rx = _rx(emitted, tmp_path)
    mon = HealthMonitor(rx)
    hops = [100e6, 101e6]
    n = 0
    for visit in range(12):  # 0.5 s per visit of both hops: the antenna is off from visit 4 to 7
        for c in hops:
            iq = sc.render(c, FS, n, 1 << 16)
            mon.block(rx, SimpleNamespace(iq=iq, center_hz=c, sample_index=n), [])
            n += int(0.25 * FS)
        if visit in (3, 7):
            kinds = [r["kind"] for r in emitted]
    low = [r for r in emitted if r["kind"] == "noise_floor_low"]
    assert len(low) == 2 and all(r["severity"] >= 0.8 and r["drift_db"] < -6 for r in low)  # one per hop
    assert low[0]["time"] and "antenna off" in low[0]["message"]
    assert sum(r["kind"] == "noise_floor_low_ok" for r in emitted) == 2
    assert not any(r["kind"] == "noise_floor_high" for r in emitted)
    assert kinds  # the collapse was seen by the end of the off period
    beat = mon.heartbeat(rx)
    assert set(beat) >= {"clipping_share", "noise_floor_drift_db", "dropped_share"}


def test_monitor_reports_clipping_and_a_raised_floor(tmp_path):
    emitted = []
    rx = _rx(emitted, tmp_path)
    mon = HealthMonitor(rx)
    rng = np.random.default_rng(1)
    quiet = lambda s: ((rng.normal(size=1 << 16) + 1j * rng.normal(size=1 << 16)) * s).astype(np.complex64)  # noqa: E731
    for i in range(3):
        mon.block(rx, SimpleNamespace(iq=quiet(0.01), center_hz=100e6 + i, sample_index=0), [])
    for i in range(3):  # learnt; now the floor is 10 dB up
        mon.block(rx, SimpleNamespace(iq=quiet(0.01), center_hz=200e6, sample_index=0), [])
        mon.block(rx, SimpleNamespace(iq=quiet(0.01), center_hz=100e6, sample_index=0), [])
    mon.block(rx, SimpleNamespace(iq=quiet(0.0316), center_hz=200e6, sample_index=0), [])
    loud = np.clip(quiet(2.0).real, -1, 1) + 0j
    mon.block(rx, SimpleNamespace(iq=loud.astype(np.complex64), center_hz=300e6, sample_index=0), [])
    kinds = [r["kind"] for r in emitted]
    assert "noise_floor_high" in kinds and "clipping" in kinds
    clip = next(r for r in emitted if r["kind"] == "clipping")
    assert clip["severity"] >= 0.7 and clip["clipping_share"] > 0.1
