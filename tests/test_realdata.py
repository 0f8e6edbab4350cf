"""The detection core on real receiver captures from ../shared/realdata (skipped when absent)."""
from pathlib import Path

import pytest

from sdrwatch.radio.file import open_recording
from sdrwatch.replay import detect

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata is not present")


def covers(e, t_s, f_hz):
    return e.start_s - 0.01 <= t_s <= e.end_s + 0.01 and abs(e.center_hz - f_hz) <= e.bandwidth_hz / 2 + 20e3


def test_wmbus_meters_found_at_their_burst_times():
    em = detect(open_recording(REAL / "wmbus-samples2_868.95M_1600k.cu8"))
    assert any(covers(e, 0.24, 868.95e6) for e in em)
    assert any(covers(e, 0.46, 868.95e6) for e in em)
    strong = max(em, key=lambda e: e.peak_dbfs)
    assert strong.bursts >= 2  # two meters, one record per frequency with its bursts
    assert len(em) <= 6  # splatter of the strong bursts is not reported as separate emitters


def test_adsb_pulses_found_at_1090():
    em = detect(open_recording(REAL / "dump1090-adsb_1090M_2000k.cu8"))
    assert any(abs(e.center_hz - 1090e6) < 300e3 for e in em)


@pytest.mark.parametrize("name", sorted(p.name for p in REAL.glob("urh-*")) if REAL.is_dir() else [])
def test_ism_bursts_are_one_strong_emission_not_a_cloud(name):
    em = detect(open_recording(REAL / name))
    assert em, "a burst transmitter is in every capture"
    strongest = max(em, key=lambda e: e.peak_dbfs)
    assert strongest.snr_db > 15
    # fragments and splatter stay few: every capture holds one or two devices
    assert len(em) <= 10, [(round(e.center_hz / 1e6, 4), round(e.start_s, 3)) for e in em]
