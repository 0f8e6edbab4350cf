"""The shipped regression recordings: every threat found, no false alarm, benign users quiet."""
from pathlib import Path

import pytest

from sdrwatch.cli.demo import DEMO_CASES
from sdrwatch.evaluate import score
from sdrwatch.radio.file import open_recording
from sdrwatch.replay import Settings, detect, load_reference

REC = Path(__file__).resolve().parents[1] / "recordings"


@pytest.mark.parametrize("name,base_name", [(n, b) for n, b, _ in DEMO_CASES])
def test_shipped_recording_scores_perfectly(name, base_name):
    rec = open_recording(REC / name)
    base = load_reference(REC / base_name, Settings()) if base_name else None
    emissions = [e.as_record() for e in detect(rec, base)]
    s = score(rec, emissions)
    assert s["threats_found"] == s["threats"], s["matches"]
    assert s["false_alarms"] == 0, s["false_alarm_emissions"]
    if base is not None:
        assert s["benign_flagged"] == 0  # benign users were in the baseline
    for m in s["matches"]:
        assert abs(m["freq_error_hz"]) < 3e3
        if "time_error_s" in m:
            assert abs(m["time_error_s"]) < 0.02


def test_weak_fm_ladder_reaches_minus_12_db():
    rec = open_recording(REC / "weak-fm-ladder")
    s = score(rec, [e.as_record() for e in detect(rec, load_reference(REC / "weak-fm-ladder-baseline", Settings()))])
    found = {m["label"] for m in s["matches"] if m["found"]}
    assert {"fm-snr-3", "fm-snr-6", "fm-snr-9", "fm-snr-12"} <= found


def test_benign_exam_raises_nothing():
    rec = open_recording(REC / "benign-exam")
    assert detect(rec, load_reference(REC / "benign-baseline", Settings())) == []



def test_quiet_site_recorded_from_the_simulator_raises_nothing(tmp_path):
    """2.4 MS/s through the dongle model (roll-off over the band edges, DC, 8 bits): noise only."""
    from click.testing import CliRunner

    from sdrwatch.cli import main

    stem = tmp_path / "quiet"
    res = CliRunner().invoke(main, ["record", "sim:demo", "--freq", "169M", "--freq", "220.25M", "--rate", "2.4M",
                                    "--duration", "1", "-o", str(stem)])
    assert res.exit_code == 0, res.output
    assert detect(open_recording(stem)) == []  # the demo's cheaters only start at 30 s


@pytest.mark.parametrize("name,base_name", [(n, b) for n, b, _ in DEMO_CASES])
def test_replay_matches_the_expected_output(name, base_name):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("make_expected", REC / "make_expected.py")
    make_expected = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_expected)
    want = [json.loads(line) for line in (REC / "expected" / f"{name}.jsonl").read_text().splitlines()]
    got = make_expected.expected(name, base_name)
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert abs(g["center_hz"] - w["center_hz"]) < 1e3
        assert abs(g["start_s"] - w["start_s"]) < 0.01 and abs(g["end_s"] - w["end_s"]) < 0.01
        assert (g["label"], g["novelty"], g["bursts"]) == (w["label"], w["novelty"], w["bursts"])
