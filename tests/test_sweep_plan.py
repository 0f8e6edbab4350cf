"""Sweep plans (hops, passes, revisits, POI against a Monte Carlo run of the plan's timing, refusals)
and the exam schedule (sessions, severity weight)."""
import datetime as dt
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sdrwatch.agent.config import BandConfig, load_config
from sdrwatch.dsp.spectrum import kept_bins
from sdrwatch.errors import PlanError
from sdrwatch.sweep.plan import POI_BURSTS_S, REPEAT_EVERY_S, build_plan, simulate_intercepts
from sdrwatch.sweep.schedule import EVE_WEIGHT, EXAM_DAY_WEIGHT, OUTSIDE_WEIGHT, ExamSchedule

REPO = Path(__file__).resolve().parents[1]
EX = REPO / "examples"


def cfg(name="rtl_tcp-site.toml"):
    return load_config(EX / name)


def with_bands(c, bands, **sweep):
    return replace(c, bands=tuple(bands), sweep=replace(c.sweep, **sweep))


def test_hops_tile_each_band_with_the_kept_span():
    c = cfg()
    p = build_plan(c)
    r = p.receivers[0]
    assert p.step_hz == pytest.approx(1.8e6) and r.crop == pytest.approx(0.25)
    keep = kept_bins(1024, r.crop)
    assert (keep.stop - keep.start) * 2.4e6 / 1024 == pytest.approx(p.step_hz)
    for b in c.bands:
        hops = [h for h in r.priority if b.name in h.bands]
        assert hops and min(h.start_hz for h in hops) <= b.start_hz + 1 and max(h.stop_hz for h in hops) >= b.stop_hz - 1
        spans = sorted((h.start_hz, h.stop_hz) for h in hops)
        assert all(abs(a[1] - b_[0]) < 1 for a, b_ in zip(spans, spans[1:]))  # contiguous, no overlap
    # the background sweeps the rest of the tuner's range, outside the priority hops
    assert len(r.background) > 900
    prio = [(h.start_hz, h.stop_hz) for h in r.priority]
    for h in r.background:
        assert all(h.stop_hz <= lo + 1 or h.start_hz >= hi - 1 for lo, hi in prio)
    assert min(h.start_hz for h in r.background) == pytest.approx(24e6) and max(h.stop_hz for h in r.background) == pytest.approx(1766e6)


def test_passes_revisit_priority_within_the_target_and_walk_the_background():
    c = cfg()
    p = build_plan(c)
    r = p.receivers[0]
    assert r.pass_s <= c.sweep.priority_revisit_s
    tl = r.timeline(50)
    for h in r.priority:
        starts = np.array([a for a, _b, x in tl if x == h])
        assert np.allclose(np.diff(starts), r.pass_s)
    seen = {x.center_hz for _a, _b, x in tl if x.tier == "background"}
    assert len(seen) == min(len(r.background), 50 * r.background_per_pass)
    # the pass fills the target: one more background hop would not fit
    assert r.pass_s + r.retune_s + c.sweep.background_dwell_s > c.sweep.priority_revisit_s


def test_several_receivers_share_one_plan():
    c = cfg("four-dongles.toml")
    p = build_plan(c)
    assert len(p.receivers) == 4
    centers = [h.center_hz for r in p.receivers for h in r.priority + r.background]
    assert len(centers) == len(set(centers))
    one = build_plan(replace(c, receivers=c.receivers[:1], sweep=replace(c.sweep, priority_revisit_s=3.0)))
    assert sorted(centers) == pytest.approx(sorted(h.center_hz for r in one.receivers for h in r.priority + r.background))
    loads = [len(r.priority) for r in p.receivers]
    assert max(loads) - min(loads) <= 1
    assert max(r.pass_s for r in p.receivers) <= c.sweep.priority_revisit_s


