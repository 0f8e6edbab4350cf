"""``sdrwatch record``: hop recordings into SigMF, overwrite protection, full disks."""
from __future__ import annotations

import errno
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch.cli import main
from sdrwatch.radio.file import SigMFWriter, open_recording

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def tone(n: int, amp: float, cycles: float) -> np.ndarray:
    return (amp * np.exp(2j * np.pi * cycles * np.arange(n))).astype(np.complex64)


@pytest.fixture()
def source_recording(tmp_path) -> Path:
    """A two-hop SigMF recording with a receiver description and ground truth, used as the source."""
    stem = tmp_path / "src" / "site"
    stem.parent.mkdir()
    with SigMFWriter(stem, fmt="cu8", sample_rate_hz=250e3,
                     global_extra={"core:hw": "RTL-SDR Blog V4 (R828D)", "sdrwatch:tuner": "R828D"}) as w:
        w.start_capture(433.92e6, datetime="2024-05-01T08:00:00Z", extra={"sdrwatch:gain_db": 28.0})
        w.write(tone(100_000, 0.5, 0.05))
        w.start_capture(868.3e6, datetime="2024-05-01T08:00:01Z", extra={"sdrwatch:gain_db": 28.0})
        w.write(tone(100_000, 0.3, -0.1))
        # a burst on the second hop that straddles the record command's block boundaries
        w.annotate(100_000 + 20_000, 50_000, freq_lower_hz=868.25e6, freq_upper_hz=868.35e6, label="fsk",
                   comment="meter")
    return stem


def run(*args: str):
    return CliRunner().invoke(main, ["record", *args])


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_hop_recording_from_a_file_source(tmp_path, source_recording):
    out = tmp_path / "hops"
    result = run(f"file:{source_recording}", "--freq", "868.3M", "--freq", "433.92M", "--rate", "250k",
                 "--duration", "0.3", "-o", str(out), "--gain", "28", "--ppm", "2")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{out}.sigmf-meta"

    rec = open_recording(out)
    assert rec.sample_rate_hz == 250e3 and rec.fmt == "cu8" and rec.num_samples == 150_000
    assert [(c.sample_start, c.sample_count, c.center_hz) for c in rec.captures] == [
        (0, 75_000, 868.3e6), (75_000, 75_000, 433.92e6)]
    # core:datetime: UTC ISO-8601 with Z; here the source recording's own time of those samples
    assert [c.datetime for c in rec.captures] == ["2024-05-01T08:00:01.000000Z", "2024-05-01T08:00:00.000000Z"]
    for cap in rec.captures:
        assert cap.extra["sdrwatch:gain_db"] == 28.0 and cap.extra["sdrwatch:gain_mode"] == "manual"
        assert cap.extra["sdrwatch:ppm"] == 2
    g = rec.global_meta
    assert g["core:hw"] == "RTL-SDR Blog V4 (R828D)" and g["sdrwatch:tuner"] == "R828D"
    assert g["sdrwatch:driver"] == "file" and g["sdrwatch:source"] == f"file:{source_recording}"
    assert g["core:recorder"].startswith("sdrwatch ") and g["core:datatype"] == "cu8"
    rec.verify()

    # cu8 -> complex -> cu8 is lossless: the hops are byte-for-byte copies of the source
    src = open_recording(source_recording)
    raw = rec.path.read_bytes()
    src_raw = src.path.read_bytes()
    assert raw[:150_000] == src_raw[200_000:350_000]
    assert raw[150_000:] == src_raw[:150_000]

    # the source's ground truth follows the samples, merged across blocks
    assert [(a.sample_start, a.sample_count, a.label, a.comment, a.freq_lower_hz) for a in rec.annotations] == [
        (20_000, 50_000, "fsk", "meter", 868.25e6)]

    # and the reference SigMF implementation reads it, checksum included
    from sigmf import sigmffile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sigmffile.fromfile(str(out))
    assert len(ref.get_captures()) == 2 and ref.sample_count == 150_000


