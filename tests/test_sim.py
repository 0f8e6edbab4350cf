"""The RF scene simulator checked against theory: levels, bandwidths, timing, artefacts, determinism."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sdrwatch.errors import PlanError, SourceError
from sdrwatch.radio.base import open_source
from sdrwatch.radio.sim import Scene, SimSource, bench_render, irr_db, open_sim

FS = 1.024e6
FC = 100.0e6
CLEAN = {"quantize": False, "rolloff": False, "dc_offset_dbfs": -400.0, "iq_amplitude_db": 0.0, "iq_phase_deg": 0.0}


def make_scene(emitters, *, dongle=None, seed=3, tuner="r820t", noise=-100.0, floor=-200.0):
    data = {"scene": {"seed": seed, "tuner": tuner, "noise_dbfs_hz": noise, "floor_dbfs_hz": floor},
            "dongle": CLEAN if dongle is None else dongle,
            "emitter": [dict(e) for e in emitters]}
    for i, e in enumerate(data["emitter"]):
        e.setdefault("label", f"e{i}")
    return Scene.from_dict(data, where="test.toml")


def psd(x, fs, nfft=4096):
    """Welch PSD (Hann, no overlap), density in power/Hz, frequencies centred."""
    x = x[: len(x) // nfft * nfft].reshape(-1, nfft)
    w = np.hanning(nfft)
    spec = np.abs(np.fft.fft(x * w, axis=1)) ** 2
    dens = np.fft.fftshift(spec.mean(0)) / (fs * np.sum(w ** 2))
    return np.fft.fftshift(np.fft.fftfreq(nfft, 1 / fs)), dens


def obw99(x, fs, nfft=4096):
    f, p = psd(x, fs, nfft)
    c = np.cumsum(p) / p.sum()
    return f[np.searchsorted(c, 0.995)] - f[np.searchsorted(c, 0.005)]


# ---------------------------------------------------------------------------- levels
def test_cw_power_in_dbfs_by_fft():
    s = make_scene([{"kind": "cw", "freq_hz": FC + 100e3, "power_dbfs": -23.0}], noise=-200)
    x = s.render(FC, FS, 0, 4096)
    spec = np.abs(np.fft.fft(x)) ** 2 / 4096 ** 2  # rectangular window, tone on bin 400
    k = int(round(100e3 / FS * 4096))
    assert 10 * np.log10(spec[k]) == pytest.approx(-23.0, abs=0.01)
    assert 10 * np.log10(np.mean(np.abs(x) ** 2)) == pytest.approx(-23.0, abs=0.01)


def test_noise_floor_density_is_rate_independent():
    for rate in (250e3, 1.024e6, 2.4e6):
        s = make_scene([], noise=-95.0)
        x = s.render(FC, rate, 0, 1 << 18)
        total_db = 10 * np.log10(np.mean(np.abs(x) ** 2))
        assert total_db == pytest.approx(-95.0 + 10 * math.log10(rate), abs=0.1)
    # with the dongle's edge roll-off the centre of the band still sits at the declared density
    s = make_scene([], noise=-95.0, dongle={**CLEAN, "rolloff": True})
    f, p = psd(s.render(FC, 2.4e6, 0, 1 << 19), 2.4e6)
    centre = np.abs(f) < 0.25 * 2.4e6
    assert 10 * np.log10(np.mean(p[centre])) == pytest.approx(-95.0, abs=0.3)
    edge = np.abs(f) > 0.97 * 1.2e6
    assert 10 * np.log10(np.mean(p[edge])) < -101.0  # rolled off towards +-rate/2


def test_snr_db_field_sets_power_from_in_band_noise():
    s = make_scene([{"kind": "nbfm", "freq_hz": FC, "snr_db": -6.0}], noise=-100.0)
    e = s.emitters[0]
    assert e.bandwidth_hz == 11000.0  # Carson 2*(2.5 + 3) kHz
    assert e.power_dbfs == pytest.approx(-106.0 + 10 * math.log10(11000.0), abs=1e-9)
    assert s.snr_db(e) == pytest.approx(-6.0, abs=1e-9)


# ---------------------------------------------------------------------------- occupied bandwidth
@pytest.mark.parametrize("spec,lo,hi", [
    ({"kind": "nbfm", "audio": "tone", "audio_hz": 1000.0}, 0.85, 1.25),          # Carson 7 kHz
    ({"kind": "nbfm", "audio": "noise", "channel_hz": 25000.0}, 0.6, 1.1),        # Carson 16 kHz
    ({"kind": "nbfm"}, 0.4, 1.1),                                                 # voice: pauses narrow it
    ({"kind": "fsk", "bit_rate_bps": 1200.0}, 0.85, 1.3),                         # 2*4.5 + 1.2 kHz
    ({"kind": "gfsk", "bit_rate_bps": 2400.0, "bt": 0.5}, 0.8, 1.15),
    ({"kind": "lora", "sf": 7}, 0.95, 1.10),                                      # chirp bandwidth
    ({"kind": "wfm"}, 0.7, 1.05),                                                 # Carson 180 kHz
    ({"kind": "ook"}, 0.7, 1.3),                                                  # 5/464 us
])
def test_occupied_bandwidth_matches_theory(spec, lo, hi):
    s = make_scene([{**spec, "freq_hz": FC + 50e3, "power_dbfs": -20.0}], noise=-200)
    e = s.emitters[0]
    x = s.render(FC, FS, 0, 1 << 20)
    measured = obw99(x, FS, nfft=8192)
    assert lo * e.bandwidth_hz <= measured <= hi * e.bandwidth_hz, (measured, e.bandwidth_hz)
    # and the signal sits at its frequency
    f, p = psd(x, FS)
    assert abs(np.sum(f * p) / np.sum(p) - 50e3) < 0.1 * e.bandwidth_hz + 300


# ---------------------------------------------------------------------------- time behaviour
def test_burst_edges_on_the_right_samples_and_truth_agrees():
    s = make_scene([{"kind": "cw", "freq_hz": FC + 20e3, "power_dbfs": -10.0, "ramp_s": 0.0,
                     "bursts": {"period_s": 0.1, "length_s": 0.03, "offset_s": 0.01}}], noise=-300)
    x = s.render(FC, FS, 0, int(0.35 * FS))
    on = np.abs(x) > 1e-3
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    expected = []
    for k in range(4):
        a, b = 0.01 + 0.1 * k, 0.04 + 0.1 * k
        if b < 0.35:
            expected += [math.ceil(a * FS - 1e-6) - 1, math.ceil(b * FS - 1e-6) - 1]
    assert list(edges) == expected
    truth = s.truth(FC, FS, 0, int(0.35 * FS))
    assert [(t["sample_start"], t["sample_count"]) for t in truth] == [
        (math.ceil((0.01 + 0.1 * k) * FS - 1e-6), math.ceil((0.04 + 0.1 * k) * FS - 1e-6) - math.ceil((0.01 + 0.1 * k) * FS - 1e-6))
        for k in range(4)]
    assert on[truth[0]["sample_start"]] and not on[truth[0]["sample_start"] - 1]


def test_windows_duty_and_jitter_are_deterministic_and_plausible():
    s = make_scene([
        {"kind": "nbfm", "label": "walkie", "freq_hz": FC, "power_dbfs": -30.0,
         "duty": {"fraction": 0.05, "mean_on_s": 4.0}},
        {"kind": "fsk", "label": "pager", "freq_hz": FC + 1e5, "power_dbfs": -30.0,
         "bursts": {"period_s": 1.0, "length_s": 0.2, "jitter_s": 0.1}},
        {"kind": "cw", "label": "late", "freq_hz": FC - 1e5, "power_dbfs": -30.0, "windows": [[2.0, 3.0], [5.0, 1e9]]},
    ])
    walkie, pager, late = s.emitters
    on = sum(b - a for a, b in walkie.schedule.intervals(0, 4000.0) if True)
    assert on / 4000.0 == pytest.approx(0.05, rel=0.25)
    ivs = pager.schedule.intervals(0, 100.0)
    starts = np.array([a for a, _ in ivs])
    assert np.all(np.abs(starts - np.round(starts)) <= 0.1 + 1e-9) and np.std(starts - np.round(starts)) > 0.01
    assert late.schedule.intervals(0, 10.0) == [(2.0, 3.0), (5.0, 1e9)]
    assert s.truth(FC, FS, 0, int(1.5 * FS))  # pager is on inside the first 1.5 s
    assert all(t["label"] != "late" for t in s.truth(FC, FS, 0, int(1.9 * FS)))


# ---------------------------------------------------------------------------- dongle artefacts
def test_iq_imbalance_image_level_matches_irr_formula():
    amp_db, phase_deg = 1.0, 3.0
    s = make_scene([{"kind": "cw", "freq_hz": FC + 125e3, "power_dbfs": -10.0}], noise=-300,
                   dongle={**CLEAN, "iq_amplitude_db": amp_db, "iq_phase_deg": phase_deg})
    x = s.render(FC, FS, 0, 8192)
    spec = np.abs(np.fft.fft(x)) ** 2
    k = int(round(125e3 / FS * 8192))
    measured = 10 * np.log10(spec[k] / spec[-k])
    g, phi = 10 ** (amp_db / 20), math.radians(phase_deg)
    theory = 10 * math.log10((1 + 2 * g * math.cos(phi) + g * g) / (1 - 2 * g * math.cos(phi) + g * g))
    assert measured == pytest.approx(theory, abs=0.05)
    assert irr_db(amp_db, phase_deg) == pytest.approx(theory)
    assert 10 * np.log10(spec[k] / 8192 ** 2) == pytest.approx(-10.0, abs=0.01)  # wanted tone keeps its power
    imgs = [t for t in s.truth(FC, FS, 0, 8192) if t["sdrwatch:kind"] == "image"]
    assert len(imgs) == 1 and imgs[0]["freq_lower_hz"] < FC - 124e3 and not imgs[0]["sdrwatch:threat"]


def test_default_image_rejection_comes_from_the_profile():
    s = make_scene([], dongle={})
    assert s.dongle.image_rejection_db == pytest.approx(s.profile.image_rejection_db, abs=1e-6)


def test_8bit_quantiser_clips_at_full_scale():
    dongle = {**CLEAN, "quantize": True}
    below = make_scene([{"kind": "cw", "freq_hz": FC + 100e3, "power_dbfs": -0.5}], noise=-300, dongle=dongle)
    x = below.render(FC, FS, 0, 8192)
    assert np.max(np.abs(x.real)) <= 1.0 and 10 * np.log10(np.mean(np.abs(x) ** 2)) == pytest.approx(-0.5, abs=0.05)
    levels = np.unique(np.round(x.real * 127.5 + 127.5, 4))
    assert np.allclose(levels, np.round(levels))  # every value is an 8-bit level
    above = make_scene([{"kind": "cw", "freq_hz": FC + 100e3, "power_dbfs": 6.0}], noise=-300, dongle=dongle)
    y = above.render(FC, FS, 0, 8192)
    assert np.max(np.abs(y.real)) == 1.0
    assert np.mean(np.abs(y.real) == 1.0) > 0.3  # pinned at the rails
    assert 10 * np.log10(np.mean(np.abs(y) ** 2)) < 6.0 - 2.0  # compressed
    # the clipping point is a full-scale (0 dBFS) complex tone: it passes uncompressed, 1 dB more does not
    def out_db(power_dbfs):
        sc = make_scene([{"kind": "cw", "freq_hz": FC + 100e3, "power_dbfs": power_dbfs}], noise=-300, dongle=dongle)
        return 10 * np.log10(np.mean(np.abs(sc.render(FC, FS, 0, 8192)) ** 2))
    assert out_db(0.0) == pytest.approx(0.0, abs=0.03)
    assert out_db(1.0) < 1.0 - 0.15


def test_in_place_quantiser_is_the_cu8_round_trip():
    from sdrwatch.radio.iq import from_iq, to_iq
    from sdrwatch.radio.sim.scene import quantize_cu8
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(50_000) + 1j * rng.standard_normal(50_000)).astype(np.complex64) * 0.6
    y = x.copy()
    quantize_cu8(y)
    assert np.array_equal(y, to_iq(from_iq(x, "cu8"), "cu8"))


def test_dc_offset_and_ppm_error():
    s = make_scene([{"kind": "cw", "freq_hz": 400e6, "power_dbfs": -20.0}], noise=-300,
                   dongle={**CLEAN, "dc_offset_dbfs": -40.0, "ppm_error": 25.0})
    x = s.render(400e6, FS, 0, 1 << 14)
    spec = np.abs(np.fft.fft(x)) ** 2 / len(x) ** 2
    assert 10 * np.log10(spec[0]) == pytest.approx(-40.0, abs=0.01)
    peak = np.argmax(spec[1:]) + 1
    freq = np.fft.fftfreq(len(x), 1 / FS)[peak]
    assert freq == pytest.approx(-400e6 * 25e-6, abs=FS / len(x))  # LO high by 25 ppm -> tone 10 kHz low
    t = s.truth(400e6, FS, 0, 100)[0]
    assert (t["freq_lower_hz"] + t["freq_upper_hz"]) / 2 == pytest.approx(400e6 - 10e3)
    # correcting with set_ppm(25) puts the tone back on 0 Hz
    x2 = s.render(400e6, FS, 0, 1 << 14, ppm=25.0)
    expected = abs(0.1 + 0.01 * complex(math.cos(math.pi / 4), math.sin(math.pi / 4))) ** 2  # tone + DC (45 deg)
    assert np.abs(np.mean(x2)) ** 2 == pytest.approx(expected, rel=0.01)


def test_gain_offset_scales_signal_and_noise():
    s = make_scene([{"kind": "cw", "freq_hz": FC + 100e3, "power_dbfs": -30.0}], noise=-300)
    x = s.render(FC, FS, 0, 4096, gain_db=s.reference_gain_db - 10.0)
    assert 10 * np.log10(np.mean(np.abs(x) ** 2)) == pytest.approx(-40.0, abs=0.01)


# ---------------------------------------------------------------------------- determinism
REALISTIC = [
    {"kind": "nbfm", "freq_hz": FC + 100e3, "power_dbfs": -40.0},
    {"kind": "gfsk", "freq_hz": FC - 200e3, "power_dbfs": -45.0, "bursts": {"period_s": 0.05, "length_s": 0.015}},
    {"kind": "fsk", "freq_hz": FC + 300e3, "power_dbfs": -45.0, "bit_rate_bps": 512.0},
    {"kind": "lora", "freq_hz": FC - 350e3, "power_dbfs": -50.0, "bursts": {"period_s": 0.1, "length_s": 0.04}},
    {"kind": "wfm", "freq_hz": FC + 420e3, "power_dbfs": -20.0, "fading_db_pp": 6.0, "fading_period_s": 0.3},
    {"kind": "ook", "freq_hz": FC - 60e3, "power_dbfs": -30.0, "bursts": {"period_s": 0.5}},
    {"kind": "cw", "freq_hz": FC + 10e3, "power_dbfs": -35.0, "duty": {"fraction": 0.3, "mean_on_s": 0.02}},
]


def test_block_size_independence_exact():
    s = make_scene(REALISTIC, dongle={})  # every artefact on, 8-bit quantised
    start, n = 123_456, 300_001
    whole = s.render(FC, FS, start, n)
    fresh = make_scene(REALISTIC, dongle={})
    parts = [fresh.render(FC, FS, start, 70_001), fresh.render(FC, FS, start + 70_001, 200_000),
             fresh.render(FC, FS, start + 270_001, n - 270_001)]
    assert np.array_equal(whole, np.concatenate(parts))
    # rendering out of order (cached chunks from later times) changes nothing either
    again = s.render(FC, FS, start + 70_001, 200_000)
    assert np.array_equal(again, whole[70_001:270_001])


@settings(max_examples=6, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.lists(st.integers(min_value=1, max_value=40_000), min_size=1, max_size=4))
def test_block_size_independence_property(start, sizes):
    s = make_scene(REALISTIC[:4] + REALISTIC[5:], dongle={})
    whole = s.render(FC, 2.4e6, start, sum(sizes))
    pieces, at = [], start
    for k in sizes:
        pieces.append(s.render(FC, 2.4e6, at, k))
        at += k
    assert np.array_equal(whole, np.concatenate(pieces))


def test_phase_continuous_across_blocks_at_large_sample_index():
    s = make_scene([{"kind": "nbfm", "freq_hz": FC + 100e3, "power_dbfs": 0.0}], noise=-300)
    start = 9_000_000_000  # about an hour at 2.4 MS/s
    x = s.render(FC, 2.4e6, start, 100_000)
    step = np.angle(x[1:] * np.conj(x[:-1]))
    assert np.max(np.abs(step - 2 * np.pi * 100e3 / 2.4e6)) < 2 * np.pi * 3e3 / 2.4e6  # within deviation


def test_determinism_by_seed():
    a = make_scene(REALISTIC, dongle={}, seed=11).render(FC, FS, 0, 50_000)
    b = make_scene(REALISTIC, dongle={}, seed=11).render(FC, FS, 0, 50_000)
    c = make_scene(REALISTIC, dongle={}, seed=12).render(FC, FS, 0, 50_000)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ---------------------------------------------------------------------------- SimSource
def test_stale_samples_after_retune_carry_the_old_frequency():
    s = make_scene([{"kind": "cw", "freq_hz": 169.0e6, "power_dbfs": -20.0}], noise=-110,
                   dongle={**CLEAN, "stale_samples": 1000})
    src = SimSource(s, sample_rate_hz=FS, center_hz=169.0e6, emit_stale=True)
    first = src.read(4096)
    assert 10 * np.log10(np.mean(np.abs(first.iq) ** 2)) == pytest.approx(-20.0, abs=0.2)
    src.tune(220.25e6)
    block = src.read(4096)
    assert block.center_hz == 220.25e6 and block.sample_index == 4096
    stale, fresh = block.iq[:1000], block.iq[1000:]
    assert 10 * np.log10(np.mean(np.abs(stale) ** 2)) == pytest.approx(-20.0, abs=0.2)
    assert 10 * np.log10(np.mean(np.abs(fresh) ** 2)) < -45.0
    assert 10 * np.log10(np.mean(np.abs(src.read(4096).iq) ** 2)) < -45.0
    truth = src.truth_for_block(block)  # the stale part is annotated at the frequency it carries
    assert [(t["sample_start"], t["sample_count"], t["label"]) for t in truth] == [(0, 1000, "e0")]
    assert truth[0]["sdrwatch:stale"] and truth[0]["freq_lower_hz"] < 220.25e6 < truth[0]["freq_upper_hz"]


def test_stale_samples_are_skipped_unless_asked_for():
    s = make_scene([{"kind": "cw", "freq_hz": 169.0e6, "power_dbfs": -20.0}], noise=-110,
                   dongle={**CLEAN, "stale_samples": 1000})
    src = SimSource(s, sample_rate_hz=FS, center_hz=169.0e6)
    src.read(4096)
    src.tune(220.25e6)
    block = src.read(4096)  # the Source promise: nothing from before the retune
    assert block.sample_index == 4096
    assert 10 * np.log10(np.mean(np.abs(block.iq) ** 2)) < -45.0
    assert src.time_s == pytest.approx((4096 + 1000 + 4096) / FS)  # the settling time still passed


def test_default_stale_is_profile_settle_time():
    s = make_scene([], dongle={})
    src = SimSource(s, sample_rate_hz=2.4e6, center_hz=100e6)
    assert src.describe().extra["stale_samples"] == round(s.profile.settle_s * 2.4e6)


def test_tune_in_tuner_gap_raises_plan_error():
    s = make_scene([], tuner="e4000")
    src = SimSource(s, sample_rate_hz=2.4e6, center_hz=433.92e6)
    with pytest.raises(PlanError, match="E4000 tuning gap"):
        src.tune(1150.275e6)
    with pytest.raises(PlanError):
        src.set_sample_rate(500e3)
    src.set_gain(30.0)
    assert src.gain_db == 29.0  # nearest E4000 step


def test_source_describe_and_truth_and_clock():
    s = make_scene([{"kind": "nbfm", "label": "exam-voice", "freq_hz": 220.25e6, "snr_db": 10.0, "threat": True,
                     "windows": [[0.01, 1.0]]},
                    {"kind": "cw", "label": "far", "freq_hz": 300e6, "power_dbfs": -20.0}])
    src = SimSource(s, sample_rate_hz=FS, center_hz=220.0e6, gain_db=30)
    info = src.describe()
    assert info.driver == "sim" and info.tuner == "R820T" and len(info.gains_db) == 29 and src.gain_db == 29.7
    b1 = src.read(8192)
    b2 = src.read(8192)
    assert b2.sample_index == 8192 and b2.time_s == pytest.approx(8192 / FS)
    truth = src.truth(220.0e6, FS, 0, 16384)
    assert len(truth) == 1
    t = truth[0]
    assert t["label"] == "exam-voice" and t["sdrwatch:threat"] is True and t["sdrwatch:snr_db"] == pytest.approx(10.0)
    assert t["sample_start"] == math.ceil(0.01 * FS) and t["freq_lower_hz"] == pytest.approx(220.25e6 - 5500)
    assert "in-band SNR 10.0 dB in 11 kHz" in t["comment"]
    assert len(b1.iq) == 8192 and b1.iq.dtype == np.complex64


def test_realtime_paces_reads():
    s = make_scene([])
    src = SimSource(s, sample_rate_hz=250e3, center_hz=100e6, realtime=True)
    t0 = time.monotonic()
    for _ in range(4):
        src.read(5000)
    assert time.monotonic() - t0 >= 0.075


def test_open_sim_by_uri_and_name(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('[scene]\nseed = 5\n\n[[emitter]]\nkind = "cw"\nfreq_hz = 433.92e6\npower_dbfs = -30.0\n')
    src = open_source(f"sim:{path}", sample_rate_hz=250e3, realtime=False, device_index=0)
    assert isinstance(src, SimSource) and src.center_hz == 433.92e6 and src.scene.seed == 5
    src2 = open_sim(f"sim:{path}", seed=9, tuner="R828D")
    assert src2.scene.seed == 9 and src2.describe().tuner == "R828D"
    demo = open_sim("sim:demo")
    assert demo.scene.name == "demo"
    with pytest.raises(SourceError, match="not found"):
        open_sim("sim:no-such-scene")


@pytest.mark.parametrize("body,needle", [
    ('[[emitter]]\nkind = "laser"\nfreq_hz = 1e8\npower_dbfs = -3.0\n', "unknown kind 'laser'"),
    ('[[emitter]]\nkind = "cw"\npower_dbfs = -3.0\n', "missing field 'freq_hz'"),
    ('[[emitter]]\nkind = "cw"\nfreq_hz = 1e8\npower_dbfs = -3.0\nfreq_mhz = 3\n', "unknown field 'freq_mhz'"),
    ('[[emitter]]\nkind = "cw"\nfreq_hz = "fast"\npower_dbfs = -3.0\n', "field 'freq_hz' must be a number"),
    ('[[emitter]]\nkind = "cw"\nfreq_hz = 1e8\n', "exactly one of 'power_dbfs' and 'snr_db'"),
    ('[[emitter]]\nkind = "cw"\nfreq_hz = 1e8\npower_dbfs = -3.0\nbursts = { period_s = 1.0 }\n', "missing field 'length_s'"),
    ('[scene]\ntuner = "hackrf"\n', "field 'tuner'"),
    ('[scene]\nseed = 1\nnoise = 3\n', "unknown field 'noise'"),
    ('[[emitter]]\nkind = "ook"\nfreq_hz = 1e8\npower_dbfs = -3.0\ncode = 255\n', "field 'code'"),
    ('this is not toml', "not valid TOML"),
])
def test_bad_scene_files_give_one_line_errors(tmp_path, body, needle):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(SourceError) as err:
        Scene.from_toml(path)
    msg = str(err.value)
    assert needle in msg and "bad.toml" in msg and "\n" not in msg


def test_bench_render_reports_speed():
    out = bench_render(0.2)
    assert out["emitters"] == 10 and out["msps"] > 0.3 and out["sample_rate_hz"] == 2.4e6


# ---------------------------------------------------------------------------- interoperability
@pytest.mark.skipif(shutil.which("rtl_433") is None, reason="rtl_433 not installed")
def test_rtl_433_decodes_the_ook_remote(tmp_path):
    code = 0x5A3C81
    s = make_scene([{"kind": "ook", "freq_hz": 433.92e6 + 30e3, "power_dbfs": -12.0, "code": code,
                     "repeats": 4, "bursts": {"period_s": 1.0, "offset_s": 0.05}}],
                   noise=-100.0, dongle={})
    x = s.render(433.92e6, 250e3, 0, 250_000)
    path = tmp_path / "g001_433.92M_250k.cu8"
    from sdrwatch.radio.iq import from_iq
    path.write_bytes(from_iq(x, "cu8"))
    # relative name: rtl_433 reads format tokens from the whole path, and pytest's directories confuse it
    proc = subprocess.run(["rtl_433", "-r", path.name, "-F", "json", "-R", "30"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    remotes = [e for e in events if e.get("model") == "Generic-Remote"]
    assert remotes, proc.stdout + proc.stderr
    assert remotes[0]["id"] == code >> 8 and remotes[0]["cmd"] == code & 0xFF


# ---------------------------------------------------------------------------- docs and recordings
REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_docs_example_scene_parses_and_renders():
    text = (REPO / "docs" / "scenes.md").read_text()
    example = text.split("### A complete example", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    import tomllib
    scene = Scene.from_dict(tomllib.loads(example), where="docs/scenes.md")
    assert [e.kind for e in scene.emitters] == ["wfm", "nbfm", "gfsk", "nbfm", "ook"]
    assert scene.recording["stem"] == "two-threats"
    iq = scene.render(220.0e6, 1.024e6, int(60.0 * 1.024e6), 8192)
    assert iq.dtype == np.complex64 and len(iq) == 8192


def test_every_shipped_scene_parses():
    for path in sorted((REPO / "recordings" / "scenes").glob("*.toml")):
        scene = Scene.from_toml(path)
        assert scene.emitters or scene.recording, path


def test_recordings_regenerate_byte_identically(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_recordings", REPO / "recordings" / "make_recordings.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for stem in ("gfsk-bursts", "sweep"):
        meta = mod.make(REPO / "recordings" / "scenes" / f"{stem}.toml", tmp_path)
        for ext in (".sigmf-meta", ".sigmf-data"):
            assert (tmp_path / f"{stem}{ext}").read_bytes() == (REPO / "recordings" / f"{stem}{ext}").read_bytes(), ext
        ann = json.loads(meta.read_text())["annotations"]
        threats = [a for a in ann if a["sdrwatch:threat"]]
        assert threats and all("in-band SNR" in a["core:comment"] and "sdrwatch:snr_db" in a for a in ann)
    bursts = [a for a in json.loads((tmp_path / "gfsk-bursts.sigmf-meta").read_text())["annotations"]
              if a["core:label"] == "data-bursts-169.05"]
    assert len(bursts) == 8 and all(a["core:sample_count"] == 3750 for a in bursts)  # 15 ms at 250 kS/s
    assert bursts[0]["sdrwatch:snr_db"] == 15.0


def test_rolloff_taps_are_the_firwin2_design_and_the_simulator_imports_without_scipy_signal():
    from scipy.signal import firwin2

    from sdrwatch.radio.sim.scene import ROLLOFF_TAPS

    taps = firwin2(21, [0.0, 0.7, 0.9, 1.0], [1.0, 0.97, 0.55, 0.25], window=("kaiser", 4.0))
    np.testing.assert_array_equal(ROLLOFF_TAPS, (taps / taps.sum()).astype(np.float32))
    code = "import sys, sdrwatch.radio.sim; print(sorted(m for m in sys.modules if m.startswith('scipy.signal')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
