"""``sdrwatch bench``: every measurement is present with its unit and a finite value; theory matches §3.2."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch import bench
from sdrwatch.cli import main

EXPECTED = {
    "psd_sdrwatch": "Msps",
    "psd_reference": "Msps",
    "psd_vs_reference": "x",
    "psd_scipy_welch": "Msps",
    "psd_vs_welch": "x",
    "psd_fftw": "Msps",
    "psd_fftw_vs_reference": "x",
    "psd_fftw_2_workers": "Msps",
    "startup_help": "s",
    "startup_replay_0.1s": "s",
    "process_replay_noise_floor": "x real time",
    "process_replay_baseline": "x real time",
    "process_reference_spectrum": "x real time",
    "sweep_replay_baseline": "x real time",
    "sweep_replay_noise_floor": "x real time",
    "replay_baseline": "x real time",
    "replay_noise_floor": "x real time",
    "baseline_learn": "x real time",
    "large_replay_peak_rss": "MB",
    "large_replay": "x real time",
    "sensitivity_nbfm": "dB",
    "sensitivity_gfsk_burst": "dB",
    "sim_render": "Msps",
    "false_alarms_baseline": "emissions",
    "false_alarms_noise_floor": "emissions",
}
#: may be skipped (no simulator benchmark; not enough disk for the large file)
OPTIONAL = {"sim_render", "large_replay_peak_rss", "large_replay", "psd_fftw", "psd_fftw_vs_reference", "psd_fftw_2_workers"}
#: measurements the chain's and the agent's benchmark modules add, when present
EXTRA_PREFIXES = ("crowded_", "agent")


def test_quick_json_lines():
    # every stage but the chain's and the agent's own benchmarks (the agent's run in real time)
    stages = ",".join(s for s in bench.STAGES if s not in bench.STAGE_GROUPS["modules"])
    result = CliRunner().invoke(main, ["bench", "--quick", "--json", "--large-mb", "64", "--only", stages],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    by_name = {r["name"]: r for r in records}
    assert set(EXPECTED) <= set(by_name), sorted(set(EXPECTED) - set(by_name))
    assert all(n.startswith(EXTRA_PREFIXES) for n in set(by_name) - set(EXPECTED)), sorted(set(by_name) - set(EXPECTED))
    # the reference computes the same frames as the engine, within float32 rounding
    assert by_name["psd_reference"]["max_relative_difference"] < 1e-4
    # whole process: the replays and the spectrum-only reference, interleaved, with their ratio
    ref = by_name["process_reference_spectrum"]["value"]
    for name in ("process_replay_noise_floor", "process_replay_baseline"):
        assert by_name[name]["vs_reference"] == pytest.approx(by_name[name]["value"] / ref, rel=2e-2)
    assert by_name["psd_vs_reference"]["value"] == pytest.approx(
        by_name["psd_sdrwatch"]["value"] / by_name["psd_reference"]["value"], rel=1e-2)
    for name, unit in EXPECTED.items():
        r = by_name[name]
        assert r["unit"] == unit
        if r["value"] is None:
            assert name in OPTIONAL and r["skipped"], r
            continue
        assert math.isfinite(r["value"])
        if unit == "emissions":
            assert r["value"] >= 0 and r["seconds"] > 0, r
        elif unit != "dB":
            assert r["value"] > 0, r
    if by_name["large_replay_peak_rss"]["value"] is not None:
        assert by_name["large_replay_peak_rss"]["file_mb"] == 64
    for name in ("sensitivity_nbfm", "sensitivity_gfsk_burst"):
        r = by_name[name]
        for key in ("theory_bin_snr_db", "theory_inband_snr_db", "peak_bin_offset_db", "k_eff"):
            assert math.isfinite(r[key]), (name, key)
    # the continuous channel integrates over the longest window, the burst over the shortest
    assert by_name["sensitivity_nbfm"]["scale_frames"] == 400
    assert by_name["sensitivity_gfsk_burst"]["scale_frames"] == 1


@pytest.mark.parametrize("k, snr_db", [(16, 3.8), (32, 1.8), (64, -0.1)])
def test_theory_matches_worked_numbers(k, snr_db):
    """Steady-carrier SNR for Pd = 0.9 at pfa 1e-6 (research §3.2 table)."""
    assert bench.theory_bin_snr_db(k, 1e-6) == pytest.approx(snr_db, abs=0.06)


def test_nbfm_track_is_unit_power_and_block_independent():
    track = bench.NBFMTrack(np.random.default_rng(3), 500_000, 2.4e6, 123e3)
    whole = track.render(0, 500_000)
    parts = np.concatenate([track.render(0, 77_777), track.render(77_777, 422_223)])
    np.testing.assert_array_equal(whole, parts)
    assert np.mean(np.abs(whole) ** 2) == pytest.approx(1.0, abs=0.01)


def test_table_output(monkeypatch):
    canned = [
        bench.Measurement("psd_sdrwatch", 71.2, "Msps", ">= 60", True, "WelchFrames"),
        bench.Measurement("sensitivity_nbfm", -13.0, "dB", None, None, "NBFM"),
        bench.Measurement("sim_render", None, "Msps", None, None, "skipped: none", skipped="none"),
    ]
    monkeypatch.setattr(bench, "run", lambda **kw: canned)
    result = CliRunner().invoke(main, ["bench"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "psd_sdrwatch" in result.stdout and "71.2" in result.stdout and "-13" in result.stdout


def test_only_runs_the_stages_asked_for():
    result = CliRunner().invoke(main, ["bench", "--quick", "--json", "--only", "psd"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = [json.loads(ln)["name"] for ln in result.stdout.splitlines() if ln.strip()]
    assert names and all(n.startswith("psd_") for n in names), names
    result = CliRunner().invoke(main, ["bench", "--only", "psd,nosuch"])
    assert result.exit_code == 1 and result.output.startswith("error: unknown bench stage 'nosuch'"), result.output
    # the chain's and the agent's benchmarks are stages of their own, and "modules" names both
    assert "chain, agent, modules)" in result.output, result.output


def test_the_crowded_band_stage_gives_its_figures():
    """``--only chain``: one figure per emitter count and mode, with the emissions found (it once
    printed nothing: the names it read were not the ones the chain's benchmark writes)."""
    result = CliRunner().invoke(main, ["bench", "--quick", "--json", "--only", "chain"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    by_name = {r["name"]: r for r in map(json.loads, filter(str.strip, result.stdout.splitlines()))}
    assert set(by_name) == {f"crowded_{n}_{m}" for n in (0, 50) for m in ("noise_floor", "baseline")}
    for r in by_name.values():
        assert r["unit"] == "x real time" and math.isfinite(r["value"]) and r["value"] > 0 and r["x_by_wall"] > 0
    assert by_name["crowded_50_baseline"]["emissions"] >= 1  # the new transmitter among 50 known ones
