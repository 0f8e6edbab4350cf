"""The one streaming detection chain: IQ blocks from any hop in, emission events out.

::

    chain = Chain(sample_rate_hz, baseline=None, settings=Settings(), classify=None)
    for block in source_blocks:              # sdrwatch.radio.base.Block, any hop, any size
        for ev in chain.push(block):         # EmissionEvent: "open", "update", "close"
            ...
    chain.end_dwell(center_hz)               # optional: the receiver left center_hz (flush its windows)
    events = chain.close_all()               # end of the run: every open emission closes

    learner = BaselineLearner(sample_rate_hz, settings)
    learner.push(block); learner.end_dwell(center_hz); baseline = learner.finish()

Per tuning frequency (hop) the chain keeps a Welch front end (:class:`~sdrwatch.dsp.spectrum.WelchFrames`),
the integration windows (:class:`~sdrwatch.dsp.baseline.ScaleWindows`) and one detector whose
thresholds are computed once (:class:`~sdrwatch.dsp.detector.HopDetector`); every hop's detections
go to one :class:`~sdrwatch.dsp.tracker.Tracker`. A *dwell* is a run of blocks at one frequency whose
sample indices follow on: a block at another frequency, or one that does not follow on, ends it
(its partial windows are flushed, as :meth:`Chain.end_dwell` does). Frame times come from the blocks'
``sample_index`` (seconds of the source's sample clock), so one chain serves one sample clock: one
receiver, or one recording with its hops counted back to back.

Without a baseline (noise-floor mode) each frequency's floor is learned by the same learner as a
baseline (:class:`~sdrwatch.dsp.baseline.HopStatsBuilder`) from its first ``Settings.learn_s`` of
frames (or its first dwell, if shorter); those frames are held back and then detected on, so the
data is still read once.

Events: ``open`` when an emission first stands solidly over its threshold (or, for one that never
does, just before it closes), ``update`` at most every ``update_s`` seconds of sample clock while
its extent, bursts or peak change, ``close`` when no detection still to come can join it (or at
:meth:`Chain.close_all`). Every event of one emission carries the same ``track_id``. When two
announced emissions turn out to be one, the younger closes with ``merged_into`` set to the other's id.

Pure: no files, sockets or clocks; classification is injected (``classify``: Emission -> Emission).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..errors import BaselineError
from .baseline import HopStats, HopStatsBuilder, ScaleWindows
from .detector import DetectorConfig, HopDetector
from .spectrum import SpectrumConfig, WelchFrames, auto_crop, auto_fft_size, bin_correlations, kept_bins
from .tracker import NOVELTY_CODE, Emission, Tracker


#: detections go to the tracker in epochs of this many frames of a dwell (0.25 s at 5 ms frames: an
#: "open" waits at most that long; fewer, larger batches for the tracker)
EPOCH_FRAMES = 50


@dataclass(frozen=True)
class Settings:
    spectrum: SpectrumConfig = field(default_factory=SpectrumConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    max_gap_s: float = 5.0
    learn_s: float = 3.0  # noise-floor mode: seconds per hop used to learn the floor

    def resolved_for(self, sample_rate_hz: float, centers_hz=()) -> "Settings":
        """Fix the automatic FFT size (from the sample rate) and crop (from the hop centres: none
        for one tuning, just enough that a sweep's hops tile)."""
        spec = self.spectrum
        if spec.fft_size is None:
            spec = replace(spec, fft_size=auto_fft_size(sample_rate_hz))
        if spec.crop is None:
            spec = replace(spec, crop=auto_crop(sample_rate_hz, list(centers_hz)))
        return replace(self, spectrum=spec)

    def resolved(self, rec) -> "Settings":
        """:meth:`resolved_for` a recording's rate and captures."""
        return self.resolved_for(rec.sample_rate_hz, [c.center_hz for c in rec.captures])

    def against(self, baseline) -> "Settings":
        """Settings for detection against ``baseline``: its spectrum settings and scales win (both
        sides share one bin grid); detector settings changed from the defaults here override its."""
        spec = SpectrumConfig(**baseline.meta["spectrum"])
        default = DetectorConfig()
        mine = {k: v for k, v in self.detector.__dict__.items() if k != "scales" and v != getattr(default, k)}
        det = DetectorConfig.from_dict({**baseline.meta["detector"], **mine})
        det = replace(det, scales=tuple(baseline.meta["detector"]["scales"]))
        return replace(self, spectrum=spec, detector=det)


@dataclass(frozen=True)
class EmissionEvent:
    """One event of one emission (module docstring). ``emission`` is a snapshot, classified when the
    chain has a ``classify`` callable."""

    event: str  # "open" | "update" | "close"
    track_id: int
    emission: Emission
    merged_into: int | None = None  # a "close" of an emission found to be part of track merged_into


class _Front:
    """One tuning frequency's front end: Welch frames of the current dwell, cropped to the kept bins.

    Only one dwell is active at a time (a receiver is tuned to one frequency), so every front of a
    chain shares one Welch engine: memory does not grow with the number of hops in a plan.
    """

    def __init__(self, center_hz: float, sample_rate_hz: float, spec: SpectrumConfig, eng: WelchFrames | None = None):
        self.center_hz = float(center_hz)
        self.eng = eng if eng is not None else WelchFrames(sample_rate_hz, spec)
        n = spec.fft_size
        self.keep = kept_bins(n, spec.crop or 0.0)
        self.bin_hz = sample_rate_hz / n
        self.nbins = self.keep.stop - self.keep.start
        #: frequency of kept bin k is f0_hz + k * bin_hz
        self.f0_hz = self.center_hz + (self.keep.start - n // 2) * self.bin_hz
        self.active = False
        self.dwell_start = 0  # sample index of the dwell's first sample
        self.next_index = 0
        self.frame_no = 0  # frames so far in this dwell

    @property
    def freq_hz(self) -> np.ndarray:
        return self.f0_hz + np.arange(self.nbins) * self.bin_hz

    def follows(self, block) -> bool:
        return self.active and block.sample_index == self.next_index

    def start(self, block) -> None:
        self.eng.reset()
        self.active, self.dwell_start, self.next_index, self.frame_no = True, int(block.sample_index), int(block.sample_index), 0

    def frames(self, block) -> tuple[np.ndarray, int]:
        # a recording's cu8 bytes where the block keeps them, as the frames ahead were computed from
        power, _ = self.eng.push(block.samples, getattr(block, "ahead", None))  # frames computed ahead, if any
        self.next_index = int(block.sample_index) + block.num_samples
        first = self.frame_no
        self.frame_no += len(power)
        return power[:, self.keep], first


def _check_rate(block, sample_rate_hz: float) -> None:
    if abs(block.sample_rate_hz - sample_rate_hz) > 1e-6 * sample_rate_hz:
        raise ValueError(f"block at {block.sample_rate_hz:g} S/s pushed into a chain made for {sample_rate_hz:g} S/s")


class BaselineLearner:
    """The one baseline learner: blocks of any hop in, a :class:`~sdrwatch.baseline.Baseline` out.
    Visits of one frequency (repeated sweeps) share its statistics. ``max_frames``: frames per hop
    kept for the percentiles (a reservoir beyond that): 4000 frames of 1024 bins are 16 MB per hop,
    so a plan of hundreds of hops wants fewer; ``max_frames_for`` maps ``round(center_hz)`` to a
    hop's own limit (``sdrwatch.agent.loop.capture_keep_frames``)."""

    def __init__(self, sample_rate_hz: float, settings: Settings = Settings(), max_frames: int = 4000,
                 max_frames_for: dict[int, int] | None = None):
        self.sample_rate_hz = float(sample_rate_hz)
        self.settings = settings.resolved_for(sample_rate_hz)
        self._eng = WelchFrames(sample_rate_hz, self.settings.spectrum)
        self._fronts: dict[int, _Front] = {}
        self._builders: dict[int, HopStatsBuilder] = {}
        self._current: int | None = None
        self.max_frames = int(max_frames)
        self.max_frames_for = dict(max_frames_for or {})

    @property
    def frame_bytes(self) -> int:
        """Bytes one kept frame of a hop takes (float32 per kept bin)."""
        spec = self.settings.spectrum
        keep = kept_bins(spec.fft_size, spec.crop or 0.0)
        return 4 * (keep.stop - keep.start)

    def push(self, block) -> None:
        _check_rate(block, self.sample_rate_hz)
        key = round(block.center_hz)
        front = self._fronts.get(key)
        if front is None:
            front = self._fronts[key] = _Front(block.center_hz, self.sample_rate_hz, self.settings.spectrum, self._eng)
            self._builders[key] = HopStatsBuilder(front.center_hz, front.freq_hz, self._eng.k_eff, self.settings.detector.scales,
                                                  max_frames=self.max_frames_for.get(key, self.max_frames))
        if self._current is not None and self._current != key:
            self._end(self._current)
        if front.active and not front.follows(block):
            self._end(key)
        if not front.active:
            front.start(block)
        self._current = key
        frames, first = front.frames(block)
        if len(frames):
            self._builders[key].add(frames, first)

    def _end(self, key: int) -> None:
        front = self._fronts[key]
        if front.active:
            self._builders[key].end_dwell()
            front.active = False
        if self._current == key:
            self._current = None

    def end_dwell(self, center_hz: float) -> None:
        if round(center_hz) in self._fronts:
            self._end(round(center_hz))

    def meta(self) -> dict:
        eng, s = self._eng, self.settings
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "spectrum": s.spectrum.as_dict(),
            "detector": s.detector.as_dict(),
            "k0_eff": eng.k_eff,
            "ffts_per_frame": eng.k,
            "enbw_bins": eng.enbw,
            "frame_step_s": eng.frame_samples / self.sample_rate_hz,
        }

    def finish(self, source: str = "", created: str | None = None):
        """The baseline of everything pushed. ``source`` and ``created`` (UTC ISO-8601) go into its
        metadata. Raises :class:`~sdrwatch.errors.BaselineError` if no hop had a whole frame."""
        from ..baseline import Baseline

        for key in list(self._fronts):
            self._end(key)
        hops = [b.finish(self.settings.detector) for b in self._builders.values() if b._n]
        if not hops:
            raise BaselineError(f"too short to learn a baseline (need at least one {self.settings.spectrum.frame_s * 1e3:g} ms frame)")
        return Baseline({**self.meta(), "source": source, "created": created}, hops)


@dataclass
class _Hop:
    front: _Front
    windows: ScaleWindows
    det: HopDetector | None = None
    learner: HopStatsBuilder | None = None  # noise-floor mode, while learning
    held: list = field(default_factory=list)  # frames held back while learning: (frames, first_frame)
    pending: list = field(default_factory=list)  # detections waiting for their epoch (Chain._release)


class Chain:
    """The streaming detection chain (module docstring).

    ``update_s``: sample-clock seconds between ``update`` events of one emission; ``None``: no
    updates (replay prints emissions as they close and does not need them).
    """

    def __init__(self, sample_rate_hz: float, baseline=None, settings: Settings = Settings(),
                 classify: Callable[[Emission], Emission] | None = None, update_s: float | None = 1.0):
        fs = self.sample_rate_hz = float(sample_rate_hz)
        if baseline is not None:
            settings = settings.against(baseline)
            baseline.check_compatible(fs, settings.spectrum.fft_size)
        else:
            settings = settings.resolved_for(fs)
        self.settings = settings
        self.baseline = baseline
        self.classify = classify
        self.update_s = update_s
        spec, det = settings.spectrum, settings.detector
        eng = self._eng = WelchFrames(fs, spec)
        self.frame_samples = eng.frame_samples
        self.frame_span = (eng.k - 1) * eng.hop + eng.n  # samples covered by one frame
        self.scales = tuple(int(m) for m in det.scales)
        self.bin_hz = fs / spec.fft_size
        self.half_hz = 0.5 * fs * (1.0 - (spec.crop or 0.0))
        self.bin_rho = bin_correlations(eng.window)  # the same window for every hop
        self.learn_frames = max(1, int(np.ceil(settings.learn_s * fs / eng.frame_samples)))
        self.tracker = Tracker([m * eng.frame_samples / fs for m in self.scales], max_gap_s=settings.max_gap_s,
                               freq_tol_hz=det.slop_bins * self.bin_hz)
        self._hops: dict[int, _Hop] = {}
        self._current: int | None = None
        self._now_s = 0.0
        self._updated: dict[int, tuple[float, tuple]] = {}  # track id -> (time, what was said)

    # -- blocks in ----------------------------------------------------------------------------------
    def _hop(self, block) -> _Hop:
        key = round(block.center_hz)
        hop = self._hops.get(key)
        if hop is None:
            front = _Front(block.center_hz, self.sample_rate_hz, self.settings.spectrum, self._eng)
            hop = self._hops[key] = _Hop(front, ScaleWindows(self.scales))
            if self.baseline is not None:
                hop.det = self._detector(front, self.baseline.hop_for(front.center_hz), noise_only=False)
            else:
                hop.learner = HopStatsBuilder(front.center_hz, front.freq_hz, self._eng.k_eff, self.scales)
        return hop

    def _detector(self, front: _Front, stats: HopStats, noise_only: bool) -> HopDetector:
        if len(stats.freq_hz) != front.nbins:
            raise BaselineError(
                f"baseline hop at {front.center_hz / 1e6:.4f} MHz has {len(stats.freq_hz)} bins but the recording gives {front.nbins} (different crop)"
            )
        ref = stats.noise_only_reference() if noise_only else stats.reference()
        return HopDetector(ref, self._eng.k_eff, self._eng.enbw, self.settings.detector, bin_hz=self.bin_hz, bin_rho=self.bin_rho)

    def push(self, block) -> list[EmissionEvent]:
        """Feed one block (any hop, any size); returns the events it caused."""
        _check_rate(block, self.sample_rate_hz)
        hop = self._hop(block)
        key = round(block.center_hz)
        events: list[EmissionEvent] = []
        if self._current is not None and self._current != key:
            events += self._end(self._hops[self._current])
        if hop.front.active and not hop.front.follows(block):
            events += self._end(hop)
        if not hop.front.active:
            hop.front.start(block)
            hop.windows = ScaleWindows(self.scales)
        self._current = key
        fs = self.sample_rate_hz
        t0, t1 = block.sample_index / fs, (block.sample_index + block.num_samples) / fs
        self.tracker.observe(t0, t1, hop.front.center_hz - self.half_hz, hop.front.center_hz + self.half_hz)
        self._now_s = max(self._now_s, t1)
        frames, first = hop.front.frames(block)
        if len(frames):
            self._frames(hop, frames, first)
            self._release(hop)
        return events + self._maintain()

    def end_dwell(self, center_hz: float) -> list[EmissionEvent]:
        """The receiver left ``center_hz``: flush that hop's partial windows."""
        hop = self._hops.get(round(center_hz))
        return self._end(hop) if hop is not None else []

    def close_all(self) -> list[EmissionEvent]:
        """End of the run: flush every hop, close every open emission (``open_ended`` where it touches
        the end of what was watched), in order of start time then frequency."""
        events: list[EmissionEvent] = []
        for hop in self._hops.values():
            if hop.front.active:
                events += self._end(hop, maintain=False)
        events += self._announce()
        events += self._closed(self.tracker.close_all())
        return events

    # -- frames to detections -------------------------------------------------------------------------
    def _frames(self, hop: _Hop, frames: np.ndarray, first: int) -> None:
        if hop.det is None:  # noise-floor mode, learning this frequency's floor from exactly learn_frames
            need = self.learn_frames - hop.learner._n
            part = frames[:need]
            hop.learner.add(part, first)
            hop.held.append((part, first))
            if hop.learner._n < self.learn_frames:
                return
            self._learned(hop)
            frames, first = frames[need:], first + need
            if not len(frames):
                return
        self._detect(hop, hop.windows.push(frames, first))

    def _learned(self, hop: _Hop) -> None:
        hop.det = self._detector(hop.front, hop.learner.finish_noise_floor(), noise_only=True)
        hop.learner = None
        held, hop.held = hop.held, []
        for frames, first in held:
            self._detect(hop, hop.windows.push(frames, first))

    def _end(self, hop: _Hop, maintain: bool = True) -> list[EmissionEvent]:
        if not hop.front.active:
            return []
        if hop.det is None:
            if hop.learner._n:
                self._learned(hop)  # a dwell shorter than learn_s: learn from what it had
            else:
                hop.held = []
        if hop.det is not None:
            self._detect(hop, hop.windows.flush())
        self._release(hop, all_=True)
        hop.windows = ScaleWindows(self.scales)
        hop.front.active = False
        if self._current is not None and self._hops.get(self._current) is hop:
            self._current = None
        return self._maintain() if maintain else []

    def _detect(self, hop: _Hop, windows) -> None:
        """Detect in the windows just completed; their detections wait in ``hop.pending`` until their
        epoch is complete (see :meth:`_release`)."""
        front, fs = hop.front, self.sample_rate_hz
        noise_mode = self.baseline is None
        for si, starts, m, means in windows:
            b = hop.det.detect_batch(means, si, int(m))
            if not len(b):
                continue
            sf = np.asarray(starts, dtype=np.int64)[b.window]
            t0 = (front.dwell_start + sf * self.frame_samples) / fs
            t1 = (front.dwell_start + (sf + int(m) - 1) * self.frame_samples + self.frame_span) / fs
            novelty = np.zeros(len(b), np.int64) if noise_mode else np.where(b.changed, NOVELTY_CODE["changed"], NOVELTY_CODE["new"])
            last = sf + int(m) - 1  # the window's last frame
            hop.pending.append((np.full(len(b), si), last, t0, t1, front.f0_hz + b.center_bin * front.bin_hz, b.obw_bins * front.bin_hz,
                                b.power_dbfs, b.snr_db, b.margin_db, novelty, b.channel_bins > 0))

    def _release(self, hop: _Hop, all_: bool = False) -> None:
        """Hand the tracker the detections of every complete epoch (EPOCH_FRAMES frames of the dwell,
        by the frame that ends each window), epoch by epoch and scale by scale within one: the order,
        and so the tracks, do not depend on how the input was cut into blocks."""
        if not hop.pending:
            return
        cols = [np.concatenate(c) for c in zip(*hop.pending)]
        epoch = cols[1] // EPOCH_FRAMES
        cutoff = np.inf if all_ else hop.front.frame_no // EPOCH_FRAMES  # epochs below this are complete
        ready = epoch < cutoff
        hop.pending = [] if ready.all() else [tuple(c[~ready] for c in cols)]
        if not ready.any():
            return
        order = np.lexsort((cols[0][ready], epoch[ready]))  # by epoch, then scale, stable in time
        sel = np.flatnonzero(ready)[order]
        key = epoch[sel] * 64 + cols[0][sel]
        cuts = np.r_[0, np.flatnonzero(np.diff(key)) + 1, len(sel)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            i = sel[a:b]
            self.tracker.add_batch(int(cols[0][i[0]]), *(c[i] for c in cols[2:10]), hop.front.center_hz, cols[10][i])

    # -- detections to events ---------------------------------------------------------------------------
    def _horizon(self) -> float:
        """Every detection still to come starts at or after this time (sample clock, s)."""
        fs, horizon = self.sample_rate_hz, self._now_s
        for hop in self._hops.values():
            f = hop.front
            if not f.active:
                continue
            for p in hop.pending:
                horizon = min(horizon, float(p[2].min()))
            if hop.held:
                pending = hop.held[0][1]
            else:
                pending = f.frame_no
                for g in hop.windows._sums:
                    if g.count:
                        pending = min(pending, g.start)
            horizon = min(horizon, (f.dwell_start + pending * self.frame_samples) / fs)
        return horizon

    def _snap(self, e: Emission) -> Emission:
        return self.classify(e) if self.classify is not None else e

    def _announce(self) -> list[EmissionEvent]:
        events = []
        for tr in self.tracker.newly_solid:
            if not tr.announced:
                tr.announced, tr.dirty = True, False
                e = self._snap(self.tracker.emission(tr))
                self._updated[tr.track_id] = (self._now_s, _said(e))
                events.append(EmissionEvent("open", tr.track_id, e))
        self.tracker.newly_solid = []
        return events

    def _closed(self, closed) -> list[EmissionEvent]:
        events = []
        for c in closed:
            e = self._snap(c.emission)
            if not c.announced:
                events.append(EmissionEvent("open", c.track_id, e))
            events.append(EmissionEvent("close", c.track_id, e, c.merged_into))
            self._updated.pop(c.track_id, None)
        return events

    def _maintain(self) -> list[EmissionEvent]:
        events = self._announce()
        events += self._closed(self.tracker.expire(self._horizon()))
        if self.update_s is not None:
            for tr in self.tracker.open_tracks:
                if not (tr.announced and tr.dirty):
                    continue
                when, said = self._updated.get(tr.track_id, (-np.inf, None))
                if self._now_s - when < self.update_s:
                    continue
                tr.dirty = False
                e = self.tracker.emission(tr)
                now = _said(e)
                if now != said:
                    e = self._snap(e)
                    self._updated[tr.track_id] = (self._now_s, now)
                    events.append(EmissionEvent("update", tr.track_id, e))
        return events


def _said(e: Emission) -> tuple:
    """What an update reports: extent, bursts and peak (to the precision of the records)."""
    return (round(e.start_s, 3), round(e.end_s, 3), e.bursts, round(e.peak_dbfs, 1))
