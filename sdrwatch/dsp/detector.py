"""The detector's maths, in one place: thresholds, noise floor, detection against a baseline, extraction.

Model (``../shared/research/domain.md`` §3)
-------------------------------------------
A bin of one windowed periodogram of complex Gaussian noise with mean power s^2 is s^2 * Exp(1).
The mean of K periodograms (Welch, overlap-corrected K_eff = K / (1 + 2 sum rho^2), see
:func:`sdrwatch.dsp.spectrum.averaging_efficiency`) is

    P / s^2 ~ Gamma(shape=K_eff, scale=1/K_eff)            (mean 1, variance 1/K_eff)

1. **Known noise** (reference from very many averages):  flag P > s^2 * T_gamma with
   ``T_gamma = gamma.isf(pfa, a=K_eff, scale=1/K_eff)``  (exact; e.g. K=32, pfa=1e-6 -> 3.17 dB).
2. **Noise known from a baseline with K_ref averages**: under H0 the ratio of two independent
   Gamma means is F-distributed,

       P_test / P_ref ~ F(2 K_test, 2 K_ref)   ->   T_F = f.isf(pfa, 2 K_test, 2 K_ref)

   which tends to T_gamma as K_ref -> inf and accounts for the baseline's own estimation error
   (a 0.5 dB error in the floor would otherwise raise pfa 20-fold at K=16, §3.4).
   Both are computed by :mod:`sdrwatch.dsp.quantiles` (``math`` only, held to ``scipy.special``'s
   ``gammainccinv`` and ``fdtri`` within 1e-12 by the tests): ``T_gamma = gamma_isf(K_eff, pfa) / K_eff``,
   ``T_F = f_isf(2 K_test, 2 K_ref, pfa)``; importing ``scipy.special`` or ``scipy.stats`` would cost
   a replay about 0.3-0.5 s of start-up.
3. **Robust noise floor** where bins are sometimes occupied: the q-quantile over time of a bin's
   frames (each with K0_eff averages) divided by the Gamma(K0_eff, 1/K0_eff) q-quantile is an unbiased
   mean noise power as long as the bin is free more than q of the time (ITU-R SM.1753-style
   order statistic). Emitters that were on all the time are then found across frequency: a bin more
   than 3 dB over the running median (in dB, over half the band) of the floor, which follows the
   passband's ripple and roll-off but not emitters up to a quarter of the band wide, is occupied, and
   its floor is interpolated from the free bins beside it. The estimate's precision counts as 0.4
   of the frames' averages.
4. **Baseline-difference detection** (§3.7), at integration scale s (a window of m frames):
   - a bin is *occupied* if at any scale j the baseline's max-hold ``H_j`` over n_j windows exceeded
     ``s^2 * T_F(pfa_occ / n_j)`` (the max of n_j noise windows passes T_F(p) with probability ~ n_j p)
     (some users only show at a long integration, e.g. the skirts of a rarely keyed handheld);
   - its envelope is ``H = max_j H_j``: the highest window mean the baseline ever showed there, so a
     benign user keyed for longer than in the baseline, at its usual level, is not news;
     occupancy and ``H`` are widened by +-``slop_bins`` to absorb ppm drift;
   - *new*: quiet bin and ``P > s^2 * T_F(pfa)``;
   - *changed*: occupied bin and ``P > H * 10^(margin_db/10)`` (and above the noise threshold); an
     emission whose bins overlap a known emitter is reported as changed, otherwise as new. A change
     must also hold in total: summed over the detection and the known emitter it overlaps,
     sum P > sum H * 10^(margin_db/10), so a wideband FM station moving energy between its own bins
     with its programme is not a change;
   - each known emitter gets a guard band of 10 % of its width (at least ``slop_bins``) each side,
     tested like the emitter (``P > H * margin``) but an emission there that does not touch the
     emitter itself is new, not changed.
5. **Multiple integration times**: windows of m = 1, 10, 100, ... frames are tested independently, each
   with its own K_eff = m * K0_eff, so a 15 ms burst is caught by the short window and a weak
   continuous carrier by the long one. The family of tests is controlled by a small per-bin pfa
   (default 1e-9) and by requiring a cluster (below).
6. **Clusters** (LAD double threshold, Lehtomaki): bins over the lower threshold (pfa_low, default
   1e-3) form runs; a run is an emission if at least one bin passes the upper threshold and the run
   has at least ``min_bins`` bins. Runs one bin apart are joined (adjacent-cluster combining,
   LAD-ACC). Hann bins are correlated (power correlation 4/9 next door), so a neighbour of a bin over
   the upper threshold is over the lower one about 20 % of the time, not 0.1 %: measured on noise at
   2.4 MS/s that rule alone let through about 3 false runs a minute in single 5 ms frames. Windows
   shorter than ``short_frames`` frames therefore need ``short_upper_bins`` (2) bins over the upper
   threshold: 0 in the same minute, and any real emitter of a few kHz and 15 dB has them.
7. **Splatter**: in one window, a run at least ``splatter_db`` weaker than a stronger run and within
   twice that run's width of it is the stronger one's key clicks or sidelobes, and is absorbed. The
   same holds within a quarter of its width of a known (baseline-occupied) emitter that is on in this
   window: a strong FM station's skirts breathe with its programme and are not new transmitters.
8. **Channel widths** (matched-bandwidth filter bank, §3.10): the sum of m adjacent bins of a
   window (m = channel width / bin width, for each of ``channel_hz``) is tested the same way, with
   the averages of a sum of correlated bins, K_m = K m / (1 + 2 sum_{j<m} (1 - j/m) rho_j), rho_j the
   power correlation of bins j apart (Hann: 4/9, 1/36). A weak signal spread over many bins, too weak
   for any single bin, is found this way. Only windows of quiet bins are tested; a channel run that
   overlaps a per-bin emission is that emission. Its bandwidth is the channel width, or the run's.
   Channel widths up to an eighth of the band are used, on windows of at least ``channel_min_frames``
   frames (a burst short enough to need the 5 ms window is strong enough for single bins).
9. **Extraction** over a run's bins k with excess e_k = max(P_k - s_k^2, 0):
   centre = sum f_k e_k / sum e_k; bandwidth = the 99 % occupied bandwidth of e (ITU-R SM.328: the
   span between the 0.5 % and 99.5 % points of its cumulative sum) less the window's spread
   (ENBW - 1 bins), at least one bin;
   power (dBFS) = 10 log10(sum e_k / ENBW); in-band SNR = 10 log10(sum e_k / sum s_k^2).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .quantiles import f_isf, gamma_isf, gamma_ppf

#: relative precision of the order-statistic noise estimate, as a fraction of the frames' averages
PERCENTILE_EFFICIENCY = 0.4
NOISE_QUANTILE = 0.2
BUSY_DB = 3.0  # a bin this far over the local floor across frequency is taken as occupied


@dataclass(frozen=True)
class DetectorConfig:
    pfa: float = 1e-9  # per bin and test, upper threshold
    pfa_low: float = 1e-3  # per bin, lower threshold (cluster edges)
    pfa_occupied: float = 1e-4  # baseline occupancy test
    margin_db: float = 6.0  # "changed" margin over the baseline's max-hold
    slop_bins: int = 2  # frequency tolerance against the baseline (ppm drift)
    min_bins: int = 2  # bins per emission
    short_frames: int = 10  # windows shorter than this...
    short_upper_bins: int = 2  # ...need this many bins over the upper threshold (formula 6)
    splatter_db: float = 20.0  # weaker runs this far below a nearby stronger one are its splatter
    channel_hz: tuple[float, ...] = (12.5e3,)  # summed-bin tests (matched to a voice/pager channel)
    channel_min_frames: int = 10  # summed-bin tests only on windows this long (weak signals are long)
    scales: tuple[int, ...] = (1, 10, 100, 400)  # integration windows, in frames

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorConfig":
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


#: guard band around a known emitter, as a fraction of its width (its skirts breathe with its content)
GUARD_FRACTION = 0.1
#: how far from a known emitter (fraction of its width) a much weaker new run counts as its splatter
KNOWN_SPLATTER_FRACTION = 0.25
#: the smallest noise power per bin believed (-150 dBFS): below it is float rounding, not a receiver
NOISE_POWER_MIN = 1e-15


def _guard(occ: np.ndarray, slop_bins: int, fraction: float) -> np.ndarray:
    """Widen each run of occupied bins by max(slop_bins, fraction * its width) on both sides."""
    out = occ.copy()
    edges = np.diff(np.concatenate(([0], occ.view(np.int8), [0])))
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        g = max(slop_bins, int(np.ceil(fraction * (b - a))))
        out[max(a - g, 0): b + g] = True
    return out


def summed_bins_dof(k: float, m: int, rho: np.ndarray) -> float:
    """Averages worth of the sum of m adjacent bins, each with k averages (formula 8)."""
    j = np.arange(1, min(m, len(rho)))
    return float(k * m / (1.0 + 2.0 * np.sum((1.0 - j / m) * rho[j])))



def _window_prefix(means: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums over bins (float64, a zero column first) of the windows named in ``windows`` only,
    and each entry's row in them: ``cum[row[i], b] - cum[row[i], a]`` is the power of window
    ``windows[i]`` summed over bins a..b-1. A batch has many windows; its candidates sit in a few."""
    rows = np.flatnonzero(np.bincount(windows, minlength=len(means)))
    cum = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(means[rows], axis=1, dtype=np.float64)], axis=1)
    return cum, np.searchsorted(rows, windows)

