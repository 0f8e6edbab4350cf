"""Replay: drive the streaming chain (:mod:`sdrwatch.dsp.chain`) over a recording or any Source.

``learn_baseline`` turns a recording into a :class:`~sdrwatch.baseline.Baseline` through the one
:class:`~sdrwatch.dsp.chain.BaselineLearner`; ``detect`` lists the emissions of a recording, against
a baseline or (without one) against the noise floor learned from the recording itself;
``replay_events`` yields the chain's events as they happen, for a recording or a live Source.
All walk the data once, block by block, so memory stays bounded whatever the file size. Times are
seconds from the first sample (sample index / sample rate; a recording's hops counted back to back).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .baseline import Baseline, now_iso
from .classify import classify
from .dsp.chain import BaselineLearner, Chain, EmissionEvent, Settings, _Front
from .dsp.spectrum import SpectrumConfig, WelchFrames
from .dsp.tracker import Emission
from .errors import BaselineError

__all__ = ["Settings", "learn_baseline", "detect", "replay_events", "make_chain", "load_reference", "iter_hop_frames", "HopFrames", "BLOCK_SAMPLES"]

Progress = Callable[[int], None]  # called with samples just processed

#: samples read per block
BLOCK_SAMPLES = 1 << 20  # 0.44 s at 2.4 MS/s: fewer, larger batches for the detector and tracker


@dataclass
class HopFrames:
    """Frames of one capture, cropped: yielded block by block (for plots of a recording's spectrum)."""

    capture_index: int
    center_hz: float
    sample_start: int  # of the capture in the recording
    freq_hz: np.ndarray
    frames: np.ndarray  # (T, kept bins)
    frame_index: np.ndarray  # frame number within the capture


def iter_hop_frames(rec, spec: SpectrumConfig, progress: Progress | None = None) -> Iterator[HopFrames]:
    """Welch frames of every capture of ``rec``, cropped to the kept bins, block by block, through the
    chain's front end; after each capture, one empty ``HopFrames`` marks its end (a dwell's end)."""
    for ci, cap in enumerate(rec.captures):
        front = _Front(cap.center_hz, rec.sample_rate_hz, spec)
        freq = front.freq_hz
        for block in rec.iter_blocks(BLOCK_SAMPLES, captures=[ci]):
            if not front.active:
                front.start(block)
            frames, first = front.frames(block)
            if progress:
                progress(block.num_samples)
            if len(frames):
                yield HopFrames(ci, cap.center_hz, cap.sample_start, freq, frames, np.arange(first, first + len(frames)))
        yield HopFrames(ci, cap.center_hz, cap.sample_start, freq, np.zeros((0, len(freq)), np.float32), np.zeros(0, int))


def read_ahead_blocks(rec, spectrum: SpectrumConfig):
    """The recording's blocks, each with its Welch frames computed in the read-ahead thread for an
    engine of ``spectrum`` (the chain's or the learner's takes them instead of computing them).
    Recording-like objects without that give plain blocks."""
    import inspect

    if "frames" not in inspect.signature(rec.iter_blocks).parameters:
        return rec.iter_blocks(BLOCK_SAMPLES)
    return rec.iter_blocks(BLOCK_SAMPLES, frames=WelchFrames(rec.sample_rate_hz, spectrum))


def learn_baseline(rec, settings: Settings = Settings(), progress: Progress | None = None) -> Baseline:
    """Baseline statistics of every hop of a recording (see :mod:`sdrwatch.dsp.baseline`)."""
    learner = BaselineLearner(rec.sample_rate_hz, settings.resolved(rec))
    for block in read_ahead_blocks(rec, learner.settings.spectrum):
        learner.push(block)
        if progress:
            progress(block.num_samples)
    try:
        return learner.finish(source=str(getattr(rec, "path", "")), created=now_iso())
    except BaselineError as exc:
        raise BaselineError(f"{rec.path}: {exc}") from None


def replay_events(blocks: Iterable, sample_rate_hz: float, baseline: Baseline | None = None, settings: Settings = Settings(),
                  progress: Progress | None = None, update_s: float | None = None) -> Iterator[EmissionEvent]:
    """The chain's events (classified) over ``blocks``, as they happen; at the end every open emission
    closes."""
    chain = make_chain(sample_rate_hz, baseline, settings, update_s)
    yield from _events(chain, blocks, progress)


def _events(chain: Chain, blocks: Iterable, progress: Progress | None) -> Iterator[EmissionEvent]:
    for block in blocks:
        yield from chain.push(block)
        if progress:
            progress(block.num_samples)
    yield from chain.close_all()


def make_chain(sample_rate_hz: float, baseline: Baseline | None = None, settings: Settings = Settings(), update_s: float | None = None) -> Chain:
    """The chain replay and the agent run: classified with the threat profiles."""
    return Chain(sample_rate_hz, baseline, settings, classify=classify, update_s=update_s)


def detect(rec, baseline: Baseline | None = None, settings: Settings = Settings(), progress: Progress | None = None) -> list[Emission]:
    """Emissions of a recording, one record each, classified (label, severity), by start time."""
    if baseline is None:
        settings = settings.resolved(rec)
    chain = make_chain(rec.sample_rate_hz, baseline, settings)
    out = [ev.emission for ev in _events(chain, read_ahead_blocks(rec, chain.settings.spectrum), progress)
           if ev.event == "close" and ev.merged_into is None]
    out.sort(key=lambda e: (e.start_s, e.center_hz))
    return out


def load_reference(path: str | Path, settings: Settings, progress: Progress | None = None) -> Baseline:
    """``--baseline`` takes a baseline file (.npz) or a recording to learn one from."""
    from .radio.file import open_recording

    if Baseline.is_baseline_file(path):
        return Baseline.load(path)
    return learn_baseline(open_recording(path), settings, progress)
