"""Emission tracking: join per-window detections (any scale, any hop) into one record per emission.

A detection joins a track when their frequency spans overlap (within ``freq_tol_hz``) and it starts no
later than ``max_gap_s`` after the track was last seen. Time extent, duty cycle and burst count come
from the finest integration scale that saw the emission *solidly* (median margin over its threshold
of at least ``SOLID_MARGIN_DB``, counting only detections within ``FRAGMENT_DB`` of the track's
peak): a long window smears a 15 ms burst over 0.5 s, while short windows
catch a weak continuous carrier only now and then, which must not be mistaken for bursts. Bursts are
on-intervals separated by more than one window of that scale. At the end, tracks that overlap in
frequency and come within ``max_gap_s`` of each other are joined.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOLID_MARGIN_DB = 3.0
#: detections this far below a track's peak (skirts, fragments) do not time it
FRAGMENT_DB = 20.0


@dataclass
class Emission:
    """One emission, as ``sdrwatch replay --format jsonl`` prints it (see :meth:`as_record`)."""

    center_hz: float
    bandwidth_hz: float
    start_s: float
    end_s: float
    peak_dbfs: float
    snr_db: float
    duty: float
    bursts: int
    novelty: str  # "new" (baseline quiet there), "changed" (above what the baseline showed), "emission" (no baseline)
    scale_s: float  # integration window that timed it (see module docstring)
    hop_center_hz: float
    label: str = "unknown"
    severity: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def as_record(self) -> dict:
        return {
            "center_hz": round(self.center_hz, 1),
            "bandwidth_hz": round(self.bandwidth_hz, 1),
            "start_s": round(float(self.start_s), 6),
            "end_s": round(float(self.end_s), 6),
            "duration_s": round(float(self.end_s - self.start_s), 6),
            "peak_dbfs": round(self.peak_dbfs, 2),
            "snr_db": round(self.snr_db, 2),
            "duty": round(float(self.duty), 4),
            "bursts": self.bursts,
            "novelty": self.novelty,
            "label": self.label,
            "severity": round(self.severity, 3),
            "scale_s": self.scale_s,
            "hop_center_hz": self.hop_center_hz,
            "reasons": self.reasons,
        }


@dataclass
class _Track:
    lo_hz: float
    hi_hz: float
    last_s: float
    hop_center_hz: float
    novelty: str
    # per scale index: detections as (t0_s, t1_s, power_dbfs, margin_db)
    hits: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    scale_s: dict[int, float] = field(default_factory=dict)
    bw_by_scale: dict[int, float] = field(default_factory=dict)
    snr_db: float = -999.0
    weight_sum: float = 0.0
    center_acc: float = 0.0
    approximate: bool = False  # opened by a summed-bin (channel) detection: its extent is rough

    @property
    def start_s(self) -> float:
        return min(h[0] for hs in self.hits.values() for h in hs)

    @property
    def peak_dbfs(self) -> float:
        return max(h[2] for hs in self.hits.values() for h in hs)

    def absorb(self, other: "_Track") -> None:
        self.lo_hz, self.hi_hz = min(self.lo_hz, other.lo_hz), max(self.hi_hz, other.hi_hz)
        self.last_s = max(self.last_s, other.last_s)
        for si, hs in other.hits.items():
            self.hits.setdefault(si, []).extend(hs)
            self.scale_s[si] = other.scale_s[si]
            self.bw_by_scale[si] = max(self.bw_by_scale.get(si, 0.0), other.bw_by_scale[si])
        self.snr_db = max(self.snr_db, other.snr_db)
        self.weight_sum += other.weight_sum
        self.center_acc += other.center_acc
        self.novelty = _more_novel(self.novelty, other.novelty)


def _more_novel(a: str, b: str) -> str:
    order = {"new": 2, "changed": 1}
    return a if order.get(a, 0) >= order.get(b, 0) else b


class Tracker:
    def __init__(self, max_gap_s: float = 5.0, freq_tol_hz: float = 5e3):
        self.max_gap_s = max_gap_s
        self.freq_tol_hz = freq_tol_hz
        self._open: list[_Track] = []
        self._done: list[_Track] = []

    def _near(self, tr: _Track, lo_hz: float, hi_hz: float, t0_s: float, last_s: float) -> bool:
        tol = self.freq_tol_hz
        return lo_hz <= tr.hi_hz + tol and hi_hz >= tr.lo_hz - tol and t0_s - last_s <= self.max_gap_s

    def add(
        self,
        scale_index: int,
        scale_s: float,
        t0_s: float,
        t1_s: float,
        lo_hz: float,
        hi_hz: float,
        center_hz: float,
        power_dbfs: float,
        snr_db: float,
        novelty: str,
        hop_center_hz: float,
        margin_db: float = 99.0,
        approximate: bool = False,
        bandwidth_hz: float | None = None,
    ) -> None:
        """Add one detection. ``approximate``: its frequency extent is rough (a summed-bin test), so
        it joins a track without widening it."""
        # close tracks not seen for too long (a long scale reports late, so allow for its window)
        still = []
        for tr in self._open:
            (self._done if t0_s - tr.last_s > self.max_gap_s + 2 * scale_s else still).append(tr)
        self._open = still
        tr = next((t for t in self._open if self._near(t, lo_hz, hi_hz, t0_s, t.last_s)), None)
        if tr is None:
            tr = _Track(lo_hz, hi_hz, t1_s, hop_center_hz, novelty, approximate=approximate)
            self._open.append(tr)
        if not approximate:
            if tr.approximate:  # the first exact detection sets the extent
                tr.lo_hz, tr.hi_hz, tr.approximate = lo_hz, hi_hz, False
            tr.lo_hz, tr.hi_hz = min(tr.lo_hz, lo_hz), max(tr.hi_hz, hi_hz)
        tr.last_s = max(tr.last_s, t1_s)
        tr.novelty = _more_novel(tr.novelty, novelty)
        tr.hits.setdefault(scale_index, []).append((t0_s, t1_s, power_dbfs, margin_db))
        tr.scale_s[scale_index] = scale_s
        bw = hi_hz - lo_hz if bandwidth_hz is None else bandwidth_hz
        tr.bw_by_scale[scale_index] = max(tr.bw_by_scale.get(scale_index, 0.0), bw)
        tr.snr_db = max(tr.snr_db, snr_db)
        w = 10 ** (power_dbfs / 10)
        tr.weight_sum += w
        tr.center_acc += w * center_hz

    @staticmethod
    def _timing(tr: _Track) -> tuple[int, list[tuple[float, float]]]:
        """The scale that times the track and its strong detections' intervals (module docstring)."""
        floor = tr.peak_dbfs - FRAGMENT_DB
        scales = sorted(tr.hits)
        for s in scales + [None]:
            if s is None:
                s = scales[-1]
                strong = [h for h in tr.hits[s] if h[2] >= floor] or tr.hits[s]
                break
            strong = [h for h in tr.hits[s] if h[2] >= floor]
            if strong and float(np.median([h[3] for h in strong])) >= SOLID_MARGIN_DB:
                break
        return s, [(h[0], h[1]) for h in strong]

    def _merge_overlapping(self, tracks: list[_Track]) -> list[_Track]:
        """Join tracks that overlap in frequency and come within max_gap_s of each other in time
        (a long window's detection can open a track before a short one's arrives)."""
        out: list[_Track] = []
        # exact tracks first; a rough (channel-test) track then joins an exact one it overlaps without
        # widening it, so one wide test cannot bridge several neighbouring emitters
        for tr in sorted(tracks, key=lambda t: (t.approximate, t.start_s)):
            o = next((o for o in out if self._near(o, tr.lo_hz, tr.hi_hz, tr.start_s, o.last_s)), None)
            if o is None:
                out.append(tr)
            elif tr.approximate and not o.approximate:
                lo, hi = o.lo_hz, o.hi_hz
                o.absorb(tr)
                o.lo_hz, o.hi_hz = lo, hi
            else:
                o.absorb(tr)
        return out

    def finish(self, bin_hz: float) -> list[Emission]:
        tracks = self._merge_overlapping(self._done + self._open)
        self._done, self._open = [], []
        out = []
        for tr in tracks:
            scale, ivs = self._timing(tr)
            win = tr.scale_s[scale]
            merged: list[list[float]] = []
            for a, b in sorted(ivs):
                if merged and a <= merged[-1][1] + win * 1.01:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            start, end = merged[0][0], merged[-1][1]
            on = sum(b - a for a, b in merged)
            out.append(
                Emission(
                    center_hz=tr.center_acc / tr.weight_sum,
                    bandwidth_hz=tr.bw_by_scale[max(tr.bw_by_scale)],
                    start_s=start,
                    end_s=end,
                    peak_dbfs=tr.peak_dbfs,
                    snr_db=tr.snr_db,
                    duty=on / (end - start) if end > start else 1.0,
                    bursts=len(merged),
                    novelty=tr.novelty,
                    scale_s=win,
                    hop_center_hz=tr.hop_center_hz,
                )
            )
        out.sort(key=lambda e: (e.start_s, e.center_hz))
        return out
