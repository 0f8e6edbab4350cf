"""`sdrwatch demo` end to end, headless: three simulated sites, their agents, the collector over
ZeroMQ+CURVE, then the report and the sealed archive. Long (about a minute and a quarter): marked slow.
55 s of station time hold every event asserted: the cheater's pager keys up about 20 s in, school-03's
antenna comes off about 40 s in, and the gate remotes the band plan covers key every 20 s."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sdrwatch.views import seal


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_demo_headless_ends_with_the_cheater_the_antenna_fault_a_report_and_a_seal(tmp_path):
    work = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-c", "from sdrwatch.cli import main; main()", "demo", "--duration", "55", "--work", str(work)],
                          capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "\x1b[" not in out  # log lines, not a terminal UI
    assert " ALERT open school-12/rx0 169.2" in out  # the console's live line for the cheater's pager
    con = sqlite3.connect(work / "collector.db")
    alerts = con.execute("select site, center_hz, label, severity, session, state from alerts").fetchall()
    pager = [a for a in alerts if a[0] == "school-12" and abs(a[1] - 169.2e6) < 20e3]
    assert pager and pager[0][4].startswith("demo-") and pager[0][3] >= 0.4, alerts
    # the gate remotes the band plan covers are logged, not alerted, in the log lines and the summary
    covered = {aid for aid, rec in con.execute("select alert_id, record from alerts") if json.loads(rec).get("covered_by")}
    assert covered, alerts
    lines = out.splitlines()
    assert not [line for line in lines if " ALERT " in line and any(f" id {aid}" in line for aid in covered)]
    assert any(" LOGGED open " in line and line.endswith("covered by bandplan:srd-315-433") for line in lines), out[-3000:]
    assert f"; {len(covered)} emission(s) logged, covered by the band plan or a declared emitter" in out
    no_baselines = "cannot capture live baselines yet" in out  # noise-floor mode reports benign users too
    if not no_baselines:
        assert not [a for a in alerts if a[0] == "school-07" and a[3] >= 0.4], alerts  # the benign site: nothing serious
    report = work / "out" / "report.html"
    assert report.is_file() and "school-12" in report.read_text()
    archive = next((work / "out").glob("*.seal.tar"))
    assert seal.verify_archive(archive, work / "keys") == []
    assert f"sealed     {archive}" in out
    kinds = {k for (k,) in con.execute("select kind from health where site = 'school-03'")}
    missing = [why for why, gone in (("the simulator cannot inject an antenna fault yet (scene demo-antenna missing)",
                                      "scene demo-antenna is not in this sdrwatch" in out),
                                     ("the agent cannot capture live baselines yet", no_baselines)) if gone]
    if missing:
        pytest.xfail("; ".join(missing))
    assert kinds & {"noise_floor_low", "receiver_lost"}, kinds


def test_summary_counts_a_fault_raised_on_every_hop_once_per_site_and_kind(tmp_path):
    import sqlite_utils
    from viewsdata import SESSION, make_collector_db

    from sdrwatch.views.demo import summarize

    db_path = make_collector_db(tmp_path / "c.db")
    db = sqlite_utils.Database(db_path)
    db["health"].insert_all([
        {"agent": "school-03", "seq": 300 + k, "site": "school-03", "receiver": "rx0", "kind": "noise_floor_low",
         "severity": 0.8, "message": f"hop {k}", "agent_time": "2027-06-07T01:03:00Z", "received_time": "2027-06-07T01:03:00Z",
         "record": "{}"} for k in range(5)])
    db.conn.close()
    s = summarize(db_path, SESSION)
    assert s["faults"] == ["school-03: noise_floor_low x6"]
