"""The console against a real collector on loopback: Textual's pilot renders the site and alert rows,
and a disposition typed in the pilot reaches the collector's database; log lines when not on a terminal."""
from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdrwatch.views.console import ConsoleState, Feed, connect, log_line, make_app
from sdrwatch.views.plots import severity_colour
import station as S

ALERT_HIGH = "school-12-rx0-c0ffee000001"
ALERT_LOW = "school-12-rx0-c0ffee000002"


@pytest.fixture()
def live(tmp_path):
    """A collector with two sites' records already stored: school-12 (two alerts), school-03 (antenna fault)."""
    keys = S.make_keys(tmp_path / "keys", sites=("school-12", "school-03"), consoles=("console", "desk-2"))
    with S.collector(tmp_path, keys) as (endpoint, db):
        a12, a03 = S.Agent(tmp_path, keys, endpoint, "school-12"), S.Agent(tmp_path, keys, endpoint, "school-03")
        a12.send(S.start("school-12"), S.heartbeat("school-12"),
                 S.alert("school-12", ALERT_HIGH, 433.45e6, severity=0.92),
                 S.alert("school-12", ALERT_LOW, 144.33e6, severity=0.3, label="unknown", snr_db=7.5, bandwidth_hz=3e3))
        a03.send(S.start("school-03"), S.heartbeat("school-03", noise_floor_db=-123.0), S.fault("school-03"))
        a12.wait_sent()
        a03.wait_sent()
        try:
            yield {"endpoint": endpoint, "db": db, "keys": keys, "agents": (a12, a03), "tmp": tmp_path}
        finally:
            a12.close()
            a03.close()


def _app(live, name="console", operator="li.wei"):
    factory = connect(live["endpoint"], live["keys"], name)
    return make_app(lambda on_records, on_status, on_sent: Feed(factory, on_records, on_status, on_sent), operator, live["tmp"] / "plots")


