"""Recording readers (SigMF and raw rtl_433-style names), the SigMF writer and the file source."""
from __future__ import annotations

import json
import resource
import tempfile
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdrwatch.cli import main
from sdrwatch.errors import PlanError, RecordingError, SdrwatchError, SourceError
from sdrwatch.radio.base import open_source
from sdrwatch.radio.file import (
    Annotation,
    Capture,
    FileSource,
    SigMFWriter,
    open_file_source,
    open_recording,
    parse_file_name,
    parse_hz,
)
from sdrwatch.radio.iq import BYTES_PER_SAMPLE, from_iq, to_iq

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
FORMATS = ["cu8", "cs8", "cs16", "cf32"]
# worst-case error of one component after quantisation (half a step), plus float slack
TOL = {"cu8": 0.5 / 127.5 + 1e-6, "cs8": 0.5 / 128 + 1e-6, "cs16": 0.5 / 32768 + 1e-7, "cf32": 0.0}


def tone(n: int, amp: float = 0.7, cycles: float = 0.01) -> np.ndarray:
    return (amp * np.exp(2j * np.pi * cycles * np.arange(n))).astype(np.complex64)


def write_meta(path: Path, meta: dict) -> Path:
    path.write_text(json.dumps(meta))
    return path


def one_line_error(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# --------------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("read_ahead", [True, False])
def test_blocks_are_read_ahead_in_order_and_the_reader_thread_ends(tmp_path, monkeypatch, read_ahead):
    """iter_blocks reads the next long block in a background thread (short ones in the caller's):
    blocks come in order with their own arrays, a file that shrinks under the reader fails at that
    block, and stopping early (or at the end) leaves no thread behind."""
    import threading

    from sdrwatch.radio import file as file_mod

    monkeypatch.setattr(file_mod, "PREFETCH_MIN_SAMPLES", 1000 if read_ahead else 10**9)

    iq = tone(50_000)
    path = tmp_path / "cap_433.92M_250k.cf32"
    path.write_bytes(from_iq(iq, "cf32"))
    rec = open_recording(path)
    before = threading.active_count()
    blocks = list(rec.iter_blocks(7000))
    assert [b.sample_index for b in blocks] == list(range(0, 50_000, 7000))
    assert np.array_equal(np.concatenate([b.iq for b in blocks]), iq)
    assert len({id(b.iq) for b in blocks}) == len(blocks)
    it = rec.iter_blocks(7000)
    next(it)
    it.close()
    assert threading.active_count() == before
    path.write_bytes(from_iq(iq[:20_000], "cf32"))  # the file shrinks after it was opened
    got = []
    with pytest.raises(RecordingError, match="ended early"):
        for b in rec.iter_blocks(7000):
            got.append(b.sample_index)
    assert got == [0, 7000]
    assert threading.active_count() == before


def test_blocks_can_carry_their_frames_computed_ahead(tmp_path, monkeypatch):
    """iter_blocks(frames=ENGINE): the read-ahead thread also computes each long block's Welch frames;
    an engine of the same key takes them (the chain's does) and they equal its own. Short blocks
    come plain."""
    from sdrwatch.dsp.spectrum import SpectrumConfig, WelchFrames
    from sdrwatch.radio import file as file_mod
    from sdrwatch.radio.file import FramedBlock

    monkeypatch.setattr(file_mod, "PREFETCH_MIN_SAMPLES", 50_000)

    path = tmp_path / "cap_433.92M_2400k.cf32"
    path.write_bytes(from_iq(tone(300_000), "cf32"))
    rec = open_recording(path)
    cfg = SpectrumConfig(fft_size=256)
    blocks = list(rec.iter_blocks(100_000, frames=WelchFrames(rec.sample_rate_hz, cfg)))
    assert [b.sample_index for b in blocks] == [0, 100_000, 200_000]
    assert all(isinstance(b, FramedBlock) and b.ahead is not None for b in blocks)
    eng, own = WelchFrames(rec.sample_rate_hz, cfg), WelchFrames(rec.sample_rate_hz, cfg)
    for b in blocks:
        p, _ = eng.push(b.iq, b.ahead)
        assert p is b.ahead.power and np.array_equal(p, own.push(b.iq)[0])
    short = list(rec.iter_blocks(20_000, frames=WelchFrames(rec.sample_rate_hz, cfg)))
    assert len(short) == 15 and not any(isinstance(b, FramedBlock) for b in short)


def test_cu8_blocks_read_ahead_keep_their_bytes(tmp_path, monkeypatch):
    """A cu8 recording's blocks read ahead for a replay keep the bytes as read: the chain's engine
    takes them as they are (the frames ahead came from them), and ``iq`` is converted only when asked,
    to the same samples a plain read gives."""
    from sdrwatch.dsp.spectrum import SpectrumConfig, WelchFrames
    from sdrwatch.radio import file as file_mod
    from sdrwatch.radio.file import FramedBlock

    monkeypatch.setattr(file_mod, "PREFETCH_MIN_SAMPLES", 50_000)
    path = tmp_path / "cap_433.92M_2400k.cu8"
    path.write_bytes(from_iq(tone(250_001), "cu8"))
    rec = open_recording(path)
    cfg = SpectrumConfig(fft_size=256)
    plain = list(rec.iter_blocks(100_000))
    blocks = list(rec.iter_blocks(100_000, frames=WelchFrames(rec.sample_rate_hz, cfg, workers=2)))
    assert [b.num_samples for b in blocks] == [len(b.iq) for b in plain] == [100_000, 100_000, 50_001]
    assert all(isinstance(b, FramedBlock) and b.raw is not None and b.raw.dtype == np.uint8 for b in blocks)
    assert all(b._iq is None for b in blocks)  # nothing converted yet
    eng, own = WelchFrames(rec.sample_rate_hz, cfg), WelchFrames(rec.sample_rate_hz, cfg)
    for b, p in zip(blocks, plain):
        got, _ = eng.push(b.raw, b.ahead)
        assert got is b.ahead.power and np.array_equal(got, own.push(b.raw)[0])
        assert np.array_equal(b.iq, p.iq) and b.duration_s == p.duration_s
    with pytest.raises(ValueError):
        FramedBlock(center_hz=1.0, sample_rate_hz=1.0)
    assert "cu8 bytes" in repr(blocks[0]) and blocks[0]._iq is not None  # (converted above, by .iq)


def test_a_read_error_with_frames_ahead_still_delivers_the_blocks_before_it(tmp_path, monkeypatch):
    """Frames ahead keep one block in hand while the next is read: when that read fails (a file cut
    short while replaying), the block in hand is still delivered before the error, as without them."""
    from sdrwatch.dsp.spectrum import SpectrumConfig, WelchFrames
    from sdrwatch.radio import file as file_mod

    monkeypatch.setattr(file_mod, "PREFETCH_MIN_SAMPLES", 50_000)
    path = tmp_path / "cap_433.92M_2400k.cu8"
    path.write_bytes(from_iq(tone(400_000), "cu8"))
    rec = open_recording(path)
    real, calls = rec._read_bytes, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RecordingError(f"{path}: file ended early at byte 600000 (changed while reading?)")
        return real(*args, **kwargs)

    monkeypatch.setattr(rec, "_read_bytes", failing)
    for frames in (None, WelchFrames(rec.sample_rate_hz, SpectrumConfig(fft_size=256))):
        calls.clear()
        got = []
        with pytest.raises(RecordingError, match="ended early"):
            for b in rec.iter_blocks(100_000, frames=frames):
                got.append(b.sample_index)
        assert got == [0, 100_000, 200_000]


@pytest.mark.parametrize("fmt", FORMATS)
def test_raw_round_trip_each_format(tmp_path, fmt):
    iq = tone(5000)
    path = tmp_path / f"cap_433.92M_250k.{fmt}"
    path.write_bytes(from_iq(iq, fmt))
    rec = open_recording(path)
    assert rec.fmt == fmt and rec.sample_rate_hz == 250e3 and rec.num_samples == 5000
    assert rec.meta_path is None and len(rec.captures) == 1
    assert rec.captures[0] == Capture(0, 5000, 433.92e6)
    assert rec.duration_s == pytest.approx(0.02)
    assert np.abs(rec.read(0, 5000) - iq).max() <= TOL[fmt] * 1.5
    assert rec.global_meta["core:sample_rate"] == 250e3


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigmf_round_trip_and_sigmf_package_interop(tmp_path, fmt):
    from sigmf import sigmffile

    iq = tone(3000)
    stem = tmp_path / "rec"
    with SigMFWriter(stem, fmt=fmt, sample_rate_hz=2.4e6, global_extra={"core:hw": "test rig"}) as w:
        w.start_capture(169.4e6, datetime="2024-05-01T08:00:00.000Z", extra={"sdrwatch:gain_db": 20.7})
        w.write(iq[:1000])
        w.start_capture(433.92e6)
        w.write(iq[1000:])
        w.annotate(1500, 200, freq_lower_hz=433.9e6, freq_upper_hz=433.95e6, label="ev1527", comment="truth")
        w.annotate(10, 20, label="first")
        assert w.samples_written == 3000
    rec = open_recording(stem)
    assert rec.fmt == fmt and rec.num_samples == 3000 and rec.sample_rate_hz == 2.4e6
    assert [(c.sample_start, c.sample_count, c.center_hz) for c in rec.captures] == [
        (0, 1000, 169.4e6), (1000, 2000, 433.92e6)]
    assert rec.captures[0].datetime == "2024-05-01T08:00:00.000Z"
    assert rec.captures[0].extra == {"sdrwatch:gain_db": 20.7}
    assert rec.captures[1].datetime.endswith("Z")
    assert [a.label for a in rec.annotations] == ["first", "ev1527"]
    assert rec.annotations[1] == Annotation(1500, 200, 433.9e6, 433.95e6, "ev1527", "truth")
    assert np.abs(rec.read(0, 3000) - iq).max() <= TOL[fmt] * 1.5
    rec.verify()
    g = rec.global_meta
    assert g["core:recorder"].startswith("sdrwatch ") and g["core:hw"] == "test rig"
    assert g["core:version"].startswith("1.2.") and len(g["core:sha512"]) == 128
    assert {"name": "sdrwatch", "version": g["core:recorder"].split()[1], "optional": True} in g["core:extensions"]

    # the reference implementation accepts the file, with its checksum
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sigmffile.fromfile(str(stem), autoscale=False)
    assert [c["core:frequency"] for c in ref.get_captures()] == [169.4e6, 433.92e6]
    raw = ref.read_samples(0, 3000)
    ours = np.frombuffer(from_iq(rec.read(0, 3000), fmt), dtype={"cu8": np.uint8, "cs8": np.int8,
                                                                   "cs16": "<i2", "cf32": "<f4"}[fmt])
    assert np.array_equal(raw.real, ours[0::2]) and np.array_equal(raw.imag, ours[1::2])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS),
       data=st.lists(st.tuples(st.floats(-0.9921875, 0.9921875, width=32), st.floats(-0.9921875, 0.9921875, width=32)),
                     min_size=1, max_size=300),
       cuts=st.lists(st.integers(1, 299), max_size=4),
       block=st.integers(1, 64))
