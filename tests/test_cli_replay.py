"""replay / baseline / evaluate through the command line: the output contract and the error lines."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch.cli import main

from synth import fsk_bursts, noise, snr_to_power, write

FS = 1.024e6
KEYS = {"center_hz", "bandwidth_hz", "start_s", "end_s", "peak_dbfs", "snr_db", "label", "severity"}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(res, *words):
    assert res.exit_code != 0
    out = res.output.strip()
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert out.startswith("error:"), out
    for w in words:
        assert w in out, out


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    rng = np.random.default_rng(11)
    n = int(2 * FS)
    bursts = fsk_bursts(n, FS, 120e3, snr_to_power(15, 15e3, FS), rng, [0.5, 1.2])
    ann = [dict(sample_start=int(s * FS), sample_count=int(0.015 * FS), freq_lower_hz=169.1125e6, freq_upper_hz=169.1275e6,
                label="pager", extra={"sdrwatch:threat": True}) for s in (0.5, 1.2)]
    write(d / "base", noise(n, rng), FS, 169e6, fmt="cu8")
    write(d / "exam", noise(n, rng) + bursts, FS, 169e6, fmt="cu8", annotations=ann)
    return d


def test_replay_jsonl_is_one_object_per_emission_with_the_contract_keys(pair):
    res = run("replay", pair / "exam", "--baseline", pair / "base", "--format", "jsonl")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines()]
    assert len(lines) == 1
    e = lines[0]
    assert KEYS <= set(e)
    assert e["center_hz"] == pytest.approx(169.12e6, abs=3e3)
    assert e["start_s"] == pytest.approx(0.5, abs=0.01)
    assert e["bursts"] == 2


def test_replay_table_is_readable(pair):
    res = run("replay", pair / "exam", "--baseline", pair / "base")
    assert res.exit_code == 0
    assert "169.1" in res.output and "pager-fsk" in res.output and "1 emission(s)" in res.output


def test_baseline_build_show_and_reuse(pair, tmp_path):
    res = run("baseline", "build", pair / "base", "-o", tmp_path / "site.npz")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "site.npz").exists()
    res = run("baseline", "show", tmp_path / "site.npz", "-o", tmp_path / "site.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "site.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    a = run("replay", pair / "exam", "--baseline", tmp_path / "site.npz", "--format", "jsonl").output
    b = run("replay", pair / "exam", "--baseline", pair / "base", "--format", "jsonl").output
    assert a == b  # a saved baseline gives the same alerts as learning it on the fly


def test_evaluate_scores_against_annotations(pair):
    res = run("evaluate", pair / "exam", "--baseline", pair / "base", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    assert (s["threats"], s["threats_found"], s["false_alarms"]) == (2, 2, 0)
    assert abs(s["freq_error_hz_median"]) < 3e3 and abs(s["time_error_s_median"]) < 0.01


def test_evaluate_reads_replay_output(pair, tmp_path):
    out = tmp_path / "e.jsonl"
    out.write_text(run("replay", pair / "exam", "--format", "jsonl").output)
    s = json.loads(run("evaluate", pair / "exam", "--emissions", out, "--json").output)
    assert s["threats_found"] == 2
    out.write_text('{"center_hz": 1}\n')
    assert_one_line_error(run("evaluate", pair / "exam", "--emissions", out), "not an sdrwatch emission")


def test_bad_inputs_get_one_line(pair, tmp_path):
    assert_one_line_error(run("replay", tmp_path / "missing.cu8"), "missing")
    trunc = tmp_path / "t_169M_1024k.cu8"
    trunc.write_bytes(b"\x80" * 4097)
    assert_one_line_error(run("replay", trunc))
    assert_one_line_error(run("replay", pair / "exam", "--baseline", tmp_path / "nope.npz"), "nope")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert_one_line_error(run("replay", pair / "exam", "--baseline", bad), "baseline")
    assert_one_line_error(run("baseline", "show", bad), "baseline")
    # a baseline from another tuning
    write(tmp_path / "other", noise(int(FS), np.random.default_rng(1)), FS, 433.92e6)
    assert_one_line_error(run("replay", pair / "exam", "--baseline", tmp_path / "other"), "no hop")
    # another sample rate
    write(tmp_path / "rate", noise(int(FS), np.random.default_rng(1)), 2 * FS, 169e6)
    assert_one_line_error(run("replay", pair / "exam", "--baseline", tmp_path / "rate"), "MS/s")
    assert_one_line_error(run("replay", pair / "exam", "--fft-size", "1000"), "power of two")
    assert_one_line_error(run("evaluate", trunc.with_name("x_169M_1024k.cu8")))


def test_raw_file_with_explicit_rate_freq_and_format(tmp_path):
    rng = np.random.default_rng(3)
    n = int(FS)
    x = noise(n, rng) + fsk_bursts(n, FS, -50e3, snr_to_power(20, 15e3, FS), rng, [0.4])
    raw = tmp_path / "capture.bin"
    from sdrwatch.radio.iq import from_iq

    raw.write_bytes(from_iq(x, "cs16"))
    res = run("replay", raw, "--rate", "1024k", "--freq", "433.92M", "--sample-format", "cs16", "--format", "jsonl")
    assert res.exit_code == 0, res.output
    e = json.loads(res.output.splitlines()[0])
    assert e["center_hz"] == pytest.approx(433.87e6, abs=3e3)


def test_baseline_on_a_full_disk_is_one_line_and_leaves_nothing(pair, full_tmpfs):
    res = run("baseline", "build", pair / "base", "-o", full_tmpfs / "site.npz")
    assert_one_line_error(res, "disk full")
    assert list(full_tmpfs.iterdir()) == []


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=40), st.just("{}"), st.just('{"center_hz": 1}'), st.just("[1, 2]"),
                          st.fixed_dictionaries({k: st.one_of(st.floats(allow_nan=False), st.text(max_size=3), st.none())
                                                 for k in ("center_hz", "bandwidth_hz", "start_s", "end_s", "peak_dbfs",
                                                           "snr_db", "label", "severity")}).map(json.dumps)),
                max_size=4))
def test_evaluate_input_is_parsed_or_refused_in_one_line(pair, tmp_path, lines):
    from sdrwatch.errors import SdrwatchError
    from sdrwatch.evaluate import emissions_from_jsonl, score
    from sdrwatch.radio.file import open_recording

    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines))
    try:
        records = emissions_from_jsonl(path)
    except SdrwatchError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(r, dict) for r in records)
        score(open_recording(pair / "exam"), records)  # whatever parsed can be scored


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_any_bytes_as_a_baseline_file_are_refused_in_one_line(tmp_path, blob):
    from sdrwatch.baseline import Baseline
    from sdrwatch.errors import BaselineError

    path = tmp_path / "b.npz"
    path.write_bytes(blob)
    with pytest.raises(BaselineError) as err:
        Baseline.load(path)
    assert "\n" not in str(err.value)


def test_a_truncated_baseline_file_is_refused(pair, tmp_path):
    from sdrwatch.baseline import Baseline
    from sdrwatch.errors import BaselineError

    res = run("baseline", "build", pair / "base", "-o", tmp_path / "site.npz")
    assert res.exit_code == 0
    data = (tmp_path / "site.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BaselineError):
        Baseline.load(tmp_path / "cut.npz")
    assert_one_line_error(run("replay", pair / "exam", "--baseline", tmp_path / "cut.npz"), "baseline")
