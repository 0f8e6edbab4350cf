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
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise BaselineError(f"{path}: not an sdrwatch baseline")
                if meta.get("version") != VERSION:
                    raise BaselineError(f"{path}: baseline version {meta.get('version')} is not supported (expected {VERSION})")
                hops = []
                for i, hm in enumerate(meta["hops"]):
                    vals = {name: np.asarray(z[f"h{i}_{name}"]) for name in _FIELDS}
                    hops.append(HopStats(center_hz=float(hm["center_hz"]), frames=int(hm["frames"]), **vals))
            base = cls(meta, hops)
            base.validate()
        except BaselineError as exc:
            raise BaselineError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile, EOFError) as exc:
            raise BaselineError(f"{path}: not a readable sdrwatch baseline ({type(exc).__name__}: {exc})") from None
        return base

    def validate(self) -> None:
        """Check a loaded baseline hangs together: settings of the right types, arrays of the right
        shapes, finite positive noise. A damaged file must not make the detector silently blind."""
        m = self.meta
        spec, det = m.get("spectrum"), m.get("detector")
        if not isinstance(spec, dict) or not isinstance(det, dict):
            raise BaselineError("missing spectrum or detector settings")
        rate, fft = m.get("sample_rate_hz"), spec.get("fft_size")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not np.isfinite(rate) or rate <= 0:
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
        for h in self.hops:
            nb = len(h.freq_hz)
            for name in _FIELDS:
                a = getattr(h, name)
                if a.dtype.kind not in "fiu":
                    raise BaselineError(f"hop {h.center_hz / 1e6:.4f} MHz: {name} is not numeric")
            if nb == 0 or any(len(getattr(h, n)) != nb for n in ("noise_power", "noise_dof", "mean_power", "duty", "p50_power", "p99_power")):
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