@pytest.mark.parametrize("bands,sweep,fragment", [
    ([BandConfig("wifi", 2400e6, 2483.5e6, True)], {}, "band 'wifi' 2400-2483.5 MHz is outside the tuning range of every receiver"),
    ([BandConfig("too-many", 100e6, 200e6, True)], {}, "more than priority_revisit_s = 3 s"),
    ([BandConfig("full", 150e6, 193e6, True)], {}, "no time left for the background sweep"),
])
def test_impossible_plans_are_refused_in_one_line(bands, sweep, fragment):
    with pytest.raises(PlanError) as info:
        build_plan(with_bands(cfg(), bands, **sweep))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_tuning_gap_is_refused():
    c = cfg()
    c = replace(c, receivers=(replace(c.receivers[0], tuner="e4000"),), bands=(BandConfig("gap", 1100e6, 1200e6, False),))
    with pytest.raises(PlanError, match="tuning gap"):
        build_plan(c)


def test_textbook_poi_for_one_visit_per_pass():
    c = with_bands(cfg(), [BandConfig("ten", 169e6, 187e6, True)], background="none", priority_revisit_s=3.0)
    p = build_plan(c)
    r = p.receivers[0]
    assert len(r.priority) == 10 and not r.background
    T, d, m = r.pass_s, c.sweep.dwell_s, c.sweep.min_overlap_s
    for L in POI_BURSTS_S:
        assert p.poi(169e6, 187e6, L) == pytest.approx(min(1.0, (L + d - 2 * m) / T))
    # a pass of 1.24 s and bursts every 10 s: successive bursts fall at other phases of the pass
    once = p.poi(169e6, 187e6, 0.05)
    assert 1 - (1 - once) ** 6 - 0.1 < p.poi(169e6, 187e6, 0.05, REPEAT_EVERY_S) <= 1.0


@pytest.mark.parametrize("name", ["rtl_tcp-site.toml", "four-dongles.toml", "sim-site.toml"])
def test_poi_table_matches_a_simulated_run_of_the_plan(name):
    """The planner's POI (interval arithmetic) against bursts dropped at random times and frequencies
    on the dwell timeline of the plan (Monte Carlo): within 3 percentage points."""
    c = cfg(name)
    p = build_plan(c)
    timeline = []
    for r in p.receivers:
        passes = int(np.ceil(400.0 / r.pass_s))
        timeline += [(a, b, h.start_hz, h.stop_hz) for a, b, h in r.timeline(passes)]
    prio = [b for b in c.bands if b.priority][:2]
    for b in prio:
        for L in POI_BURSTS_S:
            planned = p.poi(b.start_hz, b.stop_hz, L)
            measured = simulate_intercepts(timeline, b.start_hz, b.stop_hz, L, c.sweep.min_overlap_s, trials=4000)
            assert measured == pytest.approx(planned, abs=0.03), (b.name, L)
        for L in (0.05, 0.5):
            planned = p.poi(b.start_hz, b.stop_hz, L, REPEAT_EVERY_S)
            measured = simulate_intercepts(timeline, b.start_hz, b.stop_hz, L, c.sweep.min_overlap_s, trials=4000,
                                           repeat_every_s=REPEAT_EVERY_S)
            assert measured == pytest.approx(planned, abs=0.03), (b.name, L, "repeated")


def test_plan_command_prints_hops_revisits_and_poi(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-c", "from sdrwatch.cli import main; main()", "plan", *a],  # noqa: E731
                                    capture_output=True, text=True)
    r = run("--config", str(EX / "sim-site.toml"))
    assert r.returncode == 0, r.stderr
    for text in ("169.4000", "pager-169", "revisit", "L=0.05 s", "L=5 s", "repeated every 10 s"):
        assert text in r.stdout, text
    r = run("--config", str(EX / "sim-site.toml"), "--json")
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert recs[0]["type"] == "plan" and {x["type"] for x in recs} == {"plan", "hop", "band"}
    band = next(x for x in recs if x["type"] == "band" and x["name"] == "pager-169")
    assert len(band["poi_once"]) == len(POI_BURSTS_S) and band["poi_once"] == sorted(band["poi_once"])
    bad = tmp_path / "bad.toml"
    bad.write_text((EX / "sim-site.toml").read_text().replace("stop_hz = 434.8e6", "stop_hz = 434.8e6\n\n[[band]]\nname = \"bt\"\n"
                                                                  "start_hz = 2.4e9\nstop_hz = 2.48e9"))
    r = run("--config", str(bad))
    assert r.returncode == 1 and r.stderr.startswith("error: band 'bt'") and r.stderr.count("\n") == 1, r.stderr


