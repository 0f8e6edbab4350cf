"""Sweep plans: which frequencies each receiver visits, for how long, in what order, and what that
means for catching short bursts.

Hops
    A hop keeps the central ``step`` of its tuning: ``step = min over receivers of sample_rate_hz x
    usable_fraction`` of the receiver profile (1.8 MHz at 2.4 MS/s on an R820T), so the crop of each
    receiver is ``1 - step / sample_rate_hz`` (0.25, rtl_power's recommended crop) and
    :func:`sdrwatch.dsp.spectrum.kept_bins` keeps exactly the hop's span. A band of width W gets
    ``ceil(W / step)`` hops, centred on the band; hops tile without overlap.

Time per hop
    ``retune_s + dwell_s``. ``retune_s`` is what a retune costs before samples are usable: the
    profile's worst settling time plus the samples discarded after a retune (R820T at 2.4 MS/s:
    17 ms + 16384 samples = 23.8 ms), or what the opened receiver reports, or ``[sweep] retune_s``.

Tiers and passes
    Priority hops (bands with ``priority = true``) and background hops (the rest of the tuner's range,
    or only the non-priority bands, or none: ``[sweep] background``) are shared among the receivers,
    each hop going to the least-loaded receiver that can tune it. A receiver runs *passes* back to
    back: all of its priority hops, then the next ``k`` of its background hops (a cursor that wraps),
    with ``k`` as large as the priority revisit target allows::

        pass_s = sum(retune_s + dwell_s over priority hops) + k x (retune_s + background_dwell_s)
        k      = floor((priority_revisit_s - priority part) / (retune_s + background_dwell_s))

    So a priority hop is revisited every ``pass_s`` and a background hop on average every
    ``n_background / k x pass_s``. A plan is refused (one line saying why) when a band lies outside
    every receiver's tuning range or in a tuning gap, when the priority part alone exceeds the target,
    or when no background hop fits into a pass.

Probability of intercept (POI)
    A burst of length L starting at time t is intercepted by a dwell window [a, a + d) when they
    overlap by at least ``m = min_overlap_s`` (two 5 ms frames by default), i.e. when
    ``t`` lies in [a + m - L, a + d - m], an interval of length L + d - 2m (empty if L < m). With the
    burst at a uniformly random time and frequency in the band, the POI is the measure of the union
    of those intervals over every visit of the hop in one period H of the plan (the passes until the
    background cursor comes back), divided by H, averaged over the band's hops weighted by the width
    each covers. For one visit per pass of length T this is the textbook ``min(1, (L + d - 2m) / T)``.
    A burst *repeated* every R seconds, n times (n = ``window_s / R``), is intercepted if any repeat
    is: the union over j < n of the hit set shifted by ``-j R`` (mod H). Exact for the plan's timing;
    a real receiver's retunes jitter, which only helps repeated bursts that the plan phase-locks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import PlanError

#: burst lengths the POI table is printed for, and the repetition it assumes
POI_BURSTS_S = (0.05, 0.2, 0.5, 2.0, 5.0)
REPEAT_EVERY_S = 10.0
REPEAT_WINDOW_S = 60.0
#: planner cap on the passes in one plan period (the cursor of a huge background comes back later)
MAX_PERIOD_PASSES = 4096


@dataclass(frozen=True)
class Hop:
    """One tuning: ``center_hz``, the kept span [start_hz, stop_hz), its tier and dwell."""

    center_hz: float
    start_hz: float
    stop_hz: float
    tier: str  # "priority" | "background"
    dwell_s: float
    bands: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"center_hz": round(self.center_hz, 1), "start_hz": round(self.start_hz, 1), "stop_hz": round(self.stop_hz, 1),
                "tier": self.tier, "dwell_s": self.dwell_s, "bands": list(self.bands)}


@dataclass(frozen=True)
class ReceiverPlan:
    """What one receiver does: its hops and how a pass is made of them."""

    receiver: str
    tuner: str
    sample_rate_hz: float
    crop: float
    retune_s: float
    priority: tuple[Hop, ...]
    background: tuple[Hop, ...]
    background_per_pass: int

    @property
    def priority_s(self) -> float:
        return sum(self.retune_s + h.dwell_s for h in self.priority)

    @property
    def pass_s(self) -> float:
        """Time of one pass (= the priority revisit)."""
        bg = self.background[0].dwell_s if self.background else 0.0
        return self.priority_s + self.background_per_pass * (self.retune_s + bg)

    @property
    def period_passes(self) -> int:
        """Passes until the background cursor is back where it started."""
        n, k = len(self.background), self.background_per_pass
        if not n or not k:
            return 1
        return min(n // math.gcd(n, k), MAX_PERIOD_PASSES)

    def pass_hops(self, index: int) -> list[Hop]:
        """Hops of pass number ``index`` (0, 1, 2...)."""
        hops = list(self.priority)
        n, k = len(self.background), self.background_per_pass
        if n and k:
            first = (index * k) % n
            hops += [self.background[(first + j) % n] for j in range(k)]
        return hops

    def hops(self) -> Iterator[Hop]:
        """The hops in the order the receiver visits them, forever."""
        i = 0
        while True:
            yield from self.pass_hops(i)
            i += 1

    def timeline(self, passes: int) -> list[tuple[float, float, Hop]]:
        """(dwell start s, dwell end s, hop) of ``passes`` passes from t = 0: the plan's timing model."""
        out = []
        t = 0.0
        for p in range(passes):
            for h in self.pass_hops(p):
                t += self.retune_s
                out.append((t, t + h.dwell_s, h))
                t += h.dwell_s
        return out

    @cached_property
    def visits(self) -> dict[float, np.ndarray]:
        """Dwell windows (n, 2) of each hop (by centre) over one plan period from t = 0."""
        out: dict[float, list] = {}
        for a, b, h in self.timeline(self.period_passes):
            out.setdefault(h.center_hz, []).append((a, b))
        return {c: np.array(w, dtype=float) for c, w in out.items()}

    def revisit_s(self, hop: Hop) -> float:
        """Mean time between visits of ``hop``."""
        if hop.tier == "priority" or not self.background_per_pass:
            return self.pass_s
        return len(self.background) / self.background_per_pass * self.pass_s

    def as_dict(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "tuner": self.tuner, "sample_rate_hz": self.sample_rate_hz, "crop": round(self.crop, 6),
                "retune_s": round(self.retune_s, 6), "priority_hops": len(self.priority), "background_hops": len(self.background),
                "background_per_pass": self.background_per_pass, "pass_s": round(self.pass_s, 4)}


