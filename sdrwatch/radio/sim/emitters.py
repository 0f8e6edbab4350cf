"""Emitter models: each turns absolute sample indices into a complex baseband at its carrier offset.

The simulator never filters or resamples a signal across block boundaries. Every emitter is a closed-form
function of absolute time, or (FM kinds) a phase track on the emitter's own fixed time grid that is built
in self-contained chunks and interpolated at the receiver's sample times. A chunk's modulating signal has
its mean removed, so its phase integral is zero over the chunk: the phase starts every chunk at 0 and is
continuous without having to integrate from the beginning of time.

Phases are carried in cycles (float64) and reduced modulo 1 before ``cos``/``sin`` in float32.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .schedule import Schedule, hash_u64, hash_uniform, sub_seed

TWO_PI = 2.0 * math.pi


@dataclass
class Emitter:
    """One transmitter in a scene. ``power_dbfs`` is its power while keyed, at the receiver's ADC at the
    scene's reference gain; ``bandwidth_hz`` is its occupied bandwidth (used for in-band SNR and truth edges)."""

    kind: ClassVar[str] = "emitter"
    label: str
    freq_hz: float
    power_dbfs: float
    threat: bool
    schedule: Schedule
    seed: int
    ramp_s: float = 0.001
    fading_db_pp: float = 0.0
    fading_period_s: float = 20.0
    comment: str = ""
    bandwidth_override_hz: float | None = None

    # ------------------------------------------------------------------ interface for the scene
    @property
    def bandwidth_hz(self) -> float:
        return self.bandwidth_override_hz or self.occupied_bandwidth_hz()

    def occupied_bandwidth_hz(self) -> float:
        raise NotImplementedError

    def bandwidth_rule(self) -> str:
        """How :meth:`occupied_bandwidth_hz` is computed (written into docs and annotation comments)."""
        return "occupied bandwidth"

    def phase_cycles(self, n: np.ndarray, sample_rate_hz: float) -> np.ndarray | None:
        """Modulation phase in cycles at absolute sample indices ``n`` (None: unmodulated carrier)."""
        return None

    def keying(self, n: np.ndarray, sample_rate_hz: float, on_start_s: float) -> np.ndarray | None:
        """Amplitude keying inside an on-interval that started at ``on_start_s`` (None: constant)."""
        return None

    def fading(self, n: np.ndarray, sample_rate_hz: float) -> np.ndarray | None:
        """Slow level swing: ``fading_db_pp`` peak-to-peak, sinusoidal with period ``fading_period_s``."""
        if not self.fading_db_pp:
            return None
        theta = hash_uniform(self.seed, 99)[()]
        cyc = n * (1.0 / (sample_rate_hz * self.fading_period_s)) + theta
        cyc -= np.floor(cyc)
        x = cyc.astype(np.float32)
        x *= np.float32(TWO_PI)
        np.sin(x, out=x)
        x *= np.float32(0.5 * self.fading_db_pp * math.log(10.0) / 20.0)
        return np.exp(x, out=x)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "freq_hz": self.freq_hz, "power_dbfs": self.power_dbfs,
                "bandwidth_hz": self.bandwidth_hz, "threat": self.threat}


# ---------------------------------------------------------------------- simple kinds
@dataclass
class CW(Emitter):
    """Unmodulated carrier."""

    kind: ClassVar[str] = "cw"

    def occupied_bandwidth_hz(self) -> float:
        return 100.0

    def bandwidth_rule(self) -> str:
        return "100 Hz reference bandwidth for a carrier"


