"""Recordings: streaming readers for SigMF and raw rtl_433-style IQ files, a SigMF writer, and the
``file`` receiver backend that replays a recording through the :class:`~sdrwatch.radio.base.Source`
interface.

Reading never loads a whole file: :meth:`Recording.iter_blocks` reads one block at a time into a
reused buffer and converts it with :func:`sdrwatch.radio.iq.to_iq`, so memory stays bounded whatever
the file size. SigMF metadata is parsed here directly (the ``sigmf`` package hashes the whole data
file on open); ``core:sha512`` is only checked by :meth:`Recording.verify`.

Raw files follow rtl_433's file-name rules (``NAME_433.92M_250k.cu8``), see
:func:`parse_file_name`. The full description, with examples, is in ``docs/recordings.md``.
"""
from __future__ import annotations

import bisect
import datetime as _dt
import errno
import hashlib
import json
import math
import os
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from .. import __version__
from ..errors import PlanError, RecordingError, SourceError
from .base import Block, Source, SourceInfo
from .iq import BYTES_PER_SAMPLE, FORMAT_OF_DATATYPE, SIGMF_DATATYPE, check_format, from_iq, to_iq

#: SigMF specification version written into ``core:version``
SIGMF_VERSION = "1.2.6"
META_EXT = ".sigmf-meta"
DATA_EXT = ".sigmf-data"
#: namespace of the sdrwatch SigMF extension keys (declared in ``core:extensions``)
EXTENSION = "sdrwatch"

# capture keys turned into Capture fields; every other capture key lands in Capture.extra
_CAPTURE_CORE = ("core:sample_start", "core:frequency", "core:datetime")
_ANNOTATION_CORE = ("core:sample_start", "core:sample_count", "core:freq_lower_edge",
                    "core:freq_upper_edge", "core:label", "core:comment")


# --------------------------------------------------------------------------------------------------
# data model


@dataclass(frozen=True)
class Capture:
    """One SigMF capture segment (one hop of a sweep recording)."""

    sample_start: int  # index in the recording (samples, not bytes)
    sample_count: int
    center_hz: float
    datetime: str | None = None  # ISO-8601 if known
    extra: dict = field(default_factory=dict)  # other capture keys (e.g. sdrwatch:gain_db)

    @property
    def sample_end(self) -> int:
        return self.sample_start + self.sample_count


@dataclass(frozen=True)
class Annotation:
    """One SigMF annotation (ground truth or a detector's finding)."""

    sample_start: int
    sample_count: int | None
    freq_lower_hz: float | None
    freq_upper_hz: float | None
    label: str | None
    comment: str | None = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# number and name parsing

_HZ_RE = re.compile(
    r"""^\s*(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*
        (?:(?P<unit>[kKmMgG])(?P<frac>\d+)?)?\s*(?:hz|Hz|HZ|sps|S/s)?\s*$""",
    re.VERBOSE,
)
_SCALE = {"k": 1e3, "m": 1e6, "g": 1e9}


#: tunings sdrwatch accepts (a centre frequency of 0 means "unknown" in a raw file)
MAX_TUNING_HZ = 1e11
MIN_TUNING_HZ = 1e5


def parse_hz(text: str | float | int, *, what: str = "frequency") -> float:
    """``"433.92M"`` -> 433.92e6. Accepts plain Hz (``"250000"``, ``"1e6"``), a k/M/G suffix
    (``"250k"``, ``"169M"``, ``"1.2G"``, optionally followed by ``Hz``) and the suffix-as-decimal-point
    form ``"2M4"`` (= 2.4 MHz). Raises a one-line :class:`~sdrwatch.errors.PlanError` otherwise."""
    unit = None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _HZ_RE.match(str(text))
        if not m or (m.group("frac") and ("." in m.group("num") or "e" in m.group("num").lower())):
            raise PlanError(f"invalid {what} {text!r}: expected Hz or a k/M/G suffix, e.g. 433.92M, 250k, 1.2G")
        num = m.group("num") + ("." + m.group("frac") if m.group("frac") else "")
        unit = m.group("unit")
        value = float(num) * _SCALE.get((unit or "").lower(), 1.0)
    if not math.isfinite(value) or value <= 0:
        raise PlanError(f"invalid {what} {text!r}: must be a positive number of Hz")
    if what == "sample rate" and value < MIN_SAMPLE_RATE_HZ and not unit:
        raise PlanError(f"invalid {what} {text!r}: {value:g} S/s is far too slow; did you mean "
                        f"{str(text).strip()}{'M' if value < 100 else 'k'}?")
    return value


def parse_tuning_hz(text: str | float | int, *, what: str = "frequency") -> float:
    """:func:`parse_hz` for a centre frequency a receiver can be tuned to (100 kHz to 100 GHz). A bare
    number too small to be a tuning is refused with a hint: ``--freq 1090`` -> "did you mean 1090M?"."""
    value = parse_hz(text, what=what)
    if value < MIN_TUNING_HZ:
        hint = f"; did you mean {str(text).strip()}M?" if not isinstance(text, (int, float)) and str(text).strip()[-1:].isdigit() else ""
        raise PlanError(f"invalid {what} {text!r}: {value:g} Hz cannot be a tuning "
                        f"({MIN_TUNING_HZ / 1e3:g} kHz to {MAX_TUNING_HZ / 1e9:g} GHz){hint}")
    if value > MAX_TUNING_HZ:
        raise PlanError(f"invalid {what} {text!r}: above {MAX_TUNING_HZ / 1e9:g} GHz, not a tuning")
    return value


def loads_json(text: str | bytes, where: str, error: type = RecordingError):
    """``json.loads`` for files someone handed us: nesting too deep, integers of more than 19 digits
    and numbers beyond float range (``1e309``) are one-line ``error`` s naming ``where``, not a
    traceback or a silent infinity. Syntax errors still raise ``json.JSONDecodeError``."""
    def big_int(s: str) -> int:
        if len(s.lstrip("-")) > 19:
            raise error(f"{where}: integer {s[:8]}... with {len(s.lstrip('-'))} digits is out of range")
        return int(s)

    def finite(s: str) -> float:
        v = float(s)
        if not math.isfinite(v):
            raise error(f"{where}: number {s[:24]} is out of range (beyond +-1.8e308)")
        return v

    try:
        return json.loads(text, parse_int=big_int, parse_float=finite)
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply") from None


class NameInfo(NamedTuple):
    """What an rtl_433-style file name says. ``fmt`` is the rtl_433 format token (it may be one
    sdrwatch cannot read, e.g. ``"s16"``); ``content`` is a content token such as ``"am"``."""

    center_hz: float | None
    sample_rate_hz: float | None
    fmt: str | None
    content: str | None


# rtl_433 format tokens (2-channel IQ ones map to ours; the rest are recognised but unsupported)
_NAME_FORMATS = {
    "cu8": "cu8", "cs8": "cs8", "cs16": "cs16", "cf32": "cf32", "cs32": "cs32",
    "u8": "u8", "s8": "s8", "u16": "u16", "s16": "s16", "u32": "u32", "s32": "s32", "f32": "f32",
    # GNU Radio style names that rtl_433 means to accept
    "complex16u": "cu8", "complex16s": "cs8", "complex": "cf32",
    # GNU Radio file sinks: .cfile (complex float32), and its .fc32/.sc16/.sc8 names
    "cfile": "cf32", "fc32": "cf32", "sc16": "cs16", "sc8": "cs8",
}
_NAME_CONTENTS = {"i", "q", "iq", "am", "fm", "logic", "vcd", "ook"}


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _is_alpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


