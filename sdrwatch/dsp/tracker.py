"""Emission tracking: join per-window detections (any scale, any hop) into one record per emission.

Matching: a detection joins a track when their centres are closer than half the sum of their
occupied bandwidths plus ``freq_tol_hz`` (about the ppm slop), and it starts no later than
``max_gap_s`` after the track was last seen. Centre and bandwidth, not the runs' full extents, so
two transmitters 25 kHz apart stay two even when their skirts touch.

The reported bandwidth is the median of the occupied bandwidths of the detections at the scale that
times the emission (below); matching uses the largest seen, to be generous.

Timing: time extent, duty cycle and burst count come from the finest integration scale that saw the
emission *solidly* (median margin over its threshold of at least ``SOLID_MARGIN_DB``, counting only
detections within ``FRAGMENT_DB`` of the track's peak): a long window smears a 15 ms burst over
0.5 s, while short windows catch a weak continuous carrier only now and then, which must not be
mistaken for bursts. Bursts are on-intervals separated by more than two windows of that scale (one or two missed windows are
misses, not pauses) *while
the frequency was watched*: in a sweep, the time spent on other hops is not "off", and the duty is
the on-time over the watched time (``observe`` tells the tracker what was watched when). An
emission that touches the start or end of what was watched is ``open_ended``: it may be longer.
At the end, tracks that match as above and come within ``max_gap_s`` of each other are joined.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOLID_MARGIN_DB = 3.0
#: detections this far below a track's peak (skirts, fragments) do not time it
FRAGMENT_DB = 20.0
#: a gap of up to this many windows is a missed detection, not a pause between bursts
GAP_WINDOWS = 2.01


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
    open_ended: bool = False  # on at the start or end of what was watched: may be longer

    def as_record(self) -> dict:
        """The JSON-lines record; numbers are finite (an overflow would read as null, not Infinity)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self._record().items()}

    def _record(self) -> dict:
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
            "open_ended": self.open_ended,
            "novelty": self.novelty,
            "label": self.label,
            "severity": round(self.severity, 3),
            "scale_s": self.scale_s,
            "hop_center_hz": self.hop_center_hz,
            "reasons": self.reasons,
        }


@dataclass
class _Track:
    center_hz: float
    bw_hz: float
    last_s: float
    hop_center_hz: float
    novelty: str
    approximate: bool = False  # opened by a summed-bin (channel) detection: centre and width are rough
    # per scale index: detections as (t0_s, t1_s, power_dbfs, margin_db)
    hits: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    scale_s: dict[int, float] = field(default_factory=dict)
    snr_db: float = -999.0
    weight_sum: float = 0.0
    center_acc: float = 0.0
    bws: dict[int, list[float]] = field(default_factory=dict)  # per scale: exact detections' bandwidths

    @property
    def start_s(self) -> float:
        return min(h[0] for hs in self.hits.values() for h in hs)

    @property
    def peak_dbfs(self) -> float:
        return max(h[2] for hs in self.hits.values() for h in hs)

    def absorb(self, other: "_Track") -> None:
        if self.approximate and not other.approximate:
            self.center_hz, self.bw_hz, self.approximate = other.center_hz, other.bw_hz, False
        elif not other.approximate:
            self.bw_hz = max(self.bw_hz, other.bw_hz)
        self.last_s = max(self.last_s, other.last_s)
        for si, hs in other.hits.items():
            self.hits.setdefault(si, []).extend(hs)
            self.scale_s[si] = other.scale_s[si]
        self.snr_db = max(self.snr_db, other.snr_db)
        for si, b in other.bws.items():
            self.bws.setdefault(si, []).extend(b)
        self.weight_sum += other.weight_sum
        self.center_acc += other.center_acc
        self.novelty = _more_novel(self.novelty, other.novelty)


def _more_novel(a: str, b: str) -> str:
    order = {"new": 2, "changed": 1}
    return a if order.get(a, 0) >= order.get(b, 0) else b


