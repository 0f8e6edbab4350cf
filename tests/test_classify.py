"""Classes as data (threats and benign emitters), the explicit registry, and IQ modulation features."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from sdrwatch.classify import class_named, classify, load_classes, profiles_dir
from sdrwatch.classify.confusion import REAL_CASES, find_realdata, real_rows, sim_rows
from sdrwatch.dsp.features import extract
from sdrwatch.dsp.tracker import Emission
from sdrwatch.errors import SdrwatchError

FS = 1e6
RNG = np.random.default_rng(7)
REAL = find_realdata(Path(__file__))
DEMO = Path(__file__).resolve().parents[1] / "recordings" / "scenes" / "demo.toml"


def noise(n, dbfs_hz=-100.0, fs=FS, rng=RNG):
    sigma = np.sqrt(10 ** (dbfs_hz / 10) * fs / 2)
    return (rng.normal(0, sigma, n) + 1j * rng.normal(0, sigma, n)).astype(np.complex64)


def fm(freq_dev_hz, fs=FS):
    return np.exp(2j * np.pi * np.cumsum(freq_dev_hz) / fs).astype(np.complex64)


def em(f_hz, bw=11e3, start=1.0, end=4.0, duty=1.0, bursts=1, novelty="new", open_ended=False):
    return Emission(f_hz, bw, start, end, -50, 15, duty, bursts, novelty, 0.005, f_hz, open_ended=open_ended)


# ---------------------------------------------------------------------------------------- features
def test_fsk_shows_two_peaks_at_its_shift():
    bits = np.repeat(RNG.integers(0, 2, 300), 833)  # 1200 bd
    iq = fm(np.where(bits, 4.5e3, -4.5e3)) * 0.1 + noise(len(bits))
    f = extract(iq, FS, offset_hz=0.0, bandwidth_hz=12e3)
    assert f.modulation == "fsk" and abs(f.fsk_shift_hz - 9e3) < 1.5e3 and f.fsk_dip < 0.5


def test_ook_envelope_is_on_off_keyed():
    chips = np.repeat(RNG.integers(0, 2, 400), 464)  # 464 us chips, a remote's code
    iq = (np.exp(2j * np.pi * 2e3 * np.arange(len(chips)) / FS) * chips * 0.1).astype(np.complex64) + noise(len(chips))
    f = extract(iq, FS, offset_hz=2e3, bandwidth_hz=10e3)
    assert f.modulation == "ook" and f.on_runs >= 20


def test_fsk_is_not_ook_even_when_its_bandwidth_was_under_estimated():
    bits = np.repeat(RNG.integers(0, 2, 300), 500)
    iq = fm(np.where(bits, 20e3, -20e3)) * 0.1 + noise(len(bits))
    f = extract(iq, FS, offset_hz=0.0, bandwidth_hz=25e3)  # one tone's width, not both
    assert f.modulation != "ook"


def test_fm_voice_is_one_broad_hump():
    audio = np.convolve(RNG.normal(0, 1, 400_000), np.ones(200) / 200, mode="same")  # ~2.5 kHz lowpassed noise
    iq = fm(audio / audio.std() * 1.5e3) * 0.1 + noise(len(audio))
    f = extract(iq, FS, offset_hz=0.0, bandwidth_hz=11e3)
    assert f.modulation == "fm" and f.freq_spread_hz > 500 and f.chirp_score < 0.3


def test_lora_upchirps_score_as_chirps():
    bw, sf = 125e3, 7
    t_sym = 2 ** sf / bw
    t = np.arange(int(20 * t_sym * FS)) / FS
    inst = (bw * ((t / t_sym) % 1.0)) - bw / 2
    iq = fm(inst) * 0.1 + noise(len(t))
    f = extract(iq, FS, offset_hz=0.0, bandwidth_hz=bw)
    assert f.modulation == "chirp" and f.chirp_score > 0.5


def test_carrier_is_cw_and_noise_is_unknown():
    n = 200_000
    iq = (0.05 * np.exp(2j * np.pi * 3e3 * np.arange(n) / FS)).astype(np.complex64) + noise(n)
    assert extract(iq, FS, offset_hz=3e3, bandwidth_hz=4e3).modulation == "cw"
    assert extract(noise(n), FS, offset_hz=3e3, bandwidth_hz=10e3).modulation == "unknown"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 5000), st.floats(-4e5, 4e5), st.one_of(st.floats(-10, 1e6), st.sampled_from([float("nan"), float("inf"), 0.0])), st.integers(0, 2**32 - 1))
def test_features_never_fail_on_any_input(n, offset_hz, bandwidth_hz, seed):
    rng = np.random.default_rng(seed)
    iq = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64) * rng.choice([0.0, 1e-6, 1.0])
    f = extract(iq, FS, offset_hz=offset_hz, bandwidth_hz=bandwidth_hz)
    assert f.modulation in ("ook", "fsk", "fm", "chirp", "cw", "unknown")
    assert all(np.isfinite(v) for v in f.as_dict().values() if isinstance(v, float))


# ---------------------------------------------------------------------------------------- registry
def _copy_profiles(tmp_path):
    d = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), d)
    return d


def test_registry_lists_benign_and_threat_classes():
    classes = load_classes()
    names = {p.name for p in classes}
    assert {"ism-remote", "wmbus-meter", "enocean", "lora-meter", "adsb", "pocsag-paging", "broadcast-fm", "dtmb-tv"} <= names
    assert {"phone-relay", "cellular-uplink", "nbfm-voice", "pager-fsk"} <= names
    assert not class_named("ism-remote").threat and class_named("phone-relay").threat


def test_empty_registry_is_an_error(tmp_path):
    d = _copy_profiles(tmp_path)
    for sub in ("threats", "benign"):
        shutil.rmtree(d / sub)
    (d / "classes.toml").write_text("threats = []\nbenign = []\n")
    with pytest.raises(SdrwatchError, match="no threat profiles in"):
        load_classes(str(d))


def test_an_unregistered_file_and_a_missing_file_are_errors(tmp_path):
    d = _copy_profiles(tmp_path)
    shutil.copy(d / "benign" / "adsb.toml", d / "benign" / "stray.toml")
    (d / "benign" / "stray.toml").write_text((d / "benign" / "stray.toml").read_text().replace('"adsb"', '"stray"'))
    with pytest.raises(SdrwatchError, match="stray.toml: not in the registry"):
        load_classes(str(d))
    (d / "benign" / "stray.toml").unlink()
    (d / "benign" / "adsb.toml").unlink()
    with pytest.raises(SdrwatchError, match="'adsb' is registered but"):
        load_classes(str(d))


@pytest.mark.parametrize("text,why", [
    ('name = "adsb"\nbands_hz = [[1, 2]]\nbandwidth_hz = [1, 2]\n', "bad class profile"),
    ('name = "adsb"\nbands_hz = [[1, 2]]\nbandwidth_hz = [1, 2]\nseverity = 2.0\n', "not in 0..1"),
    ('name = "adsb"\nbands_hz = [[2, 1]]\nbandwidth_hz = [1, 2]\nseverity = 0.1\n', "ranges"),
    ('name = "adsb"\nbands_hz = [[1, 2]]\nbandwidth_hz = [1, 2]\nseverity = 0.1\nmodulation = ["qam"]\n', "modulation 'qam'"),
    ('name = "other"\nbands_hz = [[1, 2]]\nbandwidth_hz = [1, 2]\nseverity = 0.1\n', "does not match"),
    ('name = = "adsb"', "bad class profile"),
])
def test_a_bad_profile_is_one_line_naming_the_file(tmp_path, text, why):
    d = _copy_profiles(tmp_path)
    (d / "benign" / "adsb.toml").write_text(text)
    with pytest.raises(SdrwatchError, match=why) as exc:
        load_classes(str(d))
    assert "adsb.toml" in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------- labels
def test_public_walkie_talkie_channel_is_labelled_benign():
    e = classify(em(409.7625e6, start=1.0, end=3.0, open_ended=True))
    assert e.label == "walkie-public" and e.severity < 0.5 and e.reasons[0].startswith("walkie-public/fit")


def test_reason_codes_name_the_class_and_the_check():
    e = classify(em(169.2e6, bw=500e3))
    assert any(r.startswith("pager-fsk/bandwidth:") for r in e.reasons)
    assert any(r.startswith("broadcast-fm/band:") for r in e.reasons)


def test_features_decide_between_a_remote_and_a_pager_in_the_same_box():
    from sdrwatch.dsp.features import Features

    ook = Features("ook", 30, 40, 0.001, 0, 1, 500, 0.1, 0, 5e4)
    fsk = Features("fsk", 30, 2, 0.3, 9e3, 0.2, 4e3, 0.5, 0, 5e4)
    remote = em(433.92e6, bw=12e3, start=0.0, end=1.2, duty=0.7, bursts=10)
    assert classify(remote, features=ook).label == "ism-remote"
    pager = em(169.2e6, bw=12e3, start=0.0, end=2.0)  # one 2 s burst: looks continuous by timing alone
    assert classify(pager).label == "nbfm-voice"
    assert classify(pager, features=fsk).label == "pager-fsk"


def test_a_433_mhz_link_that_keeps_going_is_a_threat():
    e = classify(em(433.92e6, bw=12e3, start=0.0, end=30.0, duty=0.3, bursts=20))
    assert e.label == "ism-lora" and class_named(e.label).threat


@pytest.mark.skipif(REAL is None, reason="shared/realdata is not present")
def test_real_captures_get_their_benign_classes():
    rows = {r.case: r for r in real_rows(REAL)}
    assert len(rows) == len(REAL_CASES)
    assert rows["urh-elektromaten_433.92M_1000k.cs8"].label == "ism-remote"  # was pager-fsk
    assert rows["urh-enocean_868.3M_1000k.cf32"].label == "enocean"  # was data-radio
    assert rows["dump1090-adsb_1090M_2000k.cu8"].label == "adsb"
    # no benign real capture holds any emission labelled as a threat with severity >= 0.5
    assert all(r.worst_threat_severity < 0.5 for r in rows.values()), [(r.case, r.worst_threat_severity) for r in rows.values()]
    assert sum(r.correct for r in rows.values()) >= 8


def test_simulated_gfsk_pager_is_a_pager_not_a_voice_link():
    rows = sim_rows(DEMO, only=("cheat-pager-169.2", "gate-remote-433.92", "public-walkie-409.7625"))
    got = {r.case.split(" ")[0]: (r.label, r.covered_by) for r in rows}
    assert got == {"cheat-pager-169.2": ("pager-fsk", "-"), "gate-remote-433.92": ("ism-remote", "bandplan:srd-315-433"),
                   "public-walkie-409.7625": ("walkie-public", "bandplan:public-walkie-talkie")}


def test_confusion_command_prints_a_markdown_table(tmp_path):
    from sdrwatch.cli import main

    empty = tmp_path / "none"
    empty.mkdir()
    res = CliRunner().invoke(main, ["confusion", "--markdown", "--realdata", str(empty), "--only", "gate-remote-433.92"])
    assert res.exit_code == 0, res.output
    assert "| sim | gate-remote-433.92 (ook) | ism-remote | ism-remote | 0.06 | ook | bandplan:srd-315-433 |" in res.output
    assert "1/1 labelled as their class" in res.output


def test_confusion_refuses_a_bad_scene_in_one_line(tmp_path):
    from sdrwatch.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[scene\n")
    res = CliRunner().invoke(main, ["confusion", "--scene", str(bad), "--realdata", str(tmp_path)])
    assert res.exit_code == 1 and res.output.startswith("error: ") and res.output.count("\n") == 1
