"""Site config: every documented key read, every bad key or value refused in one line, paths
resolved against the config file, presets expanded; the CLI turns a bad config into one error line."""
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdrwatch.agent.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

GOOD = """
[site]
id = "school-12"
timezone = "Asia/Shanghai"
state_dir = "state"

[[receiver]]
uri = "rtl_tcp://127.0.0.1:1234"
sample_rate_hz = 2.4e6
gain_db = 30.0
ppm = 0

[[band]]
name = "vhf-high"
start_hz = 150e6
stop_hz = 174e6
priority = true

[[session]]
name = "chinese"
start = "2027-06-07T09:00:00+08:00"
end = "2027-06-07T11:30:00+08:00"
"""


def write(tmp_path, text, name="site.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_issue_example_loads(tmp_path):
    c = load_config(write(tmp_path, GOOD))
    assert c.site_id == "school-12" and c.timezone == "Asia/Shanghai"
    assert c.state_dir == (tmp_path / "state").resolve()
    rx = c.receivers[0]
    assert (rx.name, rx.uri, rx.sample_rate_hz, rx.gain_db, rx.ppm) == ("rx0", "rtl_tcp://127.0.0.1:1234", 2.4e6, 30.0, 0)
    b = c.bands[0]
    assert (b.name, b.start_hz, b.stop_hz, b.priority) == ("vhf-high", 150e6, 174e6, True)
    s = c.sessions[0]
    assert s.name == "chinese" and s.start == dt.datetime(2027, 6, 7, 1, 0, tzinfo=dt.timezone.utc)
    assert c.outbox_path == c.state_dir / "outbox.db" and c.collector is None


def test_relative_paths_resolve_against_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "etc"
    sub.mkdir()
    scene = REPO / "recordings" / "scenes" / "demo.toml"
    (sub / "scene.toml").write_text(scene.read_text())
    text = GOOD.replace('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "sim:scene.toml?t0=30"') + """
[collector]
endpoint = "tcp://127.0.0.1:5555"
server_key = "keys/collector.key"
agent_key = "keys/school-12.key_secret"
[evidence]
budget_mb = 500
[[declare]]
label = "campus-fm"
center_hz = 89.9e6
[check]
reference_hz = 98.1e6
"""
    p = write(sub, text)
    monkeypatch.chdir(tmp_path)
    c = load_config("etc/site.toml")
    assert c.receivers[0].uri == f"sim:{(sub / 'scene.toml').resolve()}?t0=30"
    assert c.state_dir == (sub / "state").resolve()
    assert c.collector.server_key == (sub / "keys" / "collector.key").resolve()
    assert c.collector.agent_key == (sub / "keys" / "school-12.key_secret").resolve()
    assert c.evidence == {"budget_mb": 500} and c.check == {"reference_hz": 98.1e6}
    assert c.declare == ({"label": "campus-fm", "center_hz": 89.9e6},)
    assert p.exists()


def test_examples_load():
    for f in sorted(EXAMPLES.glob("*.toml")):
        c = load_config(f)
        assert c.receivers and c.bands, f


def test_preset_expands_and_priority_can_be_overridden(tmp_path):
    text = GOOD.replace('[[band]]\nname = "vhf-high"\nstart_hz = 150e6\nstop_hz = 174e6\npriority = true',
                        '[[band]]\npreset = "gaokao-cases"\n\n[[band]]\npreset = "cheap-radios"\npriority = false')
    c = load_config(write(tmp_path, text))
    names = [b.name for b in c.bands]
    assert "pager-168" in names and "relay-1150" in names and "vhf-high" in names
    assert all(b.priority for b in c.bands if b.preset == "gaokao-cases")
    assert not any(b.priority for b in c.bands if b.preset == "cheap-radios")


def test_frequencies_may_carry_suffixes(tmp_path):
    c = load_config(write(tmp_path, GOOD.replace("start_hz = 150e6", 'start_hz = "150M"')))
    assert c.bands[0].start_hz == 150e6


def test_gain_auto_and_naive_session_times_are_site_local(tmp_path):
    text = GOOD.replace("gain_db = 30.0", 'gain_db = "auto"').replace("+08:00", "")
    c = load_config(write(tmp_path, text))
    assert c.receivers[0].gain_db is None
    assert c.sessions[0].start.utcoffset() == dt.timedelta(hours=8)


def test_toml_datetimes_are_accepted(tmp_path):
    text = GOOD.replace('start = "2027-06-07T09:00:00+08:00"', "start = 2027-06-07T09:00:00+08:00")
    assert load_config(write(tmp_path, text)).sessions[0].start.hour == 9


BAD = [
    # (replace this, with this, message fragment)
    ('[site]\nid = "school-12"', '[site]\nid = "school 12"', "'id' must be letters"),
    ('id = "school-12"\n', "", "'id' is required"),
    ('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"', "not a known time zone"),
    ('state_dir = "state"', "state_dir = 3", "'state_dir' must be a non-empty string"),
    ("[site]", "[site]\ncolour = 1", "unknown key 'colour'"),
    ("[site]", "[sitee]\n[site]", "unknown table 'sitee'"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "gopher://x"', "unknown receiver scheme"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "rtl_tcp://127.0.0.1:99999"', "port 99999 out of range"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "rtlsdr://x"', "expected rtlsdr://N"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "sim:demo?t0=-1"', "t0=-1 must be between"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "sim:demo?speed=2"', "unknown key 'speed'"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "sim:no-such-scene"', "scene file 'no-such-scene' not found"),
    ('uri = "rtl_tcp://127.0.0.1:1234"', 'uri = "nothing-here.cu8"', "no such recording"),
    ('uri = "rtl_tcp://127.0.0.1:1234"\n', "", "'uri' is required"),
    ("sample_rate_hz = 2.4e6", "sample_rate_hz = 10e6", "'sample_rate_hz' must be between"),
    ("sample_rate_hz = 2.4e6", 'sample_rate_hz = "fast"', "'sample_rate_hz' must be a number"),
    ("sample_rate_hz = 2.4e6", "sample_rate_hz = nan", "'sample_rate_hz' must be finite"),
    ("gain_db = 30.0", 'gain_db = "loud"', 'must be a number of dB or "auto"'),
    ("gain_db = 30.0", "gain_db = 300", "'gain_db' must be between"),
    ("ppm = 0", "ppm = 1.5", "'ppm' must be an integer"),
    ("ppm = 0", 'tuner = "rx9000"', "unknown tuner 'rx9000'"),
    ("ppm = 0", "volume = 11", "unknown key 'volume'"),
    ("start_hz = 150e6", "start_hz = -5", "'start_hz' must be between"),
    ("start_hz = 150e6", 'start_hz = "lots"', "'start_hz' must be a frequency"),
    ("stop_hz = 174e6", "stop_hz = 140e6", "'stop_hz' must be above start_hz"),
    ("priority = true", 'priority = "yes"', "'priority' must be true or false"),
    ('name = "vhf-high"', 'name = "vhf high"', "'name' must be letters"),
    ('[[band]]\nname = "vhf-high"', '[[band]]\npreset = "no-such-preset"\n[[band]]\nname = "vhf-high"', "unknown band preset 'no-such-preset'"),
    ('[[band]]\nname = "vhf-high"', '[[band]]\npreset = "gaokao-cases"\nname = "x"\n[[band]]\nname = "vhf-high"', "unknown key 'name'"),
    ('start = "2027-06-07T09:00:00+08:00"', 'start = "June 7th"', "'start' must be an ISO-8601"),
    ('end = "2027-06-07T11:30:00+08:00"', 'end = "2027-06-07T08:30:00+08:00"', "'end' must be after start"),
    ('end = "2027-06-07T11:30:00+08:00"', 'end = "2027-06-09T11:30:00+08:00"', "more than 24 h"),
    ('end = "2027-06-07T11:30:00+08:00"\n', "", "'end' is required"),
    ("[[session]]", '[[session]]\nname = "chinese"\nstart = "2027-06-07T10:00:00+08:00"\nend = "2027-06-07T12:00:00+08:00"\n[[session]]', "is used twice"),
    ("[[session]]", '[[session]]\nname = "early"\nstart = "2027-06-07T08:00:00+08:00"\nend = "2027-06-07T10:00:00+08:00"\n[[session]]', "overlap"),
    ("[[session]]", "[sweep]\ndwell_s = 0.001\n[[session]]", "'dwell_s' must be between"),
    ("[[session]]", '[sweep]\nbackground = "everything"\n[[session]]', "'background' must be one of"),
    ("[[session]]", "[sweep]\npriority_revisit_s = 0\n[[session]]", "'priority_revisit_s' must be > 0"),
    ("[[session]]", "[sweep]\nmin_overlap_s = 0.5\n[[session]]", "cannot exceed the dwell"),
    ("[[session]]", "[sweep]\nretune_ms = 5\n[[session]]", "unknown key 'retune_ms'"),
    ("[[session]]", '[collector]\nendpoint = "http://x"\nserver_key = "a"\nagent_key = "b"\n[[session]]', "must be a ZeroMQ endpoint"),
    ("[[session]]", '[collector]\nendpoint = "tcp://x:1"\nserver_key = "a"\n[[session]]', "'agent_key' is required"),
    ("[[session]]", "[evidence]\n[[evidence.x]]\n[[session]]", None),  # passed through: no error
    ("[site]", "check = 3\n[site]", "[check] must be a table"),
    ("[[receiver]]", "[[receiver]]\nuri = \"rtl_tcp://127.0.0.1:1\"\nname = \"rx1\"\n[[receiver]]", "is used by an earlier receiver"),
]


@pytest.mark.parametrize("old,new,fragment", BAD)
def test_bad_keys_and_values_are_one_line_errors(tmp_path, old, new, fragment):
    assert old in GOOD, old
    p = write(tmp_path, GOOD.replace(old, new, 1))
    if fragment is None:
        load_config(p)
        return
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    assert fragment in msg, msg


@pytest.mark.parametrize("text,fragment", [
    ("[site\nid=1", "not valid TOML"),
    ('[[receiver]]\nuri = "rtl_tcp://h:1"\n[[band]]\nname="b"\nstart_hz=1e8\nstop_hz=2e8', "no [site] table"),
    ('[site]\nid = "s"\n[[band]]\nname="b"\nstart_hz=1e8\nstop_hz=2e8', "no [[receiver]]"),
    ('[site]\nid = "s"\n[[receiver]]\nuri = "rtl_tcp://h:1"', "no [[band]]"),
    ('receiver = 3\n[site]\nid = "s"', "'receiver' must be an array of tables"),
])
def test_structural_errors(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match="^" + str(tmp_path).replace("\\", "\\\\")) as info:
        load_config(write(tmp_path, text))
    assert fragment in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe[site]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


def test_bad_preset_file_is_one_line(tmp_path):
    (tmp_path / "mine.toml").write_text('[[band]]\nname = "x"\nstart_hz = 2e8\nstop_hz = 1e8\n')
    text = GOOD.replace('[[band]]\nname = "vhf-high"\nstart_hz = 150e6\nstop_hz = 174e6\npriority = true', '[[band]]\npreset = "mine.toml"')
    with pytest.raises(ConfigError, match="stop_hz must be above start_hz"):
        load_config(write(tmp_path, text))


values = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=12), st.lists(st.integers(), max_size=3))