@dataclass
class OOK(Emitter):
    """EV1527-style OOK PWM remote (rtl_433 "Generic-Remote").

    A frame is 24 data bits, MSB first, then a sync: bit 1 = long pulse + short gap, bit 0 = short pulse + long
    gap, sync = short pulse + ``sync_gap_us`` gap. rtl_433 reports ``id`` = code >> 8 and ``cmd`` = code & 0xFF
    (both must be non-zero). Frames repeat back to back from the start of each on-interval.
    """

    kind: ClassVar[str] = "ook"
    code: int = 0x5A3C81
    short_us: float = 464.0
    long_us: float = 1404.0
    sync_gap_us: float = 464.0 * 31
    repeats: int = 8
    _starts_s: np.ndarray = field(init=False, repr=False)
    _ends_s: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s, l = self.short_us * 1e-6, self.long_us * 1e-6
        starts, ends, t = [], [], 0.0
        for i in range(23, -1, -1):
            width = l if (self.code >> i) & 1 else s
            starts.append(t)
            ends.append(t + width)
            t += s + l
        starts.append(t)
        ends.append(t + s)
        self._starts_s = np.array(starts)
        self._ends_s = np.array(ends)
        self.frame_s = t + s + self.sync_gap_us * 1e-6

    @property
    def transmission_s(self) -> float:
        return self.repeats * self.frame_s

    def occupied_bandwidth_hz(self) -> float:
        return 5.0 / (self.short_us * 1e-6)

    def bandwidth_rule(self) -> str:
        return "5/short pulse (99 % power bandwidth of the PWM keying with 50 us edges)"

    def keying(self, n: np.ndarray, sample_rate_hz: float, on_start_s: float) -> np.ndarray:
        origin = on_start_s if math.isfinite(on_start_s) else 0.0
        pos = np.mod(n * (1.0 / sample_rate_hz) - origin, self.frame_s)
        idx = np.searchsorted(self._starts_s, pos, side="right") - 1
        idx = np.clip(idx, 0, len(self._starts_s) - 1)
        d_on = pos - self._starts_s[idx]
        d_off = self._ends_s[idx] - pos
        edge = np.minimum(d_on, d_off)
        ramp = max(self.ramp_s, 1e-9)
        x = np.clip(edge * (1.0 / ramp), 0.0, 1.0).astype(np.float32)
        x *= np.float32(math.pi)
        np.cos(x, out=x)
        x *= np.float32(-0.5)
        x += np.float32(0.5)
        return x


@dataclass
class LoRa(Emitter):
    """LoRa-like chirp spread spectrum: symbols of 2**sf chips at ``chirp_bw_hz``; each symbol is an up-chirp
    starting at a random one of 2**sf cyclic shifts. The phase returns to 0 at every symbol end, so the
    signal is phase-continuous. Symbols run on an absolute time grid; the schedule gates them into bursts."""

    kind: ClassVar[str] = "lora"
    chirp_bw_hz: float = 125e3
    sf: int = 9

    def occupied_bandwidth_hz(self) -> float:
        return self.chirp_bw_hz

    def bandwidth_rule(self) -> str:
        return "chirp bandwidth"

    def phase_cycles(self, n: np.ndarray, sample_rate_hz: float) -> np.ndarray:
        chips = float(1 << self.sf)
        sym = n * (self.chirp_bw_hz / (sample_rate_hz * chips))
        k = np.floor(sym)
        tau = sym - k
        a = (hash_u64(self.seed, k.astype(np.int64)) % np.uint64(1 << self.sf)).astype(np.float64) / chips
        x = a + tau
        fx = np.floor(x)
        xr = x - fx
        return chips * (0.5 * fx + 0.5 * xr * xr - 0.5 * a * a - 0.5 * tau)


