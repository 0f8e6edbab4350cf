"""Readers and parsers against files built to break them: JSON nested 100,000 deep, 5000-digit integers and
numbers above 1e308 (SigMF meta, scenes, ``evaluate --emissions``), datetimes in year 1 and 9999, captures
shorter than one frame, a 1 GS/s file, a 1e30 Hz centre, a ``--freq`` without its unit, a bare port."""
from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sdrwatch.cli import main
from sdrwatch.errors import PlanError, RecordingError
from sdrwatch.radio.file import loads_json, parse_hz, parse_tuning_hz
from sdrwatch.radio.rtl_tcp import parse_host_port
from clierrors import one_line

REC = Path(__file__).resolve().parents[1] / "recordings"
GFSK = REC / "gfsk-bursts"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def meta_copy(tmp_path: Path, name: str, text_of) -> Path:
    meta = json.loads((REC / "gfsk-bursts.sigmf-meta").read_text())
    stem = tmp_path / name
    shutil.copy(REC / "gfsk-bursts.sigmf-data", f"{stem}.sigmf-data")
    Path(f"{stem}.sigmf-meta").write_text(text_of(meta))
    return stem


def with_extra(raw: str):
    return lambda meta: json.dumps(meta)[:-1] + f', "x": {raw}}}'


DEEP = "[" * 100_000 + "]" * 100_000
BIG_INT = "9" * 5000


@pytest.mark.parametrize("raw,needle", [(DEEP, "nested too deeply"), (BIG_INT, "5000 digits"),
                                        ("1e309", "out of range"), ("-1e400", "out of range")])
def test_hostile_json_in_a_sigmf_meta(tmp_path, raw, needle):
    stem = meta_copy(tmp_path, "m", with_extra(raw))
    one_line(run("replay", stem), needle, "m.sigmf-meta")


@pytest.mark.parametrize("raw,needle", [(DEEP, "nested too deeply"), (BIG_INT, "5000 digits"), ("1e309", "out of range")])
def test_hostile_json_in_evaluate_emissions(tmp_path, raw, needle):
    em = tmp_path / "em.jsonl"
    em.write_text('{"center_hz": ' + raw + "}\n")
    one_line(run("evaluate", GFSK, "--emissions", em), needle, "em.jsonl:1")


@pytest.mark.parametrize("body,needle", [
    ("[scene]\nseed = " + BIG_INT + "\n", "not a scene"),
    ("[scene]\nseed = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
])
def test_hostile_toml_in_a_scene(tmp_path, body, needle):
    scene = tmp_path / "s.toml"
    scene.write_text(body)
    one_line(run("record", f"sim:{scene}", "--freq", "169M", "--rate", "250k", "--duration", "0.1", "-o", tmp_path / "o"),
             needle)
    assert not list(tmp_path.glob("o*"))


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                    max_leaves=20))
@settings(max_examples=200, deadline=None)
def test_loads_json_reads_every_ordinary_document_like_json(doc):
    text = json.dumps(doc)
    assert loads_json(text, "x") == json.loads(text)


@given(st.text(alphabet='[]{}":,0123456789eE.-+ truefalsnNaIiy\\', max_size=60))
@settings(max_examples=300, deadline=None)
def test_loads_json_fails_only_in_the_known_ways(text):
    try:
        loads_json(text, "x")
    except (json.JSONDecodeError, RecordingError):
        pass


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z",
                                  "10000-01-01T00:00:00Z"])
def test_record_from_a_meta_with_a_datetime_at_the_ends_of_time(tmp_path, when):
    def change(meta):
        meta["captures"][0]["core:datetime"] = when
        return json.dumps(meta)
    stem = meta_copy(tmp_path, "src", change)
    res = run("record", stem, "--freq", "169M", "--rate", "250k", "--duration", "1", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "out.sigmf-meta").read_text())
    assert out["captures"][0]["core:datetime"].endswith("Z")


def test_a_capture_shorter_than_one_frame_is_refused_like_baseline_build(tmp_path):
    short = tmp_path / "short_169M_250k.cu8"
    short.write_bytes((REC / "gfsk-bursts.sigmf-data").read_bytes()[:1000])  # 500 samples, 2 ms
    one_line(run("replay", short), "too short to analyse", "5 ms frame")
    one_line(run("baseline", "build", short, "-o", tmp_path / "b.npz"), "too short")