@dataclass(frozen=True)
class SweepPlan:
    receivers: tuple[ReceiverPlan, ...]
    bands: tuple[Any, ...]  # BandConfig
    step_hz: float
    priority_revisit_s: float
    min_overlap_s: float
    background: str

    def receiver(self, name: str) -> ReceiverPlan:
        for r in self.receivers:
            if r.receiver == name:
                return r
        raise KeyError(name)

    def hops_in(self, lo_hz: float, hi_hz: float) -> list[tuple[ReceiverPlan, Hop, float]]:
        """(receiver plan, hop, width of [lo, hi) it covers) for every hop overlapping [lo, hi)."""
        out = []
        for r in self.receivers:
            for h in r.priority + r.background:
                w = min(h.stop_hz, hi_hz) - max(h.start_hz, lo_hz)
                if w > 0:
                    out.append((r, h, w))
        return out

    def band_revisit_s(self, band) -> tuple[float, float]:
        """(mean, worst) revisit of a band's hops."""
        rev = [r.revisit_s(h) for r, h, _w in self.hops_in(band.start_hz, band.stop_hz)]
        return (float(np.mean(rev)), float(np.max(rev))) if rev else (math.inf, math.inf)

    def poi(self, lo_hz: float, hi_hz: float, burst_s: float, repeat_every_s: float | None = None,
            window_s: float = REPEAT_WINDOW_S) -> float:
        """Probability of intercepting a burst of ``burst_s`` at a uniformly random frequency in
        [lo, hi) and time (see the module docstring); repeated every ``repeat_every_s`` for ``window_s``."""
        covered = self.hops_in(lo_hz, hi_hz)
        width = hi_hz - lo_hz
        if not covered or width <= 0:
            return 0.0
        total = 0.0
        for r, h, w in covered:
            total += w * hop_poi(r, h, burst_s, self.min_overlap_s, repeat_every_s, window_s)
        return min(1.0, total / width)

    def records(self) -> list[dict[str, Any]]:
        """JSON-lines form: a "plan" record, one "hop" per hop, one "band" per band (revisit, POI)."""
        recs: list[dict[str, Any]] = [{
            "type": "plan", "step_hz": self.step_hz, "priority_revisit_s": self.priority_revisit_s,
            "min_overlap_s": self.min_overlap_s, "background": self.background,
            "receivers": [r.as_dict() for r in self.receivers],
            "poi_bursts_s": list(POI_BURSTS_S), "repeat_every_s": REPEAT_EVERY_S, "repeat_window_s": REPEAT_WINDOW_S,
        }]
        for r in self.receivers:
            for h in r.priority + r.background:
                recs.append({"type": "hop", "receiver": r.receiver, **h.as_dict(), "revisit_s": round(r.revisit_s(h), 4)})
        for b in self.tiers_and_bands():
            mean, worst = self.band_revisit_s(b)
            recs.append({
                "type": "band", "name": b.name, "start_hz": b.start_hz, "stop_hz": b.stop_hz, "priority": b.priority,
                "revisit_s": round(mean, 4), "revisit_max_s": round(worst, 4),
                "poi_once": [round(self.poi(b.start_hz, b.stop_hz, L), 4) for L in POI_BURSTS_S],
                "poi_repeated": [round(self.poi(b.start_hz, b.stop_hz, L, REPEAT_EVERY_S), 4) for L in POI_BURSTS_S],
            })
        return recs

    def tiers_and_bands(self) -> list[Any]:
        """The configured bands, plus a pseudo-band "rest" for background hops outside every band."""
        from ..agent.config import BandConfig

        out = list(self.bands)
        rest = [h for r in self.receivers for h in r.background if not h.bands]
        if rest:
            out.append(BandConfig("rest-of-range", min(h.start_hz for h in rest), max(h.stop_hz for h in rest), False))
        return out


