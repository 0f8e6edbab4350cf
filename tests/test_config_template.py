"""The site-config template (`site_config_toml`): what it writes is read back by the real loader with
the same values, for any names, frequencies, times and table values the loader accepts; what the
loader refuses in a template's text is still one line."""
import datetime as dt
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdrwatch.agent.config import SCENE_BANDS, BandConfig, ConfigError, SessionConfig, load_config, site_config_toml

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
table_values = st.one_of(st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False), texts,
                         st.lists(st.integers(-99, 99), max_size=4))
tables = st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12), table_values, max_size=5)


def test_the_defaults_load_as_the_scene_bands(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(site_config_toml("school-12", "rtl_tcp://127.0.0.1:1234", comment="a test site\nsecond line"))
    c = load_config(p)
    assert p.read_text().startswith("# a test site\n# second line\n")
    assert (c.site_id, c.timezone, c.state_dir) == ("school-12", "UTC", (tmp_path / "state").resolve())
    rx = c.receivers[0]
    assert (rx.name, rx.uri, rx.sample_rate_hz, rx.gain_db, rx.tuner) == ("rx0", "rtl_tcp://127.0.0.1:1234", 2.4e6, 29.7, None)
    assert c.bands == SCENE_BANDS
    assert (c.sessions, c.collector, c.evidence, c.declare, c.check) == ((), None, {}, (), {})


def test_every_table_is_written(tmp_path):
    start = dt.datetime(2027, 6, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    text = site_config_toml(
        "school-07", "rtl_tcp://127.0.0.1:1234", [("ism-433", 433.0e6, 434.8e6, False)], receiver="dongle-1", sample_rate_hz=1.024e6,
        gain_db=None, tuner="r820t", timezone="Asia/Shanghai", state_dir=tmp_path / "elsewhere",
        sessions=[("chinese", start, start + dt.timedelta(hours=2)), SessionConfig("maths", start + dt.timedelta(hours=3),
                                                                                  start + dt.timedelta(hours=5))],
        sweep={"dwell_s": 0.1, "background_dwell_s": 0.1, "priority_revisit_s": 1.0, "background": "bands"},
        collector={"endpoint": "tcp://127.0.0.1:5555", "server_key": "keys/collector.key", "agent_key": "keys/school-07.key_secret"},
        evidence={"budget_mb": 50}, declare=[{"name": "campus-fm", "center_hz": 88.0e6, "bandwidth_hz": 200e3, "class": "campus-fm"}],
        check={"reference_hz": 100.3e6})
    p = tmp_path / "site.toml"
    p.write_text(text)
    c = load_config(p)
    rx = c.receivers[0]
    assert (rx.name, rx.sample_rate_hz, rx.gain_db, rx.tuner) == ("dongle-1", 1.024e6, None, "r820t")
    assert c.bands == (BandConfig("ism-433", 433.0e6, 434.8e6, False),)
    assert [s.name for s in c.sessions] == ["chinese", "maths"] and c.sessions[0].start == start
    assert (c.sweep.background, c.sweep.background_dwell_s, c.sweep.priority_revisit_s) == ("bands", 0.1, 1.0)
    assert c.collector.endpoint == "tcp://127.0.0.1:5555" and c.collector.agent_key == (tmp_path / "keys/school-07.key_secret").resolve()
    assert c.state_dir == tmp_path / "elsewhere"
    assert c.evidence == {"budget_mb": 50} and c.check == {"reference_hz": 100.3e6}
    assert c.declare == ({"name": "campus-fm", "center_hz": 88.0e6, "bandwidth_hz": 200e3, "class": "campus-fm"},)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=names, rx=names, band=names, session=names, low=st.floats(1e3, 2.9e9), width=st.floats(1.0, 1e8),
       rate=st.floats(225_001, 3_200_000), gain=st.one_of(st.none(), st.floats(-10, 60)),
       minutes=st.integers(1, 24 * 60), check=tables, evidence=tables)
def test_what_is_written_is_what_loads(tmp_path, site, rx, band, session, low, width, rate, gain, minutes, check, evidence):
    high = min(low + width, 3e9)
    start = dt.datetime(2027, 6, 7, 9, 0, tzinfo=dt.timezone.utc)
    p = tmp_path / "site.toml"
    p.write_text(site_config_toml(site, "rtl_tcp://127.0.0.1:1234", [(band, low, high, True)], receiver=rx, sample_rate_hz=rate,
                                  gain_db=gain, sessions=[(session, start, start + dt.timedelta(minutes=minutes))],
                                  check=check, evidence=evidence), encoding="utf-8")
    if high <= low:
        with pytest.raises(ConfigError):
            load_config(p)
        return
    c = load_config(p)
    assert c.site_id == site and c.receivers[0].name == rx
    assert (c.receivers[0].sample_rate_hz, c.receivers[0].gain_db) == (rate, gain)
    assert c.bands == (BandConfig(band, low, high, True),)
    assert c.sessions == (SessionConfig(session, start, start + dt.timedelta(minutes=minutes)),)
    assert c.check == check and c.evidence == evidence


def test_a_bad_value_in_a_template_is_one_line_from_the_loader(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(site_config_toml("school-12", "rtl_tcp://127.0.0.1:1234", sweep={"background": "everything"}))
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert "[sweep]: 'background' must be one of tuner, bands, none" in str(info.value) and "\n" not in str(info.value)
    p.write_text(site_config_toml("school 12", "rtl_tcp://127.0.0.1:1234"))
    with pytest.raises(ConfigError, match=r"\[site\]: 'id' must be letters"):
        load_config(p)


def test_values_a_config_cannot_hold_are_refused_when_writing():
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError, match="finite"):
            site_config_toml("s", "rtl_tcp://127.0.0.1:1", check={"reference_hz": bad})
    with pytest.raises(ValueError, match="cannot write"):
        site_config_toml("s", "rtl_tcp://127.0.0.1:1", check={"what": object()})


def test_a_key_ending_in_a_newline_is_quoted():
    """A key is written bare only when all of it is bare-key characters: ``$`` in the pattern once let
    ``"0\\n"`` through bare, and the file did not load (found by the round trip above)."""
    from sdrwatch.agent.config import _toml_table, tomllib

    assert tomllib.loads(_toml_table("[t]", {"0\n": False, "ok_key-1": 1})) == {"t": {"0\n": False, "ok_key-1": 1}}
