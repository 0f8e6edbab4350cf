"""Real processes and real signals: SIGHUP (an ssh session dropping) and SIGQUIT clean up like SIGTERM, and a
stdout closed by its reader gives the same exit code, with nothing on stderr, for every command."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REC = Path(__file__).resolve().parents[1] / "recordings"
CLI = [sys.executable, "-c", "from sdrwatch.cli import main; main()"]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM])
def test_a_signalled_recording_leaves_nothing(tmp_path, sig):
    stem = tmp_path / "rec"
    proc = subprocess.Popen([*CLI, "record", "sim:demo", "--freq", "169.2M", "--rate", "2.4M", "--duration", "60",
                             "-o", str(stem)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(tmp_path.iterdir()) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert any(p.name.endswith(".partial") for p in tmp_path.iterdir()), list(tmp_path.iterdir())
    time.sleep(0.3)
    proc.send_signal(sig)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted; nothing partial was kept"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["demo", "--replay-only"],
    ["replay", str(REC / "sweep")],
    ["replay", str(REC / "sweep"), "--format", "jsonl"],
    ["evaluate", str(REC / "gfsk-bursts"), "--baseline", str(REC / "gfsk-bursts-baseline")],
    ["--help"],
    ["replay", "--help"],
])
def test_a_closed_stdout_exits_0_quietly_everywhere(args):
    r, w = os.pipe()
    os.close(r)  # the reader has gone before the first write, like `| head -0`
    try:
        proc = subprocess.run([*CLI, *args], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stderr == "", proc.stderr


def test_head_reads_the_first_line_of_the_demo():
    """The same through a real shell pipeline, as a user types it."""
    shell = subprocess.run(["bash", "-o", "pipefail", "-c", " ".join(f"'{a}'" for a in CLI[:2]) + " '" + CLI[2] + "' demo --replay-only | head -1"],
                           capture_output=True, text=True, timeout=120)
    assert shell.returncode == 0, (shell.returncode, shell.stderr)
    assert shell.stdout.strip() and shell.stderr == ""
