"""Spectrum engine: windowed FFT power frames with Welch averaging, DC handling, cropping and stitching.

Scaling (``power`` arrays are linear, per bin, in units of full scale squared):

    P[k] = (1/K) * sum_i |FFT(w * x_i)[k]|^2 / (sum w)^2

so a complex tone of amplitude A centred on a bin reads A^2 (0 dBFS at full scale), and complex
white noise of total power s^2 reads s^2 * ENBW / N per bin, with ENBW = N * sum(w^2) / (sum w)^2
bins (1.5 for Hann). Segments of ``fft_size`` samples step by ``fft_size * (1 - overlap)``; a frame
averages ``ffts_per_frame`` consecutive segments. Averaging is done in linear power, never in dB.

Everything here is pure numpy/scipy: arrays in, arrays out. :class:`WelchFrames` is the streaming
form (feed blocks of any size; identical output whatever the block boundaries), :func:`welch_psd` the
one-shot form used by the benchmark.

The engine, per batch of ``BATCH_SEGMENTS`` segments in reused buffers (no allocation per block):
complex64 samples are multiplied straight into the windowed buffer as float32 (re, im) pairs by the
real taps (no complex multiply, no temporary); one in-place
batched FFT; ``|X|^2`` as one squaring pass over the float32 view and one add of its even and odd
halves; frame sums. A frame is the sum of its K segments' squares taken in order in float32
(``((r0 + r1) + r2) + ...``), however its segments fall into batches, blocks and workers. The FFT runs on ``scipy.fft`` (pocketfft), or on FFTW through pyFFTW when the
``fast`` extra is installed (``pip install 'sdrwatch[fast]'``; planned once per size with
``FFTW_MEASURE``, the plans' wisdom cached in ``$XDG_CACHE_HOME/sdrwatch``). ``$SDRWATCH_FFT`` = ``scipy``
or ``fftw`` forces one. Both give the same frames within float32 rounding. pyFFTW is BSD-licensed but
the FFTW inside its wheels is GPL, so it stays optional.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import pickle
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SdrwatchError

#: segments per FFT batch: large enough to amortise the call and the Python loop, small enough for the
#: buffers to stay near the cache (128 to 512 measured within noise of each other on a 2-core VM)
BATCH_SEGMENTS = 256
#: batches per piece: the unit of work handed to a pool thread when an engine has two workers
PIECE_BATCHES = 2
#: and at most this many samples per batch, for large FFT sizes
_BATCH_SAMPLES_MAX = 1 << 19


@dataclass(frozen=True)
class SpectrumConfig:
    """How IQ becomes power frames. ``frame_s`` sets how many FFTs one frame averages."""

    fft_size: int | None = None  # None = auto: bins of about 2 kHz (see auto_fft_size)
    overlap: float = 0.5
    window: str = "hann"
    frame_s: float = 0.005
    crop: float | None = None  # fraction of bins dropped at the band edges (both sides); None = auto
    dc_bins: int = 1  # bins each side of DC (and DC itself) replaced by their neighbours

    def hop_samples(self) -> int:
        return max(1, int(round(self.fft_size * (1.0 - self.overlap))))

    def ffts_per_frame(self, sample_rate_hz: float) -> int:
        return max(1, int(round(self.frame_s * sample_rate_hz / self.hop_samples())))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("fft_size", "overlap", "window", "frame_s", "crop", "dc_bins")}


class GroupSum:
    """Sum consecutive rows in groups of ``m``, carrying a partial group across calls.

    ``push(rows, first_index)`` returns ``(sums, start_index)`` for every group completed, where
    ``start_index`` is the index of the group's first row (rows are numbered by the caller, e.g. FFT
    segments or frames since the start of a hop). Used for Welch frames and for the detector's
    integration scales, so both are independent of how the input is split into blocks.
    """

    def __init__(self, m: int):
        self.m = int(m)
        self.acc: np.ndarray | None = None
        self.count = 0
        self.start = 0

    def push(self, rows: np.ndarray, first_index: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.m
        nrows = len(rows)
        out: list[np.ndarray] = []
        starts: list[int] = []
        i = 0
        if self.count and nrows:
            take = min(m - self.count, nrows)
            self.acc += rows[:take].sum(axis=0, dtype=np.float64)
            self.count += take
            i = take
            if self.count == m:
                out.append(self.acc.astype(np.float32)[None, :])
                starts.append(self.start)
                self.count = 0
        whole = (nrows - i) // m
        if whole:
            out.append(rows[i : i + whole * m].reshape(whole, m, *rows.shape[1:]).sum(axis=1, dtype=np.float32))
            starts.extend(first_index + i + j * m for j in range(whole))
            i += whole * m
        if i < nrows:
            self.acc = rows[i:].sum(axis=0, dtype=np.float64)
            self.count = nrows - i
            self.start = first_index + i
        if not out:
            return np.zeros((0, *rows.shape[1:]), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return np.concatenate(out, axis=0), np.asarray(starts, dtype=np.int64)

    def flush(self) -> tuple[np.ndarray, int, int] | None:
        """The partial group (sum, start_index, count), if any, and forget it."""
        if not self.count:
            return None
        res = (self.acc.astype(np.float32), self.start, self.count)
        self.count = 0
        return res


def _periodic_cos(n: int, *coeffs: float) -> np.ndarray:
    """sum_k (-1)^k a_k cos(2 pi k m / n), m = 0..n-1: the periodic ("DFT-even") cosine-sum windows that
    ``scipy.signal.get_window`` gives for spectral analysis."""
    m = np.arange(n, dtype=np.float64)
    w = np.zeros(n)
    for k, a in enumerate(coeffs):
        w += (-1) ** k * a * np.cos(2.0 * np.pi * k * m / n)
    return w


#: window name -> taps(n), float64; the same values as ``scipy.signal.get_window(name, n)``
WINDOWS = {
    "hann": lambda n: _periodic_cos(n, 0.5, 0.5),
    "hamming": lambda n: _periodic_cos(n, 0.54, 0.46),
    "blackman": lambda n: _periodic_cos(n, 0.42, 0.5, 0.08),
    "boxcar": lambda n: np.ones(n),
}


def window_taps(cfg: SpectrumConfig) -> np.ndarray:
    make = WINDOWS.get(cfg.window)
    if make is None:
        raise SdrwatchError(f"unknown window {cfg.window!r} (one of {', '.join(WINDOWS)})")
    return make(int(cfg.fft_size)).astype(np.float32)


# -------------------------------------------------------------------------------------------- FFT backends
_FFTW_LOCK = threading.Lock()
_fftw_state: dict = {"loaded": False, "new_plans": False}
_compiled: dict[str, object] = {}
_LOAD_LOCK = threading.RLock()


def _compiled_module(package: str, relpath: str):
    """The compiled extension ``package/relpath`` (e.g. ``pyfftw``, ``pyfftw``), loaded straight from
    its file, or None.

    Importing the packages the ordinary way runs ``pyfftw/__init__`` (which imports
    ``pyfftw.interfaces``, hence ``scipy.fftpack``) and ``scipy/fft/__init__`` (which imports
    ``scipy.special`` and scipy's array-API layer): 0.3-0.5 s of a replay's start-up for nothing the
    engine calls. Both extensions import only numpy. The module is registered under its own name,
    so a later ordinary import of the package reuses it. Any failure (another layout, another
    version) gives None, and the caller imports the package instead.
    """
    qualname = ".".join([package, *relpath.split("/")])
    if qualname in _compiled:
        return _compiled[qualname]
    with _LOAD_LOCK:  # two pool threads may ask at once: one loads, the other waits for it
        return _load_compiled(package, relpath, qualname)


def _load_compiled(package: str, relpath: str, qualname: str):
    if qualname in _compiled:
        return _compiled[qualname]
    mod = sys.modules.get(qualname)
    if mod is None:
        try:
            spec = importlib.util.find_spec(package)  # a top-level package: found, not imported
            base = Path(spec.submodule_search_locations[0]) / relpath
            path = next(p for p in (base.with_name(base.name + sfx) for sfx in importlib.machinery.EXTENSION_SUFFIXES)
                        if p.is_file())
            loader = importlib.machinery.ExtensionFileLoader(qualname, str(path))
            mod = importlib.util.module_from_spec(importlib.util.spec_from_file_location(qualname, path, loader=loader))
            loader.exec_module(mod)
            sys.modules[qualname] = mod
        except Exception:  # noqa: BLE001 - any failure means: import the package the ordinary way
            mod = None
    _compiled[qualname] = mod
    return mod


def _pyfftw():
    """pyFFTW's core (``FFTW``, ``empty_aligned``, the wisdom functions), without ``pyfftw.interfaces``."""
    core = _compiled_module("pyfftw", "pyfftw")
    if core is not None and all(hasattr(core, n) for n in ("FFTW", "empty_aligned", "export_wisdom", "import_wisdom")):
        return core
    with _LOAD_LOCK:
        import pyfftw

    return pyfftw


def _pocketfft_c2c():
    """scipy's pocketfft ``c2c(a, axes, forward, inorm, out, nthreads)``, without ``scipy.fft``'s imports."""
    core = _compiled_module("scipy", "fft/_pocketfft/pypocketfft")
    return getattr(core, "c2c", None)


def fft_backend() -> str:
    """``"fftw"`` (pyFFTW installed and not turned off by ``$SDRWATCH_FFT=scipy``) or ``"scipy"``."""
    choice = os.environ.get("SDRWATCH_FFT", "auto").strip().lower()
    if choice == "scipy":
        return "scipy"
    if importlib.util.find_spec("pyfftw") is None:
        if choice == "fftw":
            raise SdrwatchError("SDRWATCH_FFT=fftw but pyFFTW is not installed (pip install 'sdrwatch[fast]')") from None
        return "scipy"
    return "fftw"


def _wisdom_path(fftw) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    versions = getattr(fftw, "_fftw_version_dict", None) or {}
    tag = str(versions.get("32") or getattr(fftw, "__version__", "unknown"))
    tag = "".join(c if c.isalnum() or c in ".-" else "_" for c in tag)
    return Path(base) / "sdrwatch" / f"fftw-wisdom-{tag}.pickle"


def _fftw_plan(buf: np.ndarray):
    """An in-place FFTW plan over the rows of ``buf`` (complex64, aligned), wisdom loaded from and saved
    to the cache so each size is measured once per machine."""
    fftw = _pyfftw()
    with _FFTW_LOCK:
        if not _fftw_state["loaded"]:
            _fftw_state["loaded"] = True
            try:
                fftw.import_wisdom(pickle.loads(_wisdom_path(fftw).read_bytes()))
            except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError):
                pass
        before = fftw.export_wisdom()
        plan = fftw.FFTW(buf, buf, axes=(1,), direction="FFTW_FORWARD", flags=("FFTW_MEASURE",), threads=1)
        after = fftw.export_wisdom()
        if after != before:
            path = _wisdom_path(fftw)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}")
                tmp.write_bytes(pickle.dumps(after))
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only home: plan again next time
    return plan


def enbw_bins(w: np.ndarray) -> float:
    """Equivalent noise bandwidth of window ``w`` in bins: N * sum(w^2) / (sum w)^2."""
    w = np.asarray(w, dtype=np.float64)
    return float(len(w) * np.sum(w**2) / np.sum(w) ** 2)


def averaging_efficiency(w: np.ndarray, hop: int) -> float:
    """K_eff / K for many overlapped segments: 1 / (1 + 2 * sum_j rho(j*hop)^2).

    rho(d) = sum_n w[n] w[n+d] / sum_n w[n]^2 is the correlation of the periodograms of two segments
    d samples apart (white noise). Hann at 50 % overlap gives rho = 0.167 and 0.947.
    """
    w = np.asarray(w, dtype=np.float64)
    e = np.sum(w**2)
    total = 0.0
    d = hop
    while d < len(w):
        rho = np.sum(w[:-d] * w[d:]) / e
        total += rho**2
        d += hop
    return 1.0 / (1.0 + 2.0 * total)


def bin_correlations(w: np.ndarray, max_lag: int = 8) -> np.ndarray:
    """rho_j, j = 0..max_lag: correlation of the periodogram powers of bins j apart (white noise).

    rho_j = |sum_n w[n]^2 exp(-2 pi i j n / N)|^2 / (sum_n w[n]^2)^2; Hann gives 1, 4/9, 1/36, 0...
    """
    w2 = np.asarray(w, dtype=np.float64) ** 2
    n = np.arange(len(w2))
    c = np.array([np.sum(w2 * np.exp(-2j * np.pi * j * n / len(w2))) for j in range(max_lag + 1)]) / np.sum(w2)
    return np.abs(c) ** 2


def bin_freqs_hz(center_hz: float, sample_rate_hz: float, fft_size: int) -> np.ndarray:
    """Centre frequency of each bin after fftshift (DC at index fft_size // 2)."""
    return center_hz + (np.arange(fft_size) - fft_size // 2) * (sample_rate_hz / fft_size)


def auto_fft_size(sample_rate_hz: float, bin_hz: float = 2500.0) -> int:
    """The power of two giving bins no wider than ``bin_hz`` (a 12.5 kHz channel spans >= 5 bins):
    1024 at 2.4 MS/s (2.34 kHz), 512 at 1.024 MS/s, 128 at 250 kS/s; between 64 and 8192."""
    return int(np.clip(2 ** int(np.ceil(np.log2(sample_rate_hz / bin_hz))), 64, 8192))


def auto_crop(sample_rate_hz: float, centers_hz: list[float] | np.ndarray) -> float:
    """Crop for a recording: 0 for one tuning; for a sweep, just enough that hops tile without overlap
    (e.g. 1.8 MHz steps at 2.4 MS/s give 0.25, as rtl_power's recommended crop), capped at 0.5."""
    c = np.sort(np.asarray(centers_hz, dtype=float))
    steps = np.diff(c)
    steps = steps[steps > 0]  # repeated tunings (np.unique would import numpy.ma for this)
    if not len(steps):
        return 0.0
    step = float(np.min(steps))
    return float(np.clip(1.0 - step / sample_rate_hz, 0.0, 0.5))


def kept_bins(fft_size: int, crop: float) -> slice:
    """Bins kept after dropping ``crop`` of the band, half at each edge."""
    drop = int(round(fft_size * crop / 2.0))
    return slice(drop, fft_size - drop)


def suppress_dc(power: np.ndarray, dc_bins: int) -> np.ndarray:
    """Replace bins N/2-dc_bins .. N/2+dc_bins (fftshifted) with the mean of the two bins just outside.

    The DC spike of a dongle (LO leakage, DC offset) is not a transmitter; rtl_power does the same.
    Works on (..., N) arrays in place and returns them.
    """
    if dc_bins < 0:
        return power
    n = power.shape[-1]
    c = n // 2
    lo, hi = c - dc_bins, c + dc_bins
    if lo - 1 < 0 or hi + 1 >= n:
        return power
    fill = 0.5 * (power[..., lo - 1] + power[..., hi + 1])
    power[..., lo : hi + 1] = fill[..., None]
    return power


@dataclass
class _Lane:
    """One thread's buffers for one engine: the FFT batch (aligned for FFTW, squared in place), its
    FFTW plans, and the input of a batch (raw cu8 converted, or a run that starts in the tail)."""

    spec: np.ndarray
    plans: dict
    x: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))


_WORKERS: dict = {"n": None}
_POOL: dict = {}


def default_workers() -> int:
    """Workers of a new engine: :func:`set_default_workers`, else ``$SDRWATCH_THREADS`` (1 or 2), else 1.
    The agent runs one engine per receiver and keeps each to one thread; ``sdrwatch replay`` asks for
    two where the machine has them."""
    if _WORKERS["n"] is not None:
        return _WORKERS["n"]
    try:
        return max(1, min(2, int(os.environ.get("SDRWATCH_THREADS", "1"))))
    except ValueError:
        return 1


def set_default_workers(n: int | None) -> None:
    """Workers (1 or 2) for engines made from now on; None goes back to ``$SDRWATCH_THREADS`` or 1."""
    _WORKERS["n"] = None if n is None else max(1, min(2, int(n)))


def _pool():
    """The two background threads that run a two-worker engine's pieces."""
    with _FFTW_LOCK:
        pool = _POOL.get("pool")
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = _POOL["pool"] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sdrwatch-fft",
                                                      initializer=lambda: _POOL_THREADS.add(threading.get_ident()))
    return pool


_POOL_THREADS: set[int] = set()


@dataclass
class _Partial:
    """The frame being summed across pushes: the in-order float32 sum of its first ``count`` segment
    rows (squares of (re, im)), the first of which is segment ``start``."""

    acc: np.ndarray | None = None
    count: int = 0
    start: int = 0


@dataclass
class _Pending:
    """A submitted push (:meth:`WelchFrames._submit`): the stream index of each piece's first segment,
    and the pieces (futures, or :class:`_Done`)."""

    firsts: list
    pieces: list


class _Done:
    """A piece computed in the calling thread, with a future's two methods."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value

    def exception(self):
        return None


_FRESH = ("fresh",)  # the state of an engine just made or reset


@dataclass
class FramesAhead:
    """One push's frames computed ahead by another engine (:func:`frames_ahead`): the frames, and the
    producing engine's state before (a token) and after (token, tail and partial frame)."""

    key: tuple
    before: object
    after: object
    power: np.ndarray
    start: np.ndarray
    tail: np.ndarray
    tail_index: int
    tail_raw: bool
    partial: "_Partial"  # the open frame after the push (a snapshot)


def frames_ahead(eng: "WelchFrames", iq: np.ndarray, restart: bool) -> FramesAhead:
    """Push ``iq`` into ``eng`` (reset first when ``restart``: a new dwell) and describe the push for
    another engine with the same key that was fed the same stream (``WelchFrames.push(iq, ahead)``)."""
    return next(frames_ahead_stream(eng, [(None, iq, restart)]))[1]


def frames_ahead_stream(eng: "WelchFrames", items) -> Iterator[tuple[object, FramesAhead]]:
    """:func:`frames_ahead` over ``items`` of ``(payload, samples, restart)``, yielding ``(payload,
    FramesAhead)`` in order, one push behind: the pieces of push i+1 are started (on the pool threads,
    with two workers) before push i is collected, so the pool has work while this thread folds frames
    and reads the next block."""
    held = None

    def finish(h):
        payload, pending, before, after, tail = h
        power, start = eng._collect(pending)
        return payload, FramesAhead(eng.key, before, after, power, start, *tail, replace(eng._partial))

    it = iter(items)
    while True:
        try:
            item = next(it, None)
            if item is None:
                break
            payload, iq, restart = item
            if restart:
                if held is not None:
                    yield finish(held)
                    held = None
                eng.reset()
            before = eng._state
            pending = eng._submit(iq)
            after = eng._state = object()
        except Exception:
            # the next block could not be read or started (a file cut short, say): the one before it
            # is still delivered, then the error, as without frames ahead
            if held is not None:
                h, held = held, None
                yield finish(h)
            raise
        h = (payload, pending, before, after, (eng._tail, eng._tail_index, eng._tail_raw))
        if held is not None:
            yield finish(held)
        held = h
    if held is not None:
        yield finish(held)


class WelchFrames:
    """Streaming Welch estimator for one tuning: ``push(iq)`` returns the frames completed so far.

    ``iq`` is complex64 samples, or raw cu8 bytes (a uint8 array of interleaved I/Q, normalised as in
    :mod:`sdrwatch.radio.iq`). Returns ``(power, start_index)``: ``power`` is
    (n_frames, fft_size) float32, fftshifted, scaled as in the module docstring; ``start_index`` is the
    index (in samples since the first push) of the first sample of each frame. A frame spans
    ``(K-1)*hop + fft_size`` samples. Output does not depend on how the input is split into blocks.
    ``backend`` is ``"scipy"`` or ``"fftw"`` (default: :func:`fft_backend`). ``workers`` = 2 runs every
    other batch of segments in a second thread (numpy's loops and the FFT release the GIL), with the
    same batches, so the same frames bit for bit (default: :func:`default_workers`, 1 unless set).
    """

    def __init__(self, sample_rate_hz: float, cfg: SpectrumConfig = SpectrumConfig(), backend: str | None = None,
                 workers: int | None = None):
        if cfg.fft_size is None:
            cfg = SpectrumConfig(**{**cfg.as_dict(), "fft_size": auto_fft_size(sample_rate_hz)})
        self.cfg = cfg
        self.sample_rate_hz = float(sample_rate_hz)
        self.n = cfg.fft_size
        self.hop = cfg.hop_samples()
        self.k = cfg.ffts_per_frame(sample_rate_hz)
        w = window_taps(cfg)
        self.scale = np.float32(1.0 / float(np.sum(w, dtype=np.float64)) ** 2)
        self.window = w
        self.k_eff = self.k * averaging_efficiency(w, self.hop)
        self.enbw = enbw_bins(w)
        self.backend = backend or fft_backend()
        w2 = np.repeat(w.astype(np.float64), 2)  # taps for interleaved float32 (re, im) pairs
        self._w2 = w2.astype(np.float32)
        # for raw cu8 the 1/127.5 of the conversion rides on the taps: (u - 127.5) * (w / 127.5)
        self._w2_cu8 = (w2 / 127.5).astype(np.float32)
        self._batch = max(1, min(BATCH_SEGMENTS, _BATCH_SAMPLES_MAX // self.n))
        if self.backend not in ("fftw", "scipy"):
            raise SdrwatchError(f"unknown FFT backend {self.backend!r} (scipy or fftw)")
        # FFTW plans for batch, batch/2, ... 16 rows, each made when first needed: any batch is run as
        # a few of them (greedy), the last few rows by pocketfft; a plan runs on any aligned run of
        # rows (update_arrays)
        rows = self._batch
        self._plan_rows = []
        while rows >= min(16, self._batch):
            self._plan_rows.append(rows)
            rows //= 2
        self.workers = max(1, min(2, int(workers if workers is not None else default_workers())))
        self._lanes: dict[int, _Lane] = {}  # see _lane: made when first used, kept across resets
        self.reset()

    def _new_lane(self) -> "_Lane":
        if self.backend == "fftw":
            spec = _pyfftw().empty_aligned((self._batch, self.n), dtype="complex64")
        else:
            spec = np.empty((self._batch, self.n), dtype=np.complex64)
        return _Lane(spec, {})

    def reset(self) -> None:
        """Start a new stream (a new dwell): forget the partial segment and frame; every work buffer is
        kept, so a sweep does not allocate per dwell."""
        self._tail = np.zeros(0, dtype=np.complex64)
        self._tail_index = 0  # stream index of the first sample of _tail
        self._tail_raw = False  # _tail in cu8 steps (u - 127.5), not full scale
        self._partial = _Partial()
        self._state = _FRESH  # what a FramesAhead must start from to be taken (see push)

    @property
    def frame_samples(self) -> int:
        """Samples between the starts of consecutive frames."""
        return self.k * self.hop

    @property
    def key(self) -> tuple:
        """What decides the frames: another engine with the same key, fed the same stream, gives the
        same frames bit for bit."""
        return (self.backend, self.sample_rate_hz, self.n, self.hop, self.k, self.cfg.window, self.cfg.dc_bins, self._batch)

    def push(self, iq: np.ndarray, ahead: "FramesAhead | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames completed by ``iq`` (class docstring). ``ahead``: this push's frames as computed
        beforehand by another engine fed the same stream (:func:`frames_ahead`, in a read-ahead
        thread); taken, with that engine's state after it, only when it has this engine's key and
        starts from this engine's state, else ignored and the frames computed here."""
        if ahead is not None and ahead.key == self.key and ahead.before is self._state:
            self._tail, self._tail_index, self._tail_raw = ahead.tail, ahead.tail_index, ahead.tail_raw
            self._partial = replace(ahead.partial)  # its acc is never changed in place: shared, not copied
            self._state = ahead.after
            return ahead.power, ahead.start
        self._state = object()  # computed here: no FramesAhead starts from it
        return self._push(iq)

    def _push(self, iq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._collect(self._submit(iq, here=True))

    def _submit(self, iq: np.ndarray, here: bool = False) -> "_Pending":
        """The first half of a push: the tail carried on, and the segments' pieces started (on the
        pool threads with two workers, else computed here). :meth:`_collect` finishes it; pushes are
        collected in the order they were submitted, and none is pending across a :meth:`reset`.
        ``here``: the caller waits for this push (a plain :meth:`push`), so with two workers it
        computes every other piece itself, and the pool the rest, rather than idle."""
        iq = np.asarray(iq)
        raw = iq.dtype == np.uint8
        if raw:
            if len(iq) % 2:
                raise SdrwatchError(f"{len(iq)} cu8 bytes is not a whole number of I/Q pairs")
        else:
            iq = np.ascontiguousarray(iq, dtype=np.complex64)
        if raw != self._tail_raw:  # the stream changed kind: the tail follows it
            self._tail = self._tail * np.float32(127.5 if raw else 1.0 / 127.5)
            self._tail_raw = raw
        tail = self._tail
        nt, nd = len(tail), len(iq) // 2 if raw else len(iq)
        base = self._tail_index
        nseg = 0 if nt + nd < self.n else (nt + nd - self.n) // self.hop + 1
        first = base // self.hop
        per = self._batch * PIECE_BATCHES
        spans = [(s, min(nseg, s + per)) for s in range(0, max(0, nseg), per)]
        if self.workers < 2 or len(spans) < 2:
            pieces = [_Done(self._piece(tail, iq, raw, s, e, first + s)) for s, e in spans]
        else:
            pool = _pool()
            pieces = [pool.submit(self._piece, tail, iq, raw, s, e, first + s) if not here or i % 2 else None
                      for i, (s, e) in enumerate(spans)]
            for i, (s, e) in enumerate(spans):
                if pieces[i] is None:
                    pieces[i] = _Done(self._piece(tail, iq, raw, s, e, first + s))
        consumed = nseg * self.hop
        if consumed >= nt:
            rest = iq[2 * (consumed - nt):] if raw else iq[consumed - nt:]
            self._tail = _steps(rest) if raw else rest.copy()
        else:
            self._tail = np.concatenate([tail[consumed:], _steps(iq) if raw else iq])
        self._tail_index = base + consumed
        return _Pending([first + s for s, _e in spans], pieces)

    def _collect(self, pending: "_Pending") -> tuple[np.ndarray, np.ndarray]:
        """The frames of a submitted push: its pieces folded in order into the open frame."""
        frames: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        try:
            for first, piece in zip(pending.firsts, pending.pieces):
                self._take(piece.result(), first, frames, starts)
        finally:
            for piece in pending.pieces:  # an error: every piece has ended before it is raised
                piece.exception()
        if not frames:
            return np.zeros((0, self.n), dtype=np.float32), np.zeros(0, dtype=np.int64)
        sq = frames[0] if len(frames) == 1 else np.concatenate(frames)
        # frames summed the squares of (re, im) over their K segments; |X|^2 = re^2 + im^2 is then one
        # add per frame rather than one per segment
        power = np.add(sq[:, 0::2], sq[:, 1::2])
        power *= self.scale / self.k
        power = np.fft.fftshift(power, axes=-1)
        suppress_dc(power, self.cfg.dc_bins)
        return power, np.concatenate(starts) * self.hop

    def _segment_input(self, tail: np.ndarray, data: np.ndarray, raw: bool, lo: int, hi: int, lane: "_Lane") -> np.ndarray:
        """Samples lo..hi-1 of ``tail`` followed by ``data`` as interleaved (re, im) float32: a view of
        complex ``data`` itself where they lie in it, else (raw cu8, centred as u - 127.5, or a run
        that starts in the tail) written into ``lane``'s input buffer, which stays in the cache for
        the windowing that reads it next."""
        nt = len(tail)
        if not raw and lo >= nt:
            return data.view(np.float32)[2 * (lo - nt):2 * (hi - nt)]
        need = 2 * (hi - lo)
        if len(lane.x) < need:
            lane.x = np.empty(need, dtype=np.float32)
        buf = lane.x[:need]
        k = 0
        if lo < nt:
            part = tail[lo:min(hi, nt)]
            k = 2 * len(part)
            buf[:k] = part.view(np.float32)
        d0, d1 = max(lo, nt) - nt, hi - nt
        if d1 > d0:
            dst = buf[k:]
            if raw:
                _steps(data[2 * d0:2 * d1], dst)
            else:
                dst[:] = data.view(np.float32)[2 * d0:2 * d1]
        return buf

    def _batch_powers(self, rows: np.ndarray, lane: "_Lane", taps: np.ndarray) -> np.ndarray:
        """The squares of the (re, im) parts of FFT(taps * segment) for the segments ``rows`` (a
        (segments, 2 * fft_size) float32 view), interleaved as (segments, 2 * fft_size) float32, in
        ``lane``'s buffer."""
        b = len(rows)
        specf = lane.spec.view(np.float32)[:b]
        # real taps on (re, im) pairs, straight into the FFT buffer: no complex multiply
        np.multiply(rows, taps, out=specf)
        spec = lane.spec[:b]
        if self.backend == "fftw":
            self._fftw_rows(spec, lane.plans)
        else:
            spec = _fft_rows(spec)
        sq = spec.view(np.float32)
        np.multiply(sq, sq, out=sq)
        return sq

    def _fftw_rows(self, spec: np.ndarray, plans: dict) -> None:
        """FFT the rows of ``spec`` (a leading part of an aligned lane buffer) in place with the FFTW
        plans of that lane."""
        at, left = 0, len(spec)
        for rows in self._plan_rows:  # largest first
            if left < rows:
                continue
            plan = plans.get(rows)
            if plan is None:
                # planned on a scratch buffer: FFTW_MEASURE overwrites the array it plans on
                scratch = _pyfftw().empty_aligned((rows, self.n), dtype="complex64")
                plan = plans[rows] = _fftw_plan(scratch)
            while left >= rows:
                part = spec[at:at + rows]
                plan.update_arrays(part, part)
                plan.execute()
                at, left = at + rows, left - rows
        if left:
            spec[at:] = _fft_rows(spec[at:])

    def _segment_powers(self, tail: np.ndarray, data: np.ndarray, nseg: int):
        """Yield (first segment, |FFT(w * segment)|^2 rows) for every segment of ``tail`` followed by
        complex ``data``, in cache-sized batches, in order, in this thread (:func:`welch_psd`).

        The rows live in a reused buffer: use them before asking for the next batch.
        """
        lane = self._lane()
        for s in range(0, max(0, nseg), self._batch):
            e = min(nseg, s + self._batch)
            x = self._segment_input(tail, data, False, s * self.hop, (e - 1) * self.hop + self.n, lane)
            yield s, self._batch_powers(_row_view(x, self.n, self.hop), lane, self._w2)

    def _lane(self) -> "_Lane":
        """This engine's buffers and FFTW plans for the calling thread: one lane per pool thread, and
        one for whichever other thread pushes (an engine is fed by one thread at a time), so a
        receiver restarted in a new thread does not add lanes."""
        me = threading.get_ident()
        key = me if me in _POOL_THREADS else 0
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = self._new_lane()
        return lane

    def _fold(self, part: _Partial, sq: np.ndarray, first: int, frames: list, starts: list) -> None:
        """Add rows ``sq`` (squared segments; ``first`` = the stream index of ``sq[0]``) to the frame
        being summed, ``part``, in order, appending every frame they complete (its sum, its first
        segment) to ``frames`` and ``starts``. Frames start at stream segments 0, K, 2K, ... A frame's
        sum is ((r0 + r1) + r2) + ... in float32 however its rows arrive."""
        k, b = self.k, len(sq)
        lead = min((-first) % k, b)  # rows that finish the frame ``part`` holds
        if lead:
            head = sq[:lead]  # added to in place: the caller's buffer, used up here
            if part.count:
                head[0] += part.acc
            else:
                part.start = first
            part.acc = head.sum(axis=0, dtype=np.float32)  # a 2-D sum over axis 0 adds the rows in order
            part.count += lead
            if part.count == k:
                frames.append(part.acc[None, :])
                starts.append(np.array([part.start], dtype=np.int64))
                part.acc, part.count = None, 0
        whole = (b - lead) // k
        t0 = lead + whole * k
        if whole:
            frames.append(sq[lead:t0].reshape(whole, k, sq.shape[1]).sum(axis=1, dtype=np.float32))
            starts.append(first + lead + k * np.arange(whole, dtype=np.int64))
        if t0 < b:
            part.acc, part.count, part.start = sq[t0:].sum(axis=0, dtype=np.float32), b - t0, first + t0

    def _piece(self, tail: np.ndarray, data: np.ndarray, raw: bool, s: int, e: int, first: int):
        """Segments s..e-1 of a push (of ``tail`` followed by ``data``; ``first`` = the stream index of
        segment s), batch by batch in the calling thread's lane: the rows before their first frame
        boundary (a copy: they finish a frame begun earlier), then the frames wholly inside, and the
        frame left open at the end. Needs nothing from earlier segments, so pieces run on two
        threads at once."""
        lane, n, hop = self._lane(), self.n, self.hop
        taps = self._w2_cu8 if raw else self._w2
        lead = min((-first) % self.k, e - s)
        head = np.empty((lead, 2 * n), dtype=np.float32) if lead else None
        part, frames, starts = _Partial(), [], []
        for bs in range(s, e, self._batch):
            be = min(e, bs + self._batch)
            x = self._segment_input(tail, data, raw, bs * hop, (be - 1) * hop + n, lane)
            sq = self._batch_powers(_row_view(x, n, hop), lane, taps)
            skip = max(0, min(be, s + lead) - bs)  # rows of this batch that belong to ``head``
            if skip:
                head[bs - s:bs - s + skip] = sq[:skip]
            if skip < len(sq):
                self._fold(part, sq[skip:], first + (bs - s) + skip, frames, starts)
        return head, frames, starts, part

    def _take(self, piece, first: int, frames: list, starts: list) -> None:
        """Fold one piece's results (:meth:`_piece`, ``first`` = its first segment) into the engine's
        open frame and the frames completed, in order."""
        head, more, more_starts, part = piece
        if head is not None:
            self._fold(self._partial, head, first, frames, starts)
        frames += more
        starts += more_starts
        if part.count:
            self._partial = part


def _row_view(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    """The segments of interleaved (re, im) float32 samples ``x`` as rows (a strided view, no copy)."""
    return np.lib.stride_tricks.sliding_window_view(x, 2 * n)[:: 2 * hop]


def _steps(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Raw cu8 bytes -> complex64 in units of one step, centred (u - 127.5), into ``out`` (float32,
    as long as ``raw``) or a new array."""
    out = np.empty(len(raw), dtype=np.float32) if out is None else out
    np.copyto(out, raw, casting="unsafe")  # uint8 -> float32 is exact; faster than a mixed-type subtract
    out -= np.float32(127.5)
    return out.view(np.complex64)


def _fft_rows(spec: np.ndarray) -> np.ndarray:
    """The FFT of each row of ``spec`` (complex64, C-contiguous), in place, by pocketfft."""
    c2c = _compiled.get("c2c", False)
    if c2c is False:
        with _LOAD_LOCK:
            c2c = _compiled["c2c"] = _pocketfft_c2c()
    if c2c is not None:
        return c2c(spec, (1,), True, 0, spec, 1)
    import scipy.fft

    return scipy.fft.fft(spec, axis=1, overwrite_x=True)


def welch_psd(iq: np.ndarray, sample_rate_hz: float, cfg: SpectrumConfig = SpectrumConfig()) -> np.ndarray:
    """Mean power spectrum (fftshifted, DC handled) of a whole array: the average of all full frames'
    segments. Same scaling as :class:`WelchFrames`."""
    eng = WelchFrames(sample_rate_hz, SpectrumConfig(**{**cfg.as_dict(), "frame_s": 1e9}))
    cfg = eng.cfg
    n, hop = eng.n, eng.hop
    nseg = 0 if len(iq) < n else (len(iq) - n) // hop + 1
    if nseg == 0:
        return np.zeros(n, dtype=np.float32)
    acc = np.zeros(2 * n, dtype=np.float64)  # squares of (re, im), summed
    step = max(1, (BATCH_SEGMENTS * n) // hop)
    for s in range(0, nseg, step):
        e = min(nseg, s + step)
        seg = np.asarray(iq[s * hop : (e - 1) * hop + n], dtype=np.complex64)
        for _first, sq in eng._segment_powers(seg[:0], seg, e - s):
            acc += sq.sum(axis=0, dtype=np.float64)
    p = np.fft.fftshift(((acc[0::2] + acc[1::2]) * (float(eng.scale) / nseg)).astype(np.float32))
    return suppress_dc(p, cfg.dc_bins)


def stitch(freqs_hz: list[np.ndarray], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Join hops (each already cropped) into one frequency axis, sorted; where hops overlap, the bin
    from the hop whose centre is nearer wins. ``values`` may be (bins,) or (rows, bins) per hop."""
    if not freqs_hz:
        return np.zeros(0), np.zeros(0)
    centers = [0.5 * (f[0] + f[-1]) for f in freqs_hz]
    f_all = np.concatenate(freqs_hz)
    v_all = np.concatenate([np.atleast_2d(v) for v in values], axis=-1)
    dist = np.concatenate([np.abs(f - c) for f, c in zip(freqs_hz, centers)])
    order = np.lexsort((dist, f_all))
    f_sorted, v_sorted = f_all[order], v_all[..., order]
    # keep the first (nearest-centre) of bins closer than half a bin width
    width = min(float(np.median(np.diff(f))) if len(f) > 1 else np.inf for f in freqs_hz)
    keep = np.ones(len(f_sorted), dtype=bool)
    if len(f_sorted) > 1 and np.isfinite(width):
        keep[1:] = np.diff(f_sorted) > 0.5 * width
    out_v = v_sorted[..., keep]
    return f_sorted[keep], out_v[0] if np.ndim(values[0]) == 1 else out_v
