"""Baseline statistics per hop, learned from power frames: noise floor, percentiles, max-hold, duty.

A baseline answers, for every bin of every hop, "what did this site's spectrum look like before the
exam?": the mean noise power (not biased by occupied bins), the level percentiles, the max-hold of
the window mean at each integration scale (so an intermittent benign user is known at the time scale
it shows up at), and the duty (share of frames in which the bin was occupied). The formulas are in
:mod:`sdrwatch.dsp.detector`; saving and loading is :mod:`sdrwatch.baseline`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detector import (
    NOISE_POWER_MIN,
    PERCENTILE_EFFICIENCY,
    DetectorConfig,
    Reference,
    frequency_floor,
    ratio_threshold,
    robust_noise_per_bin,
)
from .spectrum import GroupSum


class ScaleWindows:
    """Window means of base frames at several integration scales (in frames), streaming.

    ``push(frames, first_frame)`` returns a list of ``(scale_index, start_frame, n_frames, mean)``
    with ``mean`` (n_windows, bins). ``flush()`` returns the partial windows at the end of a hop that
    hold at least half a window (scale 1 has none).
    """

    def __init__(self, scales: tuple[int, ...]):
        self.scales = tuple(int(s) for s in scales)
        self._sums = [GroupSum(m) for m in self.scales]

    def push(self, frames: np.ndarray, first_frame: int) -> list[tuple[int, np.ndarray, int, np.ndarray]]:
        out = []
        for i, (m, g) in enumerate(zip(self.scales, self._sums)):
            sums, starts = g.push(frames, first_frame)
            if len(sums):
                out.append((i, starts, m, sums / np.float32(m)))
        return out

    def flush(self) -> list[tuple[int, np.ndarray, int, np.ndarray]]:
        out = []
        for i, (m, g) in enumerate(zip(self.scales, self._sums)):
            part = g.flush()
            if part is not None and m > 1 and part[2] * 2 >= m:
                acc, start, count = part
                out.append((i, np.array([start]), count, (acc / np.float32(count))[None, :]))
        return out


@dataclass
class HopStats:
    """Baseline of one hop. Arrays are per kept bin; ``maxhold`` is (scales, bins)."""

    center_hz: float
    freq_hz: np.ndarray
    noise_power: np.ndarray
    noise_dof: np.ndarray
    mean_power: np.ndarray
    maxhold: np.ndarray
    maxhold_k: np.ndarray
    maxhold_n: np.ndarray
    duty: np.ndarray
    p50_power: np.ndarray
    p99_power: np.ndarray
    frames: int

    def reference(self) -> Reference:
        return Reference(self.noise_power, self.noise_dof, self.maxhold, self.maxhold_k, self.maxhold_n)

    def noise_only_reference(self) -> Reference:
        """Reference for noise-floor mode: the floor, with no occupancy (every emission is reported)."""
        return Reference(self.noise_power, self.noise_dof, None, None)


class HopStatsBuilder:
    """Accumulates frames of one hop (from a recording or live sweeps) into :class:`HopStats`.

    Memory is bounded: at most ``max_frames`` frames are kept for the percentiles (a reservoir
    sample beyond that, with a fixed seed so results are repeatable); sums and max-holds are running.
    """

    def __init__(self, center_hz: float, freq_hz: np.ndarray, k0_eff: float, scales: tuple[int, ...], max_frames: int = 4000):
        self.center_hz = float(center_hz)
        self.freq_hz = np.asarray(freq_hz, dtype=np.float64)
        self.k0_eff = float(k0_eff)
        self.scales = tuple(scales)
        self.max_frames = int(max_frames)
        nb = len(self.freq_hz)
        self._sum = np.zeros(nb, dtype=np.float64)
        self._n = 0
        self._hold = np.zeros((len(self.scales), nb), dtype=np.float32)
        self._hold_k = np.zeros(len(self.scales), dtype=np.float64)
        self._hold_n = np.zeros(len(self.scales), dtype=np.int64)
        self._keep = np.zeros((0, nb), dtype=np.float32)
        self._rng = np.random.default_rng(0)
        self._windows = ScaleWindows(self.scales)

    def add(self, frames: np.ndarray, first_frame: int) -> None:
        """Frames (T, bins) of this hop, numbered from the start of the current dwell."""
        if not len(frames):
            return
        self._sum += frames.sum(axis=0, dtype=np.float64)
        self._n += len(frames)
        self._reservoir(frames)
        self._hold_windows(self._windows.push(frames, first_frame))

    def end_dwell(self) -> None:
        """Close the current dwell (a hop visit): partial windows count, then scales restart."""
        self._hold_windows(self._windows.flush())
        self._windows = ScaleWindows(self.scales)

    def _hold_windows(self, windows) -> None:
        for i, _starts, m, means in windows:
            np.maximum(self._hold[i], means.max(axis=0), out=self._hold[i])
            k = m * self.k0_eff
            self._hold_k[i] = k if self._hold_k[i] == 0 else min(self._hold_k[i], k)
            self._hold_n[i] += len(means)

    def _reservoir(self, frames: np.ndarray) -> None:
        room = self.max_frames - len(self._keep)
        if room > 0:
            self._keep = np.concatenate([self._keep, frames[:room]])
            frames = frames[room:]
        if len(frames):
            seen_before = self._n - len(frames)
            idx = self._rng.integers(0, np.arange(seen_before, self._n) + 1)
            hit = idx < self.max_frames
            self._keep[idx[hit]] = frames[hit]

    def finish(self, cfg: DetectorConfig) -> HopStats:
        self.end_dwell()
        if self._n == 0:
            raise ValueError("no frames")
        mean = (self._sum / self._n).astype(np.float32)
        # the order statistic in time handles intermittent users; bounding it across frequency
        # handles users that were on all the time (their bins' floor is the local floor)
        robust = np.maximum(frequency_floor(robust_noise_per_bin(self._keep, self.k0_eff)), NOISE_POWER_MIN)
        robust_dof = np.full(len(mean), PERCENTILE_EFFICIENCY * len(self._keep) * self.k0_eff)
        mean_dof = self._n * self.k0_eff
        # a bin is quiet if no scale's max-hold crossed the occupancy threshold over the robust floor
        valid = self._hold_k > 0
        occupied = np.zeros(len(mean), dtype=bool)
        for i in np.flatnonzero(valid):
            pfa = cfg.pfa_occupied / self._hold_n[i]  # the max of n windows
            occupied |= self._hold[i] > robust * ratio_threshold(self._hold_k[i], robust_dof, pfa)
        noise = np.maximum(np.where(occupied, robust, mean), NOISE_POWER_MIN).astype(np.float32)
        dof = np.where(occupied, robust_dof, mean_dof)
        k0_thr = ratio_threshold(self.k0_eff, dof, cfg.pfa_occupied)
        duty = (self._keep > noise * k0_thr).mean(axis=0).astype(np.float32)
        p50, p99 = np.quantile(self._keep, [0.5, 0.99], axis=0).astype(np.float32)
        rows = np.flatnonzero(valid) if valid.any() else np.arange(0)
        return HopStats(
            center_hz=self.center_hz,
            freq_hz=self.freq_hz,
            noise_power=noise,
            noise_dof=dof.astype(np.float64),
            mean_power=mean,
            maxhold=self._hold[rows],
            maxhold_k=self._hold_k[rows],
            maxhold_n=self._hold_n[rows],
            duty=duty,
            p50_power=p50,
            p99_power=p99,
            frames=self._n,
        )

    def finish_noise_floor(self) -> HopStats:
        """Noise-floor mode: per-bin order statistic bounded across frequency, no occupancy."""
        if self._n == 0:
            raise ValueError("no frames")
        robust = robust_noise_per_bin(self._keep, self.k0_eff)
        noise = np.maximum(frequency_floor(robust), NOISE_POWER_MIN).astype(np.float32)
        dof = np.full(len(noise), PERCENTILE_EFFICIENCY * len(self._keep) * self.k0_eff)
        mean = (self._sum / self._n).astype(np.float32)
        p50, p99 = np.quantile(self._keep, [0.5, 0.99], axis=0).astype(np.float32)
        empty = np.zeros((0, len(noise)), dtype=np.float32)
        none = np.zeros(0)
        return HopStats(self.center_hz, self.freq_hz, noise, dof, mean, empty, none, none.astype(np.int64), np.zeros(len(noise), np.float32), p50, p99, self._n)