async def _until(pilot, predicate, timeout_s=40.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        if predicate():
            return
    raise AssertionError(f"timed out waiting for {what}")


def _cells(table, key):
    return [str(c) for c in table.get_row(key)]


def test_pilot_rows_render_and_a_typed_disposition_reaches_the_database(live):
    app = _app(live)

    async def run():
        async with app.run_test(size=(160, 45)) as pilot:
            sites = app.query_one("#sites")
            alerts = app.query_one("#alerts")
            await _until(pilot, lambda: alerts.row_count >= 3 and sites.row_count == 2, what="history rows")
            s03 = _cells(sites, "school-03")
            assert s03[0] == "school-03" and s03[1] == "online" and "LOW" in s03[5] and "-123.0" in s03[5]
            assert "ok" in _cells(sites, "school-12")[5]
            # newest first; high severity in its colour
            keys = [alerts.coordinate_to_cell_key((i, 0)).row_key.value for i in range(alerts.row_count)]
            assert set(keys) >= {ALERT_HIGH, ALERT_LOW} and any(k.startswith("fault:") for k in keys)
            row = alerts.get_row(ALERT_HIGH)
            assert "433.4500" in [str(c) for c in row] and "nbfm-voice" in [str(c) for c in row]
            label_cell = row[6]
            assert severity_colour(0.92) in str(label_cell.style)
            # severity filter: 'high' hides the low alert
            await pilot.press("s", "s")
            await pilot.pause(0.3)
            shown = {alerts.coordinate_to_cell_key((i, 0)).row_key.value for i in range(alerts.row_count)}
            assert ALERT_HIGH in shown and ALERT_LOW not in shown
            await pilot.press("s")
            # a site filter: school-03 shows only its fault
            await pilot.press("f")
            await pilot.pause(0.3)
            shown = {alerts.coordinate_to_cell_key((i, 0)).row_key.value for i in range(alerts.row_count)}
            assert all(k.startswith("fault:") for k in shown) and app.site_filter == "school-03"
            await pilot.press("f", "f")
            await pilot.pause(0.3)
            assert app.site_filter is None
            # select the cheater's alert and record a disposition, typed key by key
            alerts.move_cursor(row=alerts.get_row_index(ALERT_HIGH))
            await pilot.press("d")
            await pilot.pause(0.2)
            await pilot.press("1", *"seat 14 earpiece", "enter")
            await _until(pilot, lambda: app.sent, what="the collector's confirmation")
            assert app.sent[-1][1] is True
            await pilot.press("a")  # acknowledge the low one too
            alerts.move_cursor(row=alerts.get_row_index(ALERT_LOW))
            await pilot.press("a")
            await _until(pilot, lambda: len(app.sent) >= 3, what="acks")
            await _until(pilot, lambda: "cheating (li.wei)" in _cells(alerts, ALERT_HIGH)[9], what="the disposition back in the feed")
            await pilot.press("q")

    asyncio.run(run())
    con = sqlite3.connect(live["db"])
    rows = con.execute("select alert_id, operator, disposition, note from dispositions order by id").fetchall()
    assert (ALERT_HIGH, "li.wei", "cheating", "seat 14 earpiece") in rows
    assert (ALERT_LOW, "li.wei", "ack", "") in rows

    # a console started late shows the history first, the disposition included
    late = _app(live, name="desk-2", operator="zhang.min")

    async def run_late():
        async with late.run_test(size=(160, 45)) as pilot:
            alerts = late.query_one("#alerts")
            await _until(pilot, lambda: alerts.row_count >= 3 and ALERT_HIGH in late.state.alerts, what="history")
            await _until(pilot, lambda: "cheating (li.wei)" in _cells(alerts, ALERT_HIGH)[9], what="history's disposition")
            # live: a new alert arrives while it watches
            live["agents"][0].send(S.alert("school-12", "school-12-rx0-c0ffee000003", 169.0625e6, severity=0.75, label="pager-fsk",
                                           duration_s=0.2))  # onset just now: newer than the fixture's fault
            await _until(pilot, lambda: alerts.row_count >= 4, what="the live alert")
            assert alerts.coordinate_to_cell_key((0, 0)).row_key.value == "school-12-rx0-c0ffee000003"  # newest first
            # a gate remote the band plan covers: logged with its entry, not counted as an open alert
            sites = late.query_one("#sites")
            await _until(pilot, lambda: _cells(sites, "school-12")[7] == "3", what="school-12's open alerts")
            live["agents"][0].send({**S.alert("school-12", "school-12-rx0-c0ffee000004", 433.92e6, severity=0.06, label="ism-remote"),
                                    "covered_by": "bandplan:srd-315-433"})
            await _until(pilot, lambda: alerts.row_count >= 5, what="the logged emission")
            assert _cells(alerts, "school-12-rx0-c0ffee000004")[8] == "logged (bandplan:srd-315-433)"
            late.redraw()
            assert _cells(sites, "school-12")[7] == "3"
            # 'p' draws the selected alert on its receiver's latest spectrum snapshot
            import numpy as np
            from sdrwatch.net.schema import spectrum_record

            power = -70 + np.zeros(1024)
            power[156:165] = -30
            live["agents"][0].send(spectrum_record("school-12", "rx0", S.now_iso(), 433.05e6, 2500.0, power))
            await _until(pilot, lambda: ("school-12", "rx0") in late.state.spectra, what="the spectrum snapshot")
            alerts.move_cursor(row=alerts.get_row_index(ALERT_HIGH))
            await pilot.press("p")
            await _until(pilot, lambda: late.status_text.startswith("plot: "), what="the plot")
            png = Path(late.status_text[len("plot: "):])
            assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    asyncio.run(run_late())


def test_log_lines_when_stdout_is_not_a_terminal(live):
    a12 = live["agents"][0]
    a12.send({**S.alert("school-12", "school-12-rx0-c0ffee000004", 433.92e6, severity=0.06, label="ism-remote"),
              "covered_by": "bandplan:srd-315-433"})  # a gate remote the band plan covers
    a12.wait_sent()
    proc = subprocess.run([sys.executable, "-c", "from sdrwatch.cli import main; main()", "console", "--connect", live["endpoint"],
                           "--keys", str(live["keys"]), "--duration", "4"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    alerts = [line for line in lines if " ALERT " in line]
    assert len(alerts) == 2 and any(ALERT_HIGH in line and "433.4500 MHz" in line and "(high)" in line for line in alerts)
    logged = [line for line in lines if " LOGGED " in line]
    assert len(logged) == 1 and "433.9200 MHz" in logged[0] and logged[0].endswith("covered by bandplan:srd-315-433"), logged
    assert any(" HEALTH noise_floor_low school-03/rx0" in line for line in lines)
    assert "\x1b[" not in proc.stdout  # plain text, no terminal codes


def test_console_bad_keys_is_one_line(live, tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from sdrwatch.cli import main; main()", "console", "--connect", live["endpoint"],
                           "--keys", str(live["keys"]), "--name", "nobody", "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "no console key 'nobody'" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_state_merges_history_and_live_in_any_order():
    st = ConsoleState()
    st.apply([{"type": "alert", "alert_id": "x", "event": "close", "site": "s", "receiver": "r", "time": "2026-06-07T08:00:00Z",
               "center_hz": 1e8, "bandwidth_hz": 1e4, "severity": 0.9}])
    st.apply([{"type": "alert", "alert_id": "x", "event": "update", "site": "s", "receiver": "r", "time": "2026-06-07T08:00:00Z",
               "center_hz": 1e8, "bandwidth_hz": 1e4, "severity": 0.9}])  # a late update
    assert st.alerts["x"]["state"] == "closed"
    d = {"type": "disposition", "alert_id": "x", "operator": "o", "disposition": "cheating", "note": "", "time": "2026-06-07T08:01:00Z"}
    assert st.apply([d]) and not st.apply([d])  # a repeat (history + live) counts once
    assert ConsoleState.disposition_of(st.alerts["x"])["disposition"] == "cheating"
    assert "DISPOSITION x cheating by o" in log_line(d)
