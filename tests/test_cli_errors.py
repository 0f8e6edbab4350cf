"""Bad input anywhere on the command line: one 'error:' line, a non-zero exit, nothing partial left."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch.cli import main

REC = Path(__file__).resolve().parents[1] / "recordings"


def one_line(res, code=None):
    out = res.output.strip()
    assert res.exit_code != 0 and "Traceback" not in out, out
    assert len(out.splitlines()) == 1 and out.startswith("error:"), out
    if code is not None:
        assert res.exit_code == code


@pytest.mark.parametrize("args", [
    ["replay", str(REC / "gfsk-bursts"), "--format", "bogus"],
    ["replay", str(REC / "gfsk-bursts"), "--fft-size", "abc"],
    ["baseline", "build", str(REC / "gfsk-bursts-baseline")],
    ["record", "sim:demo", "--freq", "169M", "--rate", "250k", "--duration", "abc", "-o", "x"],
    ["nosuchcommand"],
])
def test_usage_errors_are_one_line_with_exit_2(args):
    one_line(CliRunner().invoke(main, args), code=2)


def test_record_refuses_an_infinite_duration(tmp_path):
    one_line(CliRunner().invoke(main, ["record", "sim:demo", "--freq", "169M", "--rate", "250k", "--duration", "inf",
                                       "-o", str(tmp_path / "x")]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["nan_noise", "short_array", "no_spectrum", "meta_list"])
def test_damaged_baseline_files_are_refused(tmp_path, damage):
    res = CliRunner().invoke(main, ["baseline", "build", str(REC / "gfsk-bursts-baseline"), "-o", str(tmp_path / "b.npz")])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "b.npz") as z:
        arrays = dict(z)
    meta = json.loads(str(arrays["meta"]))
    if damage == "nan_noise":
        arrays["h0_noise_power"] = np.full_like(arrays["h0_noise_power"], np.nan)
    elif damage == "short_array":
        arrays["h0_duty"] = arrays["h0_duty"][:10]
    elif damage == "no_spectrum":
        del meta["spectrum"]
    else:
        meta = [1, 2]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    one_line(CliRunner().invoke(main, ["replay", str(REC / "gfsk-bursts"), "--baseline", str(tmp_path / "bad.npz")]))
    one_line(CliRunner().invoke(main, ["baseline", "show", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "x.png")]))
    assert not (tmp_path / "x.png").exists()


def test_a_terminated_recording_leaves_nothing(tmp_path):
    """A real process, killed for real: SIGTERM during 'sdrwatch record' removes its partial files."""
    stem = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, "-c", "from sdrwatch.cli import main; main()", "record", "sim:demo",
                             "--freq", "169.2M", "--rate", "2.4M", "--duration", "60", "-o", str(stem)],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not any(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=20)[1]
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["error: interrupted; nothing partial was kept"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["replay", str(REC / "gfsk-bursts"), "--fft-size", "0"],
    ["replay", str(REC / "gfsk-bursts"), "--margin-db", "nan"],
    ["evaluate", str(REC / "gfsk-bursts"), "--emissions", "e.jsonl", "--baseline", str(REC / "gfsk-bursts-baseline")],
    ["record", "sim:demo", "--freq", "169M", "--rate", "250k", "--duration", "0.1", "-o", ""],
])
def test_bad_values_are_refused(tmp_path, args):
    (tmp_path / "e.jsonl").write_text("")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        one_line(CliRunner().invoke(main, args))
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl"]


def test_a_recording_shorter_than_one_fft_is_refused(tmp_path):
    raw = tmp_path / "tiny_433.92M_250k.cu8"
    raw.write_bytes(b"\x80" * 8)
    one_line(CliRunner().invoke(main, ["replay", str(raw)]))
