"""When an emitter is on: counter-based random numbers and schedules that depend only on absolute time.

Everything here is a pure function of (seed, absolute time or index), so any span of the scene can be
rendered in any order and block size and gives the same answer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def hash_u64(seed: int, index: np.ndarray | int) -> np.ndarray:
    """splitmix64 of ``seed`` and ``index`` (vectorised): a uniform 64-bit word per index."""
    idx = np.asarray(index, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        z = idx * _GOLDEN + np.uint64(seed & _MASK64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return z


def hash_uniform(seed: int, index: np.ndarray | int) -> np.ndarray:
    """Uniform float64 in [0, 1) per index."""
    return (hash_u64(seed, index) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def sub_seed(seed: int, *keys: int) -> int:
    """A derived 63-bit seed (for numpy Generators and per-emitter streams)."""
    s = int(seed) & _MASK64
    for k in keys:
        s = int(hash_u64(s, np.int64(k & 0x7FFFFFFFFFFFFFFF)))
    return s & 0x7FFFFFFFFFFFFFFF


def first_sample(t_s: float, sample_rate_hz: float) -> int:
    """Index of the first sample at or after time ``t_s`` (sample n is at n / rate); robust to float fuzz."""
    if t_s == -math.inf:
        return -(1 << 62)
    if t_s == math.inf:
        return 1 << 62
    return int(math.ceil(t_s * sample_rate_hz - 1e-6))


@dataclass(frozen=True)
class Schedule:
    """On-intervals of an emitter.

    kind ``always``; ``windows`` (explicit ``[[start_s, end_s], ...]``); ``bursts`` (``period_s``, ``length_s``,
    ``offset_s``, ``jitter_s``: burst k starts at ``offset_s + k*period_s + jitter_s*(2u_k - 1)``); ``duty`` (random
    keying: time is cut into cycles of ``mean_on_s / fraction`` seconds; each cycle holds one on-period of
    ``mean_on_s * (0.5 + u)`` seconds at a uniformly random position, so the long-run duty is ``fraction``).
    ``start_s``/``stop_s`` clip any kind. ``u`` values come from :func:`hash_uniform` of the emitter seed.
    """

    kind: str = "always"
    windows: tuple[tuple[float, float], ...] = ()
    period_s: float = 0.0
    length_s: float = 0.0
    offset_s: float = 0.0
    jitter_s: float = 0.0
    fraction: float = 0.0
    mean_on_s: float = 0.0
    start_s: float = -math.inf
    stop_s: float = math.inf
    seed: int = 0

    def intervals(self, t0_s: float, t1_s: float) -> list[tuple[float, float]]:
        """On-intervals that overlap ``[t0_s, t1_s)``, with their true (unclipped-to-span) edges."""
        lo, hi = max(t0_s, self.start_s), min(t1_s, self.stop_s)
        if hi <= lo:
            return []
        raw: list[tuple[float, float]]
        if self.kind == "always":
            raw = [(-math.inf, math.inf)]
        elif self.kind == "windows":
            raw = [w for w in self.windows if w[1] > lo and w[0] < hi]
        elif self.kind == "bursts":
            reach = self.length_s + self.jitter_s
            k0 = math.floor((lo - self.offset_s - reach) / self.period_s)
            k1 = math.ceil((hi - self.offset_s + self.jitter_s) / self.period_s)
            ks = np.arange(k0, k1 + 1, dtype=np.int64)
            starts = self.offset_s + ks * self.period_s
            if self.jitter_s:
                starts = starts + self.jitter_s * (2.0 * hash_uniform(self.seed, ks) - 1.0)
            raw = [(float(s), float(s) + self.length_s) for s in starts]
        elif self.kind == "duty":
            cycle = self.mean_on_s / self.fraction
            k0 = math.floor(lo / cycle) - 1
            k1 = math.floor(hi / cycle) + 1
            ks = np.arange(k0, k1 + 1, dtype=np.int64)
            lengths = np.minimum(self.mean_on_s * (0.5 + hash_uniform(self.seed, 2 * ks)), cycle)
            starts = ks * cycle + hash_uniform(self.seed, 2 * ks + 1) * (cycle - lengths)
            raw = [(float(s), float(s + L)) for s, L in zip(starts, lengths)]
        else:  # pragma: no cover - validated at parse time
            raise ValueError(self.kind)
        out = []
        for a, b in raw:
            a, b = max(a, self.start_s), min(b, self.stop_s)
            if b > a and b > lo and a < hi:
                out.append((a, b))
        return out

    def duty_cycle(self) -> float:
        """Long-run fraction of time on (for docs and bench reports)."""
        if self.kind == "bursts":
            return min(1.0, self.length_s / self.period_s)
        if self.kind == "duty":
            return self.fraction
        return 1.0