def parse_file_name(name: str, info: NameInfo | None = None) -> NameInfo:
    """Parse a file name the way rtl_433 does (``file_type()`` in rtl_433's ``src/fileformat.c``).

    Left to right, case-insensitive; later tokens override earlier ones:

    * a number ``[0-9]+(.[0-9]+)?`` directly followed by letters is a centre frequency if the letters
      are ``M`` (MHz), ``Hz``, ``kHz``, ``MHz`` or ``GHz``, and a sample rate if they are ``k``
      (kS/s), ``sps``, ``ksps``, ``Msps`` or ``Gsps``; other units are ignored;
    * one difference from rtl_433: ``<digits>M<digits>`` and ``<digits>k<digits>``, the letter as a
      decimal point (``1M6``, ``2M4``, ``2k5``), are a **sample rate** (1.6 MS/s, 2.4 MS/s, 2.5 kS/s),
      which is what people mean by them; rtl_433 would read ``1M6`` as a 1 MHz centre;
    * a word ``[A-Za-z][0-9A-Za-z]*`` is a format (``cu8 cs8 cs16 cf32`` ...) or a content type
      (``iq am fm`` ...), anything else is ignored.

    ``info`` holds values found so far (used for rtl_433's ``FORMAT:path`` forced prefix).
    """
    center, rate, fmt, content = info if info is not None else (None, None, None, None)
    i, n = 0, len(name)
    while i < n:
        c = name[i]
        if _is_digit(c):
            start = i
            while i < n and _is_digit(name[i]):
                i += 1
            if i < n and name[i] == ".":
                i += 1
                if i >= n or not _is_digit(name[i]):
                    continue  # "100." is not a number with a unit
                while i < n and _is_digit(name[i]):
                    i += 1
            num = float(name[start:i])
            s = i
            while i < n and _is_alpha(name[i]):
                i += 1
            unit = name[s:i].lower()
            if unit in ("m", "k") and "." not in name[start:s] and i < n and _is_digit(name[i]):
                frac = i
                while i < n and _is_digit(name[i]):
                    i += 1
                if i >= n or not _is_alpha(name[i]):  # "1M6", not "1M6k"
                    rate = float(f"{name[start:s]}.{name[frac:i]}") * (1e6 if unit == "m" else 1e3)
                    continue
                i = frac
            scale = _SCALE.get(unit[:1], 1.0)
            if unit == "m":
                center = num * 1e6
            elif unit == "k":
                rate = num * 1e3
            elif unit == "hz":
                center = num
            elif unit == "sps":
                rate = num
            elif len(unit) == 3 and unit[1:] == "hz" and scale > 1.0:
                center = num * scale
            elif len(unit) == 4 and unit[1:] == "sps" and scale > 1.0:
                rate = num * scale
        elif _is_alpha(c):
            start = i
            while i < n and (_is_alpha(name[i]) or _is_digit(name[i])):
                i += 1
            token = name[start:i].lower()
            if token in _NAME_FORMATS:
                fmt = _NAME_FORMATS[token]
            elif token in _NAME_CONTENTS:
                content = token
        else:
            i += 1
    return NameInfo(center, rate, fmt, content)


