"""``sdrwatch bench``: how fast, how lean and how sensitive the detection chain is on this machine.

One run measures, each as a :class:`Measurement`:

1. **PSD throughput** from raw cu8 on one core, all on the same 2^18-sample blocks, interleaved in one
   run (best of 3 each), reported as ratios against the fair reference:

   * sdrwatch's engine, :class:`~sdrwatch.dsp.spectrum.WelchFrames` on ``scipy.fft`` (1024-point Hann,
     50 % overlap, 12-segment 5 ms frames);
   * the **reference**: a vectorised ``scipy.fft`` pipeline computing the same frames, as a careful user
     writes it (:func:`reference_frames`: ``to_iq``, ``sliding_window_view``, times the window, one
     ``scipy.fft.fft`` per block, ``|X|^2``, reshape and sum); target engine >= 0.95x reference;
   * ``scipy.signal.welch`` as a careful user calls it: once per block, ``detrend=False``, same window
     and overlap (one averaged spectrum per block, so it does less than the others);
   * the engine on FFTW through pyFFTW (the ``fast`` extra) when installed (target >= 200 Msps).
2. **Replay speed** (multiple of real time at 2.4 Msps) of :func:`sdrwatch.replay.detect` on a cu8
   SigMF recording, against a baseline learned from a separate recording at the same tuning (the live
   agent's case) and in noise-floor mode (target >= 20x).
3. **Peak memory** of ``sdrwatch replay FILE --format jsonl`` on a large cu8 file, in a child process
   (peak RSS from ``wait4``; target < 400 MB).
4. **Sensitivity**: the weakest in-band SNR at which a continuous NBFM voice channel (3 s capture) and a
   15 ms GFSK burst are found in most trials at default settings, next to the energy-detector theory
   of ``docs``/research §3.1 for the same integration:

       Pd = Q_{chi'^2_{2K}}(2K * T)  with  lambda = 2K * SNR_bin,   T = gamma.isf(pfa, K, scale=1/K)

   solved for SNR_bin at Pd = 0.9, K = K_eff of the longest detector window that fits in the signal.
   Per-bin and in-band SNR are linked by the waveform's spectrum: with S the signal power, B the
   in-band (Carson) bandwidth, N0 the noise density, ENBW the window's noise bandwidth in bins and
   df the bin width, the strongest bin reads ``SNR_bin = SNR_inband + offset`` with

       offset = 10 log10(P_peak * B / (S * ENBW * df))      (0 dB for a spectrum flat over B)

   measured on the noise-free waveform.
5. The simulator's render speed, when :mod:`sdrwatch.radio.sim` offers ``bench_render``.
6. **Start-up** and **whole-process replay**: ``sdrwatch --help`` and ``sdrwatch replay`` of a 0.1 s file
   (median wall time of 5 runs, and CPU time, target <= 0.35 s); ``sdrwatch replay`` of a 60 s 2.4 MS/s
   cu8 file in noise-floor mode (target >= 40x real time) and against a baseline file (>= 60x);
   a sweep recording of 25 ms dwells (target >= 20x).
7. The chain's and the agent's own benchmarks (``sdrwatch.bench_chain``, ``sdrwatch.bench_agent``) when
   present.

Signals are synthesised here (vectorised NBFM with band-limited noise audio, GFSK with a Gaussian
filter, complex Gaussian noise): fast enough to run many trials, and independent of receiver artefacts.
"""
from __future__ import annotations

import importlib
import inspect
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import importlib.util

import numpy as np

from .dsp.detector import DetectorConfig, gamma_threshold, ratio_threshold
from .dsp.spectrum import SpectrumConfig, WelchFrames, enbw_bins, welch_psd, window_taps
from .errors import SdrwatchError
from .radio.base import Block
from .radio.file import Capture, SigMFWriter, open_recording
from .radio.iq import from_iq, to_iq

RATE_HZ = 2.4e6
CENTER_HZ = 433.92e6
BLOCK_SAMPLES = 1 << 18
PD_TARGET = 0.9

#: NBFM voice channel: +-2.5 kHz deviation, 300-3000 Hz audio -> Carson 2*(2.5+3) = 11 kHz
NBFM_DEV_HZ = 2500.0
NBFM_AUDIO_HZ = (300.0, 3000.0)
NBFM_BW_HZ = 2.0 * (NBFM_DEV_HZ + NBFM_AUDIO_HZ[1])
#: GFSK burst: 2400 bps, +-4.5 kHz, BT 0.5 -> Carson 2*4.5 + 2.4 = 11.4 kHz
FSK_BPS = 2400.0
FSK_DEV_HZ = 4500.0
FSK_BT = 0.5
FSK_BW_HZ = 2.0 * FSK_DEV_HZ + FSK_BPS
BURST_S = 0.015


@dataclass
class Measurement:
    """One figure. ``value`` is None when the measurement was skipped (``skipped`` says why)."""

    name: str
    value: float | None
    unit: str
    target: str | None = None
    ok: bool | None = None
    summary: str = ""
    details: dict = field(default_factory=dict)
    skipped: str | None = None

    def as_record(self) -> dict:
        rec = {"name": self.name, "value": None if self.value is None else round(float(self.value), 3), "unit": self.unit,
               "target": self.target, "meets_target": None if self.ok is None else bool(self.ok), "summary": self.summary}
        if self.skipped:
            rec["skipped"] = self.skipped
        rec.update(self.details)
        return rec


Report = Callable[[Measurement], None]
Stage = Callable[[str], None]


# --------------------------------------------------------------------------------------------------
# synthesis


def _phasor(cycles: np.ndarray) -> np.ndarray:
    """exp(2j pi cycles) as complex64 (cycles reduced modulo 1 in float64 first)."""
    c = cycles - np.floor(cycles)
    ph = (c * (2.0 * math.pi)).astype(np.float32)
    out = np.empty(len(ph), dtype=np.complex64)
    np.cos(ph, out=out.real)
    np.sin(ph, out=out.imag)
    return out


def noise(rng: np.random.Generator, n: int, power: float) -> np.ndarray:
    """Complex white Gaussian noise of total power ``power`` per sample."""
    x = rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
    x *= np.float32(math.sqrt(power / 2.0))
    return x