# ---------------------------------------------------------------------- grid-based FM kinds
@dataclass
class GridFM(Emitter):
    """An FM emitter whose phase track lives on a grid at ``grid_rate_hz`` in chunks of ``chunk_len`` points."""

    deviation_hz: float = 2500.0
    grid_rate_hz: float = field(init=False, default=48000.0)
    chunk_len: int = field(init=False, default=32768)
    interp_order: int = field(init=False, default=3)
    _cache: OrderedDict = field(init=False, repr=False, default_factory=OrderedDict)

    def modulating(self, c: int, t_s: np.ndarray) -> np.ndarray:
        """Modulating signal in [-1, 1] for chunk ``c`` at grid times ``t_s`` (absolute seconds)."""
        raise NotImplementedError

    def _chunk(self, c: int) -> np.ndarray:
        hit = self._cache.get(c)
        if hit is not None:
            self._cache.move_to_end(c)
            return hit
        idx = np.arange(c * self.chunk_len, (c + 1) * self.chunk_len, dtype=np.float64)
        m = self.modulating(c, idx / self.grid_rate_hz).astype(np.float64)
        m -= m.mean()
        ph = np.empty(self.chunk_len, dtype=np.float64)
        ph[0] = 0.0
        np.cumsum(m[:-1], out=ph[1:])
        ph *= self.deviation_hz / self.grid_rate_hz
        self._cache[c] = ph
        if len(self._cache) > 6:
            self._cache.popitem(last=False)
        return ph

    def _grid(self, g_lo: int, g_hi: int) -> np.ndarray:
        """Phase (cycles) at grid indices g_lo..g_hi inclusive."""
        L = self.chunk_len
        c_lo, c_hi = g_lo // L, g_hi // L
        parts = [self._chunk(c) for c in range(c_lo, c_hi + 1)]
        whole = parts[0] if len(parts) == 1 else np.concatenate(parts)
        off = g_lo - c_lo * L
        return whole[off: off + (g_hi - g_lo + 1)]

    def phase_cycles(self, n: np.ndarray, sample_rate_hz: float) -> np.ndarray:
        # grid position of each output sample; samples are sorted, so each grid interval i holds a run of
        # samples: evaluate that interval's interpolating polynomial on its run (np.repeat, no gathers)
        u = n * (self.grid_rate_hz / sample_rate_hz)
        i_first, i_last = int(math.floor(u[0])), int(math.floor(u[-1]))
        m = i_last - i_first + 1
        if m > 1:
            bounds = np.searchsorted(u, np.arange(i_first + 1, i_last + 1, dtype=np.float64), side="left")
            counts = np.diff(bounds, prepend=0, append=len(u))
        else:
            counts = np.array([len(u)])
        f = u - np.repeat(np.arange(i_first, i_last + 1, dtype=np.float64), counts)
        if self.interp_order == 1:
            grid = self._grid(i_first, i_last + 1)
            x0 = grid[:-1]
            out = np.repeat(grid[1:] - x0, counts)
            out *= f
            out += np.repeat(x0, counts)
            return out
        grid = self._grid(i_first - 1, i_last + 2)
        xm, x0, x1, x2 = grid[:-3], grid[1:-2], grid[2:-1], grid[3:]
        # 4-point Lagrange interpolation through (-1, xm), (0, x0), (1, x1), (2, x2), in power form
        c1 = x1 - xm * (1.0 / 3.0) - x0 * 0.5 - x2 * (1.0 / 6.0)
        c2 = (xm + x1) * 0.5 - x0
        c3 = (x2 - xm) * (1.0 / 6.0) + (x0 - x1) * 0.5
        out = np.repeat(c3, counts)
        out *= f
        out += np.repeat(c2, counts)
        out *= f
        out += np.repeat(c1, counts)
        out *= f
        out += np.repeat(x0, counts)
        return out

    def _noise_rng(self, c: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream, c + (1 << 40)])


def _shaped_noise(rng: np.random.Generator, n: int, rate_hz: float, lo_hz: float, hi_hz: float,
                  tilt_hz: float | None = None) -> np.ndarray:
    """Unit-RMS noise band-limited to [lo_hz, hi_hz] (FFT filter, circular within the chunk)."""
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(n, 1.0 / rate_hz)
    # smooth band edges (raised cosine over 20 % of the edge frequency)
    h = np.clip((f - 0.8 * lo_hz) / (0.4 * lo_hz + 1e-9), 0, 1) if lo_hz > 0 else np.ones_like(f)
    h = h * np.clip((1.1 * hi_hz - f) / (0.2 * hi_hz), 0, 1)
    h = 0.5 - 0.5 * np.cos(np.pi * h)
    if tilt_hz:
        h = h / np.sqrt(1.0 + (f / tilt_hz) ** 2)
    out = np.fft.irfft(spec * h, n)
    return out / (out.std() + 1e-12)


