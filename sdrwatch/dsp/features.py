"""Modulation features of one emission, from a snippet of its IQ: what band and bandwidth cannot tell.

Band, bandwidth and time pattern put a 433.92 MHz garage remote and a pager-like FSK link in the
same box. Four features, all vectorised numpy over the snippet, separate them:

* **OOK on/off envelope.** The channel's envelope power ``|y|^2`` is split at the midpoint (in dB)
  between the noise level (5th percentile) and the keyed level (99th percentile). On-keyed runs
  shorter than ``OOK_RUN_S`` repeated many times are on/off keying (remotes, alarms); a few long runs
  are packets of a constant-envelope modulation.
* **FSK two-peak spectrum.** The instantaneous frequency ``f[n] = arg(y[n] conj(y[n-1])) fs / 2 pi``
  over the keyed samples is histogrammed; 2-FSK/GFSK shows two peaks at ``+-shift/2`` with a dip
  between them (``fsk_dip`` = dip over the smaller peak, below ``FSK_DIP`` counts as two peaks).
* **FM voice flatness.** Analog FM with speech spreads the instantaneous frequency over one broad
  hump (``freq_spread_hz`` = its standard deviation), and its power spectrum over the occupied band is
  smooth: ``flatness`` = geometric over arithmetic mean of the channel PSD (1 = flat, ~0 = a spike).
* **LoRa chirps.** Over windows of ``CHIRP_WIN`` samples the instantaneous frequency of a chirp is
  a straight line sweeping a large part of the band, always with the same sign of slope (up-chirps).
  ``chirp_score`` = share of windows that fit a line (R^2 >= 0.8, sweep >= 15 % of the bandwidth)
  times how one-signed their slopes are (voice FM ramps up and down alike and scores ~0).

``modulation`` is the verdict: "ook", "chirp", "fsk", "fm", "cw" or "unknown" (too weak or too short
to tell). Units: Hz, seconds, dB; the IQ is complex at full scale 1.0 (sdrwatch.radio.iq).

>>> import numpy as np
>>> fs = 1e6; n = np.arange(200_000)
>>> bits = np.repeat(np.random.default_rng(1).integers(0, 2, 200_000 // 833 + 1), 833)[: n.size]
>>> iq = np.exp(2j * np.pi * np.cumsum(np.where(bits, 4.5e3, -4.5e3)) / fs)   # 1200 bd 2-FSK
>>> f = extract(iq.astype(np.complex64), fs, offset_hz=0.0, bandwidth_hz=12e3)
>>> f.modulation, round(f.fsk_shift_hz / 1e3)
('fsk', 9)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

#: on-keyed runs shorter than this are OOK symbols, not packets (s)
OOK_RUN_S = 0.004
#: at least this many on/off symbols (runs followed by a gap shorter than OOK_GAP_S) make OOK
OOK_MIN_RUNS = 6
#: an off-gap shorter than this is between symbols of one burst, not between bursts (s)
OOK_GAP_S = 0.01
#: the envelope is smoothed over this long before keying is judged (s)
SMOOTH_S = 50e-6
#: a dip below this share of the smaller peak separates two FSK tones; up to FSK_AMBIGUOUS_DIP the
#: verdict is "unknown" (a weak or wide-estimated FSK signal, not evidence of FM)
FSK_DIP = 0.55
FSK_AMBIGUOUS_DIP = 0.8
#: samples per chirp-fit window (at the channel rate)
CHIRP_WIN = 256
#: at least this keyed depth (dB over noise) before any modulation is judged
MIN_DEPTH_DB = 8.0
#: the channel kept around the emission, in bandwidths each side: wide enough that both tones of an
#: FSK signal whose occupied bandwidth was under-estimated stay inside (else it would look on/off keyed)
CHANNEL_HALF_BW = 1.5
#: the narrower channel the instantaneous frequency and the PSD are measured in (bandwidths each side)
FREQ_HALF_BW = 0.55
#: OOK gaps fall to the noise: their median level stays in the lowest OOK_GAP_SHARE of the depth (dB)
OOK_GAP_SHARE = 0.3
#: longest snippet analysed (samples at the input rate); longer input is cut to its start
MAX_SAMPLES = 1 << 20


@dataclass(frozen=True)
class Features:
    """Features of one emission's IQ (see module docstring). ``as_dict`` gives JSON-ready numbers."""

    modulation: str
    depth_db: float  # keyed level over the noise level in the channel
    on_runs: int  # number of keyed runs
    median_run_s: float  # median length of a keyed run
    fsk_shift_hz: float  # distance between the two instantaneous-frequency peaks (0: one peak)
    fsk_dip: float  # dip between the peaks over the smaller peak (1: no dip)
    freq_spread_hz: float  # standard deviation of the instantaneous frequency while keyed
    flatness: float  # spectral flatness of the channel PSD over the occupied band, 0..1
    chirp_score: float  # 0..1
    channel_rate_hz: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


