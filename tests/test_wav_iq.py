"""IQ files people already have: SDR#/SDRuno/HDSDR WAV (RIFF and RF64, 8- and 16-bit PCM, 32-bit float, the
centre frequency in an ``auxi`` chunk or the file name) and GNU Radio's ``.cfile``. Read properly, or refused
in one line; never read as cu8."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch.cli import main
from sdrwatch.radio.file import open_recording
from clierrors import one_line

RATE = 1_000_000
CENTER = 433_920_000
TONE = 150_000  # Hz above the centre


def iq(n: int = 300_000, snr_amp: float = 0.3, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    x = snr_amp * np.exp(2j * np.pi * TONE * t) + 0.02 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return x.astype(np.complex64)


def systemtime(y=2024, mo=5, d=1, h=8, mi=0, s=0, ms=0) -> bytes:
    return struct.pack("<8H", y, mo, 3, d, h, mi, s, ms)


def auxi_chunk(center_hz: int) -> bytes:
    body = systemtime() + systemtime(s=1) + struct.pack("<9I", center_hz, RATE, 0, RATE, 0, 0, 0, 0, 0) + bytes(96)
    return b"auxi" + struct.pack("<I", len(body)) + body


def wav_bytes(x: np.ndarray, bits: int = 16, *, tag: int | None = None, channels: int = 2, auxi: bytes = b"",
              rf64: bool = False, extra_chunks: bytes = b"") -> bytes:
    if bits == 8:
        pcm = np.clip(np.rint(x.view(np.float32) * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes()
        tag = 1 if tag is None else tag
    elif bits == 16:
        pcm = np.clip(np.rint(x.view(np.float32) * 32767), -32768, 32767).astype("<i2").tobytes()
        tag = 1 if tag is None else tag
    elif bits == 32:
        pcm = x.view(np.float32).astype("<f4").tobytes()
        tag = 3 if tag is None else tag
    else:
        pcm = bytes(len(x) * channels * bits // 8)
        tag = 1 if tag is None else tag
    align = channels * bits // 8
    fmt = b"fmt " + struct.pack("<I", 16) + struct.pack("<HHIIHH", tag, channels, RATE, RATE * align, align, bits)
    if rf64:
        ds64 = b"ds64" + struct.pack("<I", 28) + struct.pack("<QQQI", 0, len(pcm), len(pcm) // align, 0)
        data = b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm
        body = b"WAVE" + ds64 + fmt + auxi + extra_chunks + data
        return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body
    data = b"data" + struct.pack("<I", len(pcm)) + pcm
    body = b"WAVE" + fmt + auxi + extra_chunks + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def replay(path: Path, *extra: str) -> list[dict]:
    res = CliRunner().invoke(main, ["replay", str(path), "--format", "jsonl", *extra])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def assert_the_tone(records: list[dict], center_hz: float = CENTER) -> None:
    assert len(records) == 1, records
    assert abs(records[0]["center_hz"] - (center_hz + TONE)) < 3e3, records[0]


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_sdrsharp_wav_with_an_auxi_chunk(tmp_path, bits):
    x = iq()
    path = tmp_path / "SDRSharp_20240501_080000Z_IQ.wav"
    path.write_bytes(wav_bytes(x, bits, auxi=auxi_chunk(CENTER), extra_chunks=b"LIST" + struct.pack("<I", 5) + b"INFO!\0"))
    rec = open_recording(path)
    assert rec.sample_rate_hz == RATE and rec.num_samples == len(x)
    assert rec.captures[0].center_hz == CENTER and rec.captures[0].datetime.startswith("2024-05-01T08:00:00")
    tol = {8: 1 / 127, 16: 1e-4, 32: 1e-6}[bits]
    got = rec.read(0, 1000)
    assert np.max(np.abs(got - x[:1000])) < tol
    assert_the_tone(replay(path))


def test_hdsdr_wav_centre_from_its_name(tmp_path):
    path = tmp_path / "HDSDR_20240501_080000Z_433920kHz_RF.wav"
    path.write_bytes(wav_bytes(iq(), 16))
    assert open_recording(path).captures[0].center_hz == CENTER
    assert_the_tone(replay(path))


def test_rf64_wav(tmp_path):
    path = tmp_path / "long_IQ.wav"
    path.write_bytes(wav_bytes(iq(), 16, auxi=auxi_chunk(CENTER), rf64=True))
    assert_the_tone(replay(path))


def test_a_wav_without_a_wav_name_is_recognised_by_its_header(tmp_path):
    path = tmp_path / "capture_433.92M_1M.cu8"  # misnamed: its bytes say RIFF/WAVE
    path.write_bytes(wav_bytes(iq(), 16, auxi=auxi_chunk(CENTER)))
    assert open_recording(path).fmt == "cs16"


def test_a_wav_still_being_recorded_reads_to_the_end_of_the_file(tmp_path):
    raw = bytearray(wav_bytes(iq(), 16, auxi=auxi_chunk(CENTER)))
    at = raw.index(b"data")
    raw[at + 4: at + 8] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "live.wav"
    path.write_bytes(bytes(raw))
    assert open_recording(path).num_samples == 300_000


@pytest.mark.parametrize("kw,needles", [
    ({"channels": 1}, ["1 channel(s)", "2 (I and Q)"]),
    ({"bits": 24}, ["24-bit integer PCM WAV is not supported"]),
    ({"bits": 16, "tag": 2}, ["format tag 0x2"]),
])
def test_wavs_sdrwatch_cannot_read_are_refused_in_one_line(tmp_path, kw, needles):
    path = tmp_path / "odd_433.92M.wav"
    x = iq(20_000)
    path.write_bytes(wav_bytes(x, **kw))
    one_line(CliRunner().invoke(main, ["replay", str(path)]), str(path), *needles)


def test_a_wav_that_is_not_riff_is_refused(tmp_path):
    path = tmp_path / "x_433.92M_1M.wav"
    path.write_bytes(bytes(range(256)) * 100)
    one_line(CliRunner().invoke(main, ["replay", str(path)]), "not RIFF/WAVE")


def test_a_wav_without_samples_or_fmt_is_refused(tmp_path):
    body = b"WAVE" + b"data" + struct.pack("<I", 0)
    path = tmp_path / "empty.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    one_line(CliRunner().invoke(main, ["replay", str(path)]), "fmt chunk")


def test_gnu_radio_cfile(tmp_path):
    x = iq()
    path = tmp_path / "capture.cfile"
    x.tofile(path)
    rec = open_recording(path, sample_rate_hz=RATE, center_hz=CENTER)
    assert rec.fmt == "cf32" and rec.num_samples == len(x)
    assert np.array_equal(rec.read(0, 100), x[:100])
    assert_the_tone(replay(path, "--rate", "1M", "--freq", "433.92M"))