def _toml_value(v):
    import json
    import math

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return json.dumps(v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["sample_rate_hz", "gain_db", "ppm", "start_hz", "stop_hz", "priority", "id", "timezone",
                            "tuner", "name", "start", "end", "dwell_s", "background"]), value=values)
def test_any_value_is_accepted_or_refused_in_one_line(tmp_path, key, value):
    if value is None:
        return
    table = {"sample_rate_hz": "[[receiver]]", "gain_db": "[[receiver]]", "ppm": "[[receiver]]", "tuner": "[[receiver]]",
             "start_hz": "[[band]]", "stop_hz": "[[band]]", "priority": "[[band]]", "name": "[[band]]",
             "id": "[site]", "timezone": "[site]", "start": "[[session]]", "end": "[[session]]"}.get(key)
    lines = [ln for ln in GOOD.splitlines() if not (table and ln.startswith(f"{key} ="))]
    text = "\n".join(lines)
    if table is None:
        text += f"\n[sweep]\n{key} = {_toml_value(value)}\n"
    else:
        text = text.replace(table, f"{table}\n{key} = {_toml_value(value)}", 1)
    try:
        load_config(write(tmp_path, text))
    except ConfigError as exc:
        assert "\n" not in str(exc)


def test_cli_bad_config_is_one_line(tmp_path):
    p = write(tmp_path, GOOD.replace("gain_db = 30.0", 'gain_db = "loud"'))
    for cmd in (["plan", "--config", str(p)], ["agent", "--config", str(p), "--duration", "1"]):
        r = subprocess.run([sys.executable, "-c", "from sdrwatch.cli import main; main()", *cmd], capture_output=True, text=True)
        assert r.returncode == 1, r
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "gain_db" in r.stderr, r.stderr