def _runs(above_low: np.ndarray, above_up: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs of ``above_low`` (one-bin gaps joined) holding an ``above_up`` and >= min_len long."""
    above_low = above_low.copy()
    if len(above_low) > 2:
        above_low[1:-1] |= ~above_low[1:-1] & above_low[:-2] & above_low[2:]
    edges = np.diff(np.concatenate(([0], above_low.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # exclusive
    if not len(starts):
        return starts, ends
    hits = np.add.reduceat(above_up.astype(np.int32), starts)
    keep = (hits > 0) & ((ends - starts) >= min_len)
    return starts[keep], ends[keep]


def _window_sums(x: np.ndarray, m: int) -> np.ndarray:
    c = np.concatenate(([0.0], np.cumsum(x, dtype=np.float64)))
    return c[m:] - c[:-m]


def gamma_threshold(k_eff: float, pfa: float) -> float:
    """T with P(P/s^2 > T) = pfa for the mean of k_eff periodograms of noise (formula 1)."""
    # scipy.stats.gamma.isf(pfa, a=k_eff, scale=1/k_eff)
    return gamma_isf(k_eff, pfa) * (1.0 / k_eff)


def ratio_threshold(k_test: float, k_ref: np.ndarray | float, pfa: float) -> np.ndarray:
    """T with P(P_test/P_ref > T) = pfa, P_test and P_ref independent noise means (formula 2).

    ``k_ref`` may be an array (one per bin) or inf (known noise). Evaluated once per distinct value.
    """
    k_ref = np.atleast_1d(np.asarray(k_ref, dtype=float))
    uniq, inv = np.unique(k_ref, return_inverse=True)
    vals = np.array(
        [gamma_threshold(k_test, pfa) if not np.isfinite(u) or u > 1e7 else f_isf(2 * k_test, 2 * u, pfa) for u in uniq]
    )
    return vals[inv].reshape(k_ref.shape)


def gamma_quantile(k_eff: float, q: float) -> float:
    return gamma_ppf(k_eff, q) * (1.0 / k_eff)


def robust_noise_per_bin(frames: np.ndarray, k0_eff: float, q: float = NOISE_QUANTILE) -> np.ndarray:
    """Mean noise power per bin from the q-quantile over time of frames (T, bins) (formula 3)."""
    return (np.quantile(frames, q, axis=0) / gamma_quantile(k0_eff, q)).astype(np.float32)


def _running_median(y: np.ndarray, size: int) -> np.ndarray:
    """Median over ``size`` bins centred on each bin, the edges reflected (d c b a | a b c d), as
    ``scipy.ndimage.median_filter(y, size, mode="reflect")`` computes it (numpy only: no ndimage import)."""
    if size % 2 == 0 or size > len(y):
        import scipy.ndimage

        return scipy.ndimage.median_filter(y, size=size, mode="reflect")
    half = size // 2
    win = np.lib.stride_tricks.sliding_window_view(np.pad(y, half, mode="symmetric"), size)
    return np.median(win, axis=1)


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Grow runs of True by one bin each side per iteration (binary dilation, outside counts False)."""
    out = mask.copy()
    for _ in range(iterations):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        out = grown
    return out


def _running_max(x: np.ndarray, size: int) -> np.ndarray:
    """Max over ``size`` (odd) bins centred on each bin, the edge values repeated beyond the ends."""
    half = size // 2
    return np.lib.stride_tricks.sliding_window_view(np.pad(x, half, mode="edge"), size).max(axis=1)


def frequency_floor(noise_bin: np.ndarray, window_bins: int | None = None) -> np.ndarray:
    """Remove continuous emitters from a per-bin floor (formula 3, across frequency).

    A running median in dB over half the band (reflected at the edges) follows the receiver's
    passband ripple and roll-off, which are monotone or smooth, but not emitters narrower than a
    quarter of the band. Bins more than ``BUSY_DB`` above it (and two bins either side, for the
    skirts) are occupied; their floor is interpolated from the free bins around them. Free bins keep
    their own estimate exactly.
    """
    n = len(noise_bin)
    if window_bins is None:
        window_bins = max(31, n // 2) | 1
    y = 10 * np.log10(np.maximum(noise_bin.astype(np.float64), 1e-30))
    local = _running_median(y, min(window_bins, n))
    busy = y > local + BUSY_DB
    if not busy.any():
        return noise_bin.astype(np.float32)
    busy = _dilate(busy, 2)
    if busy.all():
        return noise_bin.astype(np.float32)
    idx = np.arange(n)
    out = noise_bin.astype(np.float64).copy()
    out[busy] = np.interp(idx[busy], idx[~busy], out[~busy])
    return out.astype(np.float32)


@dataclass
class Reference:
    """What a hop is compared with: per-bin noise and the baseline's max-hold at each scale.

    ``noise_power``: (bins,) mean noise power per bin (linear). ``noise_dof``: (bins,) how many
    averages that estimate is worth (inf = exact). ``maxhold``: (scales, bins) baseline max-hold of
    the window mean at each integration scale, or None (no baseline: every emission is new).
    ``maxhold_k``: K_eff of each maxhold row; ``maxhold_n``: how many windows it is the max of.
    """

    noise_power: np.ndarray
    noise_dof: np.ndarray
    maxhold: np.ndarray | None = None
    maxhold_k: np.ndarray | None = None
    maxhold_n: np.ndarray | None = None  # windows behind each max-hold row


@dataclass
class Detection:
    """One emission seen in one window at one scale (bins are indices into the hop's kept bins)."""

    lo_bin: int
    hi_bin: int
    center_bin: float
    power_dbfs: float
    snr_db: float
    margin_db: float  # how far the strongest bin stands over its upper threshold
    changed: bool  # True: stands above what the baseline showed there; False: new where it was quiet
    channel_bins: int = 0  # >0: found by the summed-bin test of that many bins (extent is approximate)
    obw_bins: float = 0.0  # 99 % occupied bandwidth of the excess power, in bins (window spread removed)


@dataclass
class DetectionBatch:
    """Detections of several windows as arrays (one entry per detection): ``window`` is the index of
    the window it was found in, the rest as in :class:`Detection`."""

    window: np.ndarray
    lo_bin: np.ndarray
    hi_bin: np.ndarray
    center_bin: np.ndarray
    power_dbfs: np.ndarray
    snr_db: np.ndarray
    margin_db: np.ndarray
    changed: np.ndarray
    channel_bins: np.ndarray
    obw_bins: np.ndarray

    _FIELDS = ("window", "lo_bin", "hi_bin", "center_bin", "power_dbfs", "snr_db", "margin_db", "changed", "channel_bins", "obw_bins")

    def __len__(self) -> int:
        return len(self.window)

    @classmethod
    def empty(cls) -> "DetectionBatch":
        i, f = np.zeros(0, np.int64), np.zeros(0)
        return cls(i, i, i, f, f, f, f, np.zeros(0, bool), i, f)

    def take(self, sel: np.ndarray) -> "DetectionBatch":
        return DetectionBatch(*(getattr(self, k)[sel] for k in self._FIELDS))

    @classmethod
    def concat(cls, parts: list["DetectionBatch"]) -> "DetectionBatch":
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in cls._FIELDS))

    def sorted(self) -> "DetectionBatch":
        return self.take(np.lexsort((self.lo_bin, self.window)))

    def per_window(self, n_windows: int) -> list[list[Detection]]:
        out: list[list[Detection]] = [[] for _ in range(n_windows)]
        for i in range(len(self)):
            out[int(self.window[i])].append(Detection(
                lo_bin=int(self.lo_bin[i]), hi_bin=int(self.hi_bin[i]), center_bin=float(self.center_bin[i]),
                power_dbfs=float(self.power_dbfs[i]), snr_db=float(self.snr_db[i]), margin_db=float(self.margin_db[i]),
                changed=bool(self.changed[i]), channel_bins=int(self.channel_bins[i]), obw_bins=float(self.obw_bins[i])))
        return out

    @classmethod
    def from_rows(cls, rows: list[tuple[int, Detection]]) -> "DetectionBatch":
        col = lambda f, dt: np.fromiter((f(w, d) for w, d in rows), dt, len(rows))  # noqa: E731
        return cls(
            window=col(lambda w, d: w, np.int64),
            lo_bin=col(lambda w, d: d.lo_bin, np.int64),
            hi_bin=col(lambda w, d: d.hi_bin, np.int64),
            center_bin=col(lambda w, d: d.center_bin, float),
            power_dbfs=col(lambda w, d: d.power_dbfs, float),
            snr_db=col(lambda w, d: d.snr_db, float),
            margin_db=col(lambda w, d: d.margin_db, float),
            changed=col(lambda w, d: d.changed, bool),
            channel_bins=col(lambda w, d: d.channel_bins, np.int64),
            obw_bins=col(lambda w, d: d.obw_bins, float),
        )

    @classmethod
    def from_lists(cls, per_window: list[list[Detection]]) -> "DetectionBatch":
        return cls.from_rows([(w, d) for w, ds in enumerate(per_window) for d in ds])