def _merge(intervals: list[tuple[float, float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _overlap(a: float, b: float, watched: list[list[float]]) -> float:
    """Seconds of [a, b] inside the watched intervals."""
    return sum(max(0.0, min(b, w1) - max(a, w0)) for w0, w1 in watched)


def _touches_edge(start: float, end: float, watched: list[list[float]], win: float) -> bool:
    """True when [start, end] begins or ends within a window of the edge of a watched interval."""
    for w0, w1 in watched:
        if w0 - win <= start <= w1 and start - w0 <= win * 1.01:
            return True
        if w0 <= end <= w1 + win and w1 - end <= win * 1.01:
            return True
    return False


class Tracker:
    def __init__(self, max_gap_s: float = 5.0, freq_tol_hz: float = 5e3):
        self.max_gap_s = max_gap_s
        self.freq_tol_hz = freq_tol_hz
        self._open: list[_Track] = []
        self._done: list[_Track] = []
        self._watched: list[tuple[float, float, float, float]] = []  # (t0, t1, f_lo, f_hi)

    def observe(self, t0_s: float, t1_s: float, f_lo_hz: float, f_hi_hz: float) -> None:
        """Say that frequencies f_lo..f_hi were watched from t0 to t1 (a capture, a hop's dwell)."""
        self._watched.append((t0_s, t1_s, f_lo_hz, f_hi_hz))

    def _near(self, tr: _Track, center_hz: float, bw_hz: float, t0_s: float, last_s: float) -> bool:
        close = abs(center_hz - tr.center_hz) <= self.freq_tol_hz + 0.5 * (bw_hz + tr.bw_hz)
        return close and t0_s - last_s <= self.max_gap_s

    def add(
        self,
        scale_index: int,
        scale_s: float,
        t0_s: float,
        t1_s: float,
        center_hz: float,
        bandwidth_hz: float,
        power_dbfs: float,
        snr_db: float,
        novelty: str,
        hop_center_hz: float,
        margin_db: float = 99.0,
        approximate: bool = False,
    ) -> None:
        """Add one detection. ``approximate``: its centre and width are rough (a summed-bin test), so
        it joins a track without moving it."""
        # close tracks not seen for too long (a long scale reports late, so allow for its window)
        still = []
        for tr in self._open:
            (self._done if t0_s - tr.last_s > self.max_gap_s + 2 * scale_s else still).append(tr)
        self._open = still
        tr = next((t for t in self._open if self._near(t, center_hz, bandwidth_hz, t0_s, t.last_s)), None)
        if tr is None:
            tr = _Track(center_hz, bandwidth_hz, t1_s, hop_center_hz, novelty, approximate=approximate)
            self._open.append(tr)
        elif not approximate:
            if tr.approximate:  # the first exact detection sets centre and width
                tr.center_hz, tr.bw_hz, tr.approximate = center_hz, bandwidth_hz, False
            tr.bw_hz = max(tr.bw_hz, bandwidth_hz)
        if not approximate:
            tr.bws.setdefault(scale_index, []).append(bandwidth_hz)
        tr.last_s = max(tr.last_s, t1_s)
        tr.novelty = _more_novel(tr.novelty, novelty)
        tr.hits.setdefault(scale_index, []).append((t0_s, t1_s, power_dbfs, margin_db))
        tr.scale_s[scale_index] = scale_s
        tr.snr_db = max(tr.snr_db, snr_db)
        w = 10 ** (power_dbfs / 10)
        tr.weight_sum += w
        tr.center_acc += w * center_hz

    @staticmethod
    def _timing(tr: _Track) -> tuple[int, list[tuple[float, float]]]:
        """The scale that times the track and its strong detections' intervals (module docstring)."""
        floor = tr.peak_dbfs - FRAGMENT_DB
        scales = sorted(tr.hits)
        for s in scales:
            strong = [h for h in tr.hits[s] if h[2] >= floor]
            if strong and float(np.median([h[3] for h in strong])) >= SOLID_MARGIN_DB:
                return s, [(h[0], h[1]) for h in strong]
        s = scales[-1]
        strong = [h for h in tr.hits[s] if h[2] >= floor] or tr.hits[s]
        return s, [(h[0], h[1]) for h in strong]

    def _merge_tracks(self, tracks: list[_Track]) -> list[_Track]:
        """Join tracks that match in frequency and come within max_gap_s of each other in time
        (a long window's detection can open a track before a short one's arrives). Exact tracks
        first; a rough (channel-test) track then joins an exact one without moving it, so one wide
        test cannot bridge several neighbouring emitters."""
        out: list[_Track] = []
        for tr in sorted(tracks, key=lambda t: (t.approximate, t.start_s)):
            o = next((o for o in out if self._near(o, tr.center_hz, tr.bw_hz, tr.start_s, o.last_s)), None)
            if o is None:
                out.append(tr)
            else:
                o.absorb(tr)
        return out

    def _watched_at(self, f_hz: float) -> list[list[float]]:
        return _merge([(t0, t1) for t0, t1, lo, hi in self._watched if lo <= f_hz <= hi])

    def finish(self) -> list[Emission]:
        tracks = self._merge_tracks(self._done + self._open)
        self._done, self._open = [], []
        out = []
        for tr in tracks:
            scale, ivs = self._timing(tr)
            win = tr.scale_s[scale]
            center = tr.center_acc / tr.weight_sum
            watched = self._watched_at(center)
            merged: list[list[float]] = []
            for a, b in sorted(ivs):
                # a gap is real only if the frequency was watched for more than a window during it
                if merged and (a <= merged[-1][1] + GAP_WINDOWS * win or (watched and _overlap(merged[-1][1], a, watched) <= GAP_WINDOWS * win)):
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            start, end = merged[0][0], merged[-1][1]
            on = sum(_overlap(a, b, watched) if watched else b - a for a, b in merged)
            seen = _overlap(start, end, watched) if watched else end - start
            open_ended = _touches_edge(start, end, watched, win)
            out.append(
                Emission(
                    center_hz=center,
                    bandwidth_hz=float(np.median(tr.bws[scale])) if tr.bws.get(scale) else tr.bw_hz,
                    start_s=start,
                    end_s=end,
                    peak_dbfs=tr.peak_dbfs,
                    snr_db=tr.snr_db,
                    duty=min(1.0, on / seen) if seen > 0 else 1.0,
                    bursts=len(merged),
                    novelty=tr.novelty,
                    scale_s=win,
                    hop_center_hz=tr.hop_center_hz,
                    open_ended=open_ended,
                )
            )
        out.sort(key=lambda e: (e.start_s, e.center_hz))
        return out