def _parse_iso(text: Any) -> float | None:
    """ISO-8601 (SigMF ``core:datetime``) -> unix seconds, or None if absent/unparseable."""
    if not isinstance(text, str) or not text:
        return None
    s = text.strip()
    if s[-1:] in "zZ":
        s = s[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m and m.group(2) and len(m.group(2)) > 7:  # more than microseconds
        s = m.group(1) + m.group(2)[:7] + m.group(3)
    try:
        t = _dt.datetime.fromisoformat(s)
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        ts = t.timestamp()
    except (ValueError, OverflowError):
        return None
    if not _MIN_TIME_S <= ts <= _MAX_TIME_S:  # year 1 or 9999: not a capture time, and beyond what
        return None                           # datetime can print once block offsets are added
    return ts


_MIN_TIME_S = _dt.datetime(1900, 1, 1, tzinfo=_dt.timezone.utc).timestamp()
_MAX_TIME_S = _dt.datetime(2200, 1, 1, tzinfo=_dt.timezone.utc).timestamp()


def iso_utc(unix_s: float | None = None) -> str:
    """Unix seconds (default: now) -> SigMF ``core:datetime`` (``YYYY-MM-DDTHH:MM:SS.ffffffZ``)."""
    try:
        t = _dt.datetime.now(_dt.timezone.utc) if unix_s is None else _dt.datetime.fromtimestamp(unix_s, _dt.timezone.utc)
    except (ValueError, OverflowError, OSError):  # out of datetime's range: the time is unknown, use now
        t = _dt.datetime.now(_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------------
# reading


class Recording:
    """An opened recording (SigMF or raw). Cheap to open: only the metadata and the file size are
    read; samples are read on demand with :meth:`iter_blocks` and :meth:`read`."""

    def __init__(self, *, path: Path, meta_path: Path | None, fmt: str, sample_rate_hz: float,
                 num_samples: int, captures: list[Capture], annotations: list[Annotation],
                 global_meta: dict, byte_offsets: list[int] | None = None) -> None:
        self.path = path
        self.meta_path = meta_path
        self.fmt = fmt
        self.sample_rate_hz = float(sample_rate_hz)
        self.num_samples = int(num_samples)
        self.captures = captures
        self.annotations = annotations
        self.global_meta = global_meta
        self._width = BYTES_PER_SAMPLE[fmt]
        # file offset of each capture's first sample (differs from sample_start*width with header_bytes)
        self._byte_offsets = byte_offsets or [c.sample_start * self._width for c in captures]
        self._starts = [c.sample_start for c in captures]
        self._t0 = [_parse_iso(c.datetime) for c in captures]

    def __repr__(self) -> str:
        return (f"Recording({str(self.path)!r}, fmt={self.fmt!r}, rate={self.sample_rate_hz:g}, "
                f"samples={self.num_samples}, captures={len(self.captures)})")

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz

    def capture_index(self, sample_index: int) -> int:
        """Index in :attr:`captures` of the capture holding ``sample_index``."""
        if not 0 <= sample_index < self.num_samples:
            raise RecordingError(f"sample {sample_index} is outside {self.path} ({self.num_samples} samples)")
        return bisect.bisect_right(self._starts, sample_index) - 1

    def capture_of(self, sample_index: int) -> Capture:
        """The capture (hop) that holds ``sample_index``."""
        return self.captures[self.capture_index(sample_index)]

    def timestamp_of(self, sample_index: int) -> float | None:
        """Wall-clock unix time of a sample, if its capture has a ``core:datetime``."""
        ci = self.capture_index(sample_index)
        t0 = self._t0[ci]
        return None if t0 is None else t0 + (sample_index - self.captures[ci].sample_start) / self.sample_rate_hz

    def gain_of(self, capture: Capture) -> float | None:
        g = capture.extra.get(f"{EXTENSION}:gain_db", self.global_meta.get(f"{EXTENSION}:gain_db"))
        return float(g) if isinstance(g, (int, float)) and not isinstance(g, bool) else None

    # -- low-level reads -------------------------------------------------------------------------

    def _read_raw(self, fh, ci: int, offset: int, num: int, buf: bytearray | None = None) -> np.ndarray:
        """``num`` samples starting ``offset`` samples into capture ``ci``, as complex64."""
        return to_iq(self._read_bytes(fh, ci, offset, num, buf), self.fmt)

    def _read_bytes(self, fh, ci: int, offset: int, num: int, buf=None) -> memoryview:
        """The bytes of ``num`` samples starting ``offset`` samples into capture ``ci``, read into
        ``buf`` (a bytearray or uint8 array, grown if short) and returned as a view of it."""
        nbytes = num * self._width
        if buf is None or len(buf) < nbytes:
            buf = bytearray(nbytes)
        view = memoryview(buf).cast("B")[:nbytes]
        fh.seek(self._byte_offsets[ci] + offset * self._width)
        got = 0
        while got < nbytes:
            k = fh.readinto(view[got:])
            if not k:
                raise RecordingError(f"{self.path}: file ended early at byte {fh.tell()} (changed while reading?)")
            got += k
        return buf if isinstance(buf, np.ndarray) and len(buf) == nbytes else view

    def iter_blocks(self, block_samples: int = 262144, captures: Iterable[int] | None = None,
                    frames=None) -> Iterator[Block]:
        """Blocks of at most ``block_samples`` samples, capture by capture (all, or the given capture
        indices in the given order). A block never crosses a capture boundary; ``sample_index`` is the
        absolute index in the recording and ``center_hz`` the capture's frequency.

        The next block is read and converted in a background thread while the caller works on this
        one (file reads and numpy's conversion release the GIL, so a second core overlaps them with
        the caller's work), when blocks are long (:data:`PREFETCH_MIN_SAMPLES`); every block has its
        own arrays.

        ``frames``: a :class:`~sdrwatch.dsp.spectrum.WelchFrames` with the key of the engine the
        blocks are for (the chain's). That thread (long blocks only) then also computes each block's Welch frames, and
        the blocks are :class:`FramedBlock` s carrying them (``ahead``), which the chain's engine
        takes instead of computing them again: the spectrum of the next block is computed while
        the caller detects in this one."""
        blocks = self._blocks(block_samples, captures)
        if min(int(block_samples), max((c.sample_count for c in self.captures), default=0)) < PREFETCH_MIN_SAMPLES:
            return blocks  # short blocks (a sweep's dwells): handing them between threads costs more than it saves
        if frames is None:
            return prefetch(blocks)
        return prefetch(_with_frames(self._blocks(block_samples, captures, framed=True), frames))

    def _blocks(self, block_samples: int, captures: Iterable[int] | None, framed: bool = False) -> Iterator[Block]:
        """The blocks of :meth:`iter_blocks`, in this thread. ``framed``: :class:`FramedBlock` s, for
        frames to be attached; a cu8 recording's hold the bytes as read (``raw``; ``iq`` converts them
        on first use)."""
        block_samples = int(block_samples)
        if block_samples <= 0:
            raise ValueError("block_samples must be positive")
        indices = range(len(self.captures)) if captures is None else list(captures)
        for ci in indices:
            if not 0 <= ci < len(self.captures):
                raise RecordingError(f"{self.path} has no capture {ci} (it has {len(self.captures)})")
        raw = framed and self.fmt == "cu8"
        buf = bytearray(block_samples * self._width)
        with open(self.path, "rb") as fh:
            for ci in indices:
                cap = self.captures[ci]
                gain = self.gain_of(cap)
                pos = 0
                while pos < cap.sample_count:
                    num = min(block_samples, cap.sample_count - pos)
                    t0 = self._t0[ci]
                    at = dict(center_hz=cap.center_hz, sample_rate_hz=self.sample_rate_hz, sample_index=cap.sample_start + pos,
                              timestamp=None if t0 is None else t0 + pos / self.sample_rate_hz, gain_db=gain)
                    if raw:  # its own bytes: the block keeps them
                        yield FramedBlock(raw=self._read_bytes(fh, ci, pos, num, np.empty(2 * num, dtype=np.uint8)), **at)
                    elif framed:
                        yield FramedBlock(iq=to_iq(self._read_bytes(fh, ci, pos, num, buf), self.fmt), **at)
                    else:
                        yield Block(iq=to_iq(self._read_bytes(fh, ci, pos, num, buf), self.fmt), **at)
                    pos += num

    def read(self, sample_start: int, num_samples: int) -> np.ndarray:
        """``num_samples`` complex64 samples from absolute index ``sample_start`` (may span captures)."""
        sample_start, num_samples = int(sample_start), int(num_samples)
        if sample_start < 0 or num_samples < 0 or sample_start + num_samples > self.num_samples:
            raise RecordingError(f"cannot read samples {sample_start}..{sample_start + num_samples} "
                                 f"of {self.path}: it has {self.num_samples}")
        out = np.empty(num_samples, dtype=np.complex64)
        if num_samples == 0:
            return out
        with open(self.path, "rb") as fh:
            self._read_into(fh, sample_start, out)
        return out

    def _read_into(self, fh, sample_start: int, out: np.ndarray) -> None:
        done = 0
        ci = self.capture_index(sample_start)
        while done < len(out):
            cap = self.captures[ci]
            offset = sample_start + done - cap.sample_start
            num = min(len(out) - done, cap.sample_count - offset)
            out[done:done + num] = self._read_raw(fh, ci, offset, num)
            done += num
            ci += 1

    def verify(self) -> None:
        """Check the data file against ``core:sha512`` (no-op when the meta has none)."""
        expected = self.global_meta.get("core:sha512")
        if not expected:
            return
        h = hashlib.sha512()
        buf = bytearray(4 << 20)
        view = memoryview(buf)
        with open(self.path, "rb") as fh:
            while True:
                k = fh.readinto(buf)
                if not k:
                    break
                h.update(view[:k])
        if h.hexdigest().lower() != str(expected).lower():
            raise RecordingError(f"{self.path}: checksum mismatch: data does not match core:sha512 in {self.meta_path}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _number(value: Any) -> float | None:
    """A finite JSON number as float, else None (strings, booleans, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


#: sample rates sdrwatch accepts: 1 kS/s to 1 GS/s (an RTL-SDR does 225 kS/s to 3.2 MS/s)
MIN_SAMPLE_RATE_HZ = 1e3
MAX_SAMPLE_RATE_HZ = 1e9


def _check_rate(rate: Any, where: str) -> float:
    r = _number(rate)
    if r is None or not MIN_SAMPLE_RATE_HZ <= r <= MAX_SAMPLE_RATE_HZ:
        raise RecordingError(f"{where}: invalid sample rate {rate!r} (expected {MIN_SAMPLE_RATE_HZ:g} to {MAX_SAMPLE_RATE_HZ:g} S/s)")
    return r


def _sigmf_stem(p: Path) -> tuple[Path, Path] | None:
    """(meta, data) paths if ``p`` names a SigMF recording by meta, data or stem; else None."""
    s = str(p)
    for ext in (META_EXT, DATA_EXT):
        if s.endswith(ext):
            stem = s[: -len(ext)]
            return Path(stem + META_EXT), Path(stem + DATA_EXT)
    if p.is_file():
        return None
    stem = s[:-1] if s.endswith(".") else s
    meta, data = Path(stem + META_EXT), Path(stem + DATA_EXT)
    if meta.exists() or data.exists():
        return meta, data
    return None


def open_recording(path: str | Path, *, sample_rate_hz: float | None = None, center_hz: float | None = None,
                   fmt: str | None = None) -> Recording:
    """Open a SigMF recording (``X.sigmf-meta``, ``X.sigmf-data``, ``X`` or ``X.``) or a raw IQ file
    named the rtl_433 way (``NAME_433.92M_250k.cu8``; rtl_433's ``cu8:PATH`` prefix works too).

    For raw files the keyword arguments override what the name says. For SigMF, ``sample_rate_hz``
    and ``fmt`` override the metadata and ``center_hz`` fills in captures without ``core:frequency``.
    Every problem is a one-line :class:`~sdrwatch.errors.RecordingError` naming the file.
    """
    if fmt is not None:
        check_format(fmt)
    if sample_rate_hz is not None and not (sample_rate_hz > 0 and math.isfinite(sample_rate_hz)):
        raise RecordingError(f"invalid sample rate {sample_rate_hz!r} for {path}")
    if center_hz is not None and not (math.isfinite(center_hz) and 0 <= center_hz <= MAX_TUNING_HZ):
        raise RecordingError(f"invalid centre frequency {center_hz!r} for {path} (0 to {MAX_TUNING_HZ:g} Hz)")
    text = str(path)
    forced: str | None = None
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif text.startswith("file:"):
        text = text[len("file:"):]
    elif ":" in text and not Path(text).exists():
        prefix, _, rest = text.rpartition(":")
        if prefix and "/" not in prefix and rest:
            forced, text = prefix, rest  # rtl_433 style "cs16:capture.bin"
    p = Path(text)
    if p.is_dir():
        raise RecordingError(f"{p} is a directory, not a recording")
    if text.endswith(".sigmf") or re.search(r"\.sigmf\.(gz|xz|zip|tar)$", text):
        raise RecordingError(f"{p}: SigMF archives are not read directly; extract them first (tar xf {p.name})")
    pair = _sigmf_stem(p)
    if pair is not None:
        return _open_sigmf(pair[0], pair[1], sample_rate_hz, center_hz, fmt)
    if not p.exists():
        raise RecordingError(f"no such recording: {p}")
    if p.suffix.lower() == ".wav" or _is_riff_wave(p):
        return _open_wav(p, sample_rate_hz, center_hz, fmt)
    return _open_raw(p, forced, sample_rate_hz, center_hz, fmt)


# --------------------------------------------------------------------------------------------------
# WAV IQ files (SDR#, SDRuno, HDSDR, SDR Console): RIFF or RF64 WAVE, two channels (I, Q), 8-bit
# unsigned or 16-bit signed PCM, or 32-bit float; the sample rate in the fmt chunk; the centre
# frequency in an ``auxi`` chunk (SpectraVue layout: two SYSTEMTIMEs, then CenterFreq as a uint32 in
# Hz at byte 32) or, failing that, in the file name (``SDRSharp_20240501_080000Z_433920000Hz_IQ.wav``,
# ``HDSDR_20240501_080000Z_433920kHz_RF.wav``). Anything else is refused in one line, never misread.

_WAV_FORMATS = {(1, 8): "cu8", (1, 16): "cs16", (3, 32): "cf32"}
_MAX_CHUNKS = 10_000


def _is_riff_wave(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE"


def _systemtime_iso(raw: bytes) -> str | None:
    """A Windows SYSTEMTIME (8 little-endian uint16: year, month, weekday, day, h, m, s, ms) as ISO UTC."""
    if len(raw) < 16:
        return None
    y, mo, _wd, d, h, mi, sec, ms = struct.unpack("<8H", raw[:16])
    try:
        t = _dt.datetime(y, mo, d, h, mi, sec, ms * 1000, tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if 1900 <= y <= 2200 else None


def _open_wav(p: Path, sample_rate_hz, center_hz, fmt) -> Recording:
    size = _data_size(p)
    fmt_chunk = auxi = None
    data_at = data_len = None
    ds64_data: int | None = None
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
            if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                raise RecordingError(f"{p}: a .wav file that is not RIFF/WAVE; sdrwatch reads WAV IQ from SDR#, "
                                     f"SDRuno or HDSDR, or raw cu8/cs8/cs16/cf32 named NAME_433.92M_250k.cu8")
            at = 12
            for _ in range(_MAX_CHUNKS):
                hdr = fh.read(8)
                if len(hdr) < 8:
                    break
                cid, clen = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                body_at = at + 8
                if cid == b"data":
                    data_at = body_at
                    data_len = ds64_data if (head[:4] == b"RF64" and clen == 0xFFFFFFFF and ds64_data) else clen
                    break  # samples run to the end of this chunk; nothing after it is needed
                if clen > 1 << 20:
                    raise RecordingError(f"{p}: WAV chunk {cid!r} of {clen} bytes before the samples; not an IQ recording")
                body = fh.read(clen)
                if len(body) < clen:
                    break
                if cid == b"fmt ":
                    fmt_chunk = body
                elif cid == b"auxi":
                    auxi = body
                elif cid == b"ds64" and len(body) >= 16:
                    ds64_data = struct.unpack("<Q", body[8:16])[0]
                at = body_at + clen + (clen & 1)
                fh.seek(at)
    except OSError as exc:
        raise RecordingError(f"cannot read {p}: {exc.strerror}") from None
    if fmt_chunk is None or len(fmt_chunk) < 16:
        raise RecordingError(f"{p}: WAV without a fmt chunk before its samples; not a readable IQ recording")
    if data_at is None:
        raise RecordingError(f"{p}: WAV without a data chunk (no samples)")
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", fmt_chunk[:16])
    if tag == 0xFFFE and len(fmt_chunk) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
        tag = struct.unpack("<H", fmt_chunk[24:26])[0]
    if channels != 2:
        raise RecordingError(f"{p}: WAV with {channels} channel(s); an IQ recording has 2 (I and Q)")
    wav_fmt = _WAV_FORMATS.get((tag, bits))
    if wav_fmt is None:
        kind = {1: "integer PCM", 3: "float"}.get(tag, f"format tag {tag:#x}")
        raise RecordingError(f"{p}: {bits}-bit {kind} WAV is not supported; sdrwatch reads 8-bit or 16-bit PCM "
                             f"and 32-bit float IQ WAV (SDR#, SDRuno, HDSDR)")
    if fmt is not None and fmt != wav_fmt:
        raise RecordingError(f"{p}: the WAV header says {wav_fmt} samples, not {fmt}")
    rate_hz = _check_rate(sample_rate_hz if sample_rate_hz is not None else rate, f"{p}: WAV sample rate")
    center = center_hz
    where = "--freq"
    if center is None and auxi is not None and len(auxi) >= 36:
        center, where = float(struct.unpack("<I", auxi[32:36])[0]), "auxi chunk"
        if center == 0:
            center = None
    if center is None:
        info = parse_file_name(p.stem)
        center, where = info.center_hz, "file name"
    if center is not None and not 0 <= center <= MAX_TUNING_HZ:
        raise RecordingError(f"{p}: centre frequency {center:g} Hz from its {where} is not a tuning")
    width = BYTES_PER_SAMPLE[wav_fmt]
    avail = size - data_at
    nbytes = avail if data_len in (None, 0, 0xFFFFFFFF) else min(int(data_len), avail)  # still recording, or cut short
    num = nbytes // width
    if num <= 0:
        raise RecordingError(f"{p}: WAV with no samples")
    global_meta = {"core:datatype": SIGMF_DATATYPE[wav_fmt], "core:sample_rate": float(rate_hz),
                   "core:version": SIGMF_VERSION, "core:num_channels": 1, "core:dataset": p.name,
                   f"{EXTENSION}:source_format": "wav"}
    if center is None:
        center = 0.0
        global_meta[f"{EXTENSION}:center_unknown"] = True
    cap = Capture(sample_start=0, sample_count=num, center_hz=float(center),
                  datetime=_systemtime_iso(auxi[:16]) if auxi else None)
    return Recording(path=p, meta_path=None, fmt=wav_fmt, sample_rate_hz=rate_hz, num_samples=num,
                     captures=[cap], annotations=[], global_meta=global_meta, byte_offsets=[data_at])


def _data_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise RecordingError(f"{path}: empty file (no samples)")
    return size


def _whole_samples(path: Path, nbytes: int, fmt: str) -> int:
    width = BYTES_PER_SAMPLE[fmt]
    if nbytes <= 0:
        raise RecordingError(f"{path}: empty file (no samples)")
    if nbytes % width:
        raise RecordingError(f"{path}: truncated: {nbytes} bytes is not a whole number of {fmt} samples "
                             f"({width} bytes each)")
    return nbytes // width


def _open_raw(p: Path, forced: str | None, sample_rate_hz, center_hz, fmt) -> Recording:
    info = parse_file_name(p.name)
    if forced:
        info = parse_file_name(forced, info)
    if fmt is None:
        if info.fmt is None and info.content not in (None, "iq"):
            raise RecordingError(f"{p}: rtl_433 content type {info.content!r} is not IQ; sdrwatch reads "
                                 f"cu8, cs8, cs16 or cf32 IQ (rename the file or pass a format)")
        fmt = info.fmt or "cu8"  # rtl_433 reads files without a format token as cu8
        if fmt not in BYTES_PER_SAMPLE:
            raise RecordingError(f"{p}: sample format {fmt!r} is not supported; sdrwatch reads cu8, cs8, "
                                 f"cs16 or cf32 IQ")
    rate = sample_rate_hz if sample_rate_hz is not None else info.sample_rate_hz
    if rate is None:
        raise RecordingError(f"{p}: no sample rate: name the file like NAME_433.92M_250k.{fmt} or pass --rate")
    rate = _check_rate(rate, str(p))
    center = center_hz if center_hz is not None else info.center_hz
    if center is not None and not 0 <= center <= MAX_TUNING_HZ:
        raise RecordingError(f"{p}: centre frequency {center:g} Hz from its name is not a tuning (0 to {MAX_TUNING_HZ:g} Hz)")
    num = _whole_samples(p, _data_size(p), fmt)
    global_meta = {"core:datatype": SIGMF_DATATYPE[fmt], "core:sample_rate": float(rate),
                   "core:version": SIGMF_VERSION, "core:num_channels": 1,
                   "core:dataset": p.name}
    if center is None:
        center = 0.0
        global_meta[f"{EXTENSION}:center_unknown"] = True
    cap = Capture(sample_start=0, sample_count=num, center_hz=float(center))
    return Recording(path=p, meta_path=None, fmt=fmt, sample_rate_hz=rate, num_samples=num,
                     captures=[cap], annotations=[], global_meta=global_meta)


def _open_sigmf(meta_path: Path, data_path: Path, sample_rate_hz, center_hz, fmt) -> Recording:
    if not meta_path.exists():
        raise RecordingError(f"{meta_path} is missing (needed to read {data_path})")
    try:
        with open(meta_path, "rb") as fh:
            meta = loads_json(fh.read().decode("utf-8"), str(meta_path))
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{meta_path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise RecordingError(f"{meta_path}: invalid JSON: not UTF-8 text") from None
    except OSError as exc:
        raise RecordingError(f"cannot read {meta_path}: {exc.strerror}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
        raise RecordingError(f"{meta_path}: not SigMF metadata (no 'global' object)")
    glob = meta["global"]
    caps_in = meta.get("captures", [])
    anns_in = meta.get("annotations", [])
    if not isinstance(caps_in, list) or not all(isinstance(c, dict) for c in caps_in):
        raise RecordingError(f"{meta_path}: 'captures' must be a list of objects")
    if not isinstance(anns_in, list) or not all(isinstance(a, dict) for a in anns_in):
        raise RecordingError(f"{meta_path}: 'annotations' must be a list of objects")

    if glob.get("core:metadata_only") and not glob.get("core:dataset"):
        raise RecordingError(f"{meta_path}: metadata only (core:metadata_only), no samples to read")
    dataset = glob.get("core:dataset")
    if isinstance(dataset, str) and dataset:
        if Path(dataset).name != dataset:
            raise RecordingError(f"{meta_path}: core:dataset {dataset!r} must be a file name beside the meta file")
        data_path = meta_path.with_name(dataset)
    if not data_path.exists():
        raise RecordingError(f"{data_path} is missing (the samples described by {meta_path})")

    channels = glob.get("core:num_channels", 1)
    if channels != 1:
        raise RecordingError(f"{meta_path}: core:num_channels is {channels}; only single-channel recordings "
                             f"are supported (split it into a SigMF collection)")
    if fmt is None:
        datatype = glob.get("core:datatype")
        if datatype is None:
            raise RecordingError(f"{meta_path}: no core:datatype")
        fmt = FORMAT_OF_DATATYPE.get(str(datatype))
        if fmt is None:
            raise RecordingError(f"{meta_path}: unknown datatype {datatype!r} (sdrwatch reads "
                                 f"{', '.join(SIGMF_DATATYPE.values())})")
    if sample_rate_hz is None:
        if glob.get("core:sample_rate") is None:
            raise RecordingError(f"{meta_path}: no core:sample_rate (pass --rate to read it anyway)")
        sample_rate_hz = _check_rate(glob.get("core:sample_rate"), f"{meta_path}: core:sample_rate")
    else:
        sample_rate_hz = _check_rate(sample_rate_hz, f"{meta_path}: --rate")

    width = BYTES_PER_SAMPLE[fmt]
    size = _data_size(data_path)
    trailing = glob.get("core:trailing_bytes", 0) or 0
    if isinstance(trailing, bool) or not isinstance(trailing, int) or trailing < 0:
        raise RecordingError(f"{meta_path}: invalid core:trailing_bytes {trailing!r}")
    if not caps_in:
        caps_in = [{"core:sample_start": 0}]  # SigMF: no captures means one capture at 0
    raw_caps = []
    for i, c in enumerate(caps_in):
        start = c.get("core:sample_start", 0)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise RecordingError(f"{meta_path}: capture {i} has an invalid core:sample_start {start!r}")
        hb = c.get("core:header_bytes", 0) or 0
        if isinstance(hb, bool) or not isinstance(hb, int) or hb < 0:
            raise RecordingError(f"{meta_path}: capture {i} has an invalid core:header_bytes {hb!r}")
        raw_caps.append((start, i, hb, c))
    raw_caps.sort(key=lambda t: (t[0], t[1]))
    headers = sum(t[2] for t in raw_caps)
    num = _whole_samples(data_path, size - trailing - headers, fmt)

    captures: list[Capture] = []
    offsets: list[int] = []
    header_sum = 0
    for k, (start, i, hb, c) in enumerate(raw_caps):
        header_sum += hb
        if start >= num:
            raise RecordingError(f"{data_path}: data ends at sample {num} but capture {i} starts at sample "
                                 f"{start} (file truncated?)")
        end = raw_caps[k + 1][0] if k + 1 < len(raw_caps) else num
        if k == 0:
            start = 0  # samples before the first capture belong to it
        if end <= start:
            continue  # zero-length capture: superseded by the next one at the same sample
        freq = _number(c.get("core:frequency"))
        if (freq is None and c.get("core:frequency") is not None) or (freq is not None and not 0 <= freq <= MAX_TUNING_HZ):
            raise RecordingError(f"{meta_path}: capture {i} has an invalid core:frequency {c.get('core:frequency')!r}"
                                 + (f" (0 to {MAX_TUNING_HZ:g} Hz)" if freq is not None else ""))
        if freq is None:
            if center_hz is None:
                raise RecordingError(f"{meta_path}: capture {i} has no core:frequency (pass --freq to read it anyway)")
            freq = float(center_hz)
        dt = c.get("core:datetime")
        captures.append(Capture(sample_start=start, sample_count=end - start, center_hz=freq,
                                datetime=dt if isinstance(dt, str) else None,
                                extra={k2: v for k2, v in c.items() if k2 not in _CAPTURE_CORE}))
        offsets.append(header_sum + start * width)

    annotations = []
    for i, a in enumerate(anns_in):
        start = a.get("core:sample_start")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise RecordingError(f"{meta_path}: annotation {i} has an invalid core:sample_start {start!r}")
        count = a.get("core:sample_count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise RecordingError(f"{meta_path}: annotation {i} has an invalid core:sample_count {count!r}")
        edges = {}
        for key in ("core:freq_lower_edge", "core:freq_upper_edge"):
            edges[key] = _number(a.get(key))
            if a.get(key) is not None and edges[key] is None:
                raise RecordingError(f"{meta_path}: annotation {i} has an invalid {key} {a.get(key)!r}")
        lo_e, hi_e = edges["core:freq_lower_edge"], edges["core:freq_upper_edge"]
        if lo_e is not None and hi_e is not None and lo_e > hi_e:
            raise RecordingError(f"{meta_path}: annotation {i} has core:freq_lower_edge above core:freq_upper_edge")
        if start >= num:
            raise RecordingError(f"{meta_path}: annotation {i} starts at sample {start}, after the data ends ({num} samples)")
        threat = a.get(f"{EXTENSION}:threat")
        if threat is not None and not isinstance(threat, bool):
            raise RecordingError(f"{meta_path}: annotation {i}: {EXTENSION}:threat must be true or false, not {threat!r}")
        label, comment = a.get("core:label"), a.get("core:comment")
        annotations.append(Annotation(
            sample_start=start,
            sample_count=count,
            freq_lower_hz=edges["core:freq_lower_edge"],
            freq_upper_hz=edges["core:freq_upper_edge"],
            label=label if isinstance(label, str) else None,
            comment=comment if isinstance(comment, str) else None,
            extra={k: v for k, v in a.items() if k not in _ANNOTATION_CORE}))
    annotations.sort(key=lambda a: a.sample_start)
    return Recording(path=data_path, meta_path=meta_path, fmt=fmt, sample_rate_hz=sample_rate_hz,
                     num_samples=num, captures=captures, annotations=annotations, global_meta=dict(glob),
                     byte_offsets=offsets)


# --------------------------------------------------------------------------------------------------
# writing


def _writer_stem(stem: str | Path) -> str:
    s = str(stem)
    for ext in (META_EXT, DATA_EXT):
        if s.endswith(ext):
            return s[: -len(ext)]
    return s[:-1] if s.endswith(".") else s


class SigMFWriter:
    """Write a SigMF recording (``STEM.sigmf-data`` + ``STEM.sigmf-meta``) one capture (hop) at a time.

    Samples go to ``STEM.sigmf-data.partial`` and are hashed (``core:sha512``) as they are written;
    :meth:`close` writes the metadata and renames both into place, data first, so an interrupted
    recording never leaves a ``.sigmf-meta`` that points at incomplete data. A full disk removes the
    partial files and raises ``RecordingError("disk full while writing ...")``.

    Usage::

        with SigMFWriter("rec", fmt="cu8", sample_rate_hz=2.4e6) as w:
            w.start_capture(433.92e6)
            w.write(iq)
        # on an exception inside the block the partial files are removed
    """

    def __init__(self, stem: str | Path, *, fmt: str = "cu8", sample_rate_hz: float,
                 global_extra: dict | None = None, overwrite: bool = False) -> None:
        self.fmt = check_format(fmt)
        if not (isinstance(sample_rate_hz, (int, float)) and sample_rate_hz > 0 and math.isfinite(sample_rate_hz)):
            raise RecordingError(f"invalid sample rate {sample_rate_hz!r} for {stem}")
        self.sample_rate_hz = float(sample_rate_hz)
        base = _writer_stem(stem)
        self.data_path = Path(base + DATA_EXT)
        self.meta_path = Path(base + META_EXT)
        self.global_extra = dict(global_extra or {})
        self.overwrite = overwrite
        self._width = BYTES_PER_SAMPLE[fmt]
        parent = self.meta_path.parent
        if not parent.is_dir():
            raise RecordingError(f"cannot write {self.meta_path}: directory {parent} does not exist")
        if not overwrite:
            for p in (self.meta_path, self.data_path):
                if p.exists():
                    raise RecordingError(f"{p} already exists; not overwriting it (use --overwrite)")
        self._tmp_data = self.data_path.with_name(self.data_path.name + ".partial")
        self._tmp_meta = self.meta_path.with_name(self.meta_path.name + ".partial")
        try:
            self._fd: int | None = os.open(self._tmp_data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise RecordingError(f"cannot write {self.data_path}: {exc.strerror}") from None
        self._sha = hashlib.sha512()
        self._samples = 0
        self._captures: list[dict] = []
        self._annotations: list[dict] = []
        self._closed = False

    # -- state -----------------------------------------------------------------------------------

    @property
    def samples_written(self) -> int:
        return self._samples

    def __enter__(self) -> "SigMFWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abort()
            return False
        self.close()
        return False

    def _check_open(self) -> None:
        if self._closed:
            raise RecordingError(f"{self.meta_path}: writer is already closed")

    def _remove_partials(self) -> None:
        for p in (self._tmp_data, self._tmp_meta):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass

    def abort(self) -> None:
        """Stop without writing anything: close and remove the partial files."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        self._remove_partials()
        self._closed = True

    def _fail(self, exc: OSError, path: Path) -> RecordingError:
        self.abort()
        if exc.errno == errno.ENOSPC:
            return RecordingError(f"disk full while writing {path}: {exc.strerror}; nothing partial was kept")
        return RecordingError(f"cannot write {path}: {exc.strerror}; nothing partial was kept")

    # -- content ---------------------------------------------------------------------------------

    def start_capture(self, center_hz: float, *, datetime: str | None = None, extra: dict | None = None) -> None:
        """Begin a new capture segment at the current sample (one per hop)."""
        self._check_open()
        if self._captures and self._captures[-1]["core:sample_start"] == self._samples:
            self._captures.pop()  # the previous capture got no samples
        cap = {"core:sample_start": self._samples, "core:frequency": float(center_hz),
               "core:datetime": datetime or iso_utc()}
        cap.update(extra or {})
        self._captures.append(cap)

    def write(self, iq: np.ndarray) -> None:
        """Append complex samples (full scale 1.0), quantised to the file's format."""
        self.write_raw(from_iq(np.asarray(iq), self.fmt))

    def write_raw(self, raw: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Append samples already in the file's format."""
        self._check_open()
        if not self._captures:
            raise RecordingError(f"{self.meta_path}: start_capture() must come before samples are written")
        if isinstance(raw, np.ndarray):
            raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
        view = memoryview(raw).cast("B")
        nbytes = len(view)
        if nbytes % self._width:
            raise RecordingError(f"{nbytes} bytes is not a whole number of {self.fmt} samples")
        self._sha.update(view)
        try:
            while len(view):
                k = os.write(self._fd, view)
                view = view[k:]
        except OSError as exc:
            raise self._fail(exc, self.data_path) from None
        self._samples += nbytes // self._width

    def annotate(self, sample_start: int, sample_count: int, *, freq_lower_hz: float | None = None,
                 freq_upper_hz: float | None = None, label: str | None = None, comment: str | None = None,
                 extra: dict | None = None) -> None:
        """Add an annotation (absolute sample index in this recording)."""
        self._check_open()
        ann: dict[str, Any] = {"core:sample_start": int(sample_start)}
        if sample_count is not None:
            ann["core:sample_count"] = int(sample_count)
        if freq_lower_hz is not None and freq_upper_hz is not None:
            ann["core:freq_lower_edge"] = float(freq_lower_hz)
            ann["core:freq_upper_edge"] = float(freq_upper_hz)
        elif (freq_lower_hz is None) != (freq_upper_hz is None):
            raise RecordingError("an annotation needs both freq_lower_hz and freq_upper_hz, or neither")
        if label is not None:
            ann["core:label"] = str(label)
        if comment is not None:
            ann["core:comment"] = str(comment)
        ann.update(extra or {})
        self._annotations.append(ann)

    def metadata(self) -> dict:
        """The SigMF metadata as it would be written now."""
        captures = [c for i, c in enumerate(self._captures)
                    if c["core:sample_start"] < self._samples or (i == 0 and not self._samples)]
        glob: dict[str, Any] = {"core:hw": "unknown"}
        glob.update(self.global_extra)
        glob.update({
            "core:datatype": SIGMF_DATATYPE[self.fmt],
            "core:sample_rate": self.sample_rate_hz,
            "core:version": SIGMF_VERSION,
            "core:num_channels": 1,
            "core:recorder": f"sdrwatch {__version__}",
            "core:sha512": self._sha.hexdigest(),
        })
        ext = [e for e in glob.get("core:extensions", []) if e.get("name") != EXTENSION]
        ext.append({"name": EXTENSION, "version": __version__, "optional": True})
        glob["core:extensions"] = ext
        annotations = sorted(self._annotations, key=lambda a: (a["core:sample_start"], a.get("core:sample_count", 0)))
        return {"global": dict(sorted(glob.items())), "captures": captures, "annotations": annotations}

    def close(self) -> Path:
        """Finish: write the metadata, move both files into place, return the ``.sigmf-meta`` path."""
        if self._closed:
            if self._fd is None and self.meta_path.exists():
                return self.meta_path
            raise RecordingError(f"{self.meta_path}: writer was aborted; nothing was written")
        if self._samples == 0:
            self.abort()
            raise RecordingError(f"nothing was recorded; {self.meta_path} not written")
        meta = self.metadata()
        try:
            from sigmf import validate as _validate  # imported late: it is slow to import

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _validate.validate(meta)
        except ImportError:  # pragma: no cover - sigmf is a dependency
            pass
        except Exception as exc:  # jsonschema.ValidationError
            self.abort()
            raise RecordingError(f"invalid SigMF metadata for {self.meta_path}: "
                                 f"{_one_line(getattr(exc, 'message', exc))}") from None
        try:
            os.fsync(self._fd)
            os.close(self._fd)
        except OSError as exc:
            self._fd = None
            raise self._fail(exc, self.data_path) from None
        self._fd = None
        try:
            with open(self._tmp_meta, "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            if self.meta_path.exists():  # overwrite: never pair an old meta with new data
                self.meta_path.unlink()
            os.replace(self._tmp_data, self.data_path)
            os.replace(self._tmp_meta, self.meta_path)
        except OSError as exc:
            err = self._fail(exc, self.meta_path)
            raise err from None
        self._closed = True
        return self.meta_path


# --------------------------------------------------------------------------------------------------
# the "file" receiver backend


class FileSource(Source):
    """Replay a recording as a receiver. ``tune`` picks the capture(s) nearest in frequency (within
    half a sample rate); ``read(n)`` returns the next ``n`` samples of them, exactly ``n`` per block
    and never across a capture boundary (a remainder shorter than ``n`` is skipped). Each frequency
    keeps its own position, so a sweep recording replays hop by hop. At the end: ``SourceError("end
    of recording")``, or back to the start with ``loop=True``."""

    def __init__(self, recording: Recording, uri: str = "", *, loop: bool = False) -> None:
        self.recording = recording
        self.uri = uri or str(recording.path)
        self.loop = loop
        self.sample_rate_hz = recording.sample_rate_hz
        self.gain_db = None
        self.ppm = 0
        self._groups: dict[float, list[int]] = {}
        for i, cap in enumerate(recording.captures):
            self._groups.setdefault(cap.center_hz, []).append(i)
        self._cursor = {f: [0, 0] for f in self._groups}
        self.center_hz = recording.captures[0].center_hz
        self._fh = None

    def tune(self, center_hz: float) -> None:
        nearest = min(self._groups, key=lambda f: abs(f - center_hz))
        if abs(nearest - center_hz) > self.sample_rate_hz / 2:
            have = ", ".join(f"{f / 1e6:.6g}" for f in sorted(self._groups))
            raise SourceError(f"{self.recording.path} has no capture near {center_hz / 1e6:.6g} MHz "
                              f"(captures at {have} MHz)")
        self.center_hz = nearest

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        rate = self.recording.sample_rate_hz
        if abs(sample_rate_hz - rate) > max(1.0, 1e-6 * rate):
            raise SourceError(f"{self.recording.path} was recorded at {rate:g} S/s; it cannot be replayed "
                              f"at {sample_rate_hz:g} S/s")

    def set_gain(self, gain_db: float | None) -> None:
        self.gain_db = gain_db  # a recording's gain is fixed; remembered only

    def set_ppm(self, ppm: int) -> None:
        self.ppm = int(ppm)

    def read(self, num_samples: int) -> Block:
        num_samples = int(num_samples)
        if num_samples <= 0:
            raise SourceError("read() needs a positive number of samples")
        rec = self.recording
        caps = self._groups[self.center_hz]
        cursor = self._cursor[self.center_hz]
        wrapped = 0
        while True:
            ci = caps[cursor[0]]
            cap = rec.captures[ci]
            if cap.sample_count - cursor[1] >= num_samples:
                break
            cursor[0] += 1
            cursor[1] = 0
            if cursor[0] == len(caps):
                if not self.loop:
                    cursor[0] = len(caps) - 1
                    cursor[1] = cap.sample_count
                    raise SourceError(f"end of recording {rec.path} at {self.center_hz / 1e6:.6g} MHz")
                cursor[0] = 0
                wrapped += 1
                if wrapped > 1:
                    raise SourceError(f"{rec.path}: no capture at {self.center_hz / 1e6:.6g} MHz holds "
                                      f"{num_samples} samples")
        if self._fh is None:
            self._fh = open(rec.path, "rb")
        index = cap.sample_start + cursor[1]
        iq = rec._read_raw(self._fh, ci, cursor[1], num_samples)
        cursor[1] += num_samples
        return Block(iq=iq, center_hz=cap.center_hz, sample_rate_hz=rec.sample_rate_hz, sample_index=index,
                     timestamp=rec.timestamp_of(index), gain_db=rec.gain_of(cap))

    def truth_for_block(self, block: Block) -> list[dict]:
        """Ground truth of a block this source returned (positions relative to the block)."""
        return self.truth(block.center_hz, block.sample_rate_hz, block.sample_index, len(block.iq))

    def truth(self, center_hz: float, sample_rate_hz: float, sample_start: int, num_samples: int) -> list[dict]:
        """The recording's annotations overlapping ``[sample_start, sample_start + num_samples)``
        (absolute indices), clipped, with positions relative to ``sample_start``."""
        out = []
        end = sample_start + num_samples
        for a in self.recording.annotations:
            a_end = a.sample_start + (a.sample_count if a.sample_count is not None else num_samples + sample_start)
            lo, hi = max(a.sample_start, sample_start), min(a_end, end)
            if hi <= lo:
                continue
            out.append({**a.extra, "sample_start": lo - sample_start, "sample_count": hi - lo,
                        "freq_lower_hz": a.freq_lower_hz, "freq_upper_hz": a.freq_upper_hz,
                        "label": a.label, "comment": a.comment})
        return out

    def describe(self) -> SourceInfo:
        g = self.recording.global_meta
        tuner = g.get(f"{EXTENSION}:tuner") or g.get("core:hw") or "unknown"
        rate = self.recording.sample_rate_hz
        return SourceInfo(driver="file", tuner=str(tuner), sample_rates_hz=[(rate, rate)],
                          description=str(self.recording.path),
                          extra={"frequencies_hz": sorted(self._groups), "captures": len(self.recording.captures),
                                 "hw": g.get("core:hw")})

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def open_file_source(uri: str, *, loop: bool = False, sample_rate_hz: float | None = None,
                     center_hz: float | None = None, fmt: str | None = None, **_ignored: Any) -> FileSource:
    """``open_source`` backend for a plain path, ``file:PATH`` or ``file://PATH``. Options: ``loop``
    (replay forever), and ``sample_rate_hz``/``center_hz``/``fmt`` as for :func:`open_recording`."""
    rec = open_recording(uri, sample_rate_hz=sample_rate_hz, center_hz=center_hz, fmt=fmt)
    return FileSource(rec, uri, loop=loop)


class FramedBlock(Block):
    """A block of a recording read ahead (:meth:`Recording.iter_blocks` ``frames=``): its Welch frames
    computed beforehand (``ahead``, a :class:`~sdrwatch.dsp.spectrum.FramesAhead`), and for cu8 its
    samples kept as the bytes read (``raw``), which the chain's engine takes as they are; ``iq``
    converts them to complex64 on first use (a replay never needs it). Takes ``iq`` or ``raw``.
    ``dataclasses.replace`` gives a block with ``iq`` only (no bytes, no frames ahead: the chain then
    computes its frames itself)."""

    def __init__(self, iq: np.ndarray | None = None, center_hz: float = 0.0, sample_rate_hz: float = 0.0,
                 sample_index: int = 0, timestamp: float | None = None, gain_db: float | None = None, *,
                 raw: np.ndarray | None = None, ahead: Any = None):
        if (iq is None) == (raw is None):
            raise ValueError("a FramedBlock holds either iq or raw cu8 bytes")
        put = object.__setattr__  # a frozen dataclass's fields
        for name, value in (("_iq", iq), ("raw", raw), ("center_hz", center_hz), ("sample_rate_hz", sample_rate_hz),
                            ("sample_index", sample_index), ("timestamp", timestamp), ("gain_db", gain_db), ("ahead", ahead)):
            put(self, name, value)

    @property
    def iq(self) -> np.ndarray:
        if self._iq is None:
            object.__setattr__(self, "_iq", to_iq(self.raw, "cu8"))
        return self._iq

    @property
    def num_samples(self) -> int:
        return len(self.raw) // 2 if self._iq is None else len(self._iq)

    def __repr__(self) -> str:  # without converting the bytes
        return (f"FramedBlock({self.num_samples} samples at {self.center_hz:g} Hz, sample_index={self.sample_index}, "
                f"{'cu8 bytes' if self.raw is not None else 'complex64'}, frames ahead: {self.ahead is not None})")


def _with_frames(blocks: Iterator[Block], eng) -> Iterator[FramedBlock]:
    """Each block with ``eng``'s frames of it; ``eng`` restarts where the chain starts a new dwell (a
    new tuning, or samples that do not follow). The frames of the next block are under way while this
    one's are finished (:func:`~sdrwatch.dsp.spectrum.frames_ahead_stream`)."""
    from ..dsp.spectrum import frames_ahead_stream

    def items():
        center, end = None, None
        for b in blocks:
            restart = center != round(b.center_hz) or b.sample_index != end
            center, end = round(b.center_hz), b.sample_index + b.num_samples
            yield b, b.samples, restart

    for b, ahead in frames_ahead_stream(eng, items()):
        object.__setattr__(b, "ahead", ahead)  # a block just read here, not yet seen by anyone else
        yield b


_DONE = object()
#: blocks shorter than this are read in the caller's thread
PREFETCH_MIN_SAMPLES = 1 << 18


def prefetch(items: Iterator, depth: int = 1) -> Iterator:
    """``items``, produced ``depth`` ahead in a background thread; an exception raised there is
    raised here at the same point of the sequence. Closing this generator (or dropping it) stops
    the thread and closes ``items``."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    break
            else:
                put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_DONE, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=run, name="sdrwatch-read", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
