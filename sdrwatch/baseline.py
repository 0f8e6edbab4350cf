"""Baseline files: a site's spectrum before the exam, per hop and per bin, saved as ``.npz``.

File format (version 1), a numpy ``.npz`` archive (``numpy.load(path)`` reads it):

=====================  ===============  ==================================================================
array                  shape / dtype    meaning
=====================  ===============  ==================================================================
``meta``               0-d str          JSON: ``format`` ("sdrwatch-baseline"), ``version`` (1),
                                        ``sample_rate_hz``, ``spectrum`` (fft_size, overlap, window,
                                        frame_s, crop, dc_bins), ``k0_eff``, ``enbw_bins``, ``detector``
                                        (pfa, margins, scales...), ``source`` (recording path),
                                        ``created`` (UTC ISO-8601), ``hops`` (list of centre_hz, frames)
``h{i}_freq_hz``       (bins,) f8       centre frequency of each kept bin of hop i
``h{i}_noise_power``   (bins,) f4       mean noise power per bin, full scale^2 (not biased by users)
``h{i}_noise_dof``     (bins,) f8       averages that noise estimate is worth (for the F threshold)
``h{i}_mean_power``    (bins,) f4       mean power over the whole baseline
``h{i}_maxhold``       (scales, bins)   max over the baseline of the window mean at each scale
``h{i}_maxhold_k``     (scales,) f8     averages (K_eff) behind each max-hold row
``h{i}_maxhold_n``     (scales,) i8     number of windows each max-hold row is the maximum of
``h{i}_duty``          (bins,) f4       share of frames in which the bin was over its noise threshold
``h{i}_p50_power``     (bins,) f4       median frame power
``h{i}_p99_power``     (bins,) f4       99th percentile frame power
=====================  ===============  ==================================================================

Powers are linear; 10*log10 gives dBFS per bin. Hops are matched by centre frequency (within 1 kHz).

A file is checked before anything in it is inflated: every member's declared size and ``.npy``
header (shape x dtype must match the size, numeric or text dtypes only, at most ``MAX_ARCHIVE_BYTES``
in all), so a crafted 11 KB header claiming 10^12 elements or a zip bomb is refused in one line.
Every setting in ``meta`` is then checked against these bounds (``SPECTRUM_BOUNDS``,
``DETECTOR_BOUNDS``); an unknown or missing spectrum key, or an unknown detector key, is refused:

=====================  ==================================================================
spectrum setting       allowed
=====================  ==================================================================
``fft_size``           power of two, 16 to 65536
``overlap``            0 to 0.9
``window``             one of ``sdrwatch.dsp.spectrum.WINDOWS`` (hann, hamming, blackman, boxcar)
``frame_s``            1e-4 to 10 s
``crop``               0 to 0.45 (or null: automatic)
``dc_bins``            integer, 0 to 64
detector setting
``pfa``                1e-15 to 1e-2 (per bin and test)
``pfa_low``            ``pfa`` to 0.5
``pfa_occupied``       1e-15 to 0.5
``margin_db``          0 to 60 dB
``slop_bins``          integer, 0 to 64
``min_bins``           integer, 1 to 64
``short_frames``       integer, 1 to 100000
``short_upper_bins``   integer, 1 to 64
``splatter_db``        0 to 100 dB
``channel_hz``         list of 0 to 8 widths, each 100 Hz to the sample rate
``channel_min_frames`` integer, 1 to 100000
``scales``             list of 1 to 8 increasing integers (frames), the first at most 100, all at most 100000
=====================  ==================================================================
"""
from __future__ import annotations

import datetime as _dt
import errno
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dsp.baseline import HopStats
from .errors import BaselineError

FORMAT = "sdrwatch-baseline"
VERSION = 1
_FIELDS = ("freq_hz", "noise_power", "noise_dof", "mean_power", "maxhold", "maxhold_k", "maxhold_n", "duty", "p50_power", "p99_power")
HOP_MATCH_HZ = 1e3
#: the most a baseline archive may inflate to (a 1000-hop, 4096-bin baseline is about 40 MB)
MAX_ARCHIVE_BYTES = 512 * 2 ** 20
MAX_HOPS = 20_000

