"""Receiver health: a station that has gone deaf must never look like a quiet site.

:class:`HealthMonitor` is an agent hook (``docs/agent.md``), one per receiver. It measures from the
blocks the receiver delivers and sends each problem as a ``health`` record (see ``sdrwatch.net.schema``) with a
severity, once when it starts and again every ``REPEAT_S`` while it lasts, and an ``..._ok`` record
when it clears:

* ``noise_floor_low`` / ``noise_floor_high``: the noise floor of each hop (median bin power of the
  first block of a dwell, dB per bin at full scale 1.0) against that hop's reference, the median of
  its first ``LEARN_VISITS`` visits in this run. ``FLOOR_DROP_DB`` (6 dB) below: the antenna is off or
  the gain was changed (severity 0.8). ``FLOOR_RISE_DB`` (6 dB) above: interference or a jammer (0.6).
* ``clipping``: share of samples with I or Q at the ADC's end stops (|x| >= ``CLIP_LEVEL`` of full
  scale); over ``CLIP_WARN`` (0.1 %) warns (0.4), over ``CLIP_BAD`` (1 %) is bad (0.7): lower the gain.
* ``dropped_samples``: for rtl_tcp, the bytes that arrived (delivered plus discarded after retunes)
  against what the sample clock says should have arrived since the last heartbeat; a shortfall over
  ``DROP_WARN`` (2 %) is reported (the server skipped ahead, or the link is too slow).
* ``disk``: free space where evidence is kept, under ``DISK_WARN_BYTES`` (1 GB) warns (0.5), under
  ``DISK_BAD_BYTES`` (100 MB) is bad (0.9).

Receiver lost/regained is the loop's own (``receiver_lost``/``receiver_regained``, retried forever).
The heartbeat gets ``clipping_share``, ``noise_floor_drift_db`` (the largest drift of any hop) and
``dropped_share``. Pure measurement functions (``noise_floor_db``, ``clipping_share``) are at the top.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .loop import AgentHook, health

LEARN_VISITS = 3
FLOOR_DROP_DB = 6.0
FLOOR_RISE_DB = 6.0
CLIP_LEVEL = 0.99
CLIP_WARN, CLIP_BAD = 0.001, 0.01
DROP_WARN = 0.02
DISK_WARN_BYTES, DISK_BAD_BYTES = 1e9, 1e8
REPEAT_S = 60.0
#: samples looked at per measurement (a strided subsample keeps the cost per block small)
MEASURE_SAMPLES = 1 << 16


def noise_floor_db(iq: np.ndarray, sample_rate_hz: float, crop: float = 0.25) -> float | None:
    """Median bin power of ``iq`` in dB (full scale 1.0, Hann window), over the kept bins."""
    from ..dsp.spectrum import SpectrumConfig, auto_fft_size, kept_bins, welch_psd

    n = auto_fft_size(sample_rate_hz)
    x = iq[: max(MEASURE_SAMPLES, 16 * n)]
    if len(x) < n:
        return None
    p = welch_psd(x, sample_rate_hz, SpectrumConfig(fft_size=n))[kept_bins(n, crop)]
    return float(10 * np.log10(max(float(np.median(p)), 1e-20)))


def clipping_share(iq: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Share of samples whose I or Q reaches ``level`` of full scale (a strided subsample)."""
    if not len(iq):
        return 0.0
    step = max(1, len(iq) // MEASURE_SAMPLES)
    x = iq[::step]
    return float(np.mean((np.abs(x.real) >= level) | (np.abs(x.imag) >= level)))


class _Problem:
    """One kind of trouble: reported when it starts, every REPEAT_S while it lasts, once when it clears."""

    def __init__(self, kind: str):
        self.kind = kind
        self.active = False
        self.last = -1e18

    def update(self, bad: bool, now: float) -> str | None:
        """"start", "repeat", "clear" or None."""
        if bad and not self.active:
            self.active, self.last = True, now
            return "start"
        if bad and now - self.last >= REPEAT_S:
            self.last = now
            return "repeat"
        if not bad and self.active:
            self.active = False
            return "clear"
        return None


class HealthMonitor(AgentHook):
    """The agent hook (module docstring)."""

    def __init__(self, rx, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.rate = float(rx.sample_rate_hz)
        self.crop = float(getattr(rx.plan, "crop", 0.25) or 0.25)
        self.ref_db: dict[float, float] = {}
        self._learn: dict[float, list[float]] = {}
        self.drift_db: dict[float, float] = {}
        self._center: float | None = None
        self._problems: dict[str, _Problem] = {}
        self._clip_n = 0
        self._clip_hits = 0.0
        self._clip_share = 0.0
        self._rx_bytes0: tuple[float, int] | None = None
        self._dropped_share = 0.0
        self.state_dir = Path(rx.state_dir)

    def _report(self, rx, kind: str, bad: bool, message: str, severity: float, key: str | None = None, **extra) -> None:
        p = self._problems.setdefault(key or kind, _Problem(kind))
        what = p.update(bad, self.clock())
        if what in ("start", "repeat"):
            rx.emit(health(rx.site, rx.name, kind, message, severity, **extra))
        elif what == "clear":
            rx.emit(health(rx.site, rx.name, f"{kind}_ok", f"{rx.name}: {kind.replace('_', ' ')} cleared", 0.0, **extra))

    # -- per block ------------------------------------------------------------------------------
    def block(self, rx, block, events) -> None:
        share = clipping_share(block.iq)
        self._clip_n += 1
        self._clip_hits += share
        if block.center_hz != self._center:  # the first block of a dwell
            self._center = block.center_hz
            self._check_floor(rx, block)
            self._check_clipping(rx, share, block.center_hz)

    def _check_floor(self, rx, block) -> None:
        f = round(float(block.center_hz))
        floor = noise_floor_db(block.iq, self.rate, self.crop)
        if floor is None:
            return
        ref = self.ref_db.get(f)
        if ref is None:
            seen = self._learn.setdefault(f, [])
            seen.append(floor)
            if len(seen) >= LEARN_VISITS:
                self.ref_db[f] = float(np.median(seen))
                del self._learn[f]
            return
        drift = floor - ref
        self.drift_db[f] = drift
        mhz = f / 1e6
        self._report(rx, "noise_floor_low", drift <= -FLOOR_DROP_DB,
                     f"{rx.name}: noise floor at {mhz:.3f} MHz {-drift:.1f} dB below its reference: antenna off or gain changed?",
                     0.8, key=f"low:{f}", center_hz=float(f), noise_floor_db=round(floor, 2), reference_db=round(ref, 2),
                     drift_db=round(drift, 2))
        self._report(rx, "noise_floor_high", drift >= FLOOR_RISE_DB,
                     f"{rx.name}: noise floor at {mhz:.3f} MHz {drift:.1f} dB above its reference: interference or a jammer?",
                     0.6, key=f"high:{f}", center_hz=float(f), noise_floor_db=round(floor, 2), reference_db=round(ref, 2),
                     drift_db=round(drift, 2))

    def _check_clipping(self, rx, share: float, center_hz: float) -> None:
        sev = 0.7 if share >= CLIP_BAD else 0.4
        self._report(rx, "clipping", share >= CLIP_WARN,
                     f"{rx.name}: {share:.2%} of samples clip at {center_hz / 1e6:.3f} MHz: lower the gain", sev,
                     key=f"clip:{round(center_hz)}", center_hz=float(center_hz), clipping_share=round(share, 5))

    # -- per heartbeat --------------------------------------------------------------------------
    def _check_dropped(self, rx) -> None:
        src = rx.source
        info = rx.info
        if src is None or info is None or getattr(info, "driver", "") != "rtl_tcp":
            return
        received = int(getattr(src, "_stream_bytes", 0) or 0)
        now = self.clock()
        if self._rx_bytes0 is None:
            self._rx_bytes0 = (now, received)
            return
        t0, b0 = self._rx_bytes0
        self._rx_bytes0 = (now, received)
        if received < b0:  # a new connection counts from zero
            return
        expected = 2.0 * self.rate * (now - t0)
        if expected <= 0:
            return
        share = max(0.0, 1.0 - (received - b0) / expected)
        self._dropped_share = share
        self._report(rx, "dropped_samples", share >= DROP_WARN,
                     f"{rx.name}: {share:.1%} of the samples the clock says were sent did not arrive", min(0.9, 0.3 + share),
                     dropped_share=round(share, 4))

    def _check_disk(self, rx) -> None:
        try:
            d = self.state_dir if self.state_dir.exists() else self.state_dir.parent
            free = shutil.disk_usage(d).free
        except OSError:
            return
        sev = 0.9 if free < DISK_BAD_BYTES else 0.5
        self._report(rx, "disk", free < DISK_WARN_BYTES, f"{rx.name}: {free / 1e6:.0f} MB free for evidence in {self.state_dir}",
                     sev, free_bytes=int(free))

    def heartbeat(self, rx) -> dict:
        self._check_dropped(rx)
        self._check_disk(rx)
        share = self._clip_hits / self._clip_n if self._clip_n else 0.0
        self._clip_n, self._clip_hits = 0, 0.0
        drift = max(self.drift_db.values(), key=abs) if self.drift_db else None
        return {"clipping_share": round(share, 5), "noise_floor_drift_db": None if drift is None else round(drift, 2),
                "dropped_share": round(self._dropped_share, 4)}

    def dwell_end(self, rx, hop) -> None:
        self._center = None  # the next block starts a dwell (a plan of one hop never retunes)

    def lost(self, rx, reason: str) -> None:
        self._center = None
        self._rx_bytes0 = None