def test_ground_truth_survives_small_blocks(tmp_path, monkeypatch):
    """Overlapping annotations cut into many blocks come back whole, with their extension keys."""
    import sdrwatch.cli.record as record_module

    stem = tmp_path / "truth"
    with SigMFWriter(stem, sample_rate_hz=250e3) as w:
        w.start_capture(433.92e6)
        w.write(tone(60_000, 0.5, 0.05))
        w.annotate(1000, 30_000, freq_lower_hz=433.9e6, freq_upper_hz=433.91e6, label="a",
                   extra={"sdrwatch:threat": True, "sdrwatch:snr_db": 12.5})
        w.annotate(5000, 50_000, freq_lower_hz=433.93e6, freq_upper_hz=433.94e6, label="b")
        w.annotate(31_000, 4000, freq_lower_hz=433.9e6, freq_upper_hz=433.91e6, label="a",
                   extra={"sdrwatch:threat": True, "sdrwatch:snr_db": 12.5})  # abuts the first "a"
    monkeypatch.setattr(record_module, "BLOCK_SAMPLES", 4096)
    result = run(str(stem), "--freq", "433.92M", "--rate", "250k", "--duration", "0.2", "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    rec = open_recording(tmp_path / "o")
    assert [(a.sample_start, a.sample_count, a.label, a.extra) for a in rec.annotations] == [
        (1000, 34_000, "a", {"sdrwatch:threat": True, "sdrwatch:snr_db": 12.5}),
        (5000, 45_000, "b", {})]  # "b" is clipped at the 50 000 recorded samples


def test_record_formats_and_auto_gain(tmp_path, source_recording):
    for fmt in ("cs16", "cf32"):
        out = tmp_path / f"one-{fmt}"
        result = run(str(source_recording) + ".sigmf-meta", "--freq", "433.92M", "--rate", "250000",
                     "--duration", "0.01", "-o", f"{out}.sigmf-meta", "--sample-format", fmt)
        assert result.exit_code == 0, result.output
        rec = open_recording(out)
        assert rec.fmt == fmt and rec.num_samples == 2500
        cap = rec.captures[0]
        assert cap.extra["sdrwatch:gain_mode"] == "auto" and cap.extra["sdrwatch:gain_db"] == 28.0
        expected = open_recording(source_recording).read(0, 2500)
        assert np.abs(rec.read(0, 2500) - expected).max() < 1e-4


def test_record_refuses_overwrite(tmp_path, source_recording):
    args = [str(source_recording), "--freq", "433.92M", "--rate", "250k", "--duration", "0.01",
            "-o", str(tmp_path / "o")]
    assert run(*args).exit_code == 0
    before = (tmp_path / "o.sigmf-data").read_bytes()
    assert_one_line_error(run(*args), "already exists", "o.sigmf-")
    assert (tmp_path / "o.sigmf-data").read_bytes() == before
    result = run(*args[:-4], "--duration", "0.02", "-o", str(tmp_path / "o"), "--overwrite")
    assert result.exit_code == 0, result.output
    assert open_recording(tmp_path / "o").num_samples == 5000
    assert sorted(p.name for p in tmp_path.glob("o*")) == ["o.sigmf-data", "o.sigmf-meta"]


@pytest.mark.parametrize("args, needles", [
    (["--freq", "abc"], ["invalid frequency 'abc'"]),
    (["--rate", "fast"], ["invalid sample rate 'fast'"]),
    (["--gain", "loud"], ["invalid gain 'loud'"]),
    (["--duration", "0"], ["invalid duration"]),
    (["--duration", "5"], ["end of recording"]),  # asks for more than the source holds
    (["--freq", "100M"], ["no capture near 100 MHz"]),
    (["--rate", "2.4M"], ["recorded at 250000 S/s"]),
])
def test_record_errors_are_one_line(tmp_path, source_recording, args, needles):
    base = {"--freq": "433.92M", "--rate": "250k", "--duration": "0.01"}
    base.update(dict(zip(args[::2], args[1::2])))
    flat = [x for kv in base.items() for x in kv]
    assert_one_line_error(run(str(source_recording), *flat, "-o", str(tmp_path / "bad")), *needles)
    assert not list(tmp_path.glob("bad*"))  # nothing partial left behind


def test_record_unknown_source(tmp_path):
    assert_one_line_error(run(str(tmp_path / "missing.cu8"), "--freq", "1M", "--rate", "1M", "--duration", "1",
                              "-o", str(tmp_path / "x")), "no such recording")


# --------------------------------------------------------------------------------------------------
# full disk


def test_full_disk_for_real(tiny_tmpfs, source_recording):
    # 0.4 s at 250 kS/s cu8 per hop, two hops = 400 kB... use cf32 (8 bytes/sample) = 1.6 MB > 1 MiB
    result = run(str(source_recording), "--freq", "433.92M", "--freq", "868.3M", "--rate", "250k",
                 "--duration", "0.4", "--sample-format", "cf32", "-o", str(tiny_tmpfs / "full"))
    assert_one_line_error(result, "disk full while writing", "full.sigmf-data")
    assert list(tiny_tmpfs.iterdir()) == []


def test_full_disk_write_call(tmp_path, source_recording, monkeypatch):
    """The same through a failing write() call, where a tmpfs cannot be mounted."""
    real_write = os.write
    budget = {"left": 300_000}

    def write(fd, data):
        if budget["left"] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(memoryview(data)[: budget["left"]]))
        budget["left"] -= n
        return n

    monkeypatch.setattr(os, "write", write)
    result = run(str(source_recording), "--freq", "433.92M", "--freq", "868.3M", "--rate", "250k",
                 "--duration", "0.4", "-o", str(tmp_path / "out" / "full"))
    monkeypatch.undo()
    assert_one_line_error(result, "directory", "does not exist")
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(os, "write", write)
    result = run(str(source_recording), "--freq", "433.92M", "--freq", "868.3M", "--rate", "250k",
                 "--duration", "0.4", "-o", str(tmp_path / "out" / "full"))
    monkeypatch.undo()
    assert_one_line_error(result, "disk full while writing", "full.sigmf-data")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
def test_record_from_real_capture(tmp_path):
    path = REALDATA / "wmbus-samples2_868.95M_1600k.cu8"
    if not path.exists():
        pytest.skip("capture not present")
    result = run(str(path), "--freq", "868.95M", "--rate", "1.6M", "--duration", "0.25", "-o", str(tmp_path / "w"))
    assert result.exit_code == 0, result.output
    rec = open_recording(tmp_path / "w")
    assert rec.num_samples == 400_000 and rec.captures[0].center_hz == 868.95e6
    assert (tmp_path / "w.sigmf-data").read_bytes() == path.read_bytes()[:800_000]