@dataclass
class NarrowFM(GridFM):
    """Narrowband FM voice. ``audio`` = "voice" (300-3000 Hz noise with a speech-like tilt and a syllabic
    envelope with pauses: a text-to-speech voice), "noise" (the same without envelope) or "tone" (``audio_hz``)."""

    kind: ClassVar[str] = "nbfm"
    channel_hz: float = 12500.0
    audio: str = "voice"
    audio_hz: float = 1000.0

    def __post_init__(self) -> None:
        self.grid_rate_hz = 48000.0
        self.chunk_len = 32768
        self.interp_order = 3

    @property
    def audio_max_hz(self) -> float:
        return self.audio_hz if self.audio == "tone" else 3000.0

    def occupied_bandwidth_hz(self) -> float:
        return 2.0 * (self.deviation_hz + self.audio_max_hz)

    def bandwidth_rule(self) -> str:
        return f"Carson 2*(deviation {self.deviation_hz:g} Hz + audio {self.audio_max_hz:g} Hz)"

    def modulating(self, c: int, t_s: np.ndarray) -> np.ndarray:
        if self.audio == "tone":
            return np.sin(TWO_PI * self.audio_hz * t_s)
        # speech falls off above ~800 Hz and the transmitter's pre-emphasis lifts it back: flat 300-3000 Hz
        audio = _shaped_noise(self._noise_rng(c, 1), len(t_s), self.grid_rate_hz, 300.0, 3000.0)
        if self.audio == "noise":
            return np.clip(audio / 2.0, -1.0, 1.0)
        ph = hash_uniform(self.seed, 7)[()] * TWO_PI
        syllable = 0.5 - 0.5 * np.cos(TWO_PI * (4.0 * t_s + 0.8 * np.sin(TWO_PI * 0.31 * t_s + ph)))
        words = hash_uniform(self.seed, np.floor(t_s / 0.45).astype(np.int64) + 1000) < 0.8
        env = np.sqrt(syllable) * words
        return np.clip(audio * env / 1.5, -1.0, 1.0)  # the transmitter's limiter caps the deviation


@dataclass
class FSK(GridFM):
    """2-FSK / GFSK data (pager-like): random bits at ``bit_rate_bps``, +-``deviation_hz``.

    Plain FSK runs its phase grid at the bit rate with linear interpolation, which is exact for rectangular
    NRZ. GFSK (``bt`` set) filters the NRZ with a Gaussian of bandwidth-time product ``bt`` on a 16x grid."""

    kind: ClassVar[str] = "fsk"
    bit_rate_bps: float = 1200.0
    bt: float | None = None

    def __post_init__(self) -> None:
        if self.bt is not None:
            self.kind = "gfsk"  # type: ignore[misc]  # instance value shadows the class's "fsk"
        if self.bt is None:
            self.grid_rate_hz = self.bit_rate_bps
            self.chunk_len = 4096
            self.interp_order = 1
        else:
            self.grid_rate_hz = 16.0 * self.bit_rate_bps
            self.chunk_len = 4096 * 16
            self.interp_order = 3

    def occupied_bandwidth_hz(self) -> float:
        return 2.0 * self.deviation_hz + self.bit_rate_bps

    def bandwidth_rule(self) -> str:
        return f"Carson 2*deviation {self.deviation_hz:g} Hz + bit rate {self.bit_rate_bps:g} bps"

    def _bits(self, k: np.ndarray) -> np.ndarray:
        return (hash_u64(self.seed, k) & np.uint64(1)).astype(np.float64) * 2.0 - 1.0

    def modulating(self, c: int, t_s: np.ndarray) -> np.ndarray:
        if self.bt is None:
            # grid point i is the start of bit i: the frequency over [i, i+1) is bit i
            k = np.arange(c * self.chunk_len, (c + 1) * self.chunk_len, dtype=np.int64)
            return self._bits(k)
        T = 1.0 / self.bit_rate_bps
        from scipy.special import erf  # here, not at import: only Gaussian-filtered FSK needs it

        sigma = math.sqrt(math.log(2.0)) / (TWO_PI * self.bt / T)
        a = 1.0 / (sigma * math.sqrt(2.0))
        pos = t_s * self.bit_rate_bps
        k0 = np.floor(pos).astype(np.int64)
        m = np.zeros_like(t_s)
        for j in range(-2, 3):
            k = k0 + j
            tau = (pos - k - 0.5) * T
            m += self._bits(k) * 0.5 * (erf(a * (tau + 0.5 * T)) - erf(a * (tau - 0.5 * T)))
        return m


