"""The detection core on synthetic arrays: scaling, thresholds, detection, false alarms, tracking."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sdrwatch.dsp import detector as D
from sdrwatch.dsp.spectrum import GroupSum, SpectrumConfig, WelchFrames, averaging_efficiency, stitch, welch_psd, window_taps
from sdrwatch.radio.file import open_recording
from sdrwatch.replay import detect, learn_baseline

from synth import NOISE_POWER, fsk_bursts, nbfm, noise, snr_to_power, write

FS = 1.024e6


def test_tone_reads_its_power_in_dbfs_and_noise_reads_enbw():
    n = 1 << 20
    t = np.arange(n)
    rng = np.random.default_rng(0)
    tone = 0.5 * np.exp(2j * np.pi * (FS / 1024 * 100) * t / FS)
    x = (tone + noise(n, rng, 1e-2)).astype(np.complex64)
    p = welch_psd(x, FS, SpectrumConfig(fft_size=1024))
    assert 10 * np.log10(p[512 + 100]) == pytest.approx(-6.02, abs=0.1)
    floor = np.median(np.delete(p, np.arange(600, 630)))
    assert 10 * np.log10(floor) == pytest.approx(10 * np.log10(1e-2 * 1.5 / 1024), abs=0.15)


def test_overlap_efficiency_matches_theory():
    # domain.md 3.1: Hann at 50 % overlap, rho = 0.167, K_eff/K = 0.947
    assert averaging_efficiency(window_taps(SpectrumConfig(fft_size=1024)), 512) == pytest.approx(0.947, abs=0.002)


def test_measured_spread_of_noise_frames_matches_k_eff():
    rng = np.random.default_rng(1)
    eng = WelchFrames(FS)
    p, _ = eng.push(noise(1 << 21, rng))
    rel = p[:, 100:900] / p[:, 100:900].mean()
    assert 1 / rel.var() == pytest.approx(eng.k_eff, rel=0.1)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 20000), min_size=1, max_size=8))
def test_frames_do_not_depend_on_block_boundaries(cuts):
    rng = np.random.default_rng(2)
    x = noise(60000, rng)
    whole, starts = WelchFrames(FS).push(x)
    eng = WelchFrames(FS)
    parts, pstarts, pos = [], [], 0
    for c in cuts + [len(x)]:
        a, b = eng.push(x[pos: pos + c])
        parts.append(a)
        pstarts.append(b)
        pos += c
        if pos >= len(x):
            break
    if pos < len(x):
        a, b = eng.push(x[pos:])
        parts.append(a)
        pstarts.append(b)
    got = np.concatenate(parts)
    assert got.shape == whole.shape
    np.testing.assert_allclose(got, whole, rtol=1e-4)
    assert (np.concatenate(pstarts) == starts).all()


@given(st.integers(1, 7), st.lists(st.integers(0, 9), max_size=6))
def test_group_sum_sums_every_group_once(m, sizes):
    rows = np.arange(sum(sizes), dtype=np.float32)[:, None]
    g, got, idx = GroupSum(m), [], 0
    for s in sizes:
        sums, starts = g.push(rows[idx: idx + s], idx)
        got += list(zip(starts.tolist(), sums[:, 0].tolist()))
        idx += s
    expect = [(i, float(rows[i: i + m, 0].sum())) for i in range(0, len(rows) - m + 1, m)]
    assert got == expect


def test_thresholds_match_the_worked_numbers():
    # domain.md 3.2: K=32, pfa 1e-6 -> 3.17 dB; K=16 -> 4.25 dB; K=64, 1e-4 -> 1.86 dB
    assert 10 * np.log10(D.gamma_threshold(32, 1e-6)) == pytest.approx(3.17, abs=0.01)
    assert 10 * np.log10(D.gamma_threshold(16, 1e-6)) == pytest.approx(4.25, abs=0.01)
    assert 10 * np.log10(D.gamma_threshold(64, 1e-4)) == pytest.approx(1.86, abs=0.01)
    # a finite baseline raises the threshold; an infinite one gives the known-noise value
    assert D.ratio_threshold(32, 1e3, 1e-6)[0] > D.gamma_threshold(32, 1e-6)
    assert D.ratio_threshold(32, np.inf, 1e-6)[0] == pytest.approx(D.gamma_threshold(32, 1e-6))


def test_false_alarm_rate_of_the_threshold_is_what_it_says():
    rng = np.random.default_rng(3)
    k = 16
    x = rng.gamma(k, 1 / k, size=2_000_000)
    t = D.gamma_threshold(k, 1e-3)
    assert (x > t).mean() == pytest.approx(1e-3, rel=0.15)


def test_robust_floor_ignores_an_intermittent_user():
    rng = np.random.default_rng(4)
    k0 = 20.0
    frames = rng.gamma(k0, 1 / k0, size=(400, 64)).astype(np.float32)
    frames[:60, 10:14] += 50.0  # a user keyed 15 % of the time
    est = D.robust_noise_per_bin(frames, k0)
    assert np.allclose(est, 1.0, atol=0.08)


def _pair(tmp_path, base_iq, exam_iq, center=169e6):
    b = write(tmp_path / "base", base_iq, FS, center)
    e = write(tmp_path / "exam", exam_iq, FS, center)
    return open_recording(b), open_recording(e)


def test_noise_against_noise_raises_nothing(tmp_path):
    rng = np.random.default_rng(5)
    base, exam = _pair(tmp_path, noise(int(2 * FS), rng), noise(int(6 * FS), rng))
    assert detect(exam, learn_baseline(base)) == []
    assert detect(exam) == []  # noise-floor mode too


def test_weak_continuous_fm_is_found_against_baseline(tmp_path):
    rng = np.random.default_rng(6)
    n = int(3 * FS)
    exam_iq = noise(n, rng) + nbfm(n, FS, 150e3, snr_to_power(-6, 11e3, FS), rng)
    base, exam = _pair(tmp_path, noise(int(2 * FS), rng), exam_iq)
    found = detect(exam, learn_baseline(base))
    assert len(found) == 1
    e = found[0]
    assert e.center_hz == pytest.approx(169e6 + 150e3, abs=3e3)
    assert e.novelty == "new"
    assert e.end_s - e.start_s > 2.0


def test_short_fsk_bursts_are_found_with_their_timing(tmp_path):
    rng = np.random.default_rng(7)
    n = int(2 * FS)
    starts = [0.3, 0.9, 1.5]
    exam_iq = noise(n, rng) + fsk_bursts(n, FS, -200e3, snr_to_power(15, 15e3, FS), rng, starts)
    base, exam = _pair(tmp_path, noise(int(2 * FS), rng), exam_iq)
    found = detect(exam, learn_baseline(base))
    assert len(found) == 1
    e = found[0]
    assert e.bursts == 3
    assert e.start_s == pytest.approx(0.3, abs=0.006)
    assert e.end_s == pytest.approx(1.515, abs=0.008)
    assert e.label == "pager-fsk"


def test_intermittent_benign_user_in_the_baseline_is_not_alarmed(tmp_path):
    rng = np.random.default_rng(8)

    def keyed(n, on_spans):
        x = noise(n, rng)
        user = nbfm(n, FS, 100e3, snr_to_power(25, 11e3, FS), rng)
        gate = np.zeros(n, bool)
        for a, b in on_spans:
            gate[int(a * FS): int(b * FS)] = True
        return x + user * gate

    base_iq = keyed(int(4 * FS), [(0.5, 0.6), (2.0, 2.2)])  # 7.5 % keyed
    exam_iq = keyed(int(3 * FS), [(0.2, 1.4)])  # keyed longer this time, same level
    base, exam = _pair(tmp_path, base_iq, exam_iq)
    assert detect(exam, learn_baseline(base)) == []
    # without the baseline the same user is simply an emission
    assert any(abs(e.center_hz - (169e6 + 100e3)) < 5e3 for e in detect(exam))


def test_much_stronger_signal_on_a_benign_channel_is_changed(tmp_path):
    rng = np.random.default_rng(9)
    n = int(2 * FS)
    user = lambda p: nbfm(n, FS, 100e3, snr_to_power(p, 11e3, FS), rng)  # noqa: E731
    base, exam = _pair(tmp_path, noise(n, rng) + user(10), noise(n, rng) + user(30))
    found = detect(exam, learn_baseline(base))
    assert [e.novelty for e in found] == ["changed"]


def test_stitch_joins_hops_on_one_axis():
    f1, f2 = np.arange(0, 10.0), np.arange(10.0, 20.0)
    f, v = stitch([f2, f1], [f2 * 2, f1 * 2])
    assert (f == np.arange(20.0)).all() and (v == f * 2).all()


def test_sweep_recording_hops_are_timed_back_to_back_and_matched_by_frequency(tmp_path):
    from sdrwatch.radio.file import SigMFWriter

    rng = np.random.default_rng(12)
    centers = [168.0e6, 168.75e6, 169.5e6]
    dwell = int(0.8 * FS)

    def sweep(stem, threat):
        with SigMFWriter(stem, fmt="cu8", sample_rate_hz=FS, overwrite=True) as w:
            for c in centers:
                w.start_capture(c)
                x = noise(dwell, rng)
                if threat and c == centers[1]:
                    x = x + nbfm(dwell, FS, 100e3, snr_to_power(10, 11e3, FS), rng)
                w.write(x)
        return open_recording(stem)

    base = learn_baseline(sweep(tmp_path / "b", False))
    assert [h.center_hz for h in base.hops] == centers
    # auto crop: 0.75 MHz steps at 1.024 MS/s keep the central 73 %
    assert base.meta["spectrum"]["crop"] == pytest.approx(1 - 0.75e6 / FS)
    found = detect(sweep(tmp_path / "e", True), base)
    assert len(found) == 1
    e = found[0]
    assert e.center_hz == pytest.approx(168.85e6, abs=3e3)
    assert e.hop_center_hz == centers[1]
    assert e.start_s == pytest.approx(0.8, abs=0.01) and e.end_s == pytest.approx(1.6, abs=0.01)


def test_baseline_file_round_trip(tmp_path):
    from sdrwatch.baseline import Baseline

    rng = np.random.default_rng(13)
    rec = open_recording(write(tmp_path / "b", noise(int(FS), rng) + nbfm(int(FS), FS, 50e3, 1e-3, rng), FS, 169e6))
    b = learn_baseline(rec)
    path = b.save(tmp_path / "site.npz")
    c = Baseline.load(path)
    assert c.meta["sample_rate_hz"] == FS and len(c.hops) == 1
    for name in ("freq_hz", "noise_power", "maxhold", "maxhold_n", "duty", "p99_power"):
        np.testing.assert_array_equal(getattr(c.hops[0], name), getattr(b.hops[0], name))
    # the user's channel is marked busy in the duty, the rest is not
    f = c.hops[0].freq_hz
    busy = c.hops[0].duty[np.abs(f - 169.05e6) < 2e3]
    assert busy.min() > 0.5 and np.median(c.hops[0].duty) < 0.01


def test_classification_tells_voice_from_pager_bursts():
    from sdrwatch.classify import classify
    from sdrwatch.dsp.tracker import Emission

    def em(start, end, duty, bursts, bw=11e3, f=169.4e6):
        return Emission(f, bw, start, end, -50, 10, duty, bursts, "new", 0.005, 169e6)

    assert classify(em(1.0, 4.0, 1.0, 1)).label == "nbfm-voice"
    assert classify(em(0.3, 2.8, 0.1, 5)).label == "pager-fsk"
    assert classify(em(0.3, 0.315, 1.0, 1)).label == "pager-fsk"
    far = classify(em(1.0, 4.0, 1.0, 1, f=100.1e6))  # the FM broadcast band is nobody's threat band here
    assert far.label == "data-radio" and any("outside its bands" in r for r in far.reasons)
    wide = classify(em(1.0, 4.0, 1.0, 1, bw=2e6, f=100.1e6))
    assert wide.label == "unknown" and wide.severity < 0.5


def _rec(tmp_path, name, captures, fs=FS, fmt="cf32"):
    from sdrwatch.radio.file import SigMFWriter

    with SigMFWriter(tmp_path / name, fmt=fmt, sample_rate_hz=fs, overwrite=True) as w:
        for center, iq in captures:
            w.start_capture(center)
            w.write(iq)
    return open_recording(tmp_path / name)


def test_continuous_transmitter_in_a_sweep_is_not_called_bursty(tmp_path):
    """Time on other hops is not 'off': one burst, full duty, and the voice class."""
    rng = np.random.default_rng(21)
    dwell = int(0.5 * FS)
    caps = []
    for k in range(4):
        for c in (450.0e6, 451.0e6):
            x = noise(dwell, rng)
            if c == 450.0e6:
                x = x + nbfm(dwell, FS, 200e3, snr_to_power(20, 11e3, FS), rng)
            caps.append((c, x))
    found = detect(_rec(tmp_path, "sweep", caps))
    voice = [e for e in found if abs(e.center_hz - 450.2e6) < 5e3]
    assert len(voice) == 1
    assert voice[0].bursts == 1 and voice[0].duty > 0.95 and voice[0].label == "nbfm-voice"


def test_transmitters_25_khz_apart_stay_two(tmp_path):
    rng = np.random.default_rng(22)
    n = int(2 * FS)
    x = noise(n, rng) + nbfm(n, FS, 200e3, snr_to_power(20, 11e3, FS), rng)
    x = x + fsk_bursts(n, FS, 225e3, snr_to_power(20, 11e3, FS), rng, [0.3, 0.9, 1.5], length_s=0.05)
    base = _rec(tmp_path, "b", [(450e6, noise(n, rng))])
    found = detect(_rec(tmp_path, "e", [(450e6, x)]), learn_baseline(base))
    assert sorted(round((e.center_hz - 450e6) / 1e3) for e in found) == [200, 225]
    pager = [e for e in found if abs(e.center_hz - 450.225e6) < 3e3][0]
    assert pager.bursts == 3


@pytest.mark.parametrize("gap_hz", [16e3, 40e3])
def test_new_transmitter_beside_a_known_wide_one_is_found(tmp_path, gap_hz):
    rng = np.random.default_rng(23)
    n = int(3 * FS)

    def wide(power):  # 100 kHz of band-limited noise at +100 kHz, edges at 50 and 150 kHz
        spec = np.fft.fft(noise(n, rng, 1.0))
        f = np.fft.fftfreq(n, 1 / FS)
        spec[np.abs(f - 100e3) > 50e3] = 0
        y = np.fft.ifft(spec)
        return (y * np.sqrt(power / np.mean(np.abs(y) ** 2))).astype(np.complex64)

    known = snr_to_power(30, 100e3, FS)
    base = _rec(tmp_path, "b", [(450e6, noise(n, rng) + wide(known))])
    x = noise(n, rng) + wide(known)
    f_new = 150e3 + gap_hz
    x[n // 3:] += nbfm(n, FS, f_new, snr_to_power(20, 11e3, FS), rng)[n // 3:]
    found = detect(_rec(tmp_path, "e", [(450e6, x)]), learn_baseline(base))
    hit = [e for e in found if abs(e.center_hz - 450e6 - f_new) < 6e3]
    assert len(hit) == 1 and hit[0].novelty == "new"
    assert hit[0].start_s == pytest.approx(1.0, abs=0.02)


def test_no_noise_at_all_raises_nothing_and_json_stays_valid(tmp_path):
    import json

    flat = np.full(int(FS), 0.3 + 0.2j, dtype=np.complex64)
    assert detect(_rec(tmp_path, "flat", [(169e6, flat)])) == []
    zeros_then_noise = np.concatenate([np.zeros(int(3.5 * FS), np.complex64), noise(int(FS), np.random.default_rng(1))])
    for e in detect(_rec(tmp_path, "z", [(169e6, zeros_then_noise)])):
        json.loads(json.dumps(e.as_record(), allow_nan=False))


def test_a_minute_of_noise_raises_nothing(tmp_path):
    """The false-alarm rate the exam day needs: none in a minute of 2.4 MS/s noise, both modes."""
    rng = np.random.default_rng(24)
    fs = 2.4e6
    from sdrwatch.radio.file import SigMFWriter

    with SigMFWriter(tmp_path / "n", fmt="cu8", sample_rate_hz=fs, overwrite=True) as w:
        w.start_capture(169e6)
        for _ in range(60):  # one second at a time (never the whole minute in memory)
            w.write(noise(int(fs), rng) * 100)  # -40 dBFS + 40 dB: well above the 8-bit floor
    base = _rec(tmp_path, "b", [(169e6, noise(int(2 * fs), rng) * 100)], fs=fs, fmt="cu8")
    rec = open_recording(tmp_path / "n")
    assert detect(rec) == []
    assert detect(rec, learn_baseline(base)) == []
