"""Replay: run a recording through spectrum -> baseline/detector -> tracker, as the live agent would.

``learn_baseline`` turns a recording (or, later, live sweeps) into a :class:`~sdrwatch.baseline.Baseline`;
``detect`` lists the emissions of a recording, against a baseline or (without one) against the noise
floor learned from the recording itself. Both walk the recording once, block by block, so memory
stays bounded whatever the file size. Times are seconds from the first sample of the recording
(sample index / sample rate, hops counted back to back).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .baseline import Baseline, now_iso
from .classify import classify
from .dsp.baseline import HopStats, HopStatsBuilder, ScaleWindows
from .dsp.detector import DetectorConfig, HopDetector
from .dsp.spectrum import SpectrumConfig, WelchFrames, auto_crop, auto_fft_size, bin_correlations, bin_freqs_hz, kept_bins
from .dsp.tracker import Emission, Tracker
from .errors import BaselineError

Progress = Callable[[int], None]  # called with samples just processed

#: samples read per block
BLOCK_SAMPLES = 1 << 18


@dataclass(frozen=True)
class Settings:
    spectrum: SpectrumConfig = field(default_factory=SpectrumConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    max_gap_s: float = 5.0
    learn_s: float = 3.0  # noise-floor mode: seconds per hop used to learn the floor

    def resolved(self, rec) -> "Settings":
        """Fix the automatic FFT size (from the sample rate) and crop (from the hop plan)."""
        spec = self.spectrum
        if spec.fft_size is None:
            spec = replace(spec, fft_size=auto_fft_size(rec.sample_rate_hz))
        if spec.crop is None:
            spec = replace(spec, crop=auto_crop(rec.sample_rate_hz, [c.center_hz for c in rec.captures]))
        return replace(self, spectrum=spec)


@dataclass
class HopFrames:
    """Frames of one capture, cropped: yielded block by block."""

    capture_index: int
    center_hz: float
    sample_start: int  # of the capture in the recording
    freq_hz: np.ndarray
    frames: np.ndarray  # (T, kept bins)
    frame_index: np.ndarray  # frame number within the capture


def iter_hop_frames(rec, spec: SpectrumConfig, progress: Progress | None = None) -> Iterator[HopFrames]:
    """Welch frames of every capture of ``rec``, cropped to the kept bins, block by block; after each
    capture, one empty ``HopFrames`` marks its end (the end of a dwell)."""
    keep = kept_bins(spec.fft_size, spec.crop or 0.0)
    for ci, cap in enumerate(rec.captures):
        eng = WelchFrames(rec.sample_rate_hz, spec)
        freq = bin_freqs_hz(cap.center_hz, rec.sample_rate_hz, spec.fft_size)[keep]
        frame_no = 0
        for block in rec.iter_blocks(BLOCK_SAMPLES, captures=[ci]):
            power, _starts = eng.push(block.iq)
            if progress:
                progress(len(block.iq))
            if len(power):
                yield HopFrames(ci, cap.center_hz, cap.sample_start, freq, power[:, keep], np.arange(frame_no, frame_no + len(power)))
                frame_no += len(power)
        yield HopFrames(ci, cap.center_hz, cap.sample_start, freq, np.zeros((0, len(freq)), np.float32), np.zeros(0, int))


def _meta(rec, settings: Settings, eng: WelchFrames) -> dict:
    return {
        "sample_rate_hz": rec.sample_rate_hz,
        "spectrum": settings.spectrum.as_dict(),
        "detector": settings.detector.as_dict(),
        "k0_eff": eng.k_eff,
        "ffts_per_frame": eng.k,
        "enbw_bins": eng.enbw,
        "frame_step_s": eng.frame_samples / rec.sample_rate_hz,
        "source": str(getattr(rec, "path", "")),
        "created": now_iso(),
    }


def _builders(rec, settings: Settings, eng: WelchFrames, progress: Progress | None) -> list[HopStatsBuilder]:
    builders: dict[int, HopStatsBuilder] = {}
    by_freq: dict[float, HopStatsBuilder] = {}
    for hf in iter_hop_frames(rec, settings.spectrum, progress):
        b = builders.get(hf.capture_index)
        if b is None:
            # several captures at one frequency (repeated sweeps) share one builder
            b = by_freq.get(round(hf.center_hz))
            if b is None:
                b = HopStatsBuilder(hf.center_hz, hf.freq_hz, eng.k_eff, settings.detector.scales)
                by_freq[round(hf.center_hz)] = b
            builders[hf.capture_index] = b
        if len(hf.frames):
            b.add(hf.frames, int(hf.frame_index[0]))
        else:
            b.end_dwell()
    return list(by_freq.values())


def learn_baseline(rec, settings: Settings = Settings(), progress: Progress | None = None) -> Baseline:
    """Baseline statistics of every hop of a recording (see :mod:`sdrwatch.dsp.baseline`)."""
    settings = settings.resolved(rec)
    eng = WelchFrames(rec.sample_rate_hz, settings.spectrum)
    builders = _builders(rec, settings, eng, progress)
    hops = [b.finish(settings.detector) for b in builders if b._n]
    if not hops:
        raise BaselineError(f"{rec.path}: too short to learn a baseline (need at least one {settings.spectrum.frame_s * 1e3:g} ms frame)")
    return Baseline(_meta(rec, settings, eng), hops)


def detect(rec, baseline: Baseline | None = None, settings: Settings = Settings(), progress: Progress | None = None) -> list[Emission]:
    """Emissions of a recording, one record each, classified (label, severity)."""
    if baseline is not None:
        # the baseline's spectrum settings win, so both sides share one bin grid
        spec = SpectrumConfig(**baseline.meta["spectrum"])
        det = DetectorConfig.from_dict({**baseline.meta["detector"], **_overrides(settings.detector)})
        det = replace(det, scales=tuple(baseline.meta["detector"]["scales"]))
        settings = replace(settings, spectrum=spec, detector=det)
        baseline.check_compatible(rec.sample_rate_hz, spec.fft_size)
        mode_noise = False
    else:
        settings = settings.resolved(rec)
        mode_noise = True
    eng = WelchFrames(rec.sample_rate_hz, settings.spectrum)
    fs = rec.sample_rate_hz
    frame_span = (eng.k - 1) * eng.hop + eng.n  # samples covered by one frame
    scales_s = [m * eng.frame_samples / fs for m in settings.detector.scales]
    tracker = Tracker(max_gap_s=settings.max_gap_s, freq_tol_hz=settings.detector.slop_bins * fs / settings.spectrum.fft_size)
    half_hz = 0.5 * fs * (1.0 - (settings.spectrum.crop or 0.0))
    for cap in rec.captures:  # what was watched when: sweeps are not "off" while on other hops
        tracker.observe(cap.sample_start / fs, (cap.sample_start + cap.sample_count) / fs, cap.center_hz - half_hz, cap.center_hz + half_hz)
    detectors: dict[int, tuple[HopDetector, ScaleWindows]] = {}  # by capture
    bin_hz = fs / settings.spectrum.fft_size
    bin_rho = bin_correlations(eng.window)  # the same window for every hop

    def handle(windows, hf: HopFrames, det: HopDetector) -> None:
        for si, starts, m, means in windows:
            for start_frame, dets in zip(starts, det.detect_many(means, si, int(m))):
                if not dets:
                    continue
                t0 = (hf.sample_start + start_frame * eng.frame_samples) / fs
                t1 = (hf.sample_start + (start_frame + m - 1) * eng.frame_samples + frame_span) / fs
                for d in dets:
                    f = hf.freq_hz
                    tracker.add(
                        si,
                        scales_s[si],
                        t0,
                        t1,
                        float(np.interp(d.center_bin, np.arange(len(f)), f)),
                        d.obw_bins * bin_hz,
                        d.power_dbfs,
                        d.snr_db,
                        "emission" if mode_noise else ("changed" if d.changed else "new"),
                        hf.center_hz,
                        d.margin_db,
                        approximate=d.channel_bins > 0,
                    )

    def start(hf: HopFrames, hop: HopStats) -> tuple:
        if len(hop.freq_hz) != len(hf.freq_hz):
            raise BaselineError(
                f"baseline hop at {hf.center_hz / 1e6:.4f} MHz has {len(hop.freq_hz)} bins but the recording gives {len(hf.freq_hz)} (different crop)"
            )
        ref = hop.noise_only_reference() if mode_noise else hop.reference()
        det = HopDetector(ref, eng.k_eff, eng.enbw, settings.detector, bin_hz=bin_hz, bin_rho=bin_rho)
        return det, ScaleWindows(settings.detector.scales)

    def run(state: tuple, hf: HopFrames) -> None:
        det, sw = state
        handle(sw.push(hf.frames, int(hf.frame_index[0])) if len(hf.frames) else sw.flush(), hf, det)

    # noise-floor mode learns each frequency's floor from its first learn_s of frames, held back
    # and then detected on, so the recording is still read once
    learners: dict[int, HopStatsBuilder] = {}  # by capture
    floors: dict[int, HopStats] = {}  # by frequency (Hz, rounded): later visits reuse the floor
    held: dict[int, list[HopFrames]] = {}
    learn_frames = max(1, int(np.ceil(settings.learn_s * fs / eng.frame_samples)))
    for hf in iter_hop_frames(rec, settings.spectrum, progress):
        state = detectors.get(hf.capture_index)
        if state is None and not mode_noise:
            state = detectors[hf.capture_index] = start(hf, baseline.hop_for(hf.center_hz))
        if state is None:
            key = round(hf.center_hz)
            if key not in floors:
                b = learners.setdefault(hf.capture_index, HopStatsBuilder(hf.center_hz, hf.freq_hz, eng.k_eff, settings.detector.scales))
                held.setdefault(hf.capture_index, []).append(hf)
                if len(hf.frames):
                    b.add(hf.frames, int(hf.frame_index[0]))
                    if b._n < learn_frames:
                        continue  # keep learning
                elif not b._n:
                    held.pop(hf.capture_index)  # a capture shorter than one frame
                    continue
                floors[key] = b.finish_noise_floor()
            state = detectors[hf.capture_index] = start(hf, floors[key])
            for h in held.pop(hf.capture_index, [hf]):
                run(state, h)
            continue
        run(state, hf)
    emissions = tracker.finish()
    for e in emissions:
        classify(e)
    return emissions


def _overrides(det: DetectorConfig) -> dict:
    """Detector settings a user changed from the defaults (they override the baseline's)."""
    default = DetectorConfig()
    return {k: v for k, v in det.__dict__.items() if k != "scales" and v != getattr(default, k)}


def load_reference(path: str | Path, settings: Settings, progress: Progress | None = None) -> Baseline:
    """``--baseline`` takes a baseline file (.npz) or a recording to learn one from."""
    from .radio.file import open_recording

    if Baseline.is_baseline_file(path):
        return Baseline.load(path)
    return learn_baseline(open_recording(path), settings, progress)