def test_writer_reader_round_trip_random(fmt, data, cuts, block):
    iq = np.array([complex(i, q) for i, q in data], dtype=np.complex64)
    bounds = sorted({c for c in cuts if c < len(iq)})
    starts = [0, *bounds]
    ends = [*bounds, len(iq)]
    with tempfile.TemporaryDirectory() as d:
        stem = Path(d) / "r"
        with SigMFWriter(stem, fmt=fmt, sample_rate_hz=1e6) as w:
            for k, (s, e) in enumerate(zip(starts, ends)):
                w.start_capture(100e6 + k * 1e6)
                w.write(iq[s:e])
        rec = open_recording(Path(d) / "r.sigmf-data")
        assert [c.sample_start for c in rec.captures] == starts
        assert [c.sample_count for c in rec.captures] == [e - s for s, e in zip(starts, ends)]
        got = rec.read(0, len(iq))
        assert np.abs(got.real - iq.real).max() <= TOL[fmt] and np.abs(got.imag - iq.imag).max() <= TOL[fmt]
        # same values whether read at once or in blocks; blocks never cross a capture
        blocks = list(rec.iter_blocks(block))
        assert np.array_equal(np.concatenate([b.iq for b in blocks]), got)
        for b in blocks:
            cap = rec.capture_of(b.sample_index)
            assert b.sample_index + len(b.iq) <= cap.sample_start + cap.sample_count
            assert b.center_hz == cap.center_hz and len(b.iq) <= block
        # the writer's quantisation is exactly what from_iq gives
        raw = (Path(d) / "r.sigmf-data").read_bytes()
        assert raw == from_iq(iq, fmt) and np.array_equal(to_iq(raw, fmt), got)


# --------------------------------------------------------------------------------------------------
# SigMF details written by other tools


def test_hand_written_multi_capture_sigmf(tmp_path):
    raw = from_iq(tone(900), "cs16")
    (tmp_path / "sweep.sigmf-data").write_bytes(raw)
    write_meta(tmp_path / "sweep.sigmf-meta", {
        "global": {"core:datatype": "ci16_le", "core:sample_rate": 1e6, "core:version": "1.2.0",
                   "core:hw": "RTL-SDR Blog V4 (R828D)"},
        # out of order on purpose; the reader sorts them
        "captures": [{"core:sample_start": 600, "core:frequency": 868.3e6, "core:global_index": 9},
                     {"core:sample_start": 0, "core:frequency": 433.92e6, "core:datetime": "2024-01-01T00:00:00Z"},
                     {"core:sample_start": 300, "core:frequency": 169.4e6}],
        "annotations": [{"core:sample_start": 700, "core:label": "burst", "vendor:x": 1},
                        {"core:sample_start": 5, "core:sample_count": 10, "core:freq_lower_edge": 1.0,
                         "core:freq_upper_edge": 2.0}],
    })
    rec = open_recording(tmp_path / "sweep")
    assert [(c.sample_start, c.sample_count, c.center_hz) for c in rec.captures] == [
        (0, 300, 433.92e6), (300, 300, 169.4e6), (600, 300, 868.3e6)]
    assert rec.captures[2].extra == {"core:global_index": 9}
    assert rec.annotations[0] == Annotation(5, 10, 1.0, 2.0, None, None)
    assert rec.annotations[1] == Annotation(700, None, None, None, "burst", None, {"vendor:x": 1})
    assert rec.capture_of(299).center_hz == 433.92e6 and rec.capture_of(300).center_hz == 169.4e6
    # a read across two captures
    assert np.abs(rec.read(250, 100) - tone(900)[250:350]).max() < 1e-4
    blocks = list(rec.iter_blocks(256, captures=[2, 0]))
    assert [(b.sample_index, len(b.iq), b.center_hz) for b in blocks] == [
        (600, 256, 868.3e6), (856, 44, 868.3e6), (0, 256, 433.92e6), (256, 44, 433.92e6)]
    assert blocks[2].timestamp == pytest.approx(1704067200.0)
    assert blocks[3].timestamp == pytest.approx(1704067200.0 + 256e-6)
    assert blocks[0].timestamp is None
    rec.verify()  # no core:sha512: nothing to check


def test_non_conforming_dataset_with_headers(tmp_path):
    iq = tone(200)
    raw = from_iq(iq, "cu8")
    (tmp_path / "capture.dat").write_bytes(b"HDR!" + raw[:200] + b"HDR!" + raw[200:] + b"TRAILER")
    write_meta(tmp_path / "capture.sigmf-meta", {
        "global": {"core:datatype": "cu8", "core:sample_rate": 1e6, "core:version": "1.2.0",
                   "core:dataset": "capture.dat", "core:trailing_bytes": 7},
        "captures": [{"core:sample_start": 0, "core:header_bytes": 4, "core:frequency": 1e8},
                     {"core:sample_start": 100, "core:header_bytes": 4, "core:frequency": 1e8}],
        "annotations": []})
    rec = open_recording(tmp_path / "capture.sigmf-meta")
    assert rec.path.name == "capture.dat" and rec.num_samples == 200
    assert np.abs(rec.read(0, 200) - iq).max() <= TOL["cu8"] * 1.5


@pytest.mark.parametrize("form", ["{s}", "{s}.", "{s}.sigmf-meta", "{s}.sigmf-data"])
def test_sigmf_path_forms(tmp_path, form):
    stem = tmp_path / "cap"
    with SigMFWriter(stem, sample_rate_hz=1e6) as w:
        w.start_capture(433.92e6)
        w.write(tone(100))
    rec = open_recording(form.format(s=stem))
    assert rec.path == Path(f"{stem}.sigmf-data") and rec.meta_path == Path(f"{stem}.sigmf-meta")
    src = open_source(f"file:{form.format(s=stem)}")
    assert isinstance(src, FileSource) and src.recording.num_samples == 100


def test_center_and_rate_overrides(tmp_path):
    (tmp_path / "plain.bin").write_bytes(bytes(400))
    rec = open_recording(tmp_path / "plain.bin", sample_rate_hz=2.4e6, center_hz=100e6)
    assert (rec.fmt, rec.sample_rate_hz, rec.captures[0].center_hz, rec.num_samples) == ("cu8", 2.4e6, 100e6, 200)
    rec = open_recording(tmp_path / "plain.bin", sample_rate_hz=1e6, fmt="cs16")
    assert rec.fmt == "cs16" and rec.num_samples == 100 and rec.captures[0].center_hz == 0.0
    named = tmp_path / "x_433.92M_250k.cu8"
    named.write_bytes(bytes(400))
    rec = open_recording(named, sample_rate_hz=1e6, center_hz=868e6, fmt="cf32")
    assert (rec.sample_rate_hz, rec.captures[0].center_hz, rec.fmt, rec.num_samples) == (1e6, 868e6, "cf32", 50)
    # rtl_433's forced prefix
    rec = open_recording(f"cs16:{tmp_path / 'x_433.92M_250k.cu8'}")
    assert rec.fmt == "cs16" and rec.num_samples == 100
    # SigMF: frequency fills captures lacking one; rate overrides
    (tmp_path / "nf.sigmf-data").write_bytes(bytes(40))
    write_meta(tmp_path / "nf.sigmf-meta", {"global": {"core:datatype": "cu8", "core:version": "1.2.0"},
                                            "captures": [{"core:sample_start": 0}], "annotations": []})
    rec = open_recording(tmp_path / "nf", sample_rate_hz=1e6, center_hz=433e6)
    assert rec.captures[0].center_hz == 433e6 and rec.sample_rate_hz == 1e6


# --------------------------------------------------------------------------------------------------
# names and numbers