@dataclass
class WFM(GridFM):
    """Wideband FM broadcast: music-like noise to ``audio_bw_hz`` with slow loudness changes, a 19 kHz pilot
    (10 % of deviation) and, when ``stereo``, an L-R DSB-SC subcarrier at 38 kHz."""

    kind: ClassVar[str] = "wfm"
    audio_bw_hz: float = 15000.0
    stereo: bool = False

    def __post_init__(self) -> None:
        self.grid_rate_hz = 512000.0 if self.stereo else 256000.0
        self.chunk_len = 1 << 17
        self.interp_order = 3

    def occupied_bandwidth_hz(self) -> float:
        top = 53000.0 if self.stereo else self.audio_bw_hz
        return 2.0 * (self.deviation_hz + top)

    def bandwidth_rule(self) -> str:
        top = 53000.0 if self.stereo else self.audio_bw_hz
        return f"Carson 2*(deviation {self.deviation_hz:g} Hz + baseband {top:g} Hz)"

    def modulating(self, c: int, t_s: np.ndarray) -> np.ndarray:
        rng = self._noise_rng(c, 3)
        mono = _shaped_noise(rng, len(t_s), self.grid_rate_hz, 30.0, self.audio_bw_hz, tilt_hz=2000.0)
        loud = 0.7 + 0.3 * np.sin(TWO_PI * 0.23 * t_s + hash_uniform(self.seed, 5)[()] * TWO_PI)
        m = 0.45 * np.clip(mono * loud, -2.0, 2.0) + 0.1 * np.sin(TWO_PI * 19000.0 * t_s)
        if self.stereo:
            side = _shaped_noise(rng, len(t_s), self.grid_rate_hz, 30.0, self.audio_bw_hz, tilt_hz=2000.0)
            m += 0.1 * np.clip(side, -3.0, 3.0) * np.sin(TWO_PI * 38000.0 * t_s)
        return np.clip(m, -1.0, 1.0)


KINDS: dict[str, type[Emitter]] = {
    "cw": CW,
    "nbfm": NarrowFM,
    "fsk": FSK,
    "gfsk": FSK,
    "ook": OOK,
    "lora": LoRa,
    "wfm": WFM,
}

#: kind -> {field: (type, default)} of kind-specific scene fields
KIND_FIELDS: dict[str, dict[str, tuple[type, Any]]] = {
    "cw": {},
    "nbfm": {"channel_hz": (float, 12500.0), "deviation_hz": (float, None), "audio": (str, "voice"),
             "audio_hz": (float, 1000.0)},
    "fsk": {"bit_rate_bps": (float, 1200.0), "deviation_hz": (float, 4500.0)},
    "gfsk": {"bit_rate_bps": (float, 1200.0), "deviation_hz": (float, 4500.0), "bt": (float, 0.5)},
    "ook": {"code": (int, 0x5A3C81), "short_us": (float, 464.0), "long_us": (float, 1404.0),
            "sync_gap_us": (float, 464.0 * 31), "repeats": (int, 8)},
    "lora": {"chirp_bw_hz": (float, 125e3), "sf": (int, 9)},
    "wfm": {"deviation_hz": (float, 75e3), "audio_bw_hz": (float, 15e3), "stereo": (bool, False)},
}

#: default on/off ramp per kind (seconds, raised cosine inside each on-interval)
DEFAULT_RAMP_S = {"cw": 0.001, "nbfm": 0.002, "fsk": 0.0005, "gfsk": 0.0005, "ook": 50e-6, "lora": 0.0005,
                  "wfm": 0.002}


def make_emitter(kind: str, common: dict[str, Any], specific: dict[str, Any]) -> Emitter:
    cls = KINDS[kind]
    params = dict(specific)
    if kind == "nbfm" and params.get("deviation_hz") is None:
        params["deviation_hz"] = 2500.0 if float(params.get("channel_hz", 12500.0)) <= 12500.0 else 5000.0
    if kind == "fsk":
        params["bt"] = None
    return cls(**common, **params)


__all__ = ["Emitter", "CW", "OOK", "LoRa", "NarrowFM", "FSK", "WFM", "KINDS", "KIND_FIELDS", "make_emitter",
           "sub_seed", "DEFAULT_RAMP_S"]