class NBFMTrack:
    """Unit-power NBFM with band-limited noise audio (peak deviation ``deviation_hz`` at 3 sigma),
    phase-continuous over ``num_samples``; :meth:`render` gives any span, so long files go in chunks.

    The modulated phasor lives on a grid near 96 kHz (an integer fraction of the sample rate) and is
    linearly interpolated up; the carrier offset is rounded to rate/8192 and comes from a table.
    """

    GRID_HZ = 96000.0
    CARRIER_TABLE = 8192

    def __init__(self, rng: np.random.Generator, num_samples: int, rate_hz: float, offset_hz: float,
                 deviation_hz: float = NBFM_DEV_HZ):
        self.rate = float(rate_hz)
        self.up = max(1, int(round(self.rate / self.GRID_HZ)))
        grid = self.rate / self.up
        m = num_samples // self.up + 3
        spec = np.fft.rfft(rng.standard_normal(m))
        f = np.fft.rfftfreq(m, 1.0 / grid)
        spec[(f < NBFM_AUDIO_HZ[0]) | (f > NBFM_AUDIO_HZ[1])] = 0.0
        audio = np.fft.irfft(spec, m)
        audio /= 3.0 * audio.std() + 1e-30
        np.clip(audio, -1.0, 1.0, out=audio)
        self._z = _phasor(np.concatenate(([0.0], np.cumsum(audio[:-1]))) * (deviation_hz / grid))
        self._frac = np.arange(self.up, dtype=np.float32) / np.float32(self.up)
        L = self.CARRIER_TABLE
        k = int(round(offset_hz * L / self.rate))
        self.offset = k * self.rate / L
        self._carrier = _phasor(np.arange(L) * (k / L))

    def render(self, n0: int, n: int) -> np.ndarray:
        up = self.up
        k0, k1 = n0 // up, (n0 + n - 1) // up + 1
        z = self._z[k0:k1 + 1]
        seg = (z[:-1, None] + (z[1:] - z[:-1])[:, None] * self._frac[None, :]).reshape(-1)
        skip = n0 - k0 * up
        out = seg[skip:skip + n]
        out *= self._carrier[np.arange(n0, n0 + n) & (self.CARRIER_TABLE - 1)]
        return out


def gfsk_burst(rng: np.random.Generator, n: int, rate_hz: float, offset_hz: float, bit_rate: float = FSK_BPS,
               deviation_hz: float = FSK_DEV_HZ, bt: float = FSK_BT, ramp_s: float = 2.5e-4) -> np.ndarray:
    """A unit-power GFSK burst of ``n`` samples (random bits, Gaussian-filtered NRZ, raised-cosine ramps)."""
    sps = rate_hz / bit_rate
    bits = rng.integers(0, 2, int(math.ceil(n / sps)) + 2) * 2.0 - 1.0
    nrz = bits[(np.arange(n) / sps).astype(np.int64)]
    sigma = math.sqrt(math.log(2.0)) / (2.0 * math.pi * bt) * sps
    half = int(math.ceil(3.0 * sigma))
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    import scipy.signal

    freq = scipy.signal.fftconvolve(nrz, g / g.sum(), mode="same") * deviation_hz + offset_hz
    cyc = np.cumsum(freq) / rate_hz
    x = _phasor(cyc)
    r = min(int(ramp_s * rate_hz), n // 2)
    if r:
        env = (0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)).astype(np.float32)
        x[:r] *= env
        x[n - r:] *= env[::-1]
    return x


class SceneLite:
    """Noise plus a few emitters, rendered in order chunk by chunk (for recordings of any length)."""

    def __init__(self, rate_hz: float, noise_power: float, seed: int):
        self.rate = rate_hz
        self.noise_power = noise_power
        self.rng = np.random.default_rng(seed)
        self.tracks: list[tuple[NBFMTrack, float]] = []
        self.bursts: list[tuple[int, np.ndarray]] = []

    def add_nbfm(self, offset_hz: float, snr_db: float, num_samples: int) -> None:
        amp = math.sqrt(self.noise_power * NBFM_BW_HZ / self.rate * 10 ** (snr_db / 10))
        self.tracks.append((NBFMTrack(self.rng, num_samples, self.rate, offset_hz), amp))

    def add_bursts(self, offset_hz: float, snr_db: float, period_s: float, num_samples: int, length_s: float = BURST_S) -> None:
        amp = np.float32(math.sqrt(self.noise_power * FSK_BW_HZ / self.rate * 10 ** (snr_db / 10)))
        n = int(length_s * self.rate)
        for start in np.arange(0.3 * period_s, num_samples / self.rate - length_s, period_s):
            self.bursts.append((int(start * self.rate), gfsk_burst(self.rng, n, self.rate, offset_hz) * amp))

    def render(self, n0: int, n: int) -> np.ndarray:
        x = noise(self.rng, n, self.noise_power)
        for track, amp in self.tracks:
            x += np.float32(amp) * track.render(n0, n)
        for s, b in self.bursts:
            a, e = max(s, n0), min(s + len(b), n0 + n)
            if a < e:
                x[a - n0:e - n0] += b[a - s:e - s]
        return x


class MemoryRecording:
    """One capture of complex64 samples held in memory, read like a :class:`~sdrwatch.radio.file.Recording`."""

    def __init__(self, iq: np.ndarray, rate_hz: float, center_hz: float, name: str = "<bench>"):
        self.iq = iq
        self.path = Path(name)
        self.sample_rate_hz = float(rate_hz)
        self.num_samples = len(iq)
        self.captures = [Capture(0, len(iq), float(center_hz))]
        self.annotations: list = []

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz

    def iter_blocks(self, block_samples: int = BLOCK_SAMPLES, captures=None) -> Iterator[Block]:
        for s in range(0, self.num_samples, int(block_samples)):
            yield Block(iq=self.iq[s:s + block_samples], center_hz=self.captures[0].center_hz,
                        sample_rate_hz=self.sample_rate_hz, sample_index=s)


# --------------------------------------------------------------------------------------------------
# 1. PSD throughput