@pytest.mark.parametrize("name, center, rate, fmt", [
    ("g001_433.92M_250k.cu8", 433.92e6, 250e3, "cu8"),
    ("dump1090-adsb_1090M_2000k.cu8", 1090e6, 2e6, "cu8"),
    ("wmbus-issue48_868.625M_2400k.cu8", 868.625e6, 2.4e6, "cu8"),
    ("urh-homematic_868.3M_1000k.cs16", 868.3e6, 1e6, "cs16"),
    ("x_433920000Hz_2400000sps.cf32", 433.92e6, 2.4e6, "cf32"),
    ("x_433.92MHz_2.4Msps.cs8", 433.92e6, 2.4e6, "cs8"),
    ("x_1.2GHz_250ksps.CS16", 1.2e9, 250e3, "cs16"),
    ("x_868.3m_1000K.CU8", 868.3e6, 1e6, "cu8"),
    ("x_1M6.cu8", None, 1.6e6, "cu8"),  # unlike rtl_433: the letter as decimal point is a sample rate
    ("w_868.95M_2M4.cu8", 868.95e6, 2.4e6, "cu8"),
    ("plain.bin", None, None, None),
    ("gnuradio_100M_1000k.complex16u", 100e6, 1e6, "cu8"),
    ("gnuradio_100M_1000k.complex16s", 100e6, 1e6, "cs8"),
    ("gnuradio_100M_1000k.complex", 100e6, 1e6, "cf32"),
    ("a_100M_1000k_200M_2000k.cu8", 200e6, 2e6, "cu8"),  # later tokens win
    ("rec100.cu8", None, None, "cu8"),  # digits inside a word are not a number
])
def test_rtl433_file_names(name, center, rate, fmt):
    info = parse_file_name(name)
    assert (info.center_hz, info.sample_rate_hz, info.fmt) == (
        pytest.approx(center) if center else None, pytest.approx(rate) if rate else None, fmt)


def test_name_parsing_ignores_directories(tmp_path):
    d = tmp_path / "site_900M_3000k"
    d.mkdir()
    (d / "cap_433.92M.cu8").write_bytes(bytes(10))
    with pytest.raises(RecordingError) as exc:
        open_recording(d / "cap_433.92M.cu8")
    one_line_error(exc, "no sample rate", "cap_433.92M.cu8")


@settings(max_examples=60, deadline=None)
@given(stem=st.text(alphabet="abcxyz-", min_size=1, max_size=8),
       mhz=st.decimals(min_value=1, max_value=5999, places=3, allow_nan=False, allow_infinity=False),
       ks=st.integers(min_value=1, max_value=20000),
       fmt=st.sampled_from(FORMATS), upper=st.booleans())
def test_rtl433_names_property(stem, mhz, ks, fmt, upper):
    text_mhz = format(mhz.normalize(), "f")
    name = f"{stem}_{text_mhz}M_{ks}k.{fmt.upper() if upper else fmt}"
    info = parse_file_name(name)
    assert info.center_hz == pytest.approx(float(text_mhz) * 1e6)
    assert info.sample_rate_hz == pytest.approx(ks * 1e3)
    assert info.fmt == fmt and info.content is None


@pytest.mark.parametrize("text, hz", [
    ("169M", 169e6), ("433.92M", 433.92e6), ("1.2G", 1.2e9), ("250k", 250e3), ("250K", 250e3),
    ("2400000", 2.4e6), ("1e6", 1e6), ("433.92MHz", 433.92e6), ("2M4", 2.4e6), ("1M6", 1.6e6),
    (" 868.3 M ", 868.3e6), (".5M", 0.5e6), (100000, 1e5), (2.4e6, 2.4e6),
])
def test_parse_hz(text, hz):
    assert parse_hz(text) == pytest.approx(hz)


@pytest.mark.parametrize("text", ["", "abc", "433.92X", "-5M", "0", "1.2.3M", "M", "1.5M6", "nan", "inf"])
def test_parse_hz_rejects(text):
    with pytest.raises(PlanError) as exc:
        parse_hz(text, what="sample rate")
    one_line_error(exc, "sample rate")


@settings(max_examples=80, deadline=None)
@given(value=st.floats(min_value=1.0, max_value=1e10, allow_nan=False), unit=st.sampled_from(["", "k", "M", "G"]))
def test_parse_hz_property(value, unit):
    scale = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}[unit]
    text = f"{value / scale!r}{unit}"
    assert parse_hz(text) == pytest.approx(value, rel=1e-12)


# --------------------------------------------------------------------------------------------------
# errors: one line naming the file


def _sigmf_pair(tmp_path, meta: dict | str | None, data: bytes | None = bytes(8), stem: str = "r") -> Path:
    if meta is not None:
        (tmp_path / f"{stem}.sigmf-meta").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    if data is not None:
        (tmp_path / f"{stem}.sigmf-data").write_bytes(data)
    return tmp_path / stem


GOOD_GLOBAL = {"core:datatype": "cu8", "core:sample_rate": 1e6, "core:version": "1.2.0"}
GOOD_CAPS = [{"core:sample_start": 0, "core:frequency": 1e8}]


