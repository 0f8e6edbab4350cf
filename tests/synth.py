"""Small vectorised test signals for the detection-core tests (independent of the simulator)."""
from __future__ import annotations

import numpy as np

from sdrwatch.radio.file import SigMFWriter

NOISE_POWER = 1e-4  # total complex noise power over the sample rate (-40 dBFS)


def noise(n: int, rng: np.random.Generator, power: float = NOISE_POWER) -> np.ndarray:
    """Complex white noise of total power ``power``: I then Q from ``rng``, scaled in float64, as complex64
    (written part by part: the same values as the complex128 product, without its temporaries)."""
    scale = np.sqrt(power / 2)
    out = np.empty(n, np.complex64)
    out.real = rng.standard_normal(n) * scale
    out.imag = rng.standard_normal(n) * scale
    return out


def snr_to_power(snr_db: float, bandwidth_hz: float, fs: float, noise_power: float = NOISE_POWER) -> float:
    """Signal power for an in-band SNR over ``bandwidth_hz`` of white noise of total power noise_power."""
    return 10 ** (snr_db / 10) * noise_power * bandwidth_hz / fs


def nbfm(n: int, fs: float, offset_hz: float, power: float, rng: np.random.Generator, deviation_hz: float = 2.5e3) -> np.ndarray:
    """NBFM with band-limited noise 'voice' (300-3000 Hz), ~11 kHz occupied (Carson)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / fs)
    spec[(f < 300) | (f > 3000)] = 0
    audio = np.fft.irfft(spec, n)
    audio /= np.max(np.abs(audio)) + 1e-12
    phase = 2 * np.pi * (offset_hz * np.arange(n) / fs + deviation_hz * np.cumsum(audio) / fs)
    return (np.sqrt(power) * np.exp(1j * phase)).astype(np.complex64)


def fsk_bursts(n: int, fs: float, offset_hz: float, power: float, rng: np.random.Generator, starts_s, length_s: float = 0.015,
               bitrate: float = 2400.0, deviation_hz: float = 4.5e3) -> np.ndarray:
    """2-FSK bursts of ``length_s`` at the given start times."""
    bits = rng.integers(0, 2, int(n / fs * bitrate) + 2) * 2 - 1
    sym = bits[(np.arange(n) / fs * bitrate).astype(int)]
    phase = 2 * np.pi * np.cumsum(offset_hz + deviation_hz * sym) / fs
    gate = np.zeros(n, dtype=bool)
    for s in starts_s:
        gate[int(s * fs): int((s + length_s) * fs)] = True
    return (np.sqrt(power) * np.exp(1j * phase) * gate).astype(np.complex64)


def write(stem, iq, fs, center_hz, fmt="cf32", annotations=()):
    with SigMFWriter(stem, fmt=fmt, sample_rate_hz=fs, overwrite=True) as w:
        w.start_capture(center_hz)
        w.write(iq)
        for a in annotations:
            w.annotate(**a)
    return stem
