"""The streaming chain (sdrwatch.dsp.chain): events as they happen, any block sizes, crowded bands, flat memory."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sdrwatch.classify import classify
from sdrwatch.dsp import tracker as T
from sdrwatch.dsp.chain import BaselineLearner, Chain, Settings
from sdrwatch.radio.base import Block

from synth import fsk_bursts, nbfm, noise, snr_to_power

FS = 250e3  # 128-point FFTs: cheap enough for long runs
CENTER = 169e6


def blocks_of(iq: np.ndarray, sizes, center_hz: float = CENTER, first_index: int = 0, fs: float = FS):
    """Cut ``iq`` into blocks of the given sizes (cycled), as a receiver delivers them."""
    pos, i = 0, 0
    sizes = list(sizes)
    while pos < len(iq):
        n = sizes[i % len(sizes)]
        i += 1
        yield Block(iq=iq[pos: pos + n], center_hz=center_hz, sample_rate_hz=fs, sample_index=first_index + pos)
        pos += n


def learn(iq: np.ndarray, fs: float = FS, center_hz: float = CENTER):
    learner = BaselineLearner(fs, Settings())
    for b in blocks_of(iq, [1 << 15], center_hz, fs=fs):
        learner.push(b)
    return learner.finish()


def run(chain: Chain, blocks):
    """Push every block; returns [(sample-clock time after the push, event)] including close_all."""
    out = []
    t = 0.0
    for b in blocks:
        t = (b.sample_index + len(b.iq)) / b.sample_rate_hz
        out += [(t, ev) for ev in chain.push(b)]
    out += [(t, ev) for ev in chain.close_all()]
    return out


@pytest.fixture(scope="module")
def scene():
    """20 s: a voice link on 2-8 s and pager bursts at 10-11 s, over noise; and a quiet baseline."""
    rng = np.random.default_rng(40)
    n = int(20 * FS)
    gate = np.zeros(n, bool)
    gate[int(2 * FS): int(8 * FS)] = True
    iq = noise(n, rng) + nbfm(n, FS, 40e3, snr_to_power(15, 11e3, FS), rng) * gate
    iq += fsk_bursts(n, FS, -60e3, snr_to_power(15, 15e3, FS), rng, [10.0, 10.5, 11.0], length_s=0.05)
    return iq.astype(np.complex64), learn(noise(int(2 * FS), rng))


def test_events_open_update_close_in_order_with_one_id_per_emission(scene):
    iq, base = scene
    events = run(Chain(FS, base, classify=classify, update_s=1.0), blocks_of(iq, [1 << 14]))
    by_id: dict[int, list] = {}
    for t, ev in events:
        by_id.setdefault(ev.track_id, []).append((t, ev))
    assert len(by_id) == 2, [(t, ev.event, ev.track_id, ev.emission.center_hz) for t, ev in events]
    voice = next(evs for evs in by_id.values() if abs(evs[0][1].emission.center_hz - (CENTER + 40e3)) < 3e3)
    pager = next(evs for evs in by_id.values() if abs(evs[0][1].emission.center_hz - (CENTER - 60e3)) < 3e3)
    for evs in (voice, pager):
        kinds = [ev.event for _, ev in evs]
        assert kinds[0] == "open" and kinds[-1] == "close" and set(kinds[1:-1]) <= {"update"}, kinds
    # the voice link is announced within a second of keying up, updated about once a second while on,
    # and closed in the stream once nothing can join it any more (5 s gap + the longest window), not at the end
    t_open = voice[0][0]
    assert 2.0 <= t_open <= 3.0
    updates = [t for t, ev in voice if ev.event == "update"]
    assert len(updates) >= 3 and np.all(np.diff(updates) >= 1.0)
    t_close, closed = voice[-1]
    assert 8.0 + 5.0 < t_close <= 8.0 + 5.0 + 2.5 + 0.2
    assert closed.emission.start_s == pytest.approx(2.0, abs=0.02) and closed.emission.end_s == pytest.approx(8.0, abs=0.02)
    assert closed.emission.label == "nbfm-voice"
    assert pager[-1][1].emission.bursts == 3
    # snapshots grow; the ids are the chain's own and unique
    assert voice[1][1].emission.end_s <= closed.emission.end_s
    assert voice[0][1].track_id != pager[0][1].track_id


def _records(chain: Chain, blocks) -> list[dict]:
    got = [ev.emission.as_record() for _, ev in run(chain, blocks) if ev.event == "close" and ev.merged_into is None]
    return sorted(got, key=lambda r: (r["start_s"], r["center_hz"]))


@pytest.fixture(scope="module")
def short_scene():
    rng = np.random.default_rng(41)
    n = int(2.0 * FS)
    gate = np.zeros(n, bool)
    gate[int(0.7 * FS): int(1.6 * FS)] = True
    iq = noise(n, rng) + nbfm(n, FS, 30e3, snr_to_power(12, 11e3, FS), rng) * gate
    iq += fsk_bursts(n, FS, -50e3, snr_to_power(15, 15e3, FS), rng, [0.2, 1.1, 1.8], length_s=0.03)
    iq = iq.astype(np.complex64)
    base = learn(noise(int(1.5 * FS), rng))
    return iq, base, {"baseline": _records(Chain(FS, base), blocks_of(iq, [1 << 16])),
                      "noise": _records(Chain(FS), blocks_of(iq, [1 << 16]))}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(97, 150_000), min_size=1, max_size=10), mode=st.sampled_from(["baseline", "noise"]))
def test_any_block_sizes_give_the_same_emissions(short_scene, sizes, mode):
    iq, base, want = short_scene
    assert len(want["baseline"]) == 2 and len(want["noise"]) == 2
    got = _records(Chain(FS, base if mode == "baseline" else None), blocks_of(iq, sizes))
    assert got == want[mode]


def test_a_sweep_is_tracked_per_frequency_and_dwells_come_from_the_blocks():
    """Three hops visited in turn, 0.3 s each, 4 rounds; a voice link on the middle hop from round 2:
    one emission, timed over the watched time only (duty 1, one burst across the other hops' dwells)."""
    rng = np.random.default_rng(42)
    centers = [168.8e6, 169.0e6, 169.2e6]
    dwell = int(0.3 * FS)
    settings_ = Settings().resolved_for(FS, centers)
    learner = BaselineLearner(FS, settings_)
    idx = 0
    for _ in range(3):
        for c in centers:
            learner.push(Block(noise(dwell, rng), c, FS, idx))
            idx += dwell
    base = learner.finish()
    assert sorted(h.center_hz for h in base.hops) == centers
    chain = Chain(FS, base)
    events, idx = [], 0
    for r in range(4):
        for c in centers:
            x = noise(dwell, rng)
            if c == centers[1] and r >= 1:
                x = x + nbfm(dwell, FS, 20e3, snr_to_power(15, 11e3, FS), rng)
            for b in blocks_of(x, [7000], c, idx):
                events += chain.push(b)
            idx += dwell
    events += chain.close_all()
    closes = [ev for ev in events if ev.event == "close"]
    assert len(closes) == 1, [ev.emission for ev in closes]
    e = closes[0].emission
    assert e.hop_center_hz == centers[1] and e.center_hz == pytest.approx(centers[1] + 20e3, abs=2e3)
    assert e.bursts == 1 and e.duty == pytest.approx(1.0, abs=0.05)
    assert e.start_s == pytest.approx(4 * 0.3, abs=0.02)


def test_a_crowded_band_shows_only_the_new_transmitter():
    """150 emitters in one 2.4 MHz hop are in the baseline; one new transmitter keys up among them."""
    from sdrwatch.bench_chain import CENTER_HZ, CHANNEL_HZ, NEW_CHANNEL, RATE_HZ, crowded_scene
    from sdrwatch.radio.sim import SimSource

    kinds = ("cw", "cw", "cw", "cw", "fsk", "cw", "cw", "cw", "cw", "nbfm")
    base_scene, exam_scene = crowded_scene(150, kinds=kinds), crowded_scene(150, kinds=kinds, new_from_s=100.6)
    assert len(base_scene.emitters) == 150
    learner = BaselineLearner(RATE_HZ, Settings())
    with SimSource(base_scene, sample_rate_hz=RATE_HZ, center_hz=CENTER_HZ) as src:
        for _ in range(12):  # 1.3 s
            learner.push(src.read(1 << 18))
    chain = Chain(RATE_HZ, learner.finish(), classify=classify)
    events = []
    with SimSource(exam_scene, sample_rate_hz=RATE_HZ, center_hz=CENTER_HZ, start_s=100.0) as src:
        for _ in range(18):  # 2 s
            events += chain.push(src.read(1 << 18))
    events += chain.close_all()
    closes = [ev.emission for ev in events if ev.event == "close"]
    assert len(closes) == 1, [e.as_record() for e in closes]
    e = closes[0]
    assert e.center_hz == pytest.approx(CENTER_HZ + NEW_CHANNEL * CHANNEL_HZ, abs=2e3)
    assert e.novelty == "new" and e.label == "nbfm-voice"
    assert e.start_s == pytest.approx(0.6, abs=0.02)


def test_tracker_memory_stays_flat_over_a_long_crowded_run(monkeypatch):
    """Two minutes with emitters coming and going (a new frequency every second) and one on all the
    time: with the summary limits made small, what the tracker holds levels off instead of growing."""
    monkeypatch.setattr(T, "HIT_CAP", 16)  # every scale summarises within the first 40 s
    monkeypatch.setattr(T, "SAMPLE_CAP", 16)
    monkeypatch.setattr(T, "INTERVAL_CAP", 8)
    rng = np.random.default_rng(43)
    chain = Chain(FS, None, Settings(max_gap_s=2.0))
    sec = int(FS)
    held, open_counts = [], []
    t = np.arange(sec) / FS
    closes = []
    for s in range(120):
        x = noise(sec, rng) + np.sqrt(snr_to_power(20, 3e3, FS)) * np.exp(2j * np.pi * 90e3 * t).astype(np.complex64)
        off = -110e3 + 22e3 * (s % 8)  # a different frequency every second, reused after 8 s
        x += fsk_bursts(sec, FS, off, snr_to_power(15, 15e3, FS), rng, [0.1, 0.4, 0.7], length_s=0.05)
        for b in blocks_of(x.astype(np.complex64), [1 << 15], first_index=s * sec):
            closes += [ev for ev in chain.push(b) if ev.event == "close"]
        held.append(chain.tracker.held_objects())
        open_counts.append(len(chain.tracker.open_tracks))
    assert len(closes) >= 100  # the bursty ones closed and left
    assert max(open_counts[60:]) <= 8  # on for 1 s, then out of reach 2 s + the longest window later
    first, second = max(held[40:80]), max(held[80:])
    assert second <= 1.1 * first, (first, second)
    closes += [ev for ev in chain.close_all() if ev.event == "close"]
    carrier = [ev.emission for ev in closes if abs(ev.emission.center_hz - (CENTER + 90e3)) < 2e3]
    assert len(carrier) == 1 and carrier[0].bursts == 1 and carrier[0].end_s - carrier[0].start_s > 115


def test_a_track_holds_its_detections_compactly():
    """One detection per batch (a coarse scale's window per dwell): the track keeps about 40 bytes
    per detection, not an array header per column and batch (which grew a crowded agent 20 % in
    10 minutes), and the emission is the same as from one batch of them all."""
    import tracemalloc

    n = 1500
    t0 = np.arange(n) * 0.005
    cols = (t0, t0 + 0.005, np.full(n, 1e5), np.full(n, 3e3), np.full(n, -40.0), np.full(n, 20.0), np.full(n, 10.0))
    one = T.Tracker([0.005])
    one.add_batch(0, *cols, np.zeros(n, np.int64), 0.0, np.zeros(n, bool))
    tr = T.Tracker([0.005])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            tr.add_batch(0, *(c[i:i + 1] for c in cols), [0], 0.0, [False])
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(tr.open_tracks) == 1
    assert used < 100 * n, used
    assert tr.emission(tr.open_tracks[0]).as_record() == one.emission(one.open_tracks[0]).as_record()


def test_the_chain_refuses_a_block_at_another_rate():
    chain = Chain(FS)
    with pytest.raises(ValueError, match="S/s"):
        chain.push(Block(np.zeros(1000, np.complex64), CENTER, 2 * FS, 0))