UNKNOWN = Features("unknown", 0.0, 0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)


def channelize(iq: np.ndarray, sample_rate_hz: float, offset_hz: float, bandwidth_hz: float,
               half_widths: tuple[float, ...] = (CHANNEL_HALF_BW,)) -> tuple[list[np.ndarray], float, list[float]]:
    """Shift ``offset_hz`` to 0 Hz, keep ``w x bandwidth_hz`` each side of it for each ``w`` in
    ``half_widths`` (FFT brick walls) and decimate, all to one channel rate. Returns (one channel IQ
    per width, the channel rate in Hz, the noise power expected in each channel), the noise from the
    median bin of the whole snippet's spectrum (most of a hop is noise)."""
    x = np.asarray(iq, dtype=np.complex64)[:MAX_SAMPLES]
    n = len(x)
    want_hz = min(sample_rate_hz, max(2.5 * max(half_widths) * bandwidth_hz, 25e3))
    m = int(min(n, max(16, 2 ** np.ceil(np.log2(n * want_hz / sample_rate_hz)))))
    spec = np.fft.fft(x)
    mag = spec.real ** 2 + spec.imag ** 2
    bin_noise = float(np.median(mag) / np.log(2.0))  # the mean of an exponential is its median / ln 2
    k0 = int(round(offset_hz / sample_rate_hz * n))
    rel = np.fft.fftfreq(m, 1.0 / m).astype(np.int64)
    sel = spec[(k0 + rel) % n]
    ys, noises = [], []
    for w in half_widths:
        keep = np.abs(rel) <= w * bandwidth_hz / sample_rate_hz * n + 1
        ys.append((np.fft.ifft(np.where(keep, sel, 0)) * (m / n)).astype(np.complex64))
        # Parseval: mean |y|^2 = sum of the kept bins' |X_k|^2 / n^2
        noises.append(bin_noise * int(keep.sum()) / float(n) ** 2)
    return ys, sample_rate_hz * m / n, noises