@pytest.mark.parametrize("case, needles", [
    ("missing file", ["no such recording", "nothere.cu8"]),
    ("missing data", ["r.sigmf-data", "missing"]),
    ("missing meta", ["r.sigmf-meta", "missing"]),
    ("no sample rate", ["no core:sample_rate", "r.sigmf-meta"]),
    ("no frequency", ["no core:frequency", "r.sigmf-meta"]),
    ("unknown datatype", ["unknown datatype", "'ru8'", "r.sigmf-meta"]),
    ("big-endian datatype", ["unknown datatype", "ci16_be"]),
    ("truncated sigmf", ["truncated: 7 bytes is not a whole number of cu8 samples", "r.sigmf-data"]),
    ("truncated raw", ["truncated: 10 bytes is not a whole number of cf32 samples", "t_1M_1000k.cf32"]),
    ("data shorter than captures", ["capture 1 starts at sample 10", "data ends at sample 4", "r.sigmf-data"]),
    ("raw without rate", ["no sample rate", "--rate", "capture_433.92M.cu8"]),
    ("invalid json", ["invalid JSON", "line 1", "r.sigmf-meta"]),
    ("not sigmf", ["not SigMF metadata", "r.sigmf-meta"]),
    ("empty raw", ["empty file", "e_1M_1000k.cu8"]),
    ("empty sigmf", ["empty file", "r.sigmf-data"]),
    ("multi-channel", ["num_channels is 2", "r.sigmf-meta"]),
    ("unsupported rtl_433 format", ["'s16' is not supported", "am_100M_250k.s16"]),
    ("non-IQ content", ["content type 'am'", "x_100M_250k.am"]),
    ("archive", ["archives", "r.sigmf"]),
    ("directory", ["is a directory"]),
])
def test_error_cases(tmp_path, case, needles):
    target = tmp_path / "r"
    if case == "missing file":
        target = tmp_path / "nothere.cu8"
    elif case == "missing data":
        _sigmf_pair(tmp_path, {"global": GOOD_GLOBAL, "captures": GOOD_CAPS, "annotations": []}, data=None)
    elif case == "missing meta":
        _sigmf_pair(tmp_path, None)
        target = tmp_path / "r.sigmf-data"
    elif case == "no sample rate":
        _sigmf_pair(tmp_path, {"global": {"core:datatype": "cu8", "core:version": "1.2.0"}, "captures": GOOD_CAPS,
                               "annotations": []})
    elif case == "no frequency":
        _sigmf_pair(tmp_path, {"global": GOOD_GLOBAL, "captures": [{"core:sample_start": 0}], "annotations": []})
    elif case in ("unknown datatype", "big-endian datatype"):
        dt = "ru8" if case == "unknown datatype" else "ci16_be"
        _sigmf_pair(tmp_path, {"global": {**GOOD_GLOBAL, "core:datatype": dt}, "captures": GOOD_CAPS,
                               "annotations": []})
    elif case == "truncated sigmf":
        _sigmf_pair(tmp_path, {"global": GOOD_GLOBAL, "captures": GOOD_CAPS, "annotations": []}, data=bytes(7))
    elif case == "truncated raw":
        target = tmp_path / "t_1M_1000k.cf32"
        target.write_bytes(bytes(10))
    elif case == "data shorter than captures":
        _sigmf_pair(tmp_path, {"global": GOOD_GLOBAL, "annotations": [],
                               "captures": [*GOOD_CAPS, {"core:sample_start": 10, "core:frequency": 2e8}]})
    elif case == "raw without rate":
        target = tmp_path / "capture_433.92M.cu8"
        target.write_bytes(bytes(10))
    elif case == "invalid json":
        _sigmf_pair(tmp_path, '{"global": {"core:datatype": "cu8",}}')
    elif case == "not sigmf":
        _sigmf_pair(tmp_path, "[1, 2, 3]")
    elif case == "empty raw":
        target = tmp_path / "e_1M_1000k.cu8"
        target.write_bytes(b"")
    elif case == "empty sigmf":
        _sigmf_pair(tmp_path, {"global": GOOD_GLOBAL, "captures": GOOD_CAPS, "annotations": []}, data=b"")
    elif case == "multi-channel":
        _sigmf_pair(tmp_path, {"global": {**GOOD_GLOBAL, "core:num_channels": 2}, "captures": GOOD_CAPS,
                               "annotations": []})
    elif case == "unsupported rtl_433 format":
        target = tmp_path / "am_100M_250k.s16"
        target.write_bytes(bytes(8))
    elif case == "non-IQ content":
        target = tmp_path / "x_100M_250k.am"
        target.write_bytes(bytes(8))
    elif case == "archive":
        target = tmp_path / "r.sigmf"
        target.write_bytes(bytes(8))
    elif case == "directory":
        target = tmp_path / "d"
        target.mkdir()
    with pytest.raises(RecordingError) as exc:
        open_recording(target)
    one_line_error(exc, *needles)

    # the same through the command line: one "error:" line, exit 1, no traceback
    result = CliRunner().invoke(main, ["record", str(target), "--freq", "100M", "--rate", "1M",
                                       "--duration", "0.001", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert not list(tmp_path.glob("out*"))


def test_read_out_of_range_and_bad_capture(tmp_path):
    path = tmp_path / "r_1M_1000k.cu8"
    path.write_bytes(bytes(200))
    rec = open_recording(path)
    with pytest.raises(RecordingError) as exc:
        rec.read(90, 20)
    one_line_error(exc, "r_1M_1000k.cu8", "100")
    with pytest.raises(RecordingError):
        rec.capture_of(100)
    with pytest.raises(RecordingError):
        list(rec.iter_blocks(10, captures=[1]))
    assert len(rec.read(100, 0)) == 0


def test_verify_detects_corruption(tmp_path):
    stem = tmp_path / "v"
    with SigMFWriter(stem, sample_rate_hz=1e6) as w:
        w.start_capture(1e8)
        w.write(tone(1000))
    open_recording(stem).verify()
    data = bytearray((tmp_path / "v.sigmf-data").read_bytes())
    data[100] ^= 1
    (tmp_path / "v.sigmf-data").write_bytes(bytes(data))
    rec = open_recording(stem)  # opening does not hash
    with pytest.raises(RecordingError) as exc:
        rec.verify()
    one_line_error(exc, "checksum mismatch", "v.sigmf-data")


# --------------------------------------------------------------------------------------------------
# writer behaviour


def test_writer_refuses_overwrite_and_cleans_up_on_error(tmp_path):
    stem = tmp_path / "w"
    with SigMFWriter(stem, sample_rate_hz=1e6) as w:
        w.start_capture(1e8)
        w.write(tone(10))
    with pytest.raises(RecordingError) as exc:
        SigMFWriter(stem, sample_rate_hz=1e6)
    one_line_error(exc, "already exists", "w.sigmf-")
    with SigMFWriter(f"{stem}.sigmf-meta", sample_rate_hz=2e6, overwrite=True) as w:
        w.start_capture(2e8)
        w.write(tone(20))
    assert open_recording(stem).num_samples == 20

    with pytest.raises(ZeroDivisionError):
        with SigMFWriter(tmp_path / "crash", sample_rate_hz=1e6) as w:
            w.start_capture(1e8)
            w.write(tone(10))
            1 / 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.sigmf-data", "w.sigmf-meta"]

    with pytest.raises(RecordingError) as exc:
        with SigMFWriter(tmp_path / "empty", sample_rate_hz=1e6) as w:
            w.start_capture(1e8)
    one_line_error(exc, "nothing was recorded")
    with pytest.raises(RecordingError) as exc:
        SigMFWriter(tmp_path / "no" / "dir", sample_rate_hz=1e6)
    one_line_error(exc, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.sigmf-data", "w.sigmf-meta"]


def test_writer_write_raw_and_empty_hops(tmp_path):
    with SigMFWriter(tmp_path / "raw", fmt="cs8", sample_rate_hz=1e6) as w:
        w.start_capture(1e8)  # no samples: dropped
        w.start_capture(2e8)
        w.write_raw(bytes([1, 2, 3, 4]))
        with pytest.raises(RecordingError):
            w.write_raw(b"\x01")
        w.start_capture(3e8)  # trailing empty capture: dropped
    rec = open_recording(tmp_path / "raw")
    assert [(c.sample_start, c.center_hz) for c in rec.captures] == [(0, 2e8)]
    assert np.allclose(rec.read(0, 2), np.array([1 + 2j, 3 + 4j]) / 128)
    meta = json.loads((tmp_path / "raw.sigmf-meta").read_text())
    assert len(meta["captures"]) == 1 and meta["global"]["core:datatype"] == "ci8"


# --------------------------------------------------------------------------------------------------
# bounded memory on a large file


def test_iter_blocks_bounded_memory(tmp_path):
    path = tmp_path / "big_100M_2400k.cu8"
    size = 300 * 2**20
    with open(path, "wb") as fh:
        fh.truncate(size)  # sparse: costs no disk
    rec = open_recording(path)
    assert rec.num_samples == size // 2
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        count = 0
        for block in rec.iter_blocks(262144):
            count += len(block.iq)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert count == rec.num_samples
    assert peak < 16 * 2**20, peak
    assert rss_growth_mib < 64, rss_growth_mib


# --------------------------------------------------------------------------------------------------
# real captures


def _realdata_files() -> list[Path]:
    if not REALDATA.is_dir():
        return []
    return sorted(p for p in REALDATA.iterdir() if p.suffix in (".cu8", ".cs8", ".cs16", ".cf32"))


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
@pytest.mark.parametrize("path", _realdata_files(), ids=lambda p: p.name)
def test_real_captures(path):
    rec = open_recording(path)
    name = path.name
    # NAME_<centre>M_<rate>k.<format>
    parts = path.stem.split("_")
    assert rec.captures[0].center_hz == pytest.approx(float(parts[-2].rstrip("M")) * 1e6)
    assert rec.sample_rate_hz == pytest.approx(float(parts[-1].rstrip("k")) * 1e3)
    assert rec.fmt == path.suffix[1:]
    assert rec.num_samples == path.stat().st_size // BYTES_PER_SAMPLE[rec.fmt]
    assert path.stat().st_size % BYTES_PER_SAMPLE[rec.fmt] == 0, name
    total = 0
    peak = 0.0
    for block in rec.iter_blocks(65536):
        assert block.iq.dtype == np.complex64
        total += len(block.iq)
        peak = max(peak, float(np.abs(block.iq).max()))
    assert total == rec.num_samples
    assert 0 < peak < 2.0  # full scale is 1.0 per component


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
def test_real_capture_through_file_source():
    path = REALDATA / "dump1090-adsb_1090M_2000k.cu8"
    if not path.exists():
        pytest.skip("capture not present")
    with open_source(str(path)) as src:
        assert src.describe().driver == "file"
        src.tune(1090.1e6)  # within half the sample rate of the capture
        block = src.read(4096)
        assert block.center_hz == 1090e6 and block.sample_rate_hz == 2e6 and len(block.iq) == 4096


# --------------------------------------------------------------------------------------------------
# the file source


def _sweep(tmp_path) -> Path:
    stem = tmp_path / "sweep"
    with SigMFWriter(stem, sample_rate_hz=1e6, global_extra={"core:hw": "RTL-SDR Blog V4 (R828D)",
                                                            "sdrwatch:tuner": "R828D"}) as w:
        for k in range(2):  # two passes over two frequencies
            for f in (433.92e6, 868.3e6):
                w.start_capture(f, datetime=f"2024-05-01T08:00:0{2 * k + (f > 5e8)}Z")
                w.write(tone(1000, amp=0.1 + 0.2 * k + 0.1 * (f > 5e8)))
        w.annotate(1500, 1000, freq_lower_hz=868.2e6, freq_upper_hz=868.4e6, label="fsk")
    return stem


def test_file_source_sweep(tmp_path):
    stem = _sweep(tmp_path)
    src = open_file_source(f"file:{stem}")
    info = src.describe()
    assert info.driver == "file" and info.tuner == "R828D" and str(stem) in info.description
    src.set_sample_rate(1e6)
    with pytest.raises(SourceError):
        src.set_sample_rate(2.4e6)
    src.set_gain(30.0)
    src.set_ppm(3)
    with pytest.raises(SourceError) as exc:
        src.tune(100e6)
    one_line_error(exc, "no capture near 100 MHz")
    src.tune(868.4e6)
    b = src.read(600)
    assert (b.center_hz, b.sample_index, len(b.iq)) == (868.3e6, 1000, 600)
    assert np.abs(b.iq).mean() == pytest.approx(0.2, abs=0.01)
    assert b.timestamp == pytest.approx(1714550401.0)
    src.tune(433.92e6)
    assert src.read(1000).sample_index == 0
    src.tune(868.3e6)
    b = src.read(600)  # 400 left in the first capture: continues in the second pass
    assert b.sample_index == 3000 and np.abs(b.iq).mean() == pytest.approx(0.4, abs=0.01)
    assert src.truth(868.3e6, 1e6, 1000, 1000) == [
        {"sample_start": 500, "sample_count": 500, "freq_lower_hz": 868.2e6, "freq_upper_hz": 868.4e6,
         "label": "fsk", "comment": None}]
    src.read(400)
    with pytest.raises(SourceError) as exc:
        src.read(1)
    one_line_error(exc, "end of recording")
    src.close()

    looping = open_file_source(str(stem), loop=True)
    looping.tune(433.92e6)
    assert [looping.read(700).sample_index for _ in range(3)] == [0, 2000, 0]
    with pytest.raises(SourceError) as exc:
        looping.read(5000)
    one_line_error(exc, "holds 5000 samples")
    looping.close()


def test_everything_is_sdrwatch_error():
    assert issubclass(RecordingError, SdrwatchError) and issubclass(SourceError, SdrwatchError)
    assert issubclass(PlanError, SdrwatchError)


@pytest.mark.parametrize("bad", [
    {"core:sample_count": -5},
    {"core:freq_lower_edge": "low"},
    {"core:freq_lower_edge": 2e6, "core:freq_upper_edge": 1e6},
    {"sdrwatch:threat": "yes"},
    {"core:sample_start": 10**12},
])
def test_malformed_annotations_are_refused_in_one_line(tmp_path, bad):
    import json as _json

    from sdrwatch.errors import RecordingError
    from sdrwatch.radio.file import SigMFWriter, open_recording

    with SigMFWriter(tmp_path / "a", fmt="cu8", sample_rate_hz=250e3) as w:
        w.start_capture(169e6)
        w.write(np.zeros(1000, np.complex64))
        w.annotate(10, 100, freq_lower_hz=168.9e6, freq_upper_hz=169.1e6, label="x")
    meta = tmp_path / "a.sigmf-meta"
    m = _json.loads(meta.read_text())
    m["annotations"][0].update(bad)
    meta.write_text(_json.dumps(m))
    with pytest.raises(RecordingError) as err:
        open_recording(tmp_path / "a")
    assert "\n" not in str(err.value) and "annotation 0" in str(err.value)
