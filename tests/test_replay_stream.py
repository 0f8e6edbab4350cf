"""`sdrwatch replay` streams: JSON lines as emissions end, receivers with --duration, Ctrl-C and SIGTERM
keep what was printed, `| head` ends quietly. Real processes, killed for real."""
from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdrwatch.cli import main

SCENE = """
[scene]
name = "stream"
seed = 3
noise_dbfs_hz = -100.0

[[emitter]]
kind = "fsk"
label = "short"
freq_hz = 169.05e6
snr_db = 18.0
windows = [[0.5, 1.0]]

[[emitter]]
kind = "nbfm"
label = "long"
freq_hz = 168.95e6
snr_db = 18.0
audio = "noise"
"""

REPO = Path(__file__).resolve().parents[1]
CMD = [sys.executable, "-c", "from sdrwatch.cli import main; main()"]


@pytest.fixture()
def scene(tmp_path):
    p = tmp_path / "stream.toml"
    p.write_text(SCENE)
    return f"sim:{p}"


def test_a_receiver_is_watched_for_duration_seconds(scene):
    res = CliRunner().invoke(main, ["replay", scene, "--freq", "169M", "--rate", "250k", "--duration", "10", "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in res.output.splitlines()]
    assert [round(r["center_hz"] / 1e3) for r in recs] == [169050, 168950]  # the short one printed when it ended
    short, long_ = recs
    assert short["start_s"] == pytest.approx(0.5, abs=0.02) and short["end_s"] == pytest.approx(1.0, abs=0.02)
    assert not short["open_ended"]
    assert long_["open_ended"] and long_["end_s"] == pytest.approx(10.0, abs=0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_replay_keeps_the_lines_already_printed(scene, sig):
    proc = subprocess.Popen(CMD + ["replay", scene, "--freq", "169M", "--rate", "250k", "--format", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no emission printed within 60 s"
        first = proc.stdout.readline()  # printed (and flushed) as the short emission ended
        time.sleep(0.3)
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: interrupted after ")
    recs = [json.loads(line) for line in (first + rest).splitlines()]
    assert round(recs[0]["center_hz"] / 1e3) == 169050 and not recs[0]["open_ended"]
    # what was still on when it stopped is closed and printed too, as open-ended
    assert [round(r["center_hz"] / 1e3) for r in recs[1:]] == [168950] and recs[1]["open_ended"]


def test_piping_into_head_ends_quietly(scene):
    shell = " ".join(f"'{c}'" for c in CMD) + f" replay '{scene}' --freq 169M --rate 250k --duration 30 --format jsonl | head -n 1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert round(json.loads(proc.stdout)["center_hz"] / 1e3) == 169050


@pytest.mark.parametrize("args,words", [
    (["recordings/gfsk-bursts", "--duration", "5"], "--duration is for a receiver"),
    (["sim:demo", "--duration", "0"], "--duration 0.0"),
    (["sim:demo", "--duration", "inf"], "--duration inf"),
    (["sim:demo", "--duration", "-3"], "--duration -3.0"),
    (["rtl_tcp://127.0.0.1:1", "--duration", "1"], "127.0.0.1"),
])
def test_bad_receiver_options_get_one_line(args, words):
    proc = subprocess.run(CMD + ["replay", *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr
