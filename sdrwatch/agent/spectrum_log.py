"""``--spectrum-log FILE.csv``: every dwell as one rtl_power CSV line, so heatmap.py and the other
rtl_power tools read an agent's sweeps.

rtl_power's line format (one line per hop and sweep)::

    date, time, Hz low, Hz high, Hz step, samples, dB, dB, dB, ...

``date`` and ``time`` are site-local (as rtl_power writes local time) at the dwell's first sample;
``Hz low``/``Hz high`` are the outer edges of the hop's kept bins, ``Hz step`` the bin width,
``samples`` the samples averaged, and each dB value is ``10 log10`` of the bin's mean power (full
scale 1.0, DC bins filled from their neighbours). It is an :class:`~sdrwatch.agent.loop.AgentHook`.
"""
from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path

import numpy as np

from .loop import AgentHook


class SpectrumLog:
    """One CSV file shared by every receiver; ``hook(rx)`` is the per-receiver hook factory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._fh.write(line)

    def hook(self, rx) -> "SpectrumLogHook":
        return SpectrumLogHook(self, rx)

    __call__ = hook

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class SpectrumLogHook(AgentHook):
    def __init__(self, log: SpectrumLog, rx):
        from ..dsp.spectrum import SpectrumConfig, auto_fft_size, kept_bins

        self.log = log
        self.n = auto_fft_size(rx.sample_rate_hz)
        spec = getattr(getattr(rx, "settings", None), "spectrum", None)
        if spec is not None and spec.fft_size:
            self.n = spec.fft_size
        self.cfg = SpectrumConfig(fft_size=self.n)
        self.keep = kept_bins(self.n, rx.plan.crop)
        self.tz = rx.config.tz
        self._sum = None
        self._samples = 0
        self._t0 = None

    def block(self, rx, block, events) -> None:
        from ..dsp.spectrum import welch_psd

        if len(block.iq) < self.n:
            return
        p = welch_psd(block.iq, rx.sample_rate_hz, self.cfg).astype(np.float64) * len(block.iq)
        if self._sum is None:
            self._sum = p
            self._t0 = block.timestamp
        else:
            self._sum += p
        self._samples += len(block.iq)

    def dwell_end(self, rx, hop) -> None:
        if self._sum is None:
            return
        fs = rx.sample_rate_hz
        bin_hz = fs / self.n
        p = (self._sum / self._samples)[self.keep]
        low = hop.center_hz + (self.keep.start - self.n // 2 - 0.5) * bin_hz
        high = low + len(p) * bin_hz
        when = _dt.datetime.fromtimestamp(self._t0 or 0.0, tz=self.tz)
        db = 10.0 * np.log10(np.maximum(p, 1e-20))
        self.log.write(f"{when:%Y-%m-%d}, {when:%H:%M:%S}, {low:.0f}, {high:.0f}, {bin_hz:.2f}, {self._samples}, "
                       + ", ".join(f"{v:.2f}" for v in db) + "\n")
        self._sum, self._samples, self._t0 = None, 0, None