_WINDOWS = ("hann", "hamming", "blackman", "boxcar")
#: key -> (kind, low, high); kind "int" (not bool) or "num" (finite int or float)
SPECTRUM_BOUNDS = {
    "fft_size": ("pow2", 16, 65536),
    "overlap": ("num", 0.0, 0.9),
    "window": ("window", None, None),
    "frame_s": ("num", 1e-4, 10.0),
    "crop": ("num|null", 0.0, 0.45),
    "dc_bins": ("int", 0, 64),
}
DETECTOR_BOUNDS = {
    "pfa": ("num", 1e-15, 1e-2),
    "pfa_low": ("num", 1e-15, 0.5),
    "pfa_occupied": ("num", 1e-15, 0.5),
    "margin_db": ("num", 0.0, 60.0),
    "slop_bins": ("int", 0, 64),
    "min_bins": ("int", 1, 64),
    "short_frames": ("int", 1, 100_000),
    "short_upper_bins": ("int", 1, 64),
    "splatter_db": ("num", 0.0, 100.0),
    "channel_hz": ("list", 0, 8),
    "channel_min_frames": ("int", 1, 100_000),
    "scales": ("list", 1, 8),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_setting(group: str, key: str, v, bound: tuple) -> None:
    kind, lo, hi = bound
    bad = BaselineError(f"invalid {group} setting {key} = {json.dumps(v)[:60]}")
    if kind == "pow2":
        if not (_is_int(v) and lo <= v <= hi and not v & (v - 1)):
            raise BaselineError(f"invalid {group} setting {key} = {json.dumps(v)[:60]} (a power of two, {lo} to {hi})")
    elif kind == "window":
        if v not in _WINDOWS:
            raise BaselineError(f"invalid {group} setting {key} = {json.dumps(v)[:60]} (one of {', '.join(_WINDOWS)})")
    elif kind == "int":
        if not (_is_int(v) and lo <= v <= hi):
            raise BaselineError(f"{bad} (an integer, {lo} to {hi})")
    elif kind in ("num", "num|null"):
        if v is None and kind == "num|null":
            return
        if not (_is_num(v) and lo <= v <= hi):
            raise BaselineError(f"{bad} (a number, {lo:g} to {hi:g})")
    elif kind == "list":
        if not (isinstance(v, list) and lo <= len(v) <= hi):
            raise BaselineError(f"{bad} (a list of {lo} to {hi} values)")


def _check_archive(path: Path) -> None:
    """Refuse an npz whose members would inflate to too much, before anything is inflated."""
    from numpy.lib import format as npy

    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BaselineError(f"{path}: not a readable sdrwatch baseline ({type(exc).__name__}: {exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > 1 + len(_FIELDS) * MAX_HOPS:
            raise BaselineError(f"{path}: {len(infos)} arrays is more than a baseline has")
        total = sum(i.file_size for i in infos)
        if total > MAX_ARCHIVE_BYTES:
            raise BaselineError(f"{path}: its arrays would inflate to {total / 2 ** 20:.0f} MiB "
                                f"(a baseline is at most {MAX_ARCHIVE_BYTES // 2 ** 20} MiB); refused")
        for info in infos:
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise BaselineError(f"{path}: member {info.filename!r} uses an unsupported compression")
            try:
                with zf.open(info) as fh:  # reads (inflates) only the small .npy header
                    version = npy.read_magic(fh)
                    if version == (1, 0):
                        shape, _fortran, dtype = npy.read_array_header_1_0(fh, max_header_size=10_000)
                    elif version in ((2, 0), (3, 0)):
                        shape, _fortran, dtype = npy.read_array_header_2_0(fh, max_header_size=10_000)
                    else:
                        raise ValueError(f"npy version {version}")
                    header_bytes = fh.tell()
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError, SyntaxError) as exc:
                raise BaselineError(f"{path}: member {info.filename!r} is not a plain array ({exc})") from None
            if dtype.kind not in "fiuUb" or dtype.hasobject:
                raise BaselineError(f"{path}: member {info.filename!r} has dtype {dtype}, not numbers or text")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if header_bytes + nbytes != info.file_size:
                raise BaselineError(f"{path}: member {info.filename!r} claims {nbytes} bytes of data "
                                    f"({'x'.join(map(str, shape)) or 'scalar'} {dtype}) but holds "
                                    f"{info.file_size - header_bytes}; refused")


@dataclass
class Baseline:
    meta: dict
    hops: list[HopStats] = field(default_factory=list)

    def hop_for(self, center_hz: float) -> HopStats:
        for h in self.hops:
            if abs(h.center_hz - center_hz) <= HOP_MATCH_HZ:
                return h
        have = ", ".join(f"{h.center_hz / 1e6:.4f}" for h in self.hops) or "none"
        raise BaselineError(f"baseline has no hop at {center_hz / 1e6:.4f} MHz (it has {have} MHz)")

    def check_compatible(self, sample_rate_hz: float, fft_size: int) -> None:
        """The baseline must come from the same bin grid as the data it is compared with."""
        if abs(self.meta["sample_rate_hz"] - sample_rate_hz) > 1.0 or self.meta["spectrum"]["fft_size"] != fft_size:
            raise BaselineError(
                f"baseline was made at {self.meta['sample_rate_hz'] / 1e6:g} MS/s with {self.meta['spectrum']['fft_size']}-point FFTs, "
                f"but the recording is {sample_rate_hz / 1e6:g} MS/s with {fft_size}-point FFTs"
            )

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file, then rename); a full disk leaves no partial baseline."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays: dict[str, np.ndarray] = {}
        meta = dict(self.meta)
        meta.update(format=FORMAT, version=VERSION, hops=[{"center_hz": h.center_hz, "frames": h.frames} for h in self.hops])
        arrays["meta"] = np.array(json.dumps(meta))
        for i, h in enumerate(self.hops):
            for name in _FIELDS:
                arrays[f"h{i}_{name}"] = np.asarray(getattr(h, name))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_atomically(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Baseline":
        path = Path(path)
        if not path.exists():
            raise BaselineError(f"{path}: no such baseline file")
        _check_archive(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise BaselineError(f"{path}: not an sdrwatch baseline")
                if meta.get("version") != VERSION:
                    raise BaselineError(f"{path}: baseline version {meta.get('version')} is not supported (expected {VERSION})")
                if not isinstance(meta.get("hops"), list) or len(meta["hops"]) > MAX_HOPS:
                    raise BaselineError(f"{path}: hops is not a list of at most {MAX_HOPS}")
                hops = []
                for i, hm in enumerate(meta["hops"]):
                    vals = {name: np.asarray(z[f"h{i}_{name}"]) for name in _FIELDS}
                    hops.append(HopStats(center_hz=float(hm["center_hz"]), frames=int(hm["frames"]), **vals))
            base = cls(meta, hops)
            base.validate()
        except BaselineError as exc:
            raise BaselineError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
        except RecursionError:
            raise BaselineError(f"{path}: not a readable sdrwatch baseline (its settings are nested too deeply)") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile, EOFError, OverflowError) as exc:
            raise BaselineError(f"{path}: not a readable sdrwatch baseline ({type(exc).__name__}: {exc})") from None
        return base

    def validate(self) -> None:
        """Check a loaded baseline hangs together: settings of the right types, arrays of the right
        shapes, finite positive noise. A damaged file must not make the detector silently blind."""
        m = self.meta
        spec, det = m.get("spectrum"), m.get("detector")
        if not isinstance(spec, dict) or not isinstance(det, dict):
            raise BaselineError("missing spectrum or detector settings")
        unknown = sorted(set(spec) - set(SPECTRUM_BOUNDS)) or sorted(set(det) - set(DETECTOR_BOUNDS))
        if unknown:
            raise BaselineError(f"unknown setting {unknown[0]!r} (a newer or crafted file)")
        missing = sorted(set(SPECTRUM_BOUNDS) - set(spec)) or (["scales"] if "scales" not in det else [])
        if missing:
            raise BaselineError(f"missing setting {missing[0]!r}")
        for key, bound in SPECTRUM_BOUNDS.items():
            _check_setting("spectrum", key, spec[key], bound)
        for key, bound in DETECTOR_BOUNDS.items():
            if key in det:
                _check_setting("detector", key, det[key], bound)
        scales = det["scales"]
        if not (all(_is_int(x) and 1 <= x <= 100_000 for x in scales) and scales[0] <= 100
                and all(b > a for a, b in zip(scales, scales[1:]))):
            raise BaselineError(f"invalid detector setting scales = {json.dumps(scales)[:60]} "
                                "(1 to 8 increasing integers of frames, the first at most 100, all at most 100000)")
        if "pfa" in det and "pfa_low" in det and det["pfa_low"] < det["pfa"]:
            raise BaselineError("invalid detector settings: pfa_low is below pfa (its threshold would be above the upper one)")
        rate0 = m.get("sample_rate_hz")
        for w in det.get("channel_hz", []):
            if not (_is_num(w) and 100 <= w <= (rate0 if _is_num(rate0) else 0)):
                raise BaselineError(f"invalid detector setting channel_hz = {json.dumps(det['channel_hz'])[:60]} "
                                    "(widths from 100 Hz to the sample rate)")
        if "ffts_per_frame" in m and not (_is_int(m["ffts_per_frame"]) and 1 <= m["ffts_per_frame"] <= 10 ** 7):
            raise BaselineError(f"invalid ffts_per_frame {m['ffts_per_frame']!r}")
        if "frame_step_s" in m and not (_is_num(m["frame_step_s"]) and 0 < m["frame_step_s"] <= 10):
            raise BaselineError(f"invalid frame_step_s {m['frame_step_s']!r}")
        rate, fft = m.get("sample_rate_hz"), spec.get("fft_size")
        if not _is_num(rate) or not 1e3 <= rate <= 1e9:
            raise BaselineError(f"invalid sample_rate_hz {rate!r}")
        if isinstance(fft, bool) or not isinstance(fft, int) or fft < 16 or fft & (fft - 1):
            raise BaselineError(f"invalid fft_size {fft!r}")
        for key in ("k0_eff", "enbw_bins"):
            v = m.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise BaselineError(f"invalid {key} {v!r}")
        try:
            from .dsp.detector import DetectorConfig

            cfg = DetectorConfig.from_dict(det)
            if not (0 < float(cfg.pfa) < 0.5 and np.isfinite(float(cfg.margin_db)) and all(int(x) >= 1 for x in cfg.scales)):
                raise ValueError
        except (TypeError, ValueError):
            raise BaselineError("invalid detector settings") from None
        if not self.hops:
            raise BaselineError("no hops")
        if len(self.hops) > MAX_HOPS:
            raise BaselineError(f"{len(self.hops)} hops is more than a baseline has")
        for h in self.hops:
            if not (np.isfinite(h.center_hz) and 0 < h.center_hz < 1e11) or not 0 <= h.frames < 2 ** 53:
                raise BaselineError(f"hop at {h.center_hz:g} Hz with {h.frames} frames: not a tuning a receiver can have")
            nb = len(h.freq_hz)
            for name in _FIELDS:
                a = getattr(h, name)
                if a.dtype.kind not in "fiu":
                    raise BaselineError(f"hop {h.center_hz / 1e6:.4f} MHz: {name} is not numeric")
            if nb > fft or nb == 0 or any(len(getattr(h, n)) != nb for n in ("noise_power", "noise_dof", "mean_power", "duty", "p50_power", "p99_power")):
                raise BaselineError(f"hop {h.center_hz / 1e6:.4f} MHz: arrays of different lengths")
            if h.maxhold.ndim != 2 or (h.maxhold.size and h.maxhold.shape[1] != nb) or len(h.maxhold_k) != len(h.maxhold) or len(h.maxhold_n) != len(h.maxhold):
                raise BaselineError(f"hop {h.center_hz / 1e6:.4f} MHz: max-hold of the wrong shape")
            if not (np.all(np.isfinite(h.noise_power)) and np.all(h.noise_power > 0) and np.all(np.isfinite(h.freq_hz))
                    and np.all(np.isfinite(h.maxhold)) and not np.any(np.isnan(h.noise_dof))):
                raise BaselineError(f"hop {h.center_hz / 1e6:.4f} MHz: noise floor or max-hold is not finite and positive")

    @staticmethod
    def is_baseline_file(path: str | Path) -> bool:
        p = Path(path)
        if p.suffix != ".npz" or not p.is_file():
            return False
        return True


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def plot_baseline(baseline: Baseline, out_png: str | Path) -> Path:
    """A PNG of the baseline, one panel per band with unwatched spectrum left blank (see
    :func:`sdrwatch.views.plots.plot_baseline`)."""
    from .views.plots import plot_baseline as plot_bands  # imported on use: views sit above this layer

    return plot_bands(baseline, out_png).path


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place; on any failure
    (a full or read-only disk) nothing is left behind and the error names ``path``."""
    if not path.parent.is_dir():
        raise BaselineError(f"cannot write {path}: no such directory {path.parent}")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            what = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc)).lower()
            raise BaselineError(f"cannot write {path}: {what}; nothing partial was kept") from None
        raise
