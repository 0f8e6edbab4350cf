"""Receiver profiles: every TOML loads, lookups, and the PlanError checks."""
from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings, strategies as st

from sdrwatch.errors import PlanError
from sdrwatch.radio.profiles import (
    ReceiverProfile, all_profiles, load_profile, profile_for_tuner_id, profiles_dir,
)

# gain counts and tuner ids from librtlsdr (protocols.md section 2)
EXPECTED = {
    "r820t": ("R820T", 5, 29),
    "r828d": ("R828D", 6, 29),
    "e4000": ("E4000", 1, 14),
    "fc0012": ("FC0012", 2, 5),
    "fc0013": ("FC0013", 3, 23),
    "fc2580": ("FC2580", 4, 1),
}


def test_every_profile_file_loads_with_its_fields():
    profiles = {p.key: p for p in all_profiles()}
    assert set(profiles) == set(EXPECTED)
    for key, (name, tuner_id, gain_count) in EXPECTED.items():
        p = profiles[key]
        assert p.name == name
        assert p.rtl_tcp_tuner_id == tuner_id
        assert len(p.gains_db) == gain_count
        assert p.gains_db == sorted(p.gains_db)
        assert p.frequency_ranges_hz and all(lo < hi for lo, hi in p.frequency_ranges_hz)
        assert p.sample_rate_ranges_hz == ((225_001.0, 300_000.0), (900_001.0, 3_200_000.0))
        assert p.max_safe_sample_rate_hz == 2_560_000
        assert 0.005 <= p.settle_s <= 0.015 and p.settle_max_s >= p.settle_s
        assert p.discard_samples > 0
        assert p.if_type in ("low-IF", "zero-IF")
        assert 0 < p.usable_fraction <= 1
        assert p.image_rejection_db > 0 and p.noise_figure_db > 0 and p.typical_ppm >= 0
        d = p.as_dict()
        for field in ("name", "rtl_tcp_tuner_id", "frequency_ranges_hz", "gaps_hz", "gains_db",
                      "sample_rate_ranges_hz", "settle_s", "discard_samples", "typical_ppm", "if_type",
                      "image_rejection_db", "noise_figure_db", "usable_fraction"):
            assert field in d
        text = p.path.read_text()
        assert text.startswith("# sdrwatch receiver profile"), "header comment says what the file is"
        assert "Sources of the numbers" in text


def test_gain_tables_verbatim():
    assert load_profile("r820t").gains_tenth_db[:6] == (0, 9, 14, 27, 37, 77)
    assert load_profile("r820t").gains_db[-1] == 49.6
    assert load_profile("e4000").gains_tenth_db == (-10, 15, 40, 65, 90, 115, 140, 165, 190, 215, 240, 290, 340, 420)
    assert load_profile("fc0012").gains_tenth_db == (-99, -40, 71, 179, 192)
    assert load_profile("fc2580").gains_db == [0.0]


@pytest.mark.parametrize("name,key", [("R820T2", "r820t"), ("r820t", "r820t"), ("R820T", "r820t"),
                                      ("rtl-sdr blog v4", "r828d"), ("R828D", "r828d"), ("e4k", "e4000"),
                                      ("FC2580", "fc2580"), ("fc0013", "fc0013")])
def test_load_by_stem_name_or_alias(name, key):
    assert load_profile(name).key == key


def test_unknown_tuner_is_one_line_plan_error():
    with pytest.raises(PlanError) as err:
        load_profile("HackRF")
    assert "\n" not in str(err.value) and "r820t" in str(err.value)


def test_profile_for_tuner_id():
    for key, (name, tuner_id, _) in EXPECTED.items():
        assert profile_for_tuner_id(tuner_id).name == name
    with pytest.raises(PlanError):
        profile_for_tuner_id(9)


def test_frequency_gaps_and_ranges():
    e4k = load_profile("e4000")
    assert e4k.check_frequency(433.92e6) == 433.92e6
    with pytest.raises(PlanError) as err:
        e4k.check_frequency(1150.275e6)
    msg = str(err.value)
    assert "E4000" in msg and "gap" in msg and "1100-1250 MHz" in msg and "\n" not in msg
    fc2580 = load_profile("fc2580")
    with pytest.raises(PlanError, match="FC2580"):
        fc2580.check_frequency(400e6)
    assert fc2580.usable_ranges_hz == [(146e6, 308e6), (438e6, 924e6)]
    with pytest.raises(PlanError, match="outside the R820T tuning range .*24-1766 MHz"):
        load_profile("r820t").check_frequency(2.0e9)
    with pytest.raises(PlanError):
        load_profile("r820t").check_frequency(10e6)
    v4 = load_profile("r828d")
    assert v4.check_frequency(7.1e6) == 7.1e6  # HF through the V4 upconverter
    assert v4.upconverter_below_hz == 28.8e6


@pytest.mark.parametrize("rate,ok", [(225_000, False), (225_001, True), (250_000, True), (300_000, True),
                                     (300_001, False), (900_000, False), (900_001, True), (2_400_000, True),
                                     (3_200_000, True), (3_200_001, False)])
def test_sample_rates(rate, ok):
    p = load_profile("r820t")
    if ok:
        assert p.check_sample_rate(rate) == rate
    else:
        with pytest.raises(PlanError, match="not valid for R820T"):
            p.check_sample_rate(rate)


def test_gain_rounding_examples():
    p = load_profile("r820t")
    assert p.nearest_gain_db(30.0) == 29.7
    assert p.nearest_gain_db(100.0) == 49.6
    assert p.nearest_gain_db(-3.0) == 0.0
    assert p.nearest_gain_db(20.0) == 19.7
    assert p.check_gain(None) is None
    assert load_profile("fc2580").nearest_gain_db(25.0) == 0.0
    with pytest.raises(PlanError):
        p.check_gain("loud")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.floats(min_value=-20, max_value=70, allow_nan=False))
def test_gain_rounding_is_nearest_table_entry(key, gain_db):
    p = load_profile(key)
    got = p.nearest_gain_db(gain_db)
    assert got in p.gains_db
    assert all(abs(got - gain_db) <= abs(g - gain_db) + 1e-9 for g in p.gains_db)


def test_env_var_overrides_profile_dir(tmp_path, monkeypatch):
    (tmp_path / "receivers").mkdir()
    shutil.copy(profiles_dir() / "receivers" / "r820t.toml", tmp_path / "receivers" / "custom.toml")
    monkeypatch.setenv("SDRWATCH_PROFILES", str(tmp_path))
    profs = all_profiles()
    assert [p.key for p in profs] == ["custom"]
    assert isinstance(load_profile("custom"), ReceiverProfile)
    monkeypatch.setenv("SDRWATCH_PROFILES", str(tmp_path / "nowhere"))
    with pytest.raises(PlanError, match="no receiver profiles"):
        all_profiles()