def test_a_1_gs_file_is_refused_rather_than_reporting_nothing(tmp_path):
    raw = tmp_path / "fast.cu8"
    raw.write_bytes((REC / "gfsk-bursts.sigmf-data").read_bytes()[:400_000])
    one_line(run("replay", raw, "--rate", "1G", "--freq", "169M"), "too short to analyse")


def test_a_centre_frequency_of_1e30_hz_is_refused(tmp_path):
    def change(meta):
        meta["captures"][0]["core:frequency"] = 1e30
        return json.dumps(meta)
    one_line(run("replay", meta_copy(tmp_path, "f", change)), "core:frequency")
    raw = tmp_path / "x.cu8"
    raw.write_bytes(bytes(4000))
    one_line(run("replay", raw, "--rate", "250k", "--freq", "1e30"), "not a tuning")


@pytest.mark.parametrize("cmd", [["replay", "RAW", "--rate", "250k", "--freq", "1090"],
                                 ["record", "sim:demo", "--rate", "250k", "--duration", "0.1", "-o", "OUT", "--freq", "1090"]])
def test_a_freq_without_its_unit_is_refused_with_a_hint(tmp_path, cmd):
    raw = tmp_path / "x.cu8"
    raw.write_bytes(bytes(40000))
    args = [str(raw) if a == "RAW" else str(tmp_path / "o") if a == "OUT" else a for a in cmd]
    one_line(run(*args), "1090 Hz cannot be a tuning", "did you mean 1090M?")


def test_tuning_and_rate_parsing():
    assert parse_tuning_hz("1090M") == 1090e6 and parse_tuning_hz("433.92M") == 433.92e6
    assert parse_tuning_hz("100k") == 100e3
    with pytest.raises(PlanError, match="did you mean 1090M"):
        parse_tuning_hz("1090")
    with pytest.raises(PlanError, match="not a tuning"):
        parse_tuning_hz("1e30")
    with pytest.raises(PlanError, match="did you mean 2.4M"):
        parse_hz("2.4", what="sample rate")
    with pytest.raises(PlanError, match="did you mean 250k"):
        parse_hz("250", what="sample rate")
    assert parse_hz("250k", what="sample rate") == 250e3


def test_a_bare_port_means_localhost():
    assert parse_host_port("1234") == ("127.0.0.1", 1234)
    assert parse_host_port(":1235") == ("127.0.0.1", 1235)
    assert parse_host_port("0", allow_zero=True) == ("127.0.0.1", 0)
    assert parse_host_port("pi:1234") == ("pi", 1234)