# --------------------------------------------------------------------------------------------- POI
def _merge(iv: np.ndarray) -> np.ndarray:
    """Union of intervals (n, 2) as sorted, disjoint intervals."""
    if not len(iv):
        return iv
    iv = iv[np.argsort(iv[:, 0])]
    starts, ends = iv[:, 0], np.maximum.accumulate(iv[:, 1])
    new = np.ones(len(iv), dtype=bool)
    new[1:] = starts[1:] > ends[:-1]
    idx = np.flatnonzero(new)
    return np.column_stack([starts[idx], np.append(ends[idx[1:] - 1], ends[-1])])


def _wrap(iv: np.ndarray, period: float) -> np.ndarray:
    """Intervals folded into [0, period) (splitting those that cross the edge)."""
    out = []
    for a, b in iv:
        if b - a >= period:
            return np.array([[0.0, period]])
        a0 = a % period
        b0 = a0 + (b - a)
        if b0 <= period:
            out.append((a0, b0))
        else:
            out.append((a0, period))
            out.append((0.0, b0 - period))
    return np.array(out, dtype=float).reshape(-1, 2)


def hop_poi(r: ReceiverPlan, hop: Hop, burst_s: float, min_overlap_s: float,
            repeat_every_s: float | None = None, window_s: float = REPEAT_WINDOW_S) -> float:
    """POI of a burst on ``hop`` of receiver plan ``r`` (module docstring)."""
    m = min_overlap_s
    if burst_s < m or hop.dwell_s < m:
        return 0.0
    passes = r.period_passes
    period = passes * r.pass_s
    if period <= 0:
        return 0.0
    wins = r.visits.get(hop.center_hz)
    if wins is None or not len(wins):
        return 0.0
    hit = np.column_stack([wins[:, 0] + m - burst_s, wins[:, 1] - m])
    hit = _merge(_wrap(hit, period))
    if repeat_every_s:
        n = max(1, int(window_s // repeat_every_s))
        shifted = [hit - j * repeat_every_s for j in range(n)]
        hit = _merge(_wrap(np.concatenate(shifted), period))
    return float(min(1.0, np.sum(hit[:, 1] - hit[:, 0]) / period))


# ----------------------------------------------------------------------------------------- building
def retune_s_for(profile, sample_rate_hz: float) -> float:
    """Planned retune cost from a receiver profile: worst settling time + discarded samples."""
    return float(profile.settle_max_s + profile.discard_samples / sample_rate_hz)


def retune_s_from_source(info, sample_rate_hz: float) -> float | None:
    """Retune cost an opened receiver reports (``Source.describe()``), when it says: the simulator's
    stale samples, or the settle time and discarded bytes of the rtl_tcp and USB backends."""
    extra = getattr(info, "extra", {}) or {}
    if info.driver == "sim" and "stale_samples" in extra:
        return float(extra["stale_samples"]) / sample_rate_hz
    if "settle_s" in extra and "discard_bytes" in extra:
        return (float(extra["settle_s"]) + float(extra["discard_bytes"]) / 2.0 / sample_rate_hz
                + dwell_guard_samples(info, sample_rate_hz) / sample_rate_hz)
    return None


#: rtl_tcp has no marker where a retune took effect: the client drains and discards, yet in about one
#: retune in twenty up to 8192 samples of the old tuning still arrive (measured against ``sdrwatch
#: simulate``); the agent drops this much more at the start of every dwell on an rtl_tcp receiver
RTL_TCP_GUARD_S = 0.007


def dwell_guard_samples(info, sample_rate_hz: float) -> int:
    """Samples the agent drops at the start of each dwell (after the backend's own discard)."""
    return int(round(RTL_TCP_GUARD_S * sample_rate_hz)) if getattr(info, "driver", "") == "rtl_tcp" else 0


def _tile(lo: float, hi: float, step: float) -> list[float]:
    """Hop centres covering [lo, hi) with ``step`` wide hops, centred on the range."""
    n = max(1, math.ceil((hi - lo) / step - 1e-9))
    first = 0.5 * (lo + hi) - 0.5 * (n - 1) * step
    return [first + i * step for i in range(n)]


def _subtract(ranges: list[tuple[float, float]], cut: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for lo, hi in ranges:
        pieces = [(lo, hi)]
        for clo, chi in cut:
            nxt = []
            for a, b in pieces:
                if chi <= a or clo >= b:
                    nxt.append((a, b))
                    continue
                if a < clo:
                    nxt.append((a, clo))
                if chi < b:
                    nxt.append((chi, b))
            pieces = nxt
        out.extend(pieces)
    return out


def _union(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(a, b) for a, b in merged]


def _mhz(hz: float) -> str:
    return f"{hz / 1e6:g}"


@dataclass
class _Rx:
    name: str
    profile: Any
    rate: float
    retune_s: float
    priority: list[Hop] = field(default_factory=list)
    background: list[Hop] = field(default_factory=list)

    def can_tune(self, center_hz: float) -> bool:
        return self.profile.tunable(center_hz)

    def load(self, tier: str, dwell_s: float) -> float:
        return sum(self.retune_s + h.dwell_s for h in (self.priority if tier == "priority" else self.background))


def build_plan(config, *, tuners: dict[str, str] | None = None, retune_s: dict[str, float] | None = None) -> SweepPlan:
    """The sweep plan of a :class:`~sdrwatch.agent.config.SiteConfig`.

    ``tuners`` maps receiver names to the tuner an opened receiver reported (default: the config's
    ``tuner``, else ``r820t``); ``retune_s`` maps receiver names to measured retune costs (default:
    ``[sweep] retune_s``, else the profile's). Raises a one-line :class:`PlanError` for a plan that
    cannot be run.
    """
    from ..radio.profiles import load_profile

    sw = config.sweep
    tuners = tuners or {}
    retune_s = retune_s or {}
    rxs: list[_Rx] = []
    for rc in config.receivers:
        prof = load_profile(tuners.get(rc.name) or rc.tuner or "r820t")
        prof.check_sample_rate(rc.sample_rate_hz)
        rt = retune_s.get(rc.name)
        if rt is None:
            rt = sw.retune_s if sw.retune_s is not None else retune_s_for(prof, rc.sample_rate_hz)
        rxs.append(_Rx(rc.name, prof, rc.sample_rate_hz, float(rt)))
    step = min(r.rate * r.profile.usable_fraction for r in rxs)

    def check_band(b) -> None:
        for r in rxs:
            ranges = r.profile.usable_ranges_hz
            if any(lo <= b.start_hz and b.stop_hz <= hi for lo, hi in ranges):
                return
        r = rxs[0]
        gaps = [g for g in r.profile.gaps_hz if g[0] < b.stop_hz and g[1] > b.start_hz]
        where = (f"crosses the {r.profile.name} tuning gap {_mhz(gaps[0][0])}-{_mhz(gaps[0][1])} MHz" if gaps else
                 "is outside the tuning range of every receiver (" + "; ".join(
                     f"{x.name} {x.profile.name}: " + ", ".join(f"{_mhz(lo)}-{_mhz(hi)} MHz" for lo, hi in x.profile.usable_ranges_hz)
                     for x in rxs) + ")")
        raise PlanError(f"band {b.name!r} {_mhz(b.start_hz)}-{_mhz(b.stop_hz)} MHz {where}")

    for b in config.bands:
        check_band(b)

    def bands_of(lo: float, hi: float, priority: bool) -> tuple[str, ...]:
        return tuple(b.name for b in config.bands if b.priority == priority and b.start_hz < hi and b.stop_hz > lo)

    def clamp_center(c: float, lo_range: float, hi_range: float) -> float:
        return min(max(c, lo_range), hi_range)

    # priority hops: each priority band tiled on its own (overlapping priority bands merged first)
    prio_ranges = _union([(b.start_hz, b.stop_hz) for b in config.bands if b.priority])
    prio_hops: list[Hop] = []
    for lo, hi in prio_ranges:
        for c in _tile(lo, hi, step):
            prio_hops.append(Hop(c, c - step / 2, c + step / 2, "priority", sw.dwell_s, bands_of(c - step / 2, c + step / 2, True)))
    covered = [(h.start_hz, h.stop_hz) for h in prio_hops]

    # background hops
    if sw.background == "tuner":
        bg_ranges = _union([rg for r in rxs for rg in r.profile.usable_ranges_hz])
    elif sw.background == "bands":
        bg_ranges = _union([(b.start_hz, b.stop_hz) for b in config.bands if not b.priority])
    else:
        bg_ranges = []
    bg_hops: list[Hop] = []
    full = _union([rg for r in rxs for rg in r.profile.usable_ranges_hz])
    for lo, hi in _subtract(bg_ranges, covered):
        if hi - lo < 0.02 * step:
            continue  # slivers between priority hops
        for c in _tile(lo, hi, step):
            # the hop owns only its share of [lo, hi): the ends of a tiling overhang the range
            own_lo, own_hi = max(lo, c - step / 2), min(hi, c + step / 2)
            rng = next(((a, b) for a, b in full if a <= c <= b), None)
            if rng is None:  # a tile centre just past the end of the range: pull it in
                rng = min(full, key=lambda ab: min(abs(ab[0] - c), abs(ab[1] - c)))
                c = clamp_center(c, rng[0], rng[1])
            bg_hops.append(Hop(c, own_lo, own_hi, "background", sw.background_dwell_s, bands_of(own_lo, own_hi, False)))

    # share the hops among the receivers: least loaded that can tune each
    for tier, hops in (("priority", prio_hops), ("background", bg_hops)):
        for h in hops:
            able = [r for r in rxs if r.can_tune(h.center_hz)]
            if not able:
                raise PlanError(f"{_mhz(h.center_hz)} MHz ({'/'.join(h.bands) or tier}) cannot be tuned by any receiver")
            best = min(able, key=lambda r: (r.load(tier, h.dwell_s), rxs.index(r)))
            (best.priority if tier == "priority" else best.background).append(h)

    plans = []
    target = sw.priority_revisit_s
    for r in rxs:
        pr = sum(r.retune_s + h.dwell_s for h in r.priority)
        if pr > target + 1e-9:
            raise PlanError(
                f"the priority bands need {len(r.priority)} hops x ({r.retune_s * 1e3:.1f} ms retune + {sw.dwell_s:g} s dwell) = "
                f"{pr:.2f} s per pass on {r.name}, more than priority_revisit_s = {target:g} s: add a receiver, shorten dwell_s "
                f"or narrow the priority bands")
        k = 0
        if r.background:
            if r.priority:
                k = int(math.floor((target - pr) / (r.retune_s + sw.background_dwell_s) + 1e-9))
                if k < 1:
                    raise PlanError(
                        f"no time left for the background sweep on {r.name}: its priority hops take {pr:.2f} s of the "
                        f"{target:g} s revisit and one background hop needs {r.retune_s + sw.background_dwell_s:.3f} s "
                        f"(raise priority_revisit_s, shorten dwell_s or set background = \"none\")")
                k = min(k, len(r.background))
            else:
                k = len(r.background)
        crop = float(np.clip(1.0 - step / r.rate, 0.0, 0.5))
        plans.append(ReceiverPlan(r.name, r.profile.key, r.rate, crop, r.retune_s, tuple(r.priority), tuple(r.background), k))
    if not any(p.priority or p.background for p in plans):
        raise PlanError("the plan has no hops: give a band (or background = \"tuner\")")
    return SweepPlan(tuple(plans), tuple(config.bands), step, target, sw.min_overlap_s, sw.background)


# --------------------------------------------------------------------------------------- simulation
def simulate_intercepts(timeline: Sequence[tuple[float, float, float, float]], lo_hz: float, hi_hz: float, burst_s: float,
                        min_overlap_s: float, *, trials: int = 20000, repeat_every_s: float | None = None,
                        window_s: float = REPEAT_WINDOW_S, seed: int = 1) -> float:
    """Monte Carlo check of :meth:`SweepPlan.poi` on a recorded timeline of dwells
    ``(start_s, end_s, kept_lo_hz, kept_hi_hz)`` (from the plan's model or from a real run): the share of
    random bursts (uniform time and frequency) that overlap some dwell covering their frequency by at
    least ``min_overlap_s``. Independent of the interval arithmetic in :func:`hop_poi`."""
    tl = np.asarray(timeline, dtype=float).reshape(-1, 4)
    t_lo, t_end = tl[:, 0].min(), tl[:, 1].max()
    tl = tl[(tl[:, 3] > lo_hz) & (tl[:, 2] < hi_hz)]  # only dwells that watch the band
    rng = np.random.default_rng(seed)
    n_rep = max(1, int(window_s // repeat_every_s)) if repeat_every_s else 1
    span = (n_rep - 1) * (repeat_every_s or 0.0) + burst_s
    t_hi = t_end - span
    if t_hi <= t_lo:
        raise ValueError("timeline too short for this burst train")
    t0 = rng.uniform(t_lo, t_hi, trials)
    f = rng.uniform(lo_hz, hi_hz, trials)
    hit = np.zeros(trials, dtype=bool)
    for j in range(n_rep):
        t = t0 + j * (repeat_every_s or 0.0)
        for a, b, flo, fhi in tl:
            ov = np.minimum(t + burst_s, b) - np.maximum(t, a)
            hit |= (ov >= min_overlap_s - 1e-12) & (f >= flo) & (f < fhi)
    return float(hit.mean())