# ------------------------------------------------------------------------------------------- schedule
def test_schedule_sessions_and_weights():
    c = cfg()
    s = ExamSchedule.from_config(c)
    tz = c.tz
    at = lambda *a: dt.datetime(*a, tzinfo=tz)  # noqa: E731
    assert s.session_at(at(2027, 6, 7, 9, 0)).name == "chinese"
    assert s.session_at(at(2027, 6, 7, 11, 30)) is None  # the end is outside
    assert s.session_at(at(2027, 6, 8, 16, 0)).name == "foreign-language"
    w = [s.weight_at(at(2027, 6, 7, 9, 0) + dt.timedelta(minutes=m)) for m in range(0, 150, 10)]
    assert w[0] == pytest.approx(0.7) and all(b > a for a, b in zip(w, w[1:])) and w[-1] < 1.0
    assert s.weight_at(at(2027, 6, 7, 11, 29, 59)) == pytest.approx(1.0, abs=1e-3)
    assert s.moment(at(2027, 6, 7, 13, 0)).phase == "exam-day" and s.weight_at(at(2027, 6, 7, 13, 0)) == EXAM_DAY_WEIGHT
    assert s.moment(at(2027, 6, 6, 16, 0)).phase == "eve" and s.weight_at(at(2027, 6, 6, 16, 0)) == EVE_WEIGHT
    assert s.moment(at(2027, 6, 5, 16, 0)).phase == "outside" and s.weight_at(at(2027, 6, 5, 16, 0)) == OUTSIDE_WEIGHT
    # June 8 is an exam day, so it is not an "eve" although June 9... is not either
    assert s.moment(at(2027, 6, 8, 8, 0)).phase == "exam-day"
    assert s.severity(0.9, at(2027, 6, 7, 11, 29, 59)) == pytest.approx(0.9, abs=1e-3)
    assert s.severity(0.9, at(2027, 6, 5, 12, 0)) == pytest.approx(0.27)
    # unix seconds work as well as datetimes; the eve is by site time (UTC+8), not UTC
    t = at(2027, 6, 6, 23, 30).timestamp()
    assert s.moment(t).phase == "eve"
    assert s.as_records()[0] == {"name": "chinese", "start": "2027-06-07T01:00:00Z", "end": "2027-06-07T03:30:00Z"}


def test_a_whole_tuner_baseline_capture_keeps_a_bounded_share_of_frames_per_hop():
    """The learner's default (4000 frames a hop) over ~960 background hops would hold 12 GB: a capture
    gives priority hops the default and the background what is left of CAPTURE_KEEP_MB."""
    from sdrwatch.agent.loop import CAPTURE_KEEP_MB, CAPTURE_MIN_FRAMES, capture_keep_frames
    from sdrwatch.dsp.chain import BaselineLearner, Settings
    from sdrwatch.radio.base import Block

    r = build_plan(cfg()).receivers[0]
    frame_bytes = 4 * 768
    keep = capture_keep_frames(r, frame_bytes)
    assert all(keep[round(h.center_hz)] == 4000 for h in r.priority)
    bg = {keep[round(h.center_hz)] for h in r.background}
    assert len(bg) == 1 and CAPTURE_MIN_FRAMES <= bg.pop() < 100
    assert sum(keep.values()) * frame_bytes <= CAPTURE_KEEP_MB * 2**20
    # a small plan keeps the default everywhere; the learner gives each hop its own limit
    small = replace(r, background=r.background[:3])
    assert set(capture_keep_frames(small, frame_bytes).values()) == {4000}
    learner = BaselineLearner(2.4e6, Settings(), max_frames_for={round(101e6): 7})
    for c in (100e6, 101e6):
        learner.push(Block(np.zeros(120000, np.complex64), c, 2.4e6, 0 if c == 100e6 else 120000))
    assert learner._builders[round(101e6)].max_frames == 7 and learner._builders[round(100e6)].max_frames == 4000
    assert len(learner._builders[round(101e6)]._keep) == 7
