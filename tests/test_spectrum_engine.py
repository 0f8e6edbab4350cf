"""The spectrum engine against an independent float64 computation of the same frames, on scipy.fft and on
FFTW (pyFFTW, the ``fast`` extra): the same frames within float32 rounding, whatever the block sizes, from
complex64 samples or raw cu8 bytes; the windows equal scipy's; nothing on the replay path imports
scipy.signal or scipy.stats."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from sdrwatch.dsp import spectrum
from sdrwatch.dsp.spectrum import WINDOWS, SpectrumConfig, WelchFrames, fft_backend
from sdrwatch.radio.iq import to_iq

RATE = 2.4e6
BACKENDS = ["scipy", pytest.param("fftw", marks=pytest.mark.skipif(
    importlib.util.find_spec("pyfftw") is None, reason="pyFFTW (the fast extra) is not installed"))]


def raw_cu8(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 8 * rng.standard_normal(2 * n)
    x[0::2] += 40 * np.cos(2 * np.pi * 0.123 * t)  # a tone, so bins span a wide dynamic range
    x[1::2] += 40 * np.sin(2 * np.pi * 0.123 * t)
    return np.clip(np.rint(x + 127.5), 0, 255).astype(np.uint8)


def reference_frames(iq: np.ndarray, cfg: SpectrumConfig) -> np.ndarray:
    """The module docstring's formula in float64, straight: P = (1/K) sum |FFT(w x_i)|^2 / (sum w)^2."""
    n, hop = cfg.fft_size, cfg.hop_samples()
    k = cfg.ffts_per_frame(RATE)
    w = WINDOWS[cfg.window](n)
    x = iq.astype(np.complex128)
    nseg = (len(x) - n) // hop + 1
    nf = nseg // k
    segs = np.lib.stride_tricks.sliding_window_view(x, n)[::hop][: nf * k]
    p = np.abs(np.fft.fft(segs * w, axis=1)) ** 2
    frames = p.reshape(nf, k, n).sum(axis=1) / k / np.sum(w) ** 2
    frames = np.fft.fftshift(frames, axes=-1)
    return spectrum.suppress_dc(frames, cfg.dc_bins)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block", [1 << 18, 100_003, 977])
@pytest.mark.parametrize("kind", ["complex64", "cu8"])
def test_frames_match_a_float64_reference_within_float32_rounding(backend, block, kind):
    cfg = SpectrumConfig(fft_size=1024)
    raw = raw_cu8(1_500_000)
    iq = to_iq(raw, "cu8")
    eng = WelchFrames(RATE, cfg, backend=backend)
    assert eng.backend == backend
    out, starts = [], []
    for off in range(0, len(iq), block):
        p, s = eng.push(raw[2 * off: 2 * (off + block)] if kind == "cu8" else iq[off: off + block])
        out.append(p)
        starts.append(s)
    got, starts = np.concatenate(out), np.concatenate(starts)
    want = reference_frames(iq, cfg)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.array_equal(starts, np.arange(len(want)) * eng.frame_samples)
    # float32 rounding: the FFT of 1024 points loses a few ulps; relative to each bin, and to the frame's
    # strongest bin for the weakest bins (the tone sits 60 dB over the noise)
    err = np.abs(got - want)
    assert np.all(err <= 2e-5 * want + 1e-6 * want.max(axis=1, keepdims=True)), float(np.max(err / want))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_two_backends_agree(backend):
    raw = raw_cu8(600_000, seed=9)
    a, _ = WelchFrames(RATE, SpectrumConfig(fft_size=512), backend="scipy").push(raw)
    b, _ = WelchFrames(RATE, SpectrumConfig(fft_size=512), backend=backend).push(raw)
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6 * float(a.max()))


@pytest.mark.parametrize("name", sorted(WINDOWS))
@pytest.mark.parametrize("n", [16, 128, 1000, 1024])
def test_windows_are_scipys(name, n):
    np.testing.assert_allclose(WINDOWS[name](n), scipy.signal.get_window(name, n), rtol=0, atol=1e-12)


def test_an_unknown_window_or_backend_is_one_line():
    from sdrwatch.errors import SdrwatchError

    with pytest.raises(SdrwatchError, match="unknown window 'tukey'"):
        WelchFrames(RATE, SpectrumConfig(fft_size=256, window="tukey"))
    with pytest.raises(SdrwatchError, match="unknown FFT backend"):
        WelchFrames(RATE, SpectrumConfig(fft_size=256), backend="mkl")