def test_simulate_with_a_bare_port_serves_on_localhost(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from sdrwatch.cli import main; main()", "simulate", "demo",
                             "--rtl-tcp", str(port), "--fast"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    assert c.recv(4) == b"RTL0"
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the simulator never listened on 127.0.0.1"
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert f"127.0.0.1:{port}" in out, (out, err)


# -------------------------------------------------------------------------------------- scenes (bounds)
BASE_SCENE = """[scene]
seed = 3
[dongle]
{dongle}
[[emitter]]
kind = "{kind}"
freq_hz = 169.0e6
snr_db = 20
{emitter}
"""


@pytest.mark.parametrize("dongle,kind,emitter,needle", [
    ("", "fsk", "[emitter.bursts]\nperiod_s = 1e-9\nlength_s = 5e-10", "period_s"),
    ("", "fsk", "[emitter.duty]\nfraction = 0.5\nmean_on_s = 1e-12", "mean_on_s"),
    ("", "cw", "bandwidth_hz = -5", "bandwidth_hz"),
    ("dc_offset_dbfs = 1e6", "cw", "", "dc_offset_dbfs"),
    ("iq_amplitude_db = 1e6", "cw", "", "iq_amplitude_db"),
    ("", "nbfm", "fading_db_pp = 1e6", "fading_db_pp"),
    ("", "cw", "ramp_s = 1e9", "ramp_s"),
    ("", "cw", "windows = [[0, 1e300]]", "windows"),
    ("", "gfsk", "bt = 1e-9", "'bt'"),
    ("", "cw", "freq_hz = 1e30", None),
    ("ppm_error = 1e12", "cw", "", "ppm_error"),
])
def test_scene_values_out_of_bounds_are_refused_in_one_line(tmp_path, dongle, kind, emitter, needle):
    body = BASE_SCENE.format(dongle=dongle, kind=kind, emitter=emitter)
    if needle is None:  # a duplicated key in the same table: the TOML parser refuses it
        body = body.replace("freq_hz = 169.0e6\n", "")
        needle = "freq_hz"
    scene = tmp_path / "s.toml"
    scene.write_text(body)
    one_line(run("record", f"sim:{scene}", "--freq", "169M", "--rate", "250k", "--duration", "0.2", "-o", tmp_path / "o"),
             needle)
    assert not list(tmp_path.glob("o*"))


def test_every_shipped_scene_is_within_bounds():
    from sdrwatch.radio.sim.scene import Scene

    for path in sorted((REC / "scenes").glob("*.toml")):
        Scene.from_toml(path)


# -------------------------------------------------------------------------------------- small things
def test_a_newline_in_a_file_name_does_not_split_the_error(tmp_path):
    bad = tmp_path / "two\nlines\x1b[31m.cu8"
    out = one_line(run("replay", bad))
    assert "\\n" in out and "\\x1b" in out and "\x1b" not in out


def test_record_sample_format_and_the_old_spelling(tmp_path):
    res = run("record", "sim:demo", "--freq", "169.4M", "--rate", "250k", "--duration", "0.05", "-o", tmp_path / "a",
              "--sample-format", "cs16")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a.sigmf-meta").read_text())["global"]["core:datatype"] == "ci16_le"
    res = CliRunner().invoke(main, ["record", "sim:demo", "--freq", "169.4M", "--rate", "250k", "--duration", "0.05",
                                    "-o", str(tmp_path / "b"), "--format", "cf32"])
    assert res.exit_code == 0, res.output
    assert "warning: record --format is now --sample-format" in res.stderr
    assert json.loads((tmp_path / "b.sigmf-meta").read_text())["global"]["core:datatype"] == "cf32_le"
    one_line(run("record", "sim:demo", "--freq", "169.4M", "--rate", "250k", "--duration", "0.05", "-o", tmp_path / "c",
                 "--format", "cf32", "--sample-format", "cu8"), "disagree")


def test_evaluate_names_the_benign_emitter_it_flagged(tmp_path):
    from sdrwatch.evaluate import benign_flagged_text, score
    from sdrwatch.radio.file import open_recording

    rec = open_recording(REC / "benign-exam")
    benign = [a for a in rec.annotations if a.extra.get("sdrwatch:threat") is False and a.freq_lower_hz]
    assert benign
    a = benign[0]
    fs = rec.sample_rate_hz
    flagged = {"center_hz": 0.5 * (a.freq_lower_hz + a.freq_upper_hz), "bandwidth_hz": a.freq_upper_hz - a.freq_lower_hz,
               "start_s": a.sample_start / fs, "end_s": (a.sample_start + (a.sample_count or 1)) / fs,
               "peak_dbfs": -40.0, "snr_db": 20.0, "label": "unknown", "severity": 0.4}
    result = score(rec, [flagged])
    assert result["benign_flagged"] == 1 and result["benign_flagged_names"] == [a.label]
    assert benign_flagged_text(result) == f"1 ({a.label})"
    em = tmp_path / "em.jsonl"
    em.write_text(json.dumps(flagged) + "\n")
    res = run("evaluate", REC / "benign-exam", "--emissions", em)
    assert res.exit_code == 0 and f"benign flagged 1 ({a.label})" in res.output, res.output


def test_the_demo_scene_suggests_a_command_that_exists():
    first = (REC / "scenes" / "demo.toml").read_text().splitlines()[:6]
    tries = [line.split("Try:", 1)[1].split("(")[0].split() for line in first if "Try:" in line]
    assert tries and tries[0][0] == "sdrwatch"
    from sdrwatch.cli import COMMANDS

    assert tries[0][1] in COMMANDS
