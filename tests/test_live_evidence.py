"""Live over rtl_tcp: an alert's evidence file is written, referenced, verifies, and replaying it
finds the same emission."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from sdrwatch.agent.config import site_config_toml
from sdrwatch.agent.evidence import verify_evidence
from sdrwatch.radio.file import open_recording
from sdrwatch.replay import detect
from test_live_health import Run

SCENE = """
[scene]
name = "live-evidence"
seed = 12
noise_dbfs_hz = -100.0
[[emitter]]
kind = "gfsk"
label = "cheat-pager"
freq_hz = 169.2e6
power_dbfs = -40.0
threat = true
bursts = { period_s = 2.0, length_s = 1.0, offset_s = 1.0 }
"""


def site(tmp: Path, uri: str) -> Path:
    cfg = tmp / "site.toml"
    cfg.write_text(site_config_toml("school-ev", uri, [("pager", 169.0e6, 169.7e6, True)], sample_rate_hz=1.024e6,
                                    timezone="Asia/Shanghai", sweep={"dwell_s": 0.3, "priority_revisit_s": 1.0, "background": "none"},
                                    evidence={"budget_mb": 50}))
    return cfg


@pytest.mark.timeout(150)
def test_alert_evidence_verifies_and_replays_to_the_same_emission(tmp_path, sim_server):
    run = Run(site(tmp_path, sim_server(SCENE).uri), 60)
    try:
        end = time.monotonic() + 60
        ref = None
        while time.monotonic() < end and ref is None:
            ref = next((r for _, r in run.records if r.get("type") == "evidence"), None)
            time.sleep(0.2)
        assert ref is not None, [r for _, r in run.records][-10:]
        alert = next(r for _, r in run.records if r.get("type") == "alert" and r["alert_id"] == ref["alert_id"])
        assert abs(alert["center_hz"] - 169.2e6) < 5e3
        assert verify_evidence(ref["path"]) == []
        found = detect(open_recording(ref["path"]))
        assert any(abs(e.center_hz - alert["center_hz"]) < 5e3 for e in found), [(e.center_hz, e.label) for e in found]
        # the alert's later events carry the same reference (waited for up to 3 s)
        end = time.monotonic() + 3
        while True:
            later = [r for _, r in list(run.records) if r.get("type") == "alert" and r["alert_id"] == ref["alert_id"] and "evidence" in r]
            if later or time.monotonic() > end:
                break
            time.sleep(0.1)
        assert not later or later[0]["evidence"]["sha512"] == ref["sha512"]
    finally:
        run.stop()
