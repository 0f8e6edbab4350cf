"""Band plan and site declarations: an entry covers an emission only when band, bandwidth, class and
schedule all fit."""
import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdrwatch.classify import classify
from sdrwatch.classify.allowlist import Allowlist, AllowlistError, cover, load_bandplan, parse_declarations, site_allowlist
from sdrwatch.dsp.tracker import Emission

TZ = ZoneInfo("Asia/Shanghai")


def em(f_hz, bw=11e3, start=1.0, end=4.0, duty=1.0, bursts=1):
    return classify(Emission(f_hz, bw, start, end, -50, 15, duty, bursts, "new", 0.005, f_hz, open_ended=True))


def at(text):
    return dt.datetime.fromisoformat(text).timestamp()


CAMPUS = {"name": "campus-fm", "class": "campus-fm", "center_hz": 86.0e6, "bandwidth_hz": [60e3, 250e3],
          "schedule": [["2027-06-08T14:50:00", "2027-06-08T15:25:00"]], "note": "listening test"}
MIC = {"name": "auditorium-mic", "class": "nbfm-voice", "center_hz": "203.5M", "tolerance_hz": 5e3, "bandwidth_hz": [4e3, 25e3]}
JAMMER = {"name": "room-jammers", "class": "room-jammer", "start_hz": 1710e6, "stop_hz": 1766e6, "schedule": "sessions"}
PROCTOR = {"name": "proctor-radios", "classes": ["nbfm-voice"], "bands_hz": [[400.0125e6, 400.0375e6]]}


def site(*rows, sessions=()):
    return Allowlist(parse_declarations(rows, tz=TZ, sessions=sessions) + load_bandplan())


def test_walkie_talkie_on_409_7625_is_labelled_and_not_alerted():
    e = em(409.7625e6, bw=9e3)
    assert e.label == "walkie-public"
    assert cover(e, site()) == "bandplan:public-walkie-talkie"


def test_broadcast_fm_is_covered_but_an_fsk_burst_in_the_fm_band_is_not():
    assert cover(em(100.6e6, bw=180e3), site()) == "bandplan:broadcast-fm"
    burst = em(100.62e6, bw=12e3, start=1.0, end=1.3)
    assert burst.label != "broadcast-fm" and cover(burst, site()) is None


def test_nbfm_voice_inside_a_tv_channel_is_not_covered_by_the_tv_entry():
    e = em(536.0e6, bw=11e3)
    assert e.label == "nbfm-voice"
    assert cover(e, site()) is None
    assert any(r.startswith("bandplan:dtmb-tv/class:") for r in site().reasons(e))


def test_campus_fm_is_covered_inside_its_window_and_alerted_outside_it():
    e = em(86.0e6, bw=180e3)
    assert e.label == "campus-fm"
    allow = site(CAMPUS)
    assert cover(e, allow, at("2027-06-08T15:00:00+08:00")) == "site:campus-fm"
    assert cover(e, allow, at("2027-06-08T15:40:00+08:00")) is None  # after the listening test
    assert cover(e, allow, at("2027-06-07T15:00:00+08:00")) is None  # the day before
    assert cover(e, allow, None) is None  # a scheduled entry needs the time
    assert any("/schedule:" in r for r in allow.reasons(e, at("2027-06-08T16:00:00+08:00")))


def test_a_declaration_covers_only_its_class_band_and_bandwidth():
    allow = site(MIC, PROCTOR)
    assert cover(em(203.5e6, bw=16e3), allow) == "site:auditorium-mic"
    assert cover(em(203.52e6, bw=16e3), allow) is None  # 20 kHz off: another transmitter
    assert cover(em(203.5e6, bw=40e3), allow) is None  # too wide for the microphone
    assert cover(em(203.5e6, bw=12e3, start=1.0, end=1.2, duty=0.3, bursts=3), allow) is None  # bursts: not voice
    assert cover(em(400.025e6, bw=11e3), allow) == "site:proctor-radios"


def test_jammers_are_covered_during_sessions_only():
    sessions = [(at("2027-06-07T09:00:00+08:00"), at("2027-06-07T11:30:00+08:00"))]
    e = em(1750e6, bw=5e6)  # wide, continuous noise in the uplink band (in a downlink band it reads as the downlink)
    assert e.label == "room-jammer"
    allow = site(JAMMER, sessions=sessions)
    assert cover(e, allow, at("2027-06-07T10:00:00+08:00")) == "site:room-jammers"
    assert cover(e, allow, at("2027-06-07T12:00:00+08:00")) is None


def test_site_allowlist_reads_a_site_config():
    cfg = SimpleNamespace(tz=TZ, path="site.toml", declare=(CAMPUS, MIC), sessions=())
    allow = site_allowlist(cfg)
    assert [x.name for x in allow.entries[:2]] == ["site:campus-fm", "site:auditorium-mic"]
    assert len(allow) > 10


@pytest.mark.parametrize("row,why", [
    ({"class": "campus-fm", "center_hz": 86e6}, "'name' is required"),
    ({"name": "x", "center_hz": 86e6}, "give 'class' or 'classes'"),
    ({"name": "x", "class": "campus", "center_hz": 86e6}, "unknown class 'campus'"),
    ({"name": "x", "class": "campus-fm"}, "exactly one of"),
    ({"name": "x", "class": "campus-fm", "center_hz": 86e6, "start_hz": 85e6, "stop_hz": 87e6}, "exactly one of"),
    ({"name": "x", "class": "campus-fm", "center_hz": "eighty"}, "x"),
    ({"name": "x", "class": "campus-fm", "center_hz": 86e6, "schedule": [["2027-06-08T15:00", "2027-06-08T14:00"]]}, "ends before"),
    ({"name": "x", "class": "campus-fm", "center_hz": 86e6, "schedule": [["soon", "later"]]}, "ISO-8601"),
    ({"name": "x", "class": "campus-fm", "center_hz": 86e6, "schedule": "always"}, "'schedule' must be"),
    ({"name": "x", "class": "campus-fm", "center_hz": 86e6, "colour": "red"}, "unknown key 'colour'"),
    ({"name": "x", "class": "campus-fm", "start_hz": 87e6, "stop_hz": 86e6}, "low < high"),
])
def test_a_bad_declaration_is_one_line(row, why):
    with pytest.raises(AllowlistError, match=why) as exc:
        parse_declarations([row], where="site.toml")
    assert str(exc.value).startswith("site.toml: [[declare]]") and "\n" not in str(exc.value)


def test_a_name_declared_twice_is_an_error():
    with pytest.raises(AllowlistError, match="declared twice"):
        parse_declarations([MIC, MIC])


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
                    st.lists(st.one_of(st.floats(), st.text(max_size=6), st.lists(st.floats(), max_size=3)), max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted({"name", "class", "classes", "center_hz", "tolerance_hz", "start_hz", "stop_hz",
                                                 "bands_hz", "bandwidth_hz", "schedule", "note", "other"})), _values, max_size=6))
def test_any_declaration_parses_or_fails_in_one_line(row):
    try:
        entries = parse_declarations([row])
    except AllowlistError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(entries) == 1 and entries[0].name.startswith("site:")
