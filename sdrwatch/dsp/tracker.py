"""Emission tracking: join per-window detections (any scale, any hop) into one record per emission, streaming.

Matching: a detection joins a track when their centres are closer than half the sum of their
occupied bandwidths plus ``freq_tol_hz`` (about the ppm slop), and it starts no later than
``max_gap_s`` after the track was last seen. Centre and bandwidth, not the runs' full extents, so
two transmitters 25 kHz apart stay two even when their skirts touch. When several tracks match, the
oldest wins. Open tracks are indexed by centre frequency (a sorted array searched with
``searchsorted``), and a batch of detections (one scale's windows of one block) is matched at once,
so the cost per detection does not depend on how many tracks are open.

The reported bandwidth is the median of the occupied bandwidths of the detections at the scale that
times the emission (below); matching uses the largest seen, to be generous.

Timing: time extent, duty cycle and burst count come from the finest integration scale that saw the
emission *solidly* (median margin over its threshold of at least ``SOLID_MARGIN_DB``, counting only
detections within ``FRAGMENT_DB`` of the track's peak): a long window smears a 15 ms burst over
0.5 s, while short windows catch a weak continuous carrier only now and then, which must not be
mistaken for bursts. Bursts are on-intervals separated by more than two windows of that scale (one
or two missed windows are misses, not pauses) *while the frequency was watched*: in a sweep, the
time spent on other hops is not "off", and the duty is the on-time over the watched time
(``observe`` tells the tracker what was watched when). An emission that touches the start or end of
what was watched is ``open_ended``: it may be longer.

Closing: ``expire(horizon_s)`` closes the tracks no future detection can join (every detection still
to come starts at or after ``horizon_s``, and a track last seen more than ``max_gap_s`` before it is
out of reach). Tracks that match as above and come within ``max_gap_s`` of each other are joined
before they close (a long window's detection can open a track before a short one's arrives); a
closed track's state is released.

Memory per track is bounded: each scale keeps its last ``HIT_CAP`` detections in full; older ones are
summarised as merged on-intervals (a gap of up to two windows is merged exactly as the final timing
would merge it) and a decimated sample of (power, margin, bandwidth) for the medians. Intervals of a
scale beyond ``INTERVAL_CAP`` are coarsened by merging the shortest gaps. For the recordings and
tests here (minutes at most) nothing is summarised and the result is exact.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

SOLID_MARGIN_DB = 3.0
#: detections this far below a track's peak (skirts, fragments) do not time it
FRAGMENT_DB = 20.0
#: a gap of up to this many windows is a missed detection, not a pause between bursts
GAP_WINDOWS = 2.01
#: detections per scale and track kept in full before they are summarised
HIT_CAP = 4096
#: summary samples per scale and track (decimated by two when full)
SAMPLE_CAP = 2048
#: summarised on-intervals per scale and track before the shortest gaps are merged
INTERVAL_CAP = 4096
#: tracks out of reach kept aside until the open track they join closes; beyond this they join it at once
PARK_CAP = 256

NOVELTY = ("emission", "changed", "new")  # code -> name; a higher code is more novel
NOVELTY_CODE = {n: i for i, n in enumerate(NOVELTY)}


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
            "center_hz": round(float(self.center_hz), 1),
            "bandwidth_hz": round(float(self.bandwidth_hz), 1),
            "start_s": round(float(self.start_s), 6),
            "end_s": round(float(self.end_s), 6),
            "duration_s": round(float(self.end_s - self.start_s), 6),
            "peak_dbfs": round(float(self.peak_dbfs), 2),
            "snr_db": round(float(self.snr_db), 2),
            "duty": round(float(self.duty), 4),
            "bursts": int(self.bursts),
            "open_ended": bool(self.open_ended),
            "novelty": self.novelty,
            "label": self.label,
            "severity": round(float(self.severity), 3),
            "scale_s": float(self.scale_s),
            "hop_center_hz": float(self.hop_center_hz),
            "reasons": self.reasons,
        }


_EMPTY_HITS = np.empty((5, 0))


def _merge_sorted(a: np.ndarray, b: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge intervals sorted by start whose gap to the running end is at most ``gap``."""
    if not len(a):
        return a, b
    run_end = np.maximum.accumulate(b)
    new = np.ones(len(a), dtype=bool)
    new[1:] = a[1:] > run_end[:-1] + gap
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(a) - 1]
    return a[first], run_end[last]