def _runs(on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the True runs of ``on``."""
    d = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return starts, ends - starts


def _fill(on: np.ndarray, value: bool, shorter_than: int) -> np.ndarray:
    """Set runs of ``not value`` shorter than ``shorter_than`` samples to ``value`` (closing/opening)."""
    starts, lengths = _runs(on != value)
    short = lengths < shorter_than
    out = on.copy()
    if short.any():
        mark = np.zeros(len(on) + 1, np.int32)
        np.add.at(mark, starts[short], 1)
        np.add.at(mark, starts[short] + lengths[short], -1)
        out[np.cumsum(mark[:-1]) > 0] = value
    return out
def _two_peaks(f_hz: np.ndarray, half_bw_hz: float) -> tuple[float, float]:
    """(shift between the two highest peaks of the smoothed histogram, dip over the smaller peak)."""
    edges = np.linspace(-half_bw_hz, half_bw_hz, 65)
    h, _ = np.histogram(f_hz, edges)
    h = np.convolve(h.astype(float), np.array([1, 2, 3, 2, 1], float) / 9.0, mode="same")
    if h.max() <= 0:
        return 0.0, 1.0
    peaks = np.flatnonzero((h[1:-1] >= h[:-2]) & (h[1:-1] > h[2:]) & (h[1:-1] >= 0.2 * h.max())) + 1
    if len(peaks) < 2:
        return 0.0, 1.0
    a, b = np.sort(peaks[np.argsort(h[peaks])[-2:]])
    dip = h[a:b + 1].min() / min(h[a], h[b])
    centers = 0.5 * (edges[1:] + edges[:-1])
    return float(centers[b] - centers[a]), float(dip)


def _chirp_score(f_hz: np.ndarray, on: np.ndarray, bandwidth_hz: float) -> float:
    w = CHIRP_WIN
    nwin = len(f_hz) // w
    if nwin < 4:
        return 0.0
    fw = f_hz[: nwin * w].reshape(nwin, w)
    ok = on[: nwin * w].reshape(nwin, w).all(axis=1)
    fw = fw[ok]
    if len(fw) < 4:
        return 0.0
    t = np.arange(w) - (w - 1) / 2.0
    slope = fw @ t / (t @ t)
    resid = fw - fw.mean(axis=1, keepdims=True) - slope[:, None] * t
    var = fw.var(axis=1) * w
    r2 = 1.0 - (resid ** 2).sum(axis=1) / np.maximum(var, 1e-12)
    sweep = np.abs(slope) * w
    good = (r2 >= 0.8) & (sweep >= 0.03 * bandwidth_hz)
    if not good.any():
        return 0.0
    return float(good.mean() * abs(np.sign(slope[good]).mean()))


def extract(iq: np.ndarray, sample_rate_hz: float, *, offset_hz: float, bandwidth_hz: float) -> Features:
    """Features of the emission ``offset_hz`` from the centre of ``iq`` (complex, full scale 1.0,
    taken at ``sample_rate_hz``), occupying about ``bandwidth_hz``."""
    if len(iq) < 256 or not np.isfinite(bandwidth_hz) or bandwidth_hz <= 0:
        return UNKNOWN
    bandwidth_hz = max(bandwidth_hz, 2e3)
    (y, yn), rate, (noise, _) = channelize(iq, sample_rate_hz, offset_hz, bandwidth_hz, (CHANNEL_HALF_BW, FREQ_HALF_BW))
    p = (y.real ** 2 + y.imag ** 2).astype(np.float64)
    # smooth the envelope over SMOOTH_S (at least a reciprocal bandwidth) so noise does not chop runs
    k = max(1, int(round(rate * SMOOTH_S)), int(round(rate / bandwidth_hz)))
    if k > 1:
        p = np.convolve(p, np.ones(k) / k, mode="same")
    hi = float(np.percentile(p, 99))
    depth_db = 10 * np.log10(max(hi, 1e-30) / max(noise, 1e-30))
    if depth_db < MIN_DEPTH_DB:
        return replace(UNKNOWN, depth_db=float(depth_db), channel_rate_hz=float(rate))
    on = p > np.sqrt(noise * hi)  # midpoint in dB between the noise and the keyed level
    on = _fill(_fill(on, True, 2 * k), False, 2 * k)  # close short dips, then drop short blips
    starts, lengths = _runs(on)
    median_run_s = float(np.median(lengths) / rate) if len(lengths) else 0.0
    # instantaneous frequency over keyed samples, from the narrower channel (less noise)
    f_hz = np.angle(yn[1:] * np.conj(yn[:-1])).astype(np.float64) * (rate / (2 * np.pi))
    on_f = on[1:] & on[:-1]
    f_on = f_hz[on_f]
    if len(f_on) < 64:
        return replace(UNKNOWN, depth_db=float(depth_db), on_runs=int(len(lengths)), median_run_s=median_run_s, channel_rate_hz=float(rate))
    half = 0.6 * bandwidth_hz
    f_in = f_on[np.abs(f_on) <= half]
    shift_hz, dip = _two_peaks(f_in, half)
    spread_hz = float(np.std(f_in)) if len(f_in) else 0.0
    # channel PSD over the occupied band, keyed segments only (Welch, 64-sample segments)
    seg = 64
    whole = len(y) // seg * seg
    idx = np.flatnonzero(on[:whole].reshape(-1, seg).all(axis=1))
    flat = 0.0
    if len(idx):
        segs = yn[:whole].reshape(-1, seg)[idx[:4096]] * np.hanning(seg)
        psd = np.fft.fftshift((np.abs(np.fft.fft(segs, axis=1)) ** 2).mean(axis=0))
        fr = np.fft.fftshift(np.fft.fftfreq(seg, 1.0 / rate))
        band = psd[np.abs(fr) <= bandwidth_hz / 2] + 1e-30
        if len(band) >= 3:
            flat = float(np.exp(np.mean(np.log(band))) / np.mean(band))
    chirp = _chirp_score(f_hz, on_f, bandwidth_hz)
    # OOK: many keyed runs, most of them symbol-short, inside bursts (gaps shorter than OOK_GAP_S)
    gaps = starts[1:] - (starts[:-1] + lengths[:-1])
    in_burst = gaps < OOK_GAP_S * rate
    symbol_runs = int(in_burst.sum())
    short = lengths < OOK_RUN_S * rate
    gap_db = depth_db
    if symbol_runs:
        g0 = (starts[:-1] + lengths[:-1])[in_burst]
        gl = gaps[in_burst]
        mark = np.zeros(len(p) + 1, np.int32)
        np.add.at(mark, g0, 1)
        np.add.at(mark, g0 + gl, -1)
        gap_p = p[np.cumsum(mark[:-1]) > 0]
        if len(gap_p):
            gap_db = 10 * np.log10(max(float(np.median(gap_p)), 1e-30) / max(noise, 1e-30))
    if symbol_runs >= OOK_MIN_RUNS and short.mean() >= 0.5 and gap_db <= OOK_GAP_SHARE * depth_db:
        mod = "ook"
    elif chirp >= 0.3:
        mod = "chirp"
    elif shift_hz > 0 and dip < FSK_DIP and shift_hz >= 0.15 * bandwidth_hz:
        mod = "fsk"
    elif shift_hz > 0 and dip < FSK_AMBIGUOUS_DIP and shift_hz >= 0.15 * bandwidth_hz:
        mod = "unknown"
    elif spread_hz >= 0.08 * bandwidth_hz:
        mod = "fm"
    else:
        mod = "cw"
    return Features(mod, float(depth_db), int(len(lengths)), median_run_s, shift_hz, dip, spread_hz, flat, chirp, float(rate))
