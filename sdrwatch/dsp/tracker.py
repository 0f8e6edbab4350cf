"""Emission tracking: join per-window detections (any scale, any hop) into one record per emission.

A detection joins a track when their frequency spans overlap (within ``freq_tol_hz``) and it starts no
later than ``max_gap_s`` after the track was last seen. Time extent, duty cycle and burst count come
from the finest integration scale that saw the emission *solidly* (median margin over its threshold
of at least ``SOLID_MARGIN_DB``): a long window smears a 15 ms burst over 0.5 s, while short windows
catch a weak continuous carrier only now and then, which must not be mistaken for bursts. Bursts are
on-intervals separated by more than one window of that scale. At the end, tracks that overlap in
frequency and come within ``max_gap_s`` of each other are joined.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOLID_MARGIN_DB = 3.0


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
    # per scale index: list of [t0, t1] intervals (merged), plus stats
    intervals: dict[int, list[list[float]]] = field(default_factory=dict)
    scale_s: dict[int, float] = field(default_factory=dict)
    peak_dbfs: float = -999.0
    snr_db: float = -999.0
    weight_sum: float = 0.0
    center_acc: float = 0.0
    bw_by_scale: dict[int, float] = field(default_factory=dict)
    margins: dict[int, list[float]] = field(default_factory=dict)


class Tracker:
    def __init__(self, max_gap_s: float = 5.0, freq_tol_hz: float = 5e3):
        self.max_gap_s = max_gap_s
        self.freq_tol_hz = freq_tol_hz
        self._open: list[_Track] = []
        self._done: list[_Track] = []

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
    ) -> None:
        # close tracks not seen for too long (detections arrive roughly in time order per scale;
        # a long scale reports late, so compare against the detection's start)
        still = []
        for tr in self._open:
            (self._done if t0_s - tr.last_s > self.max_gap_s + 2 * scale_s else still).append(tr)
        self._open = still
        tol = self.freq_tol_hz
        match = None
        for tr in self._open:
            if lo_hz <= tr.hi_hz + tol and hi_hz >= tr.lo_hz - tol and t0_s - tr.last_s <= self.max_gap_s:
                match = tr
                break
        if match is None:
            match = _Track(lo_hz, hi_hz, t1_s, hop_center_hz, novelty)
            self._open.append(match)
        tr = match
        tr.lo_hz = min(tr.lo_hz, lo_hz)
        tr.hi_hz = max(tr.hi_hz, hi_hz)
        tr.last_s = max(tr.last_s, t1_s)
        if novelty == "changed":
            tr.novelty = "changed" if tr.novelty != "new" else tr.novelty
        ivs = tr.intervals.setdefault(scale_index, [])
        tr.scale_s[scale_index] = scale_s
        if ivs and t0_s <= ivs[-1][1] + 1e-9:
            ivs[-1][1] = max(ivs[-1][1], t1_s)
        else:
            ivs.append([t0_s, t1_s])
        tr.peak_dbfs = max(tr.peak_dbfs, power_dbfs)
        w = 10 ** (power_dbfs / 10)
        tr.weight_sum += w
        tr.center_acc += w * center_hz
        tr.bw_by_scale[scale_index] = max(tr.bw_by_scale.get(scale_index, 0.0), hi_hz - lo_hz)
        tr.snr_db = max(tr.snr_db, snr_db)
        tr.margins.setdefault(scale_index, []).append(margin_db)

    @staticmethod
    def _timing_scale(tr: _Track) -> int:
        scales = sorted(tr.intervals)
        for s in scales:
            if float(np.median(tr.margins[s])) >= SOLID_MARGIN_DB:
                return s
        return scales[-1]

    def _merge_overlapping(self, tracks: list[_Track]) -> list[_Track]:
        """Join tracks that overlap in frequency and come within max_gap_s of each other in time
        (a long window's detection can open a track before a short one's arrives)."""
        tracks = sorted(tracks, key=lambda t: min(iv[0][0] for iv in t.intervals.values()))
        out: list[_Track] = []
        tol = self.freq_tol_hz
        for tr in tracks:
            start = min(iv[0][0] for iv in tr.intervals.values())
            for o in out:
                if tr.lo_hz <= o.hi_hz + tol and tr.hi_hz >= o.lo_hz - tol and start - o.last_s <= self.max_gap_s:
                    o.lo_hz, o.hi_hz, o.last_s = min(o.lo_hz, tr.lo_hz), max(o.hi_hz, tr.hi_hz), max(o.last_s, tr.last_s)
                    for si, ivs in tr.intervals.items():
                        o.intervals.setdefault(si, []).extend(ivs)
                        o.margins.setdefault(si, []).extend(tr.margins[si])
                        o.scale_s[si] = tr.scale_s[si]
                        o.bw_by_scale[si] = max(o.bw_by_scale.get(si, 0.0), tr.bw_by_scale[si])
                    o.peak_dbfs, o.snr_db = max(o.peak_dbfs, tr.peak_dbfs), max(o.snr_db, tr.snr_db)
                    o.weight_sum += tr.weight_sum
                    o.center_acc += tr.center_acc
                    if tr.novelty == "new" or o.novelty == "new":
                        o.novelty = "new" if "new" in (tr.novelty, o.novelty) else o.novelty
                    break
            else:
                out.append(tr)
        return out

    def finish(self, bin_hz: float) -> list[Emission]:
        tracks = self._merge_overlapping(self._done + self._open)
        self._done, self._open = [], []
        out = []
        for tr in tracks:
            finest = self._timing_scale(tr)
            ivs = sorted(tr.intervals[finest])
            merged: list[list[float]] = []
            win = tr.scale_s[finest]
            for a, b in ivs:
                if merged and a <= merged[-1][1] + win * 1.01:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            start, end = merged[0][0], merged[-1][1]
            on = sum(b - a for a, b in merged)
            out.append(
                Emission(
                    center_hz=tr.center_acc / tr.weight_sum,
                    bandwidth_hz=tr.bw_by_scale[max(tr.bw_by_scale)] + bin_hz,
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