def test_pocketfft_loaded_straight_is_scipy_fft():
    """The engine's FFT on the scipy backend is scipy.fft's own pocketfft, loaded without scipy.fft's
    package: bit for bit the same as scipy.fft.fft."""
    import scipy.fft

    assert spectrum._pocketfft_c2c() is not None
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((40, 1024)) + 1j * rng.standard_normal((40, 1024))).astype(np.complex64)
    got = spectrum._fft_rows(x.copy())
    assert np.array_equal(got, scipy.fft.fft(x, axis=1))


def test_fft_backend_choice(monkeypatch):
    monkeypatch.setenv("SDRWATCH_FFT", "scipy")
    assert fft_backend() == "scipy"
    monkeypatch.setenv("SDRWATCH_FFT", "auto")
    assert fft_backend() in ("scipy", "fftw")


def test_the_replay_path_imports_no_heavy_module(tmp_path):
    """Start-up: replaying a recording imports neither scipy.signal, scipy.stats nor scipy.special (nor
    scipy.fft's or pyFFTW's package, which import it: the engine loads their compiled FFT straight),
    matplotlib, sigmf, the network and storage layers or the rich table machinery (a jsonl replay
    prints no table)."""
    code = (
        "import sys\n"
        "from sdrwatch.cli import main\n"
        "sys.argv = ['sdrwatch', 'replay', sys.argv[1], '--format', 'jsonl']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('scipy.signal', 'scipy.stats', 'matplotlib', 'sigmf', 'rich.table', 'scipy.ndimage',"
        " 'scipy.special', 'scipy.fft', 'pyfftw.interfaces', 'numpy.f2py', 'zmq', 'sqlite_utils', 'textual')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    from pathlib import Path

    rec = Path(__file__).resolve().parents[1] / "recordings" / "gfsk-bursts"
    proc = subprocess.run([sys.executable, "-c", code, str(rec)], capture_output=True, text=True, timeout=120)
    line = [l for l in proc.stderr.splitlines() if l.startswith("HEAVY")]
    assert line == ["HEAVY []"], proc.stderr[-2000:]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_give_the_same_frames_bit_for_bit(backend):
    """Two workers run a push's pieces on two pool threads: the batches are the same, so the frames are
    identical, whatever the block sizes."""
    raw = raw_cu8(900_000, seed=11)
    got = {}
    for workers in (1, 2):
        eng = WelchFrames(RATE, SpectrumConfig(fft_size=1024), backend=backend, workers=workers)
        assert eng.workers == workers
        parts = [eng.push(raw[off: off + 2 * 310_001])[0] for off in range(0, len(raw), 2 * 310_001)]
        got[workers] = np.concatenate(parts)
    assert got[1].shape[0] > 30 and np.array_equal(got[1], got[2])


@settings(max_examples=25, deadline=None)
@given(fft_log2=st.integers(6, 10), k=st.integers(1, 700), cuts=st.lists(st.integers(1, 400_000), min_size=1, max_size=4),
       kind=st.sampled_from(["complex64", "cu8"]), seed=st.integers(0, 2**16))
def test_frames_of_any_length_and_any_blocks_match_the_reference(fft_log2, k, cuts, kind, seed):
    """Frames of 1 to 700 segments (fewer and more than a batch or a piece of the engine's work), over
    blocks of any size: the float64 formula within float32 rounding, with one worker or two, and the
    two the same bit for bit."""
    n = 1 << fft_log2
    cfg = SpectrumConfig(fft_size=n, frame_s=k * (n // 2) / RATE)
    raw = raw_cu8(sum(cuts) + n, seed=seed)
    iq = to_iq(raw, "cu8")
    bounds = np.cumsum([0, *cuts, n])
    got = {}
    for workers in (1, 2):
        eng = WelchFrames(RATE, cfg, backend="scipy", workers=workers)
        assert eng.k == k
        parts = [eng.push(raw[2 * a: 2 * b] if kind == "cu8" else iq[a:b]) for a, b in zip(bounds, bounds[1:])]
        got[workers] = (np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts]))
    want = reference_frames(iq, cfg)
    frames, starts = got[1]
    assert frames.shape == want.shape
    assert np.array_equal(starts, np.arange(len(want)) * eng.frame_samples)
    err = np.abs(frames - want)
    assert np.all(err <= 2e-5 * want + 1e-6 * want.max(axis=1, keepdims=True, initial=0.0))
    assert np.array_equal(got[2][0], frames) and np.array_equal(got[2][1], starts)


def test_default_workers(monkeypatch):
    monkeypatch.delenv("SDRWATCH_THREADS", raising=False)
    spectrum.set_default_workers(None)
    assert spectrum.default_workers() == 1
    monkeypatch.setenv("SDRWATCH_THREADS", "2")
    assert WelchFrames(RATE, SpectrumConfig(fft_size=256)).workers == 2
    monkeypatch.setenv("SDRWATCH_THREADS", "junk")
    assert spectrum.default_workers() == 1
    spectrum.set_default_workers(2)
    try:
        assert WelchFrames(RATE, SpectrumConfig(fft_size=256)).workers == 2
    finally:
        spectrum.set_default_workers(None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stream_may_switch_between_cu8_bytes_and_samples(backend):
    """cu8 bytes are windowed in units of one step (the 1/127.5 rides on the taps): a stream that
    changes kind midway carries its partial segment over, within float32 rounding."""
    raw = raw_cu8(400_000, seed=13)
    iq = to_iq(raw, "cu8")
    want, _ = WelchFrames(RATE, SpectrumConfig(fft_size=1024), backend=backend).push(iq)
    eng = WelchFrames(RATE, SpectrumConfig(fft_size=1024), backend=backend)
    cuts = [0, 100_001, 250_003, 400_000]
    parts = [eng.push(raw[2 * a: 2 * b] if i % 2 == 0 else iq[a:b])[0] for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    got = np.concatenate(parts)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6 * float(want.max()))


def test_frames_computed_ahead_are_taken_only_when_they_follow():
    """An engine takes a push's frames computed ahead by another engine of its key fed the same stream
    (the read-ahead thread's): the same frames as computing them itself; frames of another key, or of
    a push that does not follow its own state, are ignored and computed here."""
    raw = raw_cu8(600_000, seed=17)
    iq = to_iq(raw, "cu8")
    blocks = [iq[a:a + 150_001] for a in range(0, len(iq), 150_001)]
    mine = WelchFrames(RATE, SpectrumConfig(fft_size=1024), backend="scipy")
    want = [mine.push(b)[0] for b in blocks]
    producer = WelchFrames(RATE, SpectrumConfig(fft_size=1024), backend="scipy")
    aheads = [spectrum.frames_ahead(producer, b, restart=i == 0) for i, b in enumerate(blocks)]
    eng = WelchFrames(RATE, SpectrumConfig(fft_size=1024), backend="scipy")
    got = [eng.push(b, a)[0] for b, a in zip(blocks, aheads)]
    assert all(g is a.power for g, a in zip(got, aheads))  # taken, not computed again
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    # out of order: block 2's frames offered after block 0 are not taken; block 1 is computed here
    eng.reset()
    eng.push(blocks[0], aheads[0])
    p, _ = eng.push(blocks[1], aheads[2])
    assert p is not aheads[2].power and np.array_equal(p, want[1])
    # another key (FFT size) is never taken
    other = WelchFrames(RATE, SpectrumConfig(fft_size=512), backend="scipy")
    p, _ = other.push(blocks[0], aheads[0])
    assert p.shape[1] == 512


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fresh_process_starts_two_workers_at_once(backend):
    """The compiled FFT modules are loaded when first needed, here by the two pool threads at the
    same moment: each fresh process must get its frames (a race once made one see a half-loaded
    pyFFTW and fail)."""
    code = (
        "import numpy as np; from sdrwatch.dsp.spectrum import WelchFrames, SpectrumConfig\n"
        f"eng = WelchFrames(2.4e6, SpectrumConfig(fft_size=1024), backend={backend!r}, workers=2)\n"
        "raw = np.random.default_rng(1).integers(0, 256, 2 << 20).astype(np.uint8)\n"
        "p, s = eng.push(raw); print(p.shape[0])\n"
    )
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr.strip().splitlines()[-1:]
        assert int(out.stdout) == (((1 << 20) - 1024) // 512 + 1) // 23  # the whole 5 ms frames of 1 Mi samples