class _Hits:
    """Detections of one track at one scale: recent ones in full, older ones summarised.

    The recent ones live in one growable (5, capacity) float64 buffer (t0, t1, power, margin, bw or
    nan), 40 bytes a detection: a list of per-batch slices would cost an array header per column and
    batch (about 0.5 kB per detection at one detection per batch) and keep each batch's arrays alive.
    """

    __slots__ = ("buf", "n", "ivs_strong", "ivs_all", "s_pw", "s_mg", "s_bw")

    def __init__(self):
        self.buf = _EMPTY_HITS
        self.n = 0
        self.ivs_strong = np.zeros((0, 2))
        self.ivs_all = np.zeros((0, 2))
        self.s_pw = np.zeros(0)
        self.s_mg = np.zeros(0)
        self.s_bw = np.zeros(0)

    def add(self, cols: tuple[np.ndarray, ...]) -> None:
        k = len(cols[0])
        need = self.n + k
        if need > self.buf.shape[1]:  # grow by doubling, to just past the cap at most
            grown = np.empty((5, max(need, min(2 * self.buf.shape[1], HIT_CAP + 64), 16)))
            grown[:, : self.n] = self.buf[:, : self.n]
            self.buf = grown
        for row, col in zip(self.buf, cols):
            row[self.n:need] = col
        self.n = need

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The recent detections as five arrays (views: valid until the next :meth:`add`)."""
        if not self.n:
            z = np.zeros(0)
            return z, z, z, z, z
        return tuple(self.buf[:, : self.n])

    def absorb(self, other: "_Hits") -> None:
        if other.n:
            self.add(other.arrays())
        self.ivs_strong = np.concatenate([self.ivs_strong, other.ivs_strong])
        self.ivs_all = np.concatenate([self.ivs_all, other.ivs_all])
        self.s_pw = np.concatenate([self.s_pw, other.s_pw])
        self.s_mg = np.concatenate([self.s_mg, other.s_mg])
        self.s_bw = np.concatenate([self.s_bw, other.s_bw])

    def summarise(self, floor_dbfs: float, gap_s: float) -> None:
        """Fold the recent detections into the summary (module docstring)."""
        t0, t1, pw, mg, bw = self.arrays()
        self.n = 0  # the buffer is kept for what comes next (the views above are copied below first)
        order = np.argsort(t0, kind="stable")
        t0, t1, pw, mg, bw = t0[order], t1[order], pw[order], mg[order], bw[order]
        strong = pw >= floor_dbfs
        self.ivs_strong = _cap_intervals(np.concatenate([self.ivs_strong, np.stack(_merge_sorted(t0[strong], t1[strong], gap_s), axis=1)]))
        self.ivs_all = _cap_intervals(np.concatenate([self.ivs_all, np.stack(_merge_sorted(t0, t1, gap_s), axis=1)]))
        self.s_pw = np.concatenate([self.s_pw, pw])
        self.s_mg = np.concatenate([self.s_mg, mg])
        self.s_bw = np.concatenate([self.s_bw, bw])
        while len(self.s_pw) > SAMPLE_CAP:
            self.s_pw, self.s_mg, self.s_bw = self.s_pw[::2], self.s_mg[::2], self.s_bw[::2]

    def held(self) -> int:
        return self.n + len(self.ivs_strong) + len(self.ivs_all) + len(self.s_pw)


def _cap_intervals(ivs: np.ndarray) -> np.ndarray:
    """At most INTERVAL_CAP intervals: merge across the shortest gaps (a day-long flickering emitter)."""
    if len(ivs) <= INTERVAL_CAP:
        return ivs
    ivs = ivs[np.argsort(ivs[:, 0], kind="stable")]
    a, b = _merge_sorted(ivs[:, 0], ivs[:, 1], 0.0)
    while len(a) > INTERVAL_CAP:
        gaps = a[1:] - b[:-1]
        cut = np.partition(gaps, len(gaps) - INTERVAL_CAP // 2)[len(gaps) - INTERVAL_CAP // 2]
        a, b = _merge_sorted(a, b, float(cut))
    return np.stack([a, b], axis=1)


class Track:
    """One emission being followed. ``track_id`` is unique within its tracker."""

    __slots__ = ("track_id", "center_hz", "bw_hz", "approximate", "last_s", "start_s", "peak_dbfs", "hop_center_hz",
                 "novelty", "snr_db", "weight_sum", "center_acc", "hits", "solid", "announced", "dirty")

    def __init__(self, track_id: int, center_hz: float, bw_hz: float, approximate: bool, hop_center_hz: float):
        self.track_id = track_id
        self.center_hz = float(center_hz)
        self.bw_hz = float(bw_hz)
        self.approximate = bool(approximate)  # opened by a summed-bin (channel) detection: centre and width rough
        self.last_s = -np.inf
        self.start_s = np.inf
        self.peak_dbfs = -np.inf
        self.hop_center_hz = float(hop_center_hz)
        self.novelty = 0
        self.snr_db = -999.0
        self.weight_sum = 0.0
        self.center_acc = 0.0
        self.hits: dict[int, _Hits] = {}
        self.solid = False  # has had a detection solidly over its threshold
        self.announced = False  # an "open" event went out (the chain sets it)
        self.dirty = False  # changed since the last event (the chain clears it)

    def absorb(self, other: "Track") -> None:
        _absorb_extent(self, other)
        self.peak_dbfs = max(self.peak_dbfs, other.peak_dbfs)
        for si, h in other.hits.items():
            mine = self.hits.get(si)
            if mine is None:
                self.hits[si] = h
            else:
                mine.absorb(h)
        self.snr_db = max(self.snr_db, other.snr_db)
        self.weight_sum += other.weight_sum
        self.center_acc += other.center_acc
        self.novelty = max(self.novelty, other.novelty)
        self.solid |= other.solid
        self.dirty = True

    def held(self) -> int:
        return 1 + sum(h.held() for h in self.hits.values())


def _absorb_extent(into, other: "Track") -> None:
    """Frequency and time extent of ``into`` (a :class:`Track` or a :class:`_Proxy`) after joining
    ``other``: an exact position replaces an approximate one, bandwidth and time span widen."""
    if into.approximate and not other.approximate:
        into.center_hz, into.bw_hz, into.approximate = other.center_hz, other.bw_hz, False
    elif not other.approximate:
        into.bw_hz = max(into.bw_hz, other.bw_hz)
    into.last_s = max(into.last_s, other.last_s)
    into.start_s = min(into.start_s, other.start_s)


class _Proxy:
    """What :meth:`Tracker._groups` needs of a track being joined, so deciding does not join."""

    __slots__ = ("center_hz", "bw_hz", "approximate", "last_s", "start_s")

    def __init__(self, tr: Track):
        self.center_hz, self.bw_hz, self.approximate, self.last_s, self.start_s = tr.center_hz, tr.bw_hz, tr.approximate, tr.last_s, tr.start_s

    def absorb(self, other: Track) -> None:  # as Track.absorb, for these fields
        _absorb_extent(self, other)


@dataclass
class Closed:
    """A track that left the tracker: its final emission, and the track it was joined into (if any)."""

    track_id: int
    emission: Emission
    merged_into: int | None = None
    announced: bool = True  # an "open" went out for it


class Tracker:
    """Streaming tracker (module docstring). ``scales_s``: the window length of each scale index."""

    def __init__(self, scales_s: tuple[float, ...] | list[float], max_gap_s: float = 5.0, freq_tol_hz: float = 5e3):
        self.scales_s = tuple(float(s) for s in scales_s)
        self.max_gap_s = float(max_gap_s)
        self.freq_tol_hz = float(freq_tol_hz)
        self._centers: list[float] = []  # open tracks sorted by centre
        self._tracks: list[Track] = []  # aligned with _centers
        self._max_bw = 0.0  # widest open track (bounds the frequency search)
        self._parked: list[Track] = []  # out of reach, waiting for an open track they join (expire)
        self._next_id = 1
        self._watched: dict[tuple[float, float], list[list[float]]] = {}  # (f_lo, f_hi) -> [[t0, t1], ...]
        self.newly_solid: list[Track] = []

    # -- what was watched ---------------------------------------------------------------------------
    def observe(self, t0_s: float, t1_s: float, f_lo_hz: float, f_hi_hz: float) -> None:
        """Say that frequencies f_lo..f_hi were watched from t0 to t1 (a block, a capture, a dwell)."""
        ivs = self._watched.setdefault((float(f_lo_hz), float(f_hi_hz)), [])
        if ivs and t0_s <= ivs[-1][1] + 1e-6 and t0_s >= ivs[-1][0]:
            ivs[-1][1] = max(ivs[-1][1], t1_s)
        else:
            ivs.append([float(t0_s), float(t1_s)])

    def _watched_at(self, f_hz: float) -> np.ndarray:
        """Watched intervals of frequency f, merged, as an (n, 2) array sorted by start."""
        parts = [ivs for (lo, hi), ivs in self._watched.items() if lo <= f_hz <= hi and ivs]
        if not parts:
            return np.zeros((0, 2))
        w = np.array([iv for ivs in parts for iv in ivs], dtype=float)
        if len(parts) > 1:
            w = w[np.argsort(w[:, 0], kind="stable")]
        a, b = _merge_sorted(w[:, 0], w[:, 1], 0.0)
        return np.stack([a, b], axis=1)

    def _prune_watched(self, keep_from_s: float) -> None:
        for ivs in self._watched.values():
            drop = 0
            while drop < len(ivs) - 1 and ivs[drop][1] < keep_from_s:
                drop += 1
            if drop:
                del ivs[:drop]

    # -- the index ----------------------------------------------------------------------------------
    def _insert(self, tr: Track) -> None:
        i = bisect.bisect_right(self._centers, tr.center_hz)
        self._centers.insert(i, tr.center_hz)
        self._tracks.insert(i, tr)
        self._max_bw = max(self._max_bw, tr.bw_hz)

    def _remove(self, tr: Track) -> None:
        i = bisect.bisect_left(self._centers, tr.center_hz)
        while self._tracks[i] is not tr:
            i += 1
        del self._centers[i]
        del self._tracks[i]

    @property
    def open_tracks(self) -> list[Track]:
        return list(self._tracks)

    def held_objects(self) -> int:
        """Everything the tracker holds (tracks, detections, summaries, watched intervals): flat over a long run."""
        return sum(t.held() for t in self._tracks + self._parked) + sum(len(v) for v in self._watched.values())

    def _near(self, tr: Track, center_hz: float, bw_hz: float, t0_s: float, last_s: float) -> bool:
        close = abs(center_hz - tr.center_hz) <= self.freq_tol_hz + 0.5 * (bw_hz + tr.bw_hz)
        return close and t0_s - last_s <= self.max_gap_s

    def _match(self, c: np.ndarray, bw: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """Index into the open tracks (as sorted now) of the oldest track each detection joins, or -1."""
        out = np.full(len(c), -1, dtype=np.int64)
        if not self._tracks or not len(c):
            return out
        tc = np.asarray(self._centers)
        tbw = np.fromiter((t.bw_hz for t in self._tracks), float, len(self._tracks))
        tlast = np.fromiter((t.last_s for t in self._tracks), float, len(self._tracks))
        tid = np.fromiter((t.track_id for t in self._tracks), np.int64, len(self._tracks))
        reach = self.freq_tol_hz + 0.5 * (bw + self._max_bw)
        lo = np.searchsorted(tc, c - reach, side="left")
        hi = np.searchsorted(tc, c + reach, side="right")
        best = np.full(len(c), np.iinfo(np.int64).max)
        for j in range(int((hi - lo).max(initial=0))):
            idx = lo + j
            ok = idx < hi
            k = np.minimum(idx, len(tc) - 1)
            ok &= np.abs(c - tc[k]) <= self.freq_tol_hz + 0.5 * (bw + tbw[k])
            ok &= t0 - tlast[k] <= self.max_gap_s
            better = ok & (tid[k] < best)
            best[better] = tid[k][better]
            out[better] = k[better]
        return out

    # -- adding detections ----------------------------------------------------------------------------
    def add_batch(self, scale_index: int, t0_s, t1_s, center_hz, bandwidth_hz, power_dbfs, snr_db, margin_db,
                  novelty, hop_center_hz: float, approximate) -> None:
        """Add detections of one scale (arrays, in time order). ``novelty``: codes (``NOVELTY``);
        ``approximate``: centre and width are rough (a summed-bin test), so they join a track
        without moving it."""
        cols = [np.asarray(x, dtype=float) for x in (t0_s, t1_s, center_hz, bandwidth_hz, power_dbfs, snr_db, margin_db)]
        nov = np.asarray(novelty, dtype=np.int64)
        approx = np.asarray(approximate, dtype=bool)
        n = len(cols[0])
        if not n:
            return
        t0, t1, c, bw, pw, snr, mg = cols
        bw_exact = np.where(approx, np.nan, bw)
        weight = 10 ** (pw / 10)
        pending = np.arange(n)
        while pending.size:
            k = self._match(c[pending], bw[pending], t0[pending])
            got = k >= 0
            if got.any():
                self._apply_groups(scale_index, pending[got], k[got], t0, t1, c, bw, bw_exact, pw, snr, mg, nov, approx, weight)
            pending = pending[~got]
            if not pending.size:
                break
            first = int(pending[0])
            tr = Track(self._next_id, c[first], bw[first], bool(approx[first]), hop_center_hz)
            self._next_id += 1
            self._insert(tr)
            self._apply_groups(scale_index, pending[:1], np.array([self._tracks.index(tr)]), t0, t1, c, bw, bw_exact, pw, snr, mg, nov, approx, weight)
            pending = pending[1:]

    def _apply_groups(self, si: int, sel: np.ndarray, kk: np.ndarray, t0, t1, c, bw, bw_exact, pw, snr, mg, nov, approx, weight) -> None:
        """Add detections ``sel`` to the open tracks ``kk`` (indices as sorted now), a group per track."""
        order = np.argsort(kk, kind="stable")
        sel, kk = sel[order], kk[order]
        starts = np.r_[0, np.flatnonzero(np.diff(kk)) + 1]
        tracks = [self._tracks[i] for i in kk[starts]]
        g_t0, g_t1, g_c, g_pw, g_mg, g_bwx = t0[sel], t1[sel], c[sel], pw[sel], mg[sel], bw_exact[sel]
        g_ex = ~approx[sel]
        last = np.maximum.reduceat(g_t1, starts)
        first_t = np.minimum.reduceat(g_t0, starts)
        peak = np.maximum.reduceat(g_pw, starts)
        novelty = np.maximum.reduceat(nov[sel], starts)
        snr_max = np.maximum.reduceat(snr[sel], starts)
        g_w = weight[sel]
        wsum = np.add.reduceat(g_w, starts)
        csum = np.add.reduceat(g_w * g_c, starts)
        mg_max = np.maximum.reduceat(g_mg, starts)
        has_ex = np.logical_or.reduceat(g_ex, starts)
        bw_max = np.fmax.reduceat(g_bwx, starts)
        ends = np.r_[starts[1:], len(sel)]
        cap, gap = HIT_CAP, GAP_WINDOWS * self.scales_s[si]
        for j, tr in enumerate(tracks):
            a, b = int(starts[j]), int(ends[j])
            if has_ex[j]:
                if tr.approximate:  # the first exact detection sets centre and width
                    fe = a + int(np.argmax(g_ex[a:b]))
                    self._remove(tr)
                    tr.center_hz, tr.bw_hz, tr.approximate = float(g_c[fe]), float(bw[sel[fe]]), False
                    self._insert(tr)
                tr.bw_hz = max(tr.bw_hz, float(bw_max[j]))
                if tr.bw_hz > self._max_bw:
                    self._max_bw = tr.bw_hz
            tr.last_s = max(tr.last_s, float(last[j]))
            tr.start_s = min(tr.start_s, float(first_t[j]))
            tr.peak_dbfs = max(tr.peak_dbfs, float(peak[j]))
            tr.novelty = max(tr.novelty, int(novelty[j]))
            tr.snr_db = max(tr.snr_db, float(snr_max[j]))
            tr.weight_sum += float(wsum[j])
            tr.center_acc += float(csum[j])
            h = tr.hits.get(si)
            if h is None:
                h = tr.hits[si] = _Hits()
            h.add((g_t0[a:b], g_t1[a:b], g_pw[a:b], g_mg[a:b], g_bwx[a:b]))
            if h.n > cap:
                h.summarise(tr.peak_dbfs - FRAGMENT_DB, gap)
            tr.dirty = True
            if not tr.solid and mg_max[j] >= SOLID_MARGIN_DB:
                tr.solid = True
                self.newly_solid.append(tr)

    # -- closing ------------------------------------------------------------------------------------
    def _groups(self, tracks: list[Track]) -> list[list[Track]]:
        """Which tracks join (without joining them): those that match in frequency and come within
        max_gap_s of each other in time. Exact tracks first; a rough (channel-test) track then joins an
        exact one without moving it, so one wide test cannot bridge several neighbouring emitters.
        Each group's first track is the one the others join."""
        out: list[_Proxy] = []
        members: list[list[Track]] = []
        centers: list[float] = []
        order: list[int] = []  # out index, sorted by centre (aligned with centers)
        max_bw = 0.0
        for tr in sorted(tracks, key=lambda t: (t.approximate, t.start_s)):
            reach = self.freq_tol_hz + 0.5 * (tr.bw_hz + max_bw)
            a = bisect.bisect_left(centers, tr.center_hz - reach)
            b = bisect.bisect_right(centers, tr.center_hz + reach)
            cand = [order[i] for i in range(a, b) if self._near(out[order[i]], tr.center_hz, tr.bw_hz, tr.start_s, out[order[i]].last_s)]
            if not cand:
                i = bisect.bisect_right(centers, tr.center_hz)
                centers.insert(i, tr.center_hz)
                order.insert(i, len(out))
                out.append(_Proxy(tr))
                members.append([tr])
                max_bw = max(max_bw, tr.bw_hz)
            else:
                j = min(cand)
                o = out[j]
                old_c = o.center_hz
                o.absorb(tr)
                members[j].append(tr)
                max_bw = max(max_bw, o.bw_hz)
                if o.center_hz != old_c:
                    i = order.index(j)
                    del centers[i], order[i]
                    i = bisect.bisect_right(centers, o.center_hz)
                    centers.insert(i, o.center_hz)
                    order.insert(i, j)
        return members

    def _join(self, tracks: list[Track]) -> list[tuple[Track, list[Track]]]:
        """Join tracks as :meth:`_groups` says. Returns (joined track, the tracks joined into it)."""
        out = []
        for group in self._groups(tracks):
            head = group[0]
            for tr in group[1:]:
                head.absorb(tr)
            out.append((head, group))
        return out

    def expire(self, horizon_s: float) -> list[Closed]:
        """Close the tracks no detection starting at or after ``horizon_s`` can join (module docstring).

        A track out of reach that would join a track still open is parked (out of the index: no
        detection can join it any more) until everything it joins is out of reach too; then they join
        and close as one. So when tracks close does not depend on how the input was cut into blocks.
        """
        due = [t for t in self._tracks if horizon_s - t.last_s > self.max_gap_s]
        closed: list[Closed] = []
        if due or self._parked:
            for t in due:
                self._remove(t)
            cands = self._parked + due
            group: dict[int, Track] = {id(t): t for t in cands}
            for t in cands:  # open neighbours that may join them
                reach = self.freq_tol_hz + 0.5 * (t.bw_hz + self._max_bw)
                a = bisect.bisect_left(self._centers, t.center_hz - reach)
                b = bisect.bisect_right(self._centers, t.center_hz + reach)
                for o in self._tracks[a:b]:
                    group.setdefault(id(o), o)
            self._parked = []
            for members in self._groups(list(group.values())):
                if any(horizon_s - m.last_s <= self.max_gap_s for m in members):
                    self._parked.extend(m for m in members if horizon_s - m.last_s > self.max_gap_s)
                    continue
                for joined, ms in self._join(members):
                    self._settle_ids(joined, ms, closed)
                    closed.append(Closed(joined.track_id, self.emission(joined), announced=joined.announced))
            if len(self._parked) > PARK_CAP:  # a long-lived track with many short neighbours: join them into it now
                parked, self._parked = self._parked, []
                group = {id(t): t for t in parked}
                for t in parked:
                    reach = self.freq_tol_hz + 0.5 * (t.bw_hz + self._max_bw)
                    a = bisect.bisect_left(self._centers, t.center_hz - reach)
                    b = bisect.bisect_right(self._centers, t.center_hz + reach)
                    for o in self._tracks[a:b]:
                        group.setdefault(id(o), o)
                for t in group.values():
                    if t not in parked:
                        self._remove(t)
                for joined, ms in self._join(list(group.values())):
                    self._settle_ids(joined, ms, closed)
                    if horizon_s - joined.last_s > self.max_gap_s:
                        closed.append(Closed(joined.track_id, self.emission(joined), announced=joined.announced))
                    else:
                        self._insert(joined)
            self._max_bw = max((t.bw_hz for t in self._tracks), default=0.0)
        starts = [t.start_s for t in self._tracks + self._parked]
        longest = max(self.scales_s, default=0.0)
        self._prune_watched(min(starts + [horizon_s]) - longest - 1.0)
        return closed

    def _settle_ids(self, joined: Track, members: list[Track], closed: list[Closed]) -> None:
        """A joined track keeps the id of its oldest announced member (else its oldest); other
        announced members are closed as merged into it."""
        if len(members) == 1:
            return
        announced = [m for m in members if m.announced]
        keep = min(announced or members, key=lambda m: m.track_id)
        others = [m.track_id for m in announced if m is not keep]
        joined.track_id, joined.announced = keep.track_id, bool(announced)
        if others:
            snap = self.emission(joined)
            closed.extend(Closed(i, snap, merged_into=keep.track_id) for i in others)

    def close_all(self) -> list[Closed]:
        """End of the run: every open track closes (joined as above), in order of start then frequency."""
        tracks, self._tracks, self._centers, self._max_bw = self._tracks + self._parked, [], [], 0.0
        self._parked = []
        closed: list[Closed] = []
        for joined, members in self._join(tracks):
            self._settle_ids(joined, members, closed)
            closed.append(Closed(joined.track_id, self.emission(joined), announced=joined.announced))
        main = sorted((c for c in closed if c.merged_into is None), key=lambda c: (c.emission.start_s, c.emission.center_hz))
        return [c for c in closed if c.merged_into is not None] + main

    # -- the record of a track ----------------------------------------------------------------------
    def _timing(self, tr: Track) -> tuple[int, np.ndarray]:
        """The scale that times the track and its strong detections' intervals (module docstring)."""
        floor = tr.peak_dbfs - FRAGMENT_DB
        scales = sorted(tr.hits)
        for s in scales:
            h = tr.hits[s]
            t0, t1, pw, mg, _ = h.arrays()
            strong = pw >= floor
            margins = np.concatenate([mg[strong], h.s_mg[h.s_pw >= floor]])
            if margins.size and float(np.median(margins)) >= SOLID_MARGIN_DB:
                return s, np.concatenate([h.ivs_strong, np.stack([t0[strong], t1[strong]], axis=1)])
        s = scales[-1]
        h = tr.hits[s]
        t0, t1, pw, _, _ = h.arrays()
        strong = pw >= floor
        ivs = np.concatenate([h.ivs_strong, np.stack([t0[strong], t1[strong]], axis=1)])
        if not len(ivs):
            ivs = np.concatenate([h.ivs_all, np.stack([t0, t1], axis=1)])
        return s, ivs

    def emission(self, tr: Track) -> Emission:
        """The emission record of a track as it stands (a snapshot for open/update, or final)."""
        scale, ivs = self._timing(tr)
        win = self.scales_s[scale]
        gap = GAP_WINDOWS * win
        center = tr.center_acc / tr.weight_sum if tr.weight_sum > 0 else tr.center_hz
        w = self._watched_at(center)
        ivs = ivs[np.argsort(ivs[:, 0], kind="stable")]
        a, b = ivs[:, 0], ivs[:, 1]
        run_end = np.maximum.accumulate(b)
        if len(w):
            w0, w1 = w[:, 0], w[:, 1]
            cum = np.concatenate(([0.0], np.cumsum(w1 - w0)))

            def watched_until(t: np.ndarray) -> np.ndarray:
                k = np.searchsorted(w0, t, side="right") - 1
                kk = np.maximum(k, 0)
                v = cum[kk] + np.clip(t - w0[kk], 0.0, w1[kk] - w0[kk])
                return np.where(k >= 0, v, 0.0)
        else:
            watched_until = None
        new = np.ones(len(a), dtype=bool)
        if len(a) > 1:
            prev_end = run_end[:-1]
            join = a[1:] <= prev_end + gap
            if watched_until is not None:
                # a gap is real only if the frequency was watched for more than a window during it
                join |= watched_until(a[1:]) - watched_until(prev_end) <= gap
            new[1:] = ~join
        first = np.flatnonzero(new)
        last = np.r_[first[1:] - 1, len(a) - 1]
        seg_a, seg_b = a[first], run_end[last]
        start, end = float(seg_a[0]), float(seg_b[-1])
        if watched_until is not None:
            on = float(np.sum(watched_until(seg_b) - watched_until(seg_a)))
            seen = float(watched_until(np.array([end]))[0] - watched_until(np.array([start]))[0])
            c1 = (w0 - win <= start) & (start <= w1) & (start - w0 <= win * 1.01)
            c2 = (w0 <= end) & (end <= w1 + win) & (w1 - end <= win * 1.01)
            open_ended = bool(np.any(c1 | c2))
        else:
            on, seen, open_ended = float(np.sum(seg_b - seg_a)), end - start, False
        h = tr.hits[scale]
        bws = np.concatenate([h.arrays()[4], h.s_bw])
        bws = bws[~np.isnan(bws)]
        return Emission(
            center_hz=float(center),
            bandwidth_hz=float(np.median(bws)) if bws.size else tr.bw_hz,
            start_s=start,
            end_s=end,
            peak_dbfs=tr.peak_dbfs,
            snr_db=tr.snr_db,
            duty=min(1.0, on / seen) if seen > 0 else 1.0,
            bursts=len(seg_a),
            novelty=NOVELTY[tr.novelty],
            scale_s=win,
            hop_center_hz=tr.hop_center_hz,
            open_ended=open_ended,
        )