def _best_cpu_and_wall(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Best CPU time (all threads) and best wall time of ``fn`` over ``repeats`` runs: a replay reads
    and computes the spectrum a block ahead in a second thread, so wall time is what a second core
    buys, CPU time what the work costs."""
    cpu = wall = math.inf
    for _ in range(repeats):
        t, w = time.process_time(), time.perf_counter()
        fn()
        cpu, wall = min(cpu, time.process_time() - t), min(wall, time.perf_counter() - w)
    return cpu, wall


def _best_of(fn: Callable[[], None], repeats: int) -> float:
    """Best CPU time of ``fn`` (it runs on one core): on an idle machine the same as wall time, and on a
    shared one it leaves out the time the process waited for a core."""
    best = math.inf
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


class ReferenceFrames:
    """The fair reference: the same frames as :class:`WelchFrames`, computed the way a careful numpy user
    writes it, one block at a time (a vectorised ``scipy.fft`` over all the block's segments)."""

    def __init__(self, cfg: SpectrumConfig, rate_hz: float):
        import scipy.fft

        self.fft = scipy.fft.fft
        self.n, self.hop, self.k = cfg.fft_size, cfg.hop_samples(), cfg.ffts_per_frame(rate_hz)
        self.w = window_taps(cfg)
        self.scale = 1.0 / (self.k * float(np.sum(self.w, dtype=np.float64)) ** 2)
        self.tail = np.zeros(0, dtype=np.complex64)

    def push(self, raw_cu8: np.ndarray) -> np.ndarray:
        x = np.concatenate([self.tail, to_iq(raw_cu8, "cu8")])
        nseg = (len(x) - self.n) // self.hop + 1 if len(x) >= self.n else 0
        nf = nseg // self.k
        segs = np.lib.stride_tricks.sliding_window_view(x, self.n)[:: self.hop][: nf * self.k]
        spec = self.fft(segs * self.w, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2).reshape(nf, self.k, self.n).sum(axis=1) * np.float32(self.scale)
        self.tail = x[nf * self.k * self.hop:]
        return np.fft.fftshift(power, axes=-1)


def reference_frames(raw_cu8: np.ndarray, cfg: SpectrumConfig, rate_hz: float, block_samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """All frames of a cu8 byte array through :class:`ReferenceFrames` (before DC suppression)."""
    ref = ReferenceFrames(cfg, rate_hz)
    return np.concatenate([ref.push(raw_cu8[o:o + 2 * block_samples]) for o in range(0, len(raw_cu8), 2 * block_samples)])


def measure_psd(num_samples: int, repeats: int = 3, seed: int = 1) -> list[Measurement]:
    import scipy.signal

    from .dsp.spectrum import fft_backend, suppress_dc

    rng = np.random.default_rng(seed)
    # a receiver-like byte stream: Gaussian noise around mid-scale, 8 LSB rms per rail
    raw = np.clip(np.rint(rng.normal(127.5, 8.0, 2 * num_samples)), 0, 255).astype(np.uint8)
    step = 2 * BLOCK_SAMPLES
    cfg = WelchFrames(RATE_HZ, SpectrumConfig(), backend="scipy").cfg  # the automatic FFT size, resolved
    try:
        have_fftw = fft_backend() == "fftw" or importlib.util.find_spec("pyfftw") is not None
    except SdrwatchError:
        have_fftw = False

    def engine(backend: str, workers: int = 1) -> Callable[[], None]:
        eng = WelchFrames(RATE_HZ, cfg, backend=backend, workers=workers)  # made once: steady state, as a stream

        def run_engine() -> None:
            eng.reset()
            for off in range(0, len(raw), step):
                eng.push(raw[off:off + step])
        return run_engine

    def reference() -> None:
        ref = ReferenceFrames(cfg, RATE_HZ)
        for off in range(0, len(raw), step):
            ref.push(raw[off:off + step])

    def welch() -> None:
        for off in range(0, len(raw), step):
            scipy.signal.welch(to_iq(raw[off:off + step], "cu8"), RATE_HZ, window=cfg.window, nperseg=cfg.fft_size,
                               noverlap=cfg.fft_size - cfg.hop_samples(), detrend=False, return_onesided=False)

    runs: dict[str, Callable[[], None]] = {"engine": engine("scipy"), "reference": reference, "welch": welch}
    if have_fftw:
        runs["fftw"] = engine("fftw")
    two = have_fftw and len(os.sched_getaffinity(0)) >= 2
    if two:
        runs["two"] = engine("fftw", workers=2)
    # the reference computes the same frames (within float32 rounding): checked here, on the first blocks
    head = raw[: 4 * step]
    ours, _ = WelchFrames(RATE_HZ, cfg, backend="scipy").push(head)
    theirs = suppress_dc(reference_frames(head, cfg, RATE_HZ), cfg.dc_bins)
    rows = min(len(ours), len(theirs))
    same = float(np.max(np.abs(ours[:rows] - theirs[:rows]) / np.maximum(theirs[:rows], 1e-30))) if rows else float("nan")
    for fn in runs.values():  # warm caches, FFT plans and wisdom
        fn()
    best = {k: math.inf for k in runs}
    wall = {k: math.inf for k in runs}
    for _ in range(repeats):  # interleaved, so a busy machine slows every candidate alike; CPU time (_best_of)
        for k, fn in runs.items():
            t = time.perf_counter()
            best[k] = min(best[k], _best_of(fn, 1))
            wall[k] = min(wall[k], time.perf_counter() - t)
    best["two"] = wall.get("two", math.inf)  # two threads: wall time (CPU time adds both cores up)
    msps = {k: num_samples / v / 1e6 for k, v in best.items()}
    common = {"samples": num_samples, "block_samples": BLOCK_SAMPLES, "repeats": repeats, "fft_size": cfg.fft_size,
              "cpu_affinity": sorted(os.sched_getaffinity(0))}
    ratio = msps["engine"] / msps["reference"]
    out = [
        Measurement("psd_sdrwatch", msps["engine"], "Msps", None, None,
                    f"cu8 -> WelchFrames on scipy.fft, {cfg.fft_size}-pt {cfg.window}, {cfg.overlap:.0%} overlap, "
                    f"{cfg.ffts_per_frame(RATE_HZ)}-segment frames, one engine reset per run, best CPU time of {repeats}",
                    {**common, "load_1min": _load()}),
        Measurement("psd_reference", msps["reference"], "Msps", None, None,
                    "the same frames by a vectorised scipy.fft pipeline per block (to_iq, windows, fft, |X|^2, sums)",
                    {**common, "max_relative_difference": same}),
        Measurement("psd_vs_reference", ratio, "x", ">= 0.95", ratio >= 0.95, "sdrwatch engine / reference, same run", {}),
        Measurement("psd_scipy_welch", msps["welch"], "Msps", None, None,
                    "scipy.signal.welch once per block, detrend=False, same window and overlap (one spectrum per block)",
                    {**common, "x_reference": round(msps["welch"] / msps["reference"], 3)}),
        Measurement("psd_vs_welch", msps["engine"] / msps["welch"], "x", None, None, "sdrwatch engine / scipy.signal.welch, same run", {}),
    ]
    if have_fftw:
        out += [
            Measurement("psd_fftw", msps["fftw"], "Msps", ">= 200", msps["fftw"] >= 200,
                        "the same engine on FFTW (pyFFTW, the fast extra), FFTW_MEASURE plans", common),
            Measurement("psd_fftw_vs_reference", msps["fftw"] / msps["reference"], "x", None, None,
                        "FFTW engine / reference, same run", {}),
        ]
    else:
        note = "pyFFTW is not installed (pip install 'sdrwatch[fast]')"
        out += [Measurement("psd_fftw", None, "Msps", ">= 200", None, "skipped: " + note, skipped=note),
                Measurement("psd_fftw_vs_reference", None, "x", None, None, "skipped: " + note, skipped=note)]
    if two:
        out.append(Measurement("psd_fftw_2_workers", msps["two"], "Msps", None, None,
                               "the FFTW engine with two workers (its pieces on two pool threads, as `sdrwatch replay` runs it), best wall time; "
                               "only as fast as the second core is free", {**common, "load_1min": _load()}))
    else:
        note = "needs pyFFTW and a second core"
        out.append(Measurement("psd_fftw_2_workers", None, "Msps", None, None, "skipped: " + note, skipped=note))
    return out


# --------------------------------------------------------------------------------------------------
# 2. replay speed


#: noise level of generated cu8 files: 8 LSB rms per rail (about -24 dBFS)
FILE_NOISE_POWER = 2.0 * (8.0 / 127.5) ** 2


def write_recording(stem: Path, seconds: float, seed: int, bursts: bool, chunk: int = 1 << 20, *,
                    burst_every_s: float = 1.0, centers_hz: list[float] | None = None,
                    dwell_s: float | None = None) -> Path:
    """A cu8 SigMF recording at 2.4 Msps: noise, one NBFM channel, and (``bursts``) a GFSK burst every
    ``burst_every_s``; with ``centers_hz`` and ``dwell_s``, a sweep: captures of ``dwell_s`` cycling
    through the centres."""
    n = int(seconds * RATE_HZ)
    scene = SceneLite(RATE_HZ, FILE_NOISE_POWER, seed)
    scene.add_nbfm(310e3, 20.0, n)
    if bursts:
        scene.add_bursts(-420e3, 12.0, burst_every_s, n)
    step = int(dwell_s * RATE_HZ) if centers_hz is not None else chunk
    with SigMFWriter(stem, fmt="cu8", sample_rate_hz=RATE_HZ, overwrite=True) as w:
        for i, s0 in enumerate(range(0, n, step)):
            if centers_hz is not None:
                w.start_capture(centers_hz[i % len(centers_hz)])
            elif i == 0:
                w.start_capture(CENTER_HZ)
            w.write(scene.render(s0, min(step, n - s0)))
    return Path(str(stem) + ".sigmf-meta")


def measure_false_alarms(workdir: Path, seconds: float) -> list[Measurement]:
    """Emissions raised on pure noise (cu8, 2.4 MS/s): against a baseline of other noise, and in
    noise-floor mode. Every one is a false alarm; the exam day wants well under one an hour."""
    from .replay import detect, learn_baseline

    def noise_file(stem: Path, secs: float, seed: int) -> Path:
        scene = SceneLite(RATE_HZ, FILE_NOISE_POWER, seed)
        n = int(secs * RATE_HZ)
        with SigMFWriter(stem, fmt="cu8", sample_rate_hz=RATE_HZ, overwrite=True) as w:
            w.start_capture(CENTER_HZ)
            for s0 in range(0, n, 1 << 20):
                w.write(scene.render(s0, min(1 << 20, n - s0)))
        return Path(str(stem) + ".sigmf-meta")

    rec = open_recording(noise_file(workdir / "fa-noise", seconds, 31))
    base = learn_baseline(open_recording(noise_file(workdir / "fa-baseline", 2.0, 32)))
    out = []
    for name, emissions in (("false_alarms_baseline", detect(rec, base)), ("false_alarms_noise_floor", detect(rec))):
        mode = "against a 2 s baseline of other noise" if name.endswith("baseline") else "noise-floor mode"
        out.append(Measurement(name, len(emissions), "emissions", "0", len(emissions) == 0,
                               f"emissions on {seconds:g} s of 2.4 MS/s noise, {mode} (every one is false)",
                               {"seconds": seconds, "per_hour": round(len(emissions) * 3600 / seconds, 2),
                                "emissions": [e.as_record() for e in emissions[:5]]}))
    return out


def measure_replay(workdir: Path, seconds: float, baseline_s: float, repeats: int) -> list[Measurement]:
    from .replay import detect, learn_baseline

    base_meta = write_recording(workdir / "bench-baseline", baseline_s, 11, bursts=False)
    rec_meta = write_recording(workdir / "bench-replay", seconds, 12, bursts=True)
    rec = open_recording(rec_meta)
    t = time.perf_counter()
    base = learn_baseline(open_recording(base_meta))
    t_base = time.perf_counter() - t
    found: dict[str, int] = {}

    def against_baseline() -> None:
        found["baseline"] = len(detect(open_recording(rec_meta), base))

    def noise_floor() -> None:
        found["noise_floor"] = len(detect(open_recording(rec_meta), None))

    t_b = _best_of(against_baseline, repeats)
    t_n = _best_of(noise_floor, repeats)
    dur = rec.duration_s
    info = {"recording_s": round(dur, 3), "sample_rate_hz": RATE_HZ, "format": "cu8", "repeats": repeats}
    return [
        Measurement("replay_baseline", dur / t_b, "x real time", ">= 20", dur / t_b >= 20,
                    f"detect() on {dur:g} s cu8 at 2.4 Msps against a baseline from a separate {baseline_s:g} s recording "
                    f"({found['baseline']} emissions)", {**info, "seconds": round(t_b, 3), "emissions": found["baseline"]}),
        Measurement("replay_noise_floor", dur / t_n, "x real time", ">= 20", dur / t_n >= 20,
                    f"detect() without baseline (floor learned from the recording, {found['noise_floor']} emissions)",
                    {**info, "seconds": round(t_n, 3), "emissions": found["noise_floor"]}),
        Measurement("baseline_learn", baseline_s / t_base, "x real time", None, None,
                    f"learn_baseline() on {baseline_s:g} s", {"seconds": round(t_base, 3)}),
    ]


# --------------------------------------------------------------------------------------------------
# 3. peak memory on a large file


def write_large_file(path: Path, size_mb: int, seed: int = 21) -> int:
    """Repeat a 16 MB cu8 chunk of noise, NBFM and GFSK bursts up to ``size_mb`` MiB; returns bytes written."""
    chunk_samples = 8 << 20  # 16 MiB of cu8
    scene = SceneLite(RATE_HZ, FILE_NOISE_POWER, seed)
    scene.add_nbfm(310e3, 20.0, chunk_samples)
    scene.add_bursts(-420e3, 12.0, 1.0, chunk_samples)
    raw = np.frombuffer(from_iq(scene.render(0, chunk_samples), "cu8"), dtype=np.uint8)
    target = int(size_mb) << 20
    written = 0
    with open(path, "wb") as fh:
        while written < target:
            part = raw[: min(len(raw), target - written)]
            fh.write(part.data)
            written += len(part)
    return written


#: the child: argv[1] is where to write its VmHWM (peak RSS of its own image, unlike ru_maxrss, which on
#: Linux keeps the high-water mark of the forked parent image across exec); the rest is sdrwatch's argv
_CHILD = """
import sys
hwm = sys.argv.pop(1)
from sdrwatch.cli import main
try:
    main(prog_name="sdrwatch")
finally:
    with open("/proc/self/status") as f:
        line = next((l for l in f if l.startswith("VmHWM:")), "")
    with open(hwm, "w") as f:
        f.write(line)
"""


def measure_large(workdir: Path, size_mb: int) -> list[Measurement]:
    need = (int(size_mb) << 20) + (256 << 20)
    free = shutil.disk_usage(workdir).free
    if free < need:
        note = f"needs {need >> 20} MB free in {workdir}, has {free >> 20} MB"
        return [Measurement("large_replay_peak_rss", None, "MB", "< 400", None, "skipped: " + note, skipped=note),
                Measurement("large_replay", None, "x real time", None, None, "skipped: " + note, skipped=note)]
    path = workdir / "bench-large_433.92M_2400k.cu8"
    try:
        nbytes = write_large_file(path, size_mb)
        out_path, err_path = workdir / "large.jsonl", workdir / "large.err"
        hwm_path = workdir / "large.hwm"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(hwm_path), "replay", str(path), "--format", "jsonl"],
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - t
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            tail = err_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise SdrwatchError(f"bench: sdrwatch replay exited with {proc.returncode}: {tail[0]}")
        try:
            peak_mb = int(hwm_path.read_text().split()[1]) / 1024.0  # "VmHWM:  123456 kB"
            how = "VmHWM"
        except (OSError, ValueError, IndexError):
            # the rusage figure also counts the parent's pages when the child was vforked, so it is an upper bound
            peak_mb, how = usage.ru_maxrss / 1024.0, "wait4 ru_maxrss (upper bound)"
        with open(out_path, "rb") as fh:
            emissions = sum(1 for _ in fh)
    finally:
        path.unlink(missing_ok=True)
    dur = nbytes / 2 / RATE_HZ
    info = {"file_mb": nbytes >> 20, "recording_s": round(dur, 1), "emissions": emissions, "seconds": round(elapsed, 2), "rss_from": how}
    return [
        Measurement("large_replay_peak_rss", peak_mb, "MB", "< 400", peak_mb < 400,
                    f"peak RSS of `sdrwatch replay FILE --format jsonl` on {nbytes >> 20} MB cu8 (child process, its VmHWM)", info),
        Measurement("large_replay", dur / elapsed, "x real time", None, None,
                    f"wall time of that replay, {dur:.0f} s at 2.4 Msps, process start included", info),
    ]


# --------------------------------------------------------------------------------------------------
# 4. sensitivity


def theory_bin_snr_db(k_eff: float, pfa: float, pd: float = PD_TARGET) -> float:
    """Per-bin SNR (dB) a steady signal needs for detection probability ``pd`` with ``k_eff`` averages
    against exactly known noise: ``ncx2.sf(2K T, 2K, 2K snr) = pd``, T = gamma threshold (research §3.1)."""
    import scipy.stats
    from scipy.optimize import brentq

    t = gamma_threshold(k_eff, pfa)
    f = lambda snr: scipy.stats.ncx2.sf(2 * k_eff * t, 2 * k_eff, 2 * k_eff * snr) - pd  # noqa: E731
    return 10 * math.log10(brentq(f, 1e-6, 1e4, xtol=1e-9, rtol=1e-10))


def theory_bin_snr_db_ratio(k_eff: float, k_ref: float, pfa: float, pd: float = PD_TARGET) -> float:
    """The same against a baseline worth ``k_ref`` averages (the detector's F test): non-central F."""
    import scipy.stats
    from scipy.optimize import brentq

    t = float(ratio_threshold(k_eff, k_ref, pfa)[0])
    f = lambda snr: scipy.stats.ncf.sf(t, 2 * k_eff, 2 * k_ref, 2 * k_eff * snr) - pd  # noqa: E731
    return 10 * math.log10(brentq(f, 1e-6, 1e4, xtol=1e-9, rtol=1e-10))


def peak_bin_offset_db(x: np.ndarray, bandwidth_hz: float, rate_hz: float, cfg: SpectrumConfig) -> float:
    """offset = 10 log10(P_peak * B / (S * ENBW * df)) of a noise-free waveform ``x`` (module docstring)."""
    p = welch_psd(x, rate_hz, cfg)
    s = float(np.mean(np.abs(x) ** 2))
    df = rate_hz / cfg.fft_size
    return 10 * math.log10(float(p.max()) * bandwidth_hz / (s * enbw_bins(window_taps(cfg)) * df))


@dataclass
class _SensCase:
    name: str
    title: str
    bandwidth_hz: float
    signal_s: float
    capture_s: float


class _Sensitivity:
    """Trials of one signal kind: fixed seeds per trial index (common random numbers across SNR steps)."""

    def __init__(self, rate_hz: float, trials: int, need: int, baseline_s: float, stage: Stage | None):
        self.rate = rate_hz
        self.trials, self.need = trials, need
        self.noise_power = 1e-3
        self.stage = stage
        self._bases: dict[int, object] = {}
        self.baseline_s = baseline_s

    def baseline(self, i: int):
        from .replay import learn_baseline

        b = self._bases.get(i)
        if b is None:
            rng = np.random.default_rng([7, i])
            rec = MemoryRecording(noise(rng, int(self.baseline_s * self.rate), self.noise_power), self.rate, CENTER_HZ)
            b = self._bases[i] = learn_baseline(rec)
        return b

    def trial(self, case: _SensCase, snr_db: float, i: int) -> tuple[bool, int]:
        """One capture with the signal at ``snr_db`` in-band; (found, false alarms)."""
        from .replay import detect

        rng = np.random.default_rng([11, i, sum(map(ord, case.name))])
        sign = 1.0 if rng.random() < 0.5 else -1.0
        offset = sign * rng.uniform(0.05, 0.4) * self.rate
        n = int(case.capture_s * self.rate)
        x = noise(rng, n, self.noise_power)
        amp = np.float32(math.sqrt(self.noise_power * case.bandwidth_hz / self.rate * 10 ** (snr_db / 10)))
        if case.name == "nbfm":
            x += amp * NBFMTrack(rng, n, self.rate, offset).render(0, n)
            t0, t1 = 0.0, case.capture_s
        else:
            nb = int(case.signal_s * self.rate)
            start = int(rng.uniform(0.15, 0.75) * (n - nb))
            x[start:start + nb] += amp * gfsk_burst(rng, nb, self.rate, offset)
            t0, t1 = start / self.rate, (start + nb) / self.rate
        f = CENTER_HZ + offset
        lo, hi = f - case.bandwidth_hz / 2, f + case.bandwidth_hz / 2
        found, fa = False, 0
        for e in detect(MemoryRecording(x, self.rate, CENTER_HZ), self.baseline(i)):
            hit = (e.center_hz - e.bandwidth_hz / 2 < hi and e.center_hz + e.bandwidth_hz / 2 > lo
                   and e.start_s < t1 + 0.02 and e.end_s > t0 - 0.02)
            found |= hit
            fa += not hit
        return bool(found), int(fa)

    def cell(self, case: _SensCase, snr_db: float, scan: dict) -> bool:
        if snr_db in scan:
            return scan[snr_db]["found"]
        if self.stage:
            self.stage(f"sensitivity {case.name} at {snr_db:+.0f} dB")
        hits = misses = fa = 0
        for i in range(self.trials):
            ok, n_fa = self.trial(case, snr_db, i)
            hits += ok
            misses += not ok
            fa += n_fa
            if hits >= self.need or misses > self.trials - self.need:
                break
        found = hits >= self.need
        scan[snr_db] = {"found": found, "hits": hits, "trials": hits + misses, "false_alarms": fa}
        return found

    def weakest(self, case: _SensCase, start_db: float, coarse_db: float = 3.0) -> tuple[float | None, dict]:
        """Lowest SNR on a 1 dB grid where the case is found: 3 dB steps to bracket, then 1 dB steps."""
        scan: dict[float, dict] = {}
        s = float(round(start_db))
        if self.cell(case, s, scan):
            while self.cell(case, s - coarse_db, scan):
                s -= coarse_db
                if s < start_db - 30:
                    return s, scan
        else:
            while not self.cell(case, s + coarse_db, scan):
                s += coarse_db
                if s > start_db + 30:
                    return None, scan
            s += coarse_db
        for k in range(1, int(coarse_db)):
            if not self.cell(case, s - 1, scan):
                break
            s -= 1
        return s, scan


def measure_sensitivity(quick: bool, stage: Stage | None = None) -> list[Measurement]:
    rate = RATE_HZ
    trials, need = (3, 3) if quick else (10, 9)
    det = DetectorConfig()
    eng = WelchFrames(rate, SpectrumConfig())
    cfg = eng.cfg  # the automatic FFT size, resolved
    frame_s = eng.frame_samples / rate
    sens = _Sensitivity(rate, trials, need, 2.0, stage)
    cases = [
        _SensCase("nbfm", f"continuous NBFM, +-{NBFM_DEV_HZ / 1e3:g} kHz, noise audio {NBFM_AUDIO_HZ[0]:g}-{NBFM_AUDIO_HZ[1]:g} Hz",
                  NBFM_BW_HZ, 3.0, 3.0),
        _SensCase("gfsk_burst", f"{BURST_S * 1e3:g} ms GFSK burst, {FSK_BPS:g} bps, +-{FSK_DEV_HZ / 1e3:g} kHz, BT {FSK_BT:g}",
                  FSK_BW_HZ, BURST_S, 0.6),
    ]
    k_ref = float(np.median(sens.baseline(0).hops[0].noise_dof))
    out = []
    for case in cases:
        fits = [m for m in det.scales if m * frame_s <= case.signal_s] or [min(det.scales)]
        scale = max(fits)
        k_eff = scale * eng.k_eff
        rng = np.random.default_rng(5)
        n_sig = int(min(case.signal_s, 1.0) * rate)
        clean = (NBFMTrack(rng, n_sig, rate, 200e3).render(0, n_sig) if case.name == "nbfm"
                 else gfsk_burst(rng, n_sig, rate, 200e3, ramp_s=0.0))
        offset_db = peak_bin_offset_db(clean, case.bandwidth_hz, rate, cfg)
        bin_db = theory_bin_snr_db(k_eff, det.pfa)
        bin_ratio_db = theory_bin_snr_db_ratio(k_eff, k_ref, det.pfa)
        theory_db = bin_db - offset_db
        weakest, scan = sens.weakest(case, theory_db + 2.0)
        cells = sum(v["trials"] for v in scan.values())
        fa = sum(v["false_alarms"] for v in scan.values())
        details = {
            "signal": case.title, "inband_bandwidth_hz": case.bandwidth_hz, "signal_s": case.signal_s, "capture_s": case.capture_s,
            "baseline_s": sens.baseline_s, "sample_rate_hz": rate, "trials": trials, "found_if": f">= {need}/{trials}",
            "scale_frames": scale, "window_s": round(scale * frame_s, 4), "k_eff": round(k_eff, 1), "pfa": det.pfa, "pd": PD_TARGET,
            "theory_bin_snr_db": round(bin_db, 2), "theory_bin_snr_db_vs_baseline": round(bin_ratio_db, 2), "baseline_k_eff": round(k_ref, 1),
            "peak_bin_offset_db": round(offset_db, 2), "theory_inband_snr_db": round(theory_db, 2),
            "theory_inband_snr_db_vs_baseline": round(bin_ratio_db - offset_db, 2),
            "scan": {f"{k:+.0f}": f"{v['hits']}/{v['trials']}" for k, v in sorted(scan.items())},
            "false_alarms": fa, "captures": cells,
        }
        summary = (f"{case.title}; found = {need}/{trials}; theory {theory_db:+.1f} dB in-band "
                   f"(bin {bin_db:+.1f} dB at K_eff {k_eff:.0f}, {scale}-frame window; peak bin {offset_db:+.1f} dB vs in-band; "
                   f"vs {sens.baseline_s:g} s baseline {bin_ratio_db - offset_db:+.1f} dB); false alarms {fa} in {cells} captures")
        out.append(Measurement(f"sensitivity_{case.name}", weakest, "dB", None, None, summary, details,
                               skipped=None if weakest is not None else "not found within 30 dB of theory"))
    return out


# --------------------------------------------------------------------------------------------------
# 5. simulator render speed


def measure_sim_render(quick: bool) -> list[Measurement]:
    try:
        sim = importlib.import_module("sdrwatch.radio.sim")
    except ImportError:
        sim = None
    fn = getattr(sim, "bench_render", None)
    if fn is None:
        note = "sdrwatch.radio.sim.bench_render is not available"
        return [Measurement("sim_render", None, "Msps", None, None, "skipped: " + note, skipped=note)]
    params = inspect.signature(fn).parameters
    kwargs = {"quick": quick} if "quick" in params else ({"seconds": 1.0 if quick else 4.0} if "seconds" in params else {})
    res = fn(**kwargs)
    if isinstance(res, dict):
        msps = float(res.get("msps", res.get("value", float("nan"))))
        details = {k: v for k, v in res.items() if isinstance(v, (int, float, str, bool))}
    else:
        msps, details = float(res), {}
    return [Measurement("sim_render", msps, "Msps", None, None, "simulator, 10-emitter scene (bench_render)", details)]


# --------------------------------------------------------------------------------------------------
# 6. start-up and whole-process replay


_CLI = "from sdrwatch.cli import main; main(prog_name='sdrwatch')"


def _child_env(workdir: Path) -> dict:
    """The environment of the timed ``sdrwatch`` processes: compiled bytecode cached (under
    WORKDIR/pycache), as an installed package has it, even where ``$PYTHONDONTWRITEBYTECODE`` is set
    (without it every run compiles sdrwatch's sources again, about 0.1-0.2 s)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def _warm_up(workdir: Path) -> Path:
    """A 0.1 s recording, replayed once untimed so the bytecode cache holds the replay path."""
    short = workdir / "startup-0.1s.sigmf-meta"
    if not short.exists():
        short = write_cu8(workdir / "startup-0.1s", 0.1, 41)
    _process_times(["replay", str(short), "--format", "jsonl"], 1, workdir)
    return short


def _process_times(args: list[str], runs: int, workdir: Path, code: str = _CLI) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``sdrwatch ARGS`` (or of the Python
    program ``code`` with ARGS) as a whole process."""
    import resource

    walls, cpus = [], []
    env = _child_env(workdir)
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=env)
        walls.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise SdrwatchError(f"bench: sdrwatch {' '.join(args[:2])} exited with {proc.returncode}: {tail[0]}")
    return float(np.median(walls)), float(np.median(cpus))


def write_cu8(stem: Path, seconds: float, seed: int, bursts: bool = True, centers_hz: list[float] | None = None,
              dwell_s: float | None = None) -> Path:
    """A cu8 SigMF recording at 2.4 MS/s (noise, NBFM, GFSK bursts); with ``centers_hz`` and ``dwell_s``, a
    sweep: captures of ``dwell_s`` cycling through the centres."""
    if centers_hz is None:
        return write_recording(stem, seconds, seed, bursts)
    return write_recording(stem, seconds, seed, bursts, burst_every_s=0.5, centers_hz=centers_hz, dwell_s=dwell_s)


def measure_startup(workdir: Path, runs: int) -> list[Measurement]:
    short = _warm_up(workdir)
    base_wall, base_cpu = _python_start(runs)
    out = []
    for name, args, target in (("startup_help", ["--help"], None),
                               ("startup_replay_0.1s", ["replay", str(short), "--format", "jsonl"], 0.35)):
        wall, cpu = _process_times(args, runs, workdir)
        out.append(Measurement(name, wall, "s", None if target is None else f"<= {target:g}",
                               None if target is None else wall <= target,
                               f"`sdrwatch {' '.join(args[:1])}{' 0.1 s cu8 file --format jsonl' if len(args) > 1 else ''}`, "
                               f"whole process, median of {runs} (CPU {cpu:.2f} s; `python -c 'import numpy'` "
                               f"{base_wall:.2f} s, CPU {base_cpu:.2f} s)",
                               {"cpu_s": round(cpu, 3), "runs": runs, "python_numpy_s": round(base_wall, 3),
                                "python_numpy_cpu_s": round(base_cpu, 3), "bytecode": "cached", "load_1min": _load()}))
    return out


def _load() -> float | None:
    """The machine's 1-minute load average (what else was running), where the OS reports it."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _python_start(runs: int) -> tuple[float, float]:
    """The floor under any numpy program: median wall and CPU time of ``python -c 'import numpy'``."""
    import resource

    walls, cpus = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], stdin=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return float(np.median(walls)), float(np.median(cpus))


#: the fair whole-process reference: a careful user's script that reads the recording block by block
#: and computes the same Welch frames with a vectorised ``scipy.fft`` (:class:`ReferenceFrames`), and
#: nothing else (no detection)
_REFERENCE_SCRIPT = """
import sys
import numpy as np
from sdrwatch.bench import RATE_HZ, ReferenceFrames
from sdrwatch.dsp.spectrum import SpectrumConfig
ref = ReferenceFrames(SpectrumConfig(fft_size=1024), RATE_HZ)
with open(sys.argv[1], "rb") as fh:
    while True:
        raw = np.frombuffer(fh.read(1 << 21), dtype=np.uint8)
        if not len(raw):
            break
        ref.push(raw)
"""


def measure_process_replay(workdir: Path, seconds: float, runs: int) -> list[Measurement]:
    """``sdrwatch replay`` of a ``seconds`` 2.4 MS/s cu8 file as a whole process, noise-floor mode and
    against a baseline file (learned from a separate recording at the same tuning), and in the same
    run, interleaved, the fair reference (:data:`_REFERENCE_SCRIPT`: only the spectrum, by a
    vectorised ``scipy.fft``, one core), so the ratios hold on a shared machine."""
    rec = write_cu8(workdir / "process-replay", seconds, 51)
    base_rec = write_cu8(workdir / "process-baseline", min(seconds, 5.0), 52, bursts=False)
    base = workdir / "process-baseline.npz"
    _process_times(["baseline", "build", str(base_rec), "-o", str(base), "--overwrite"], 1, workdir)
    _warm_up(workdir)
    data = str(rec).replace(".sigmf-meta", ".sigmf-data")
    cases = [("process_replay_noise_floor", ["replay", str(rec), "--format", "jsonl"], _CLI),
             ("process_replay_baseline", ["replay", str(rec), "--format", "jsonl", "--baseline", str(base)], _CLI),
             ("process_reference_spectrum", [data], _REFERENCE_SCRIPT)]
    times: dict[str, list] = {name: [] for name, _a, _c in cases}
    for _ in range(runs):  # interleaved: a slow spell of the machine falls on every case alike
        for name, args, code in cases:
            times[name].append(_process_times(args, 1, workdir, code))
    med = {name: (float(np.median([w for w, _c in v])), float(np.median([c for _w, c in v]))) for name, v in times.items()}
    ref_wall, ref_cpu = med["process_reference_spectrum"]
    out = [Measurement("process_reference_spectrum", seconds / ref_wall, "x real time", None, None,
                       f"the fair reference, whole process: a script reading the {seconds:g} s file and computing the same "
                       f"frames with a vectorised scipy.fft (no detection), median of {runs} ({ref_wall:.2f} s, CPU {ref_cpu:.2f} s)",
                       {"seconds": round(ref_wall, 3), "cpu_s": round(ref_cpu, 3), "runs": runs, "load_1min": _load()})]
    for name, target, what in (("process_replay_noise_floor", 40, ", noise-floor mode"),
                               ("process_replay_baseline", 60, " against a baseline file")):
        wall, cpu = med[name]
        out.append(Measurement(name, seconds / wall, "x real time", f">= {target}", seconds / wall >= target,
                               f"`sdrwatch replay` of {seconds:g} s cu8 at 2.4 MS/s{what}, whole process, median of {runs} "
                               f"({wall:.2f} s, CPU {cpu:.2f} s = {seconds / cpu:.1f}x by CPU time; "
                               f"{ref_wall / wall:.2f}x the speed of the spectrum-only reference)",
                               {"seconds": round(wall, 3), "cpu_s": round(cpu, 3), "x_by_cpu": round(seconds / cpu, 2),
                                "vs_reference": round(ref_wall / wall, 3), "recording_s": seconds, "runs": runs,
                                "load_1min": _load()}))
    return out


def measure_sweep(workdir: Path, seconds: float, repeats: int) -> list[Measurement]:
    """In-process replay of a sweep recording: 25 ms dwells cycling through 8 tunings 1.8 MHz apart."""
    from .replay import detect, learn_baseline

    centers = [CENTER_HZ + 1.8e6 * k for k in range(8)]
    rec_meta = write_cu8(workdir / "sweep", seconds, 61, centers_hz=centers, dwell_s=0.025)
    base = learn_baseline(open_recording(write_cu8(workdir / "sweep-base", min(seconds, 4.0), 62, bursts=False,
                                                   centers_hz=centers, dwell_s=0.025)))
    out = []
    for name, b, target in (("sweep_replay_baseline", base, 20), ("sweep_replay_noise_floor", None, 20)):
        found = {}

        def once(b=b, found=found) -> None:
            found["n"] = len(detect(open_recording(rec_meta), b))

        t, wall = _best_cpu_and_wall(once, repeats)
        out.append(Measurement(name, seconds / t, "x real time", f">= {target}", seconds / t >= target,
                               f"detect() on a {seconds:g} s sweep, 25 ms dwells over 8 tunings"
                               f"{' against a baseline' if b is not None else ', noise-floor mode'} ({found['n']} emissions), "
                               f"by CPU time of all threads; by wall time {seconds / wall:.1f}x",
                               {"seconds": round(t, 3), "wall_s": round(wall, 3), "x_by_wall": round(seconds / wall, 2),
                                "dwell_s": 0.025, "hops": len(centers), "emissions": found["n"], "load_1min": _load()}))
    return out


# --------------------------------------------------------------------------------------------------
# 7. the chain's and the agent's benchmarks, when present


def measure_chain_bench(quick: bool, workdir: Path) -> list[Measurement]:
    """``sdrwatch.bench_chain.bench_crowded``: 0 to 150 emitters in one hop, both modes."""
    from . import bench_chain

    res = bench_chain.bench_crowded(duration_s=2.0 if quick else 10.0, counts=(0, 50) if quick else (0, 50, 100, 150),
                                    repeats=1 if quick else 2, workdir=workdir)
    out: list[Measurement] = []
    for row in res.get("rows", []):
        for mode in ("noise_floor", "baseline"):
            v = row.get(f"{mode}_x_realtime_cpu")
            if v is not None:
                target = None if quick else 15  # the target is for 10 s captures; quick ones are mostly learning
                out.append(Measurement(f"crowded_{row['emitters']}_{mode}", float(v), "x real time",
                                       None if target is None else f">= {target}", None if target is None else float(v) >= target,
                                       f"bench_chain.bench_crowded: {row['emitters']} emitters in one hop, {mode.replace('_', '-')} mode, "
                                       f"by CPU time (wall {row.get(f'{mode}_x_realtime_wall')}x)",
                                       {"duration_s": res.get("duration_s"), "emissions": row.get(f"{mode}_emissions"),
                                        "x_by_wall": row.get(f"{mode}_x_realtime_wall")}))
    return out


def measure_agent_bench(quick: bool, stage: Stage | None = None) -> list[Measurement]:
    """``sdrwatch.bench_agent.run``: latency, revisit, CPU per receiver and memory of the site agent."""
    from . import bench_agent

    return [m for m in bench_agent.run(quick=quick, stage=stage) if isinstance(m, Measurement)]


# --------------------------------------------------------------------------------------------------


#: the stages of a run, in order (``sdrwatch bench --only psd,startup``)
STAGES = ("psd", "replay", "large", "false-alarms", "sensitivity", "sim", "startup", "process", "sweep", "chain", "agent")
#: names that stand for several stages
STAGE_GROUPS = {"modules": ("chain", "agent")}


def run(quick: bool = False, large_mb: int | None = None, report: Report | None = None, stage: Stage | None = None,
        only: tuple[str, ...] | None = None) -> list[Measurement]:
    """Every measurement, in order; ``report`` is called as each one is ready, ``stage`` with progress text;
    ``only`` picks stages by name (:data:`STAGES`).

    Everything runs on one core unless its name says two workers (``psd_fftw_2_workers``; the whole-process
    replay, which reads ahead in a second thread): numpy ufuncs and ``scipy.fft`` (``workers=1``) do not
    spawn threads, and no BLAS call is on the path. The CPUs the process may use are reported.
    """
    large_mb = large_mb if large_mb is not None else (256 if quick else 2048)
    chosen = set(STAGES if not only else only)
    for group, members in STAGE_GROUPS.items():
        if group in chosen:
            chosen = (chosen - {group}) | set(members)
    unknown = chosen - set(STAGES)
    if unknown:
        raise SdrwatchError(f"unknown bench stage {sorted(unknown)[0]!r} (one of {', '.join(STAGES + tuple(STAGE_GROUPS))})")
    results: list[Measurement] = []

    def emit(ms: list[Measurement]) -> None:
        for m in ms:
            results.append(m)
            if report:
                report(m)

    def step(text: str) -> None:
        if stage:
            stage(text)

    with tempfile.TemporaryDirectory(prefix="sdrwatch-bench-") as tmp:
        work = Path(tmp)
        plan = [
            ("psd", "PSD throughput", lambda: measure_psd(4_000_000 if quick else 16_000_000, repeats=3)),
            ("replay", "replay speed", lambda: measure_replay(work, 5.0 if quick else 20.0, 2.0 if quick else 5.0, 1 if quick else 2)),
            ("large", f"large-file replay ({large_mb} MB)", lambda: measure_large(work, large_mb)),
            ("false-alarms", "false alarms on noise", lambda: measure_false_alarms(work, 10.0 if quick else 120.0)),
            ("sensitivity", "sensitivity", lambda: measure_sensitivity(quick, stage)),
            ("sim", "simulator render", lambda: measure_sim_render(quick)),
            ("startup", "start-up", lambda: measure_startup(work, 3 if quick else 7)),
            ("process", "whole-process replay", lambda: measure_process_replay(work, 5.0 if quick else 60.0, 1 if quick else 3)),
            ("sweep", "sweep replay", lambda: measure_sweep(work, 3.0 if quick else 20.0, 1 if quick else 2)),
            ("chain", "crowded-band chain", lambda: measure_chain_bench(quick, work)),
            ("agent", "site agent", lambda: measure_agent_bench(quick, stage)),
        ]
        for name, text, fn in plan:
            if name in chosen:
                step(text)
                emit(fn())
    return results
