"""IQ evidence: SigMF with core:sha512 and annotations, verify naming the changed file, the re-dwell
budget and the disk budget."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch.agent.evidence import (EvidenceRecorder, EvidenceSettings, EvidenceStore, RedwellBudget, Segment,
                                     verify_evidence, write_evidence)
from sdrwatch.cli import main
from sdrwatch.dsp.tracker import Emission
from sdrwatch.errors import SdrwatchError
from sdrwatch.radio.file import open_recording
from sdrwatch.radio.sim.scene import Scene
from sdrwatch.replay import detect

FS = 1.024e6
HOP = 169.4e6
PAGER = {"kind": "gfsk", "label": "pager", "freq_hz": 169.2e6, "power_dbfs": -45.0, "threat": True,
         "bursts": {"period_s": 1.0, "length_s": 0.5, "offset_s": 0.2}}


def scene(*emitters, faults=()):
    return Scene.from_dict({"scene": {"seed": 5, "noise_dbfs_hz": -100.0}, "emitter": list(emitters), "fault": list(faults)})


def segments(sc, seconds=2.0, block=1 << 17, center=HOP):
    out, n = [], 0
    while n < seconds * FS:
        out.append(Segment(center, n, sc.render(center, FS, n, block)))
        n += block
    return out


def emission(start_s=0.2, end_s=0.7):
    return Emission(169.2e6, 12e3, start_s, end_s, -45, 20, 1.0, 1, "new", 0.005, HOP)


@pytest.fixture()
def evidence(tmp_path):
    segs = segments(scene(PAGER))
    return write_evidence(tmp_path / "school-rx0-abc", segs, FS, emission=emission(), alert_id="school-rx0-abc",
                          label="pager-fsk", severity=0.9, site="school", receiver="rx0")


def test_evidence_is_sigmf_with_hash_and_annotations(evidence):
    assert verify_evidence(evidence.meta_path) == []
    meta = json.loads(evidence.meta_path.read_text())
    assert meta["global"]["core:sha512"] == evidence.sha512 and len(evidence.sha512) == 128
    ann = meta["annotations"][0]
    assert ann["core:label"] == "pager-fsk" and ann["sdrwatch:alert_id"] == "school-rx0-abc"
    assert ann["core:freq_lower_edge"] == 169.2e6 - 6e3 and ann["core:freq_upper_edge"] == 169.2e6 + 6e3
    assert ann["core:sample_start"] == int(0.2 * FS) and ann["core:sample_count"] == int(0.7 * FS) - int(0.2 * FS)
    assert evidence.bytes == evidence.data_path.stat().st_size == 2 * int(np.ceil(2.0 * FS / (1 << 17))) * (1 << 17)


def test_replaying_the_evidence_finds_the_same_emission(evidence):
    found = detect(open_recording(evidence.meta_path))
    assert any(abs(e.center_hz - 169.2e6) < 3e3 and e.start_s < 0.25 for e in found), [(e.center_hz, e.start_s) for e in found]


@pytest.mark.parametrize("which", ["data", "meta"])
def test_one_changed_byte_fails_verify_naming_the_file(evidence, which):
    path = evidence.data_path if which == "data" else evidence.meta_path
    raw = bytearray(path.read_bytes())
    if which == "data":
        raw[len(raw) // 2] ^= 0x01
    else:
        i = raw.index(b'"core:sample_rate": ') + len(b'"core:sample_rate": ')
        raw[i] = ord("2") if raw[i] != ord("2") else ord("3")  # still valid JSON
    path.write_bytes(bytes(raw))
    problems = verify_evidence(evidence.meta_path)
    assert len(problems) == 1 and problems[0].startswith(str(path))
    res = CliRunner().invoke(main, ["verify", str(evidence.meta_path)])
    assert res.exit_code == 1 and str(path) in res.output


def test_verify_command_passes_a_good_file_and_reports_a_missing_one(evidence, tmp_path):
    res = CliRunner().invoke(main, ["verify", str(evidence.meta_path)])
    assert res.exit_code == 0 and "ok" in res.output
    evidence.data_path.unlink()
    assert verify_evidence(evidence.meta_path) == [f"{evidence.data_path}: missing"]
    bad = tmp_path / "junk.sigmf-meta"
    bad.write_text("{not json")
    assert verify_evidence(bad)[0].startswith(f"{bad}: metadata is damaged")


def test_redwell_budget_is_a_share_of_each_minute():
    now = [0.0]
    b = RedwellBudget(0.1, clock=lambda: now[0])
    granted = sum(b.allow(0.5) for _ in range(20))
    assert granted == 12  # 10 % of 60 s = 6 s = 12 re-dwells of 0.5 s
    now[0] = 30.0
    assert not b.allow(0.5)
    now[0] = 61.0
    assert b.allow(0.5)


def test_disk_budget_deletes_oldest_low_severity_first_never_open_or_high(tmp_path):
    store = EvidenceStore(tmp_path / "ev", budget_bytes=1)
    sc = scene(PAGER)
    segs = segments(sc, 0.2)
    for i, (aid, sev) in enumerate([("old-low", 0.2), ("new-low", 0.2), ("lower", 0.1), ("high", 0.9), ("open-low", 0.2)]):
        f = write_evidence(store.dir / aid, segs, FS, emission=emission(0.0, 0.1), alert_id=aid, label="x", severity=sev)
        store.add(f, aid, sev)
        store.files[aid].mtime = i
    store.open_alerts.add("open-low")
    gone, kept = store.enforce()
    assert gone == ["lower", "old-low", "new-low"] and not kept
    assert sorted(store.files) == ["high", "open-low"]
    assert (store.dir / "high.sigmf-data").exists() and not (store.dir / "lower.sigmf-data").exists()
    # a new store finds what is on disk
    assert sorted(EvidenceStore(tmp_path / "ev", 1e9).files) == ["high", "open-low"]


def test_bad_evidence_settings_are_one_line():
    with pytest.raises(SdrwatchError, match="budget_mb must be a number"):
        EvidenceSettings.from_config({"budget_mb": "lots"})
    with pytest.raises(SdrwatchError, match="unknown key 'budget'"):
        EvidenceSettings.from_config({"budget": 5})
    with pytest.raises(SdrwatchError, match="starve"):
        EvidenceSettings.from_config({"redwell_share": 0.9})


def test_recorder_keeps_pre_trigger_samples_asks_a_redwell_and_references_the_file(tmp_path):
    emitted = []
    cfg = SimpleNamespace(evidence={"pre_s": 0.3, "post_s": 0.4, "format": "cf32"}, declare=(), sessions=(), path="site.toml")
    rx = SimpleNamespace(name="rx0", site="school", config=cfg, state_dir=tmp_path, sample_rate_hz=FS, emit=emitted.append,
                         wall_time=lambda t: 1.8e9 + t)
    rec = EvidenceRecorder(rx)
    sc = scene(PAGER)
    segs = segments(sc, 1.0)
    for s in segs:  # a 1 s dwell
        rec.block(rx, SimpleNamespace(iq=s.iq, center_hz=HOP, sample_index=s.sample_index, timestamp=None), [])
    e = emission(0.7, 0.98)
    record = {"alert_id": "school-rx0-1", "event": "open", "severity": 0.9, "label": e.label}
    from sdrwatch.classify import classify

    classify(e)
    rec.alert(rx, record, SimpleNamespace(event="open", emission=e))
    assert record["label"] == "pager-fsk" and record["modulation"] == "fsk"
    assert "covered_by" not in record and "school-rx0-1" in rec.captures
    rec.dwell_end(rx, SimpleNamespace(center_hz=HOP))  # not enough after the trigger: a re-dwell is asked
    assert rec.redwell(rx) == [(HOP, 0.5)]
    n = len(segs) * (1 << 17) + 300_000  # other hops were swept meanwhile
    for s in segments(sc, 0.5):  # the re-dwell
        rec.block(rx, SimpleNamespace(iq=s.iq, center_hz=HOP, sample_index=n + s.sample_index, timestamp=None), [])
    refs = [r for r in emitted if r["type"] == "evidence"]
    assert len(refs) == 1 and verify_evidence(refs[0]["path"]) == []
    meta = json.loads(Path(refs[0]["path"]).read_text())
    assert len(meta["captures"]) == 2  # the pre-trigger dwell and the re-dwell
    assert meta["captures"][0]["sdrwatch:sample_index"] <= int((0.7 - 0.3) * FS)  # pre-trigger samples kept
    update = {"alert_id": "school-rx0-1", "event": "update", "severity": 0.9, "label": e.label}
    rec.alert(rx, update, SimpleNamespace(event="update", emission=e))
    assert update["evidence"]["sha512"] == refs[0]["sha512"]


def test_recorder_marks_covered_emissions_and_keeps_no_evidence_for_them(tmp_path):
    cfg = SimpleNamespace(evidence={}, declare=(), sessions=(), path="site.toml")
    rx = SimpleNamespace(name="rx0", site="school", config=cfg, state_dir=tmp_path, sample_rate_hz=FS, emit=lambda r: None,
                         wall_time=lambda t: t)
    rec = EvidenceRecorder(rx)
    from sdrwatch.classify import classify

    e = classify(Emission(409.7625e6, 9e3, 0.0, 2.0, -50, 15, 1.0, 1, "new", 0.005, 409.9e6, open_ended=True))
    record = {"alert_id": "a-1", "event": "open", "severity": 0.2, "label": e.label}
    rec.alert(rx, record, SimpleNamespace(event="open", emission=e))
    assert record["covered_by"] == "bandplan:public-walkie-talkie" and not rec.captures