@dataclass
class _ScaleThresholds:
    upper: np.ndarray
    lower: np.ndarray
    occupied: np.ndarray
    envelope: np.ndarray
    # per channel width m: (noise sums, upper factor, lower factor, windows free of occupied bins)
    channels: dict = field(default_factory=dict)
    # runs of occupied bins (start, end exclusive): the baseline's known emitters, without guard bands
    occupied_runs: list = field(default_factory=list)
    core: np.ndarray | None = None  # occupied bins without the guard bands
    n_frames: int = 1
    # prefix sums of per-bin constants, made on first use
    cum_noise: np.ndarray | None = None
    cum_core: np.ndarray | None = None
    inv_upper: np.ndarray | None = None
    noise64: np.ndarray | None = None


class HopDetector:
    """Detection for one hop against a :class:`Reference`; thresholds cached per (scale, K)."""

    def __init__(self, ref: Reference, k0_eff: float, enbw_bins: float, cfg: DetectorConfig = DetectorConfig(),
                 bin_hz: float | None = None, bin_rho: np.ndarray | None = None):
        self.ref = ref
        self.k0_eff = float(k0_eff)
        self.enbw = float(enbw_bins)
        self.cfg = cfg
        self.bin_rho = np.asarray(bin_rho if bin_rho is not None else [1.0, 4 / 9, 1 / 36], dtype=float)
        nb = len(ref.noise_power)
        widths = {int(round(c / bin_hz)) for c in cfg.channel_hz} if bin_hz else set()
        self.widths = tuple(sorted(m for m in widths if 3 <= m <= nb // 8))
        self._cache: dict[tuple[int, int], _ScaleThresholds] = {}

    def thresholds(self, scale_index: int, n_frames: int) -> _ScaleThresholds:
        key = (scale_index, n_frames)
        th = self._cache.get(key)
        if th is not None:
            return th
        cfg, ref = self.cfg, self.ref
        k = n_frames * self.k0_eff
        noise = ref.noise_power
        upper = noise * ratio_threshold(k, ref.noise_dof, cfg.pfa)
        lower = noise * ratio_threshold(k, ref.noise_dof, cfg.pfa_low)
        nb = len(noise)
        occupied = np.zeros(nb, dtype=bool)
        occ = occupied
        envelope = np.zeros(nb, dtype=np.float32)
        if ref.maxhold is not None and len(ref.maxhold):
            # occupied at any scale -> occupied; the envelope is the highest window mean seen at any
            # scale, so a benign user keyed longer than in the baseline (at its usual level) stays quiet
            occ = np.zeros(nb, dtype=bool)
            counts = ref.maxhold_n if ref.maxhold_n is not None else np.ones(len(ref.maxhold))
            for hold, k_row, n_win in zip(ref.maxhold, ref.maxhold_k, counts):
                pfa = cfg.pfa_occupied / max(int(n_win), 1)  # the max of n windows
                occ |= hold > noise * ratio_threshold(float(k_row), ref.noise_dof, pfa)
            size = 2 * cfg.slop_bins + 1
            occupied = _guard(occ, cfg.slop_bins, GUARD_FRACTION)
            envelope = _running_max(ref.maxhold.max(axis=0), size)
            margin = 10 ** (cfg.margin_db / 10)
            upper = np.where(occupied, np.maximum(upper, envelope * margin), upper)
            lower = np.where(occupied, np.maximum(lower, envelope), lower)
        channels = {}
        for m in self.widths:
            dof_ref = summed_bins_dof(float(np.median(ref.noise_dof)), m, self.bin_rho) if np.all(np.isfinite(ref.noise_dof)) else np.inf
            k_m = summed_bins_dof(k, m, self.bin_rho)
            free = _window_sums(occupied.astype(np.float64), m) == 0
            channels[m] = (
                _window_sums(noise, m),
                float(ratio_threshold(k_m, dof_ref, cfg.pfa)[0]),
                float(ratio_threshold(k_m, dof_ref, cfg.pfa_low)[0]),
                free,
            )
        edges = np.diff(np.concatenate(([0], occ.view(np.int8), [0])))
        runs = list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
        th = _ScaleThresholds(upper.astype(np.float32), lower.astype(np.float32), occupied, envelope, channels, runs,
                              occ, n_frames)
        if len(self._cache) >= 32:  # partial windows of odd lengths: keep the cache bounded
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = th
        return th

    def detect(self, power: np.ndarray, scale_index: int, n_frames: int) -> list[Detection]:
        """Emissions in one window's mean power (bins,), per formulas 4-9."""
        return self.detect_many(power[None, :], scale_index, n_frames)[0]

    def detect_many(self, means: np.ndarray, scale_index: int, n_frames: int) -> list[list[Detection]]:
        """Emissions in each of several windows' mean power (windows, bins), per formulas 4-9."""
        return self.detect_batch(means, scale_index, n_frames).per_window(len(means))

    def detect_batch(self, means: np.ndarray, scale_index: int, n_frames: int) -> DetectionBatch:
        """Emissions in each of several windows' mean power (windows, bins), per formulas 4-9, as
        arrays sorted by window then lowest bin.

        Every stage runs on all windows at once: the per-bin clusters on the flattened, padded rows;
        the summed-bin (channel) test only on windows long enough for it; known-emitter splatter, the
        change-in-total test and splatter between runs on the detections' arrays.
        """
        means = np.asarray(means)
        th = self.thresholds(scale_index, n_frames)
        b = self._bin_stage(means, th)
        if n_frames >= self.cfg.channel_min_frames and th.channels:
            b = self._channel_stage(means, th, b)
        if len(b) and th.occupied_runs:
            b = b.take(self._not_known_splatter(b, means, th) & self._changed_in_total(b, means, th))
        if len(b) > 1:
            b = b.take(self._not_splatter(b))
        return b

    def _bin_stage(self, means: np.ndarray, th: _ScaleThresholds) -> DetectionBatch:
        """Per-bin clusters (formula 6) and their extraction (formula 9), vectorised over windows."""
        up = means > th.upper
        rows = np.flatnonzero(up.any(axis=1))
        if not rows.size:
            return DetectionBatch.empty()
        m = means[rows]
        nw, nb = m.shape
        low = m > th.lower
        if nb > 2:
            low[:, 1:-1] |= ~low[:, 1:-1] & low[:, :-2] & low[:, 2:]  # join one-bin gaps
        width = nb + 2  # one False column each side keeps runs inside their row
        pad = np.zeros((nw, width), dtype=bool)
        pad[:, 1:-1] = low
        edges = np.diff(pad.ravel().view(np.int8))
        rs = np.flatnonzero(edges == 1)  # padded flat index of each run's first bin, less one
        re = np.flatnonzero(edges == -1)
        if not rs.size:
            return DetectionBatch.empty()
        # every bin of every run, in order, as a flat index into (rows, bins): everything below works
        # on these few values, not on whole windows
        lengths = re - rs
        row_of = rs // width
        first = rs - row_of * width  # first bin of each run in its row
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        cells = np.repeat(row_of * nb + first - starts, lengths) + np.arange(int(lengths.sum()))
        hits = np.add.reduceat(up[rows].ravel()[cells].astype(np.int64), starts)
        need = self.cfg.short_upper_bins if th.n_frames < self.cfg.short_frames else 1
        keep = (hits >= need) & (lengths >= self.cfg.min_bins)
        if not keep.any():
            return DetectionBatch.empty()
        if not keep.all():
            cells = cells[np.repeat(keep, lengths)]
            lengths, row_of, first = lengths[keep], row_of[keep], first[keep]
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        ends = starts + lengths
        # per-bin constants (noise, the baseline's known emitters) are summed over a run from prefix
        # sums made once per hop and scale, not rebuilt for every batch of windows
        if th.cum_noise is None:
            th.cum_noise = np.concatenate(([0.0], np.cumsum(self.ref.noise_power.astype(np.float64))))
            th.cum_core = np.concatenate(([0], np.cumsum(th.core.astype(np.int64))))
            th.inv_upper = 1.0 / np.maximum(th.upper.astype(np.float64), 1e-300)
            th.noise64 = self.ref.noise_power.astype(np.float64)
        col = cells % nb
        p = m.ravel()[cells].astype(np.float64)
        ex = np.maximum(p - th.noise64[col], 0.0)
        cum_ex = np.concatenate(([0.0], np.cumsum(ex)))
        tot = cum_ex[ends] - cum_ex[starts]
        b0, b1 = first, first + lengths
        noise_tot = th.cum_noise[b1] - th.cum_noise[b0]
        cum_w = np.concatenate(([0.0], np.cumsum(ex * col)))
        center = (cum_w[ends] - cum_w[starts]) / np.maximum(tot, 1e-300)
        # 99 % occupied bandwidth: where the run's cumulative excess crosses 0.5 % and 99.5 %
        lo99 = np.searchsorted(cum_ex, cum_ex[starts] + 0.005 * tot, side="left")
        hi99 = np.searchsorted(cum_ex, cum_ex[starts] + 0.995 * tot, side="left")
        obw = np.maximum((hi99 - lo99 + 1) - (self.enbw - 1.0), 1.0)
        ratio = np.maximum.reduceat(p * th.inv_upper[col], starts)
        occupied = th.cum_core[b1] - th.cum_core[b0]
        ok = tot > 0
        return DetectionBatch(
            window=rows[row_of][ok],
            lo_bin=b0[ok],
            hi_bin=(b1 - 1)[ok],
            center_bin=center[ok],
            power_dbfs=10 * np.log10(tot[ok] / self.enbw),
            snr_db=10 * np.log10(tot[ok] / np.maximum(noise_tot[ok], 1e-30)),
            margin_db=10 * np.log10(ratio[ok]),
            changed=occupied[ok] > 0,
            channel_bins=np.zeros(int(ok.sum()), dtype=np.int64),
            obw_bins=obw[ok],
        )

    def _channel_stage(self, means: np.ndarray, th: _ScaleThresholds, b: DetectionBatch) -> DetectionBatch:
        """Summed-bin tests (formula 8) on each window; runs overlapping a per-bin emission are it."""
        nw, nb = means.shape
        # bins covered by per-bin detections, per window (prefix sums answer "any in lo..hi?")
        cover = np.zeros((nw, nb + 1), dtype=np.int32)
        np.add.at(cover, (b.window, b.lo_bin), 1)
        np.add.at(cover, (b.window, b.hi_bin + 1), -1)
        covered = np.cumsum(cover, axis=1)[:, :nb] > 0
        cov_cum = np.concatenate([np.zeros((nw, 1), np.int64), np.cumsum(covered, axis=1)], axis=1)
        cum_p = np.concatenate([np.zeros((nw, 1)), np.cumsum(means, axis=1, dtype=np.float64)], axis=1)
        found = []
        claimed: dict[int, np.ndarray] = {}  # per window: bins of the detections so far
        for m, (noise_sum, f_up, f_low, free) in th.channels.items():
            sums = cum_p[:, m:] - cum_p[:, :-m]
            up = (sums > noise_sum * f_up) & free
            # a run whose upper-threshold channels all touch a per-bin emission is that emission
            # (never clear): only windows with an untouched one can give anything
            touch = (cov_cum[:, m:] - cov_cum[:, :-m]) > 0
            for w in np.flatnonzero((up & ~touch).any(axis=1)):
                starts, ends = _runs((sums[w] > noise_sum * f_low) & free, up[w], 1)
                if not len(starts):
                    continue
                lo, hi = starts, ends + m - 2  # bins covered by the run of windows (inclusive)
                clear = (cov_cum[w, hi + 1] - cov_cum[w, lo]) == 0
                mine = claimed.get(int(w))
                if mine is None:
                    mine = claimed[int(w)] = covered[w].copy()
                for s_, e_, lo_, hi_ in zip(starts[clear], ends[clear], lo[clear], hi[clear]):
                    if mine[lo_: hi_ + 1].any():  # overlaps a channel run found just before
                        continue
                    over = float(np.max(sums[w, s_:e_] / (noise_sum[s_:e_] * f_up)))
                    d = self._extract(means[w], int(lo_), int(hi_), over, False, width_bins=max(m, int(e_ - s_)))
                    if d is not None:
                        d.channel_bins = m
                        found.append((int(w), d))
                        mine[d.lo_bin: d.hi_bin + 1] = True
        if not found:
            return b
        extra = DetectionBatch.from_rows(found)
        return DetectionBatch.concat([b, extra]).sorted()

    def _not_known_splatter(self, b: DetectionBatch, means: np.ndarray, th: _ScaleThresholds) -> np.ndarray:
        """False for new runs that are the skirts of a much stronger known emitter on now (formula 7)."""
        keep = np.ones(len(b), dtype=bool)
        cand = np.flatnonzero(~b.changed)
        if not cand.size:
            return keep
        ra = np.array([r[0] for r in th.occupied_runs])
        rb = np.array([r[1] for r in th.occupied_runs])
        g = np.maximum(self.cfg.slop_bins, KNOWN_SPLATTER_FRACTION * (rb - ra))
        reach = float(g.max())
        lo, hi, w = b.lo_bin[cand], b.hi_bin[cand], b.window[cand]
        # runs that can be near: b > lo - reach - 1 and a < hi + reach + 1 (runs are disjoint, sorted)
        i0 = np.searchsorted(rb, lo - reach - 1, side="right")
        i1 = np.searchsorted(ra, hi + reach + 1, side="left")
        cum_p, wi = _window_prefix(means, w)
        drop = np.zeros(len(cand), dtype=bool)
        for j in range(int(np.max(i1 - i0, initial=0))):
            r = i0 + j
            ok = r < i1
            rr = np.minimum(r, len(ra) - 1)
            near = np.maximum(ra[rr] - hi, lo - rb[rr] + 1) <= g[rr]
            run_dbfs = 10 * np.log10(np.maximum(cum_p[wi, rb[rr]] - cum_p[wi, ra[rr]], 1e-30) / self.enbw)
            drop |= ok & near & (run_dbfs - b.power_dbfs[cand] >= self.cfg.splatter_db)
        keep[cand[drop]] = False
        return keep

    def _changed_in_total(self, b: DetectionBatch, means: np.ndarray, th: _ScaleThresholds) -> np.ndarray:
        """A known emitter has changed only if the power over it and the detection, all bins together,
        stands ``margin_db`` over the envelope there: an FM station moving its energy between its own
        bins with the programme is not a change (formula 4). True for detections that are not changes."""
        keep = np.ones(len(b), dtype=bool)
        cand = np.flatnonzero(b.changed)
        if not cand.size:
            return keep
        ra = np.array([r[0] for r in th.occupied_runs])
        rb = np.array([r[1] for r in th.occupied_runs])
        lo, hi = b.lo_bin[cand], b.hi_bin[cand] + 1
        i0 = np.searchsorted(rb, lo, side="right")  # first run ending after lo
        i1 = np.searchsorted(ra, hi, side="left")  # runs starting before hi are below this
        any_run = i0 < i1
        lo = np.where(any_run, np.minimum(lo, ra[np.minimum(i0, len(ra) - 1)]), lo)
        hi = np.where(any_run, np.maximum(hi, rb[np.maximum(i1 - 1, 0)]), hi)
        cum_p, wi = _window_prefix(means, b.window[cand])
        cum_e = np.concatenate(([0.0], np.cumsum(th.envelope, dtype=np.float64)))
        p_tot = cum_p[wi, hi] - cum_p[wi, lo]
        e_tot = cum_e[hi] - cum_e[lo]
        keep[cand] = p_tot > e_tot * 10 ** (self.cfg.margin_db / 10)
        return keep

    def _extract(self, power: np.ndarray, s: int, e: int, over: float, changed: bool, width_bins: int | None = None) -> Detection | None:
        """Centre, power, SNR of the bins s..e-1 (formula 9). ``width_bins`` overrides the extent."""
        p = power[s:e].astype(np.float64)
        n = self.ref.noise_power[s:e].astype(np.float64)
        excess = np.maximum(p - n, 0.0)
        tot = excess.sum()
        if tot <= 0:
            return None
        center = float(np.dot(np.arange(s, e), excess) / tot)
        cum = np.cumsum(excess) / tot
        obw = float(np.searchsorted(cum, 0.995) - np.searchsorted(cum, 0.005) + 1) - (self.enbw - 1.0)
        lo, hi = s, e - 1
        if width_bins is not None:
            lo = int(round(center - (width_bins - 1) / 2))
            hi = lo + width_bins - 1
        return Detection(
            lo_bin=max(lo, 0),
            hi_bin=min(hi, len(power) - 1),
            center_bin=center,
            power_dbfs=float(10 * np.log10(tot / self.enbw)),
            snr_db=float(10 * np.log10(tot / max(float(n.sum()), 1e-30))),
            margin_db=float(10 * np.log10(over)),
            changed=changed,
            obw_bins=max(obw, 1.0),
        )

    def _not_splatter(self, b: DetectionBatch) -> np.ndarray:
        """False for runs that are the splatter of a much stronger run nearby in the same window
        (formula 7): a run is absorbed by a stronger run that is itself kept, at least ``splatter_db``
        stronger and within twice its width. Pairs are found by sorted search, not all against all."""
        n = len(b)
        width = b.hi_bin - b.lo_bin + 1
        reach = 2 * width
        # key orders detections by window, then lowest bin (as they are sorted)
        span = int(max(b.hi_bin.max(initial=0), 0)) + 4 * int(width.max(initial=1)) + 8
        key = b.window * span + b.lo_bin
        lo_key = b.window * span + b.lo_bin - reach - int(width.max(initial=1))
        hi_key = b.window * span + b.hi_bin + reach
        a0 = np.searchsorted(key, lo_key, side="left")
        a1 = np.searchsorted(key, hi_key, side="right")
        strong_i, weak_i = [], []
        for j in range(int(np.max(a1 - a0, initial=0))):
            other = a0 + j
            ok = other < a1
            o = np.minimum(other, n - 1)
            ok &= (b.window[o] == b.window) & (o != np.arange(n))
            ok &= b.power_dbfs - b.power_dbfs[o] >= self.cfg.splatter_db
            ok &= np.maximum(b.lo_bin - b.hi_bin[o], b.lo_bin[o] - b.hi_bin) <= reach
            strong_i.append(np.flatnonzero(ok))
            weak_i.append(o[ok])
        keep = np.ones(n, dtype=bool)
        if not strong_i:
            return keep
        k_idx, d_idx = np.concatenate(strong_i), np.concatenate(weak_i)
        if not k_idx.size:
            return keep
        # the greedy rule (strongest first, only kept runs absorb) as a fixed point: the dependency
        # runs from stronger to weaker, so it settles within the length of the longest chain
        for _ in range(n + 1):
            absorbed = np.zeros(n, dtype=bool)
            absorbed[d_idx[keep[k_idx]]] = True
            new = ~absorbed
            if np.array_equal(new, keep):
                break
            keep = new
        return keep
