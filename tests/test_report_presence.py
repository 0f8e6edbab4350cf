"""Duty report uptime from the collector's presence history: databases written by the collector's own
store (sdrwatch.store.Store) from agent records on a simulated clock, then `sdrwatch report`."""
from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3

import pytest
from click.testing import CliRunner

from clierrors import one_line
from sdrwatch.cli import main
from sdrwatch.net.collector import Item
from sdrwatch.store import Store
from sdrwatch.views import report

SESSION = "maths-am"
T0 = dt.datetime(2026, 6, 7, 8, 0, 0, tzinfo=dt.timezone.utc).timestamp()
BEAT_S = 5  # the agent's heartbeat interval (agent/loop.py HEARTBEAT_S)


def utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def minute(m: float) -> float:
    return T0 + 60 * m


class Agent:
    """One site's agent as the collector sees it: records it sends, stored at the simulated time."""

    def __init__(self, store: Store, site: str, receivers=("rx0", "rx1")):
        self.store, self.site, self.receivers, self.seq = store, site, receivers, 0
        self.lost: set[str] = set()

    def send(self, t: float, kind: str, receiver=None, **extra) -> None:
        self.seq += 1
        rec = {"type": "health", "kind": kind, "site": self.site, "receiver": receiver, "time": utc(t),
               "severity": 0.0, "message": f"{kind}", **extra}
        self.store.ingest([Item(self.site, self.seq, self.site, "agent", t, rec)], now=t)

    def start(self, t: float, end: float = minute(30)) -> None:
        self.send(t, "start", sessions=[{"name": SESSION, "start": utc(T0), "end": utc(end)}], receivers=list(self.receivers))

    def beat(self, t: float) -> None:
        """One heartbeat per receiver, as ReceiverWorker.heartbeat sends it: a lost one says ``online: false``."""
        for rx in self.receivers:
            on = rx not in self.lost
            self.send(t, "heartbeat", rx, online=on, revisit_s=2.0 if on else None, planned_revisit_s=2.0,
                      noise_floor_db=-97.0 if on else None)

    def lose(self, t: float, rx: str) -> None:
        self.lost.add(rx)
        self.send(t, "receiver_lost", rx)

    def regain(self, t: float, rx: str) -> None:
        self.lost.discard(rx)
        self.send(t, "receiver_regained", rx)


def run(store: Store, plan: dict[Agent, list[tuple[float, float]]], t_from: float, t_to: float) -> None:
    """Each agent beats every BEAT_S seconds while one of its (from, to) spans holds; the collector
    checks liveness every second (as its loop does), half a second after the beats."""
    t = t_from
    while t < t_to:
        for agent, spans in plan.items():
            if any(a <= t <= b and (t - a) % BEAT_S == 0 for a, b in spans):
                agent.beat(t)
        store.tick(t + 0.5)
        t += 1


@pytest.fixture()
def exam(tmp_path):
    """Session 08:00-08:30. school-12 is silent 08:10-08:20; school-07 is up throughout, its rx1 lost
    08:05-08:12; school-03's agent starts three minutes late; the collector runs to 08:31."""
    path = tmp_path / "collector.db"
    st = Store(path)  # offline after 10 s, the collector's default
    s12, s07, s03 = Agent(st, "school-12"), Agent(st, "school-07"), Agent(st, "school-03", receivers=("rx0",))
    s12.start(minute(-1))
    s07.start(minute(-1))
    s03.start(minute(3))
    plan = {s12: [(minute(-1), minute(10)), (minute(20), minute(31))], s07: [(minute(-1), minute(31))], s03: [(minute(3), minute(31))]}
    run(st, plan, minute(-1), minute(5))
    s07.lose(minute(5), "rx1")
    run(st, plan, minute(5), minute(12))
    s07.regain(minute(12), "rx1")
    run(st, plan, minute(12), minute(31))
    st.close()
    return path


def cells(html: str, table_id: str) -> list[list[str]]:
    body = html.split(f'id="{table_id}"')[1].split("</table>")[0].split("<tbody>")[1]
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in body.split("</tr>") if "<td" in row]


def make_report(db, tmp_path, *extra):
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", "--db", str(db), "--session", SESSION, "-o", str(out), "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.output), out.read_text()


def test_presence_gives_uptime_and_the_ten_minute_silence(exam, tmp_path):
    rows = sqlite3.connect(exam).execute("select site, online, reason from presence where receiver is null order by id").fetchall()
    assert ("school-12", 0, "silent") in rows and rows.count(("school-12", 1, "heard")) == 2  # the store wrote the silence

    summary, html = make_report(exam, tmp_path)
    up = {s["site"]: s for s in summary["uptime"]}
    assert {s["method"] for s in up.values()} == {"presence"}
    # last beat 08:10:00, marked silent at the collector's first check more than 10 s later (08:10:10.5), heard at 08:20:00
    assert up["school-12"]["uptime"] == pytest.approx((1800 - 589.5) / 1800, abs=1e-4)
    assert up["school-12"]["offline_spells"] == [
        {"start": "2026-06-07T08:10:10Z", "end": "2026-06-07T08:20:00Z", "length_s": 589.5, "cause": "silent", "open": False}]
    assert up["school-07"]["uptime"] == 1.0 and up["school-07"]["offline_spells"] == []
    # school-03 was first heard at 08:03: offline from the session's start until then
    assert up["school-03"]["uptime"] == pytest.approx(0.9, abs=1e-4)
    assert up["school-03"]["offline_spells"] == [
        {"start": "2026-06-07T08:00:00Z", "end": "2026-06-07T08:03:00Z", "length_s": 180.0, "cause": "not_heard", "open": False}]

    sites = {r[0]: r for r in cells(html, "sites")}
    assert sites["school-12"][1:5] == ["08:00:00–08:30:00", "67.2 %", "presence", "1 (9 min 50 s)"]
    assert sites["school-07"][1:5] == ["08:00:00–08:30:00", "100.0 %", "presence", "0"]
    assert cells(html, "offline-spells") == [
        ["school-03", "08:00:00", "08:03:00", "3 min 00 s", "not heard from yet in the session"],
        ["school-12", "08:10:10", "08:20:00", "9 min 50 s", "nothing heard from it"]]
    note = html.split('id="uptime-methods"')[1].split("</p>")[0]
    assert "Uptime from <b>presence</b> (school-03, school-07, school-12)" in note and "--offline-after" in note
    assert "heartbeat history" not in html and "agent runs" not in html and "heartbeat rows" not in html


def test_receiver_uptime_and_its_own_offline_spells(exam, tmp_path):
    """school-07's rx1 was lost 08:05-08:12 while its agent kept beating for it (``online: false``):
    its uptime and that spell are in the report and its JSON. school-12's receivers went with their
    site (08:10-08:20): that is the site's spell, not listed again per receiver."""
    rows = sqlite3.connect(exam).execute(
        "select online, reason from presence where site = 'school-07' and receiver = 'rx1' order by id").fetchall()
    assert rows == [(1, "heard"), (0, "receiver_lost"), (1, "receiver_regained")]
    summary, html = make_report(exam, tmp_path)
    up = {s["site"]: {r["receiver"]: r for r in s["receivers"]} for s in summary["uptime"]}
    assert up["school-07"]["rx1"]["uptime"] == pytest.approx(1 - 420 / 1800, abs=1e-4)
    assert up["school-07"]["rx1"]["offline_spells"] == [
        {"start": "2026-06-07T08:05:00Z", "end": "2026-06-07T08:12:00Z", "length_s": 420.0, "cause": "receiver_lost", "open": False}]
    assert up["school-07"]["rx0"]["uptime"] == 1.0 and up["school-07"]["rx0"]["offline_spells"] == []
    assert up["school-12"]["rx0"]["uptime"] == pytest.approx((1800 - 589.5) / 1800, abs=1e-4)
    assert up["school-12"]["rx0"]["offline_spells"] == [] and up["school-12"]["rx0"]["offline_s"] == 589.5
    assert up["school-03"]["rx0"]["uptime"] == pytest.approx(0.9, abs=1e-4)
    rx = {(r[0], r[1]): r for r in cells(html, "receivers")}
    assert rx[("school-07", "rx1")][2] == "76.7 %" and rx[("school-07", "rx0")][2] == "100.0 %"
    assert rx[("school-12", "rx1")][2] == "67.2 %" and rx[("school-03", "rx0")][2] == "90.0 %"
    assert cells(html, "receiver-offline-spells") == [
        ["school-07", "rx1", "08:05:00", "08:12:00", "7 min 00 s", "the agent reported the receiver lost"]]
    assert cells(html, "offline-spells") == [  # the site table is unchanged: school-07 itself was online
        ["school-03", "08:00:00", "08:03:00", "3 min 00 s", "not heard from yet in the session"],
        ["school-12", "08:10:10", "08:20:00", "9 min 50 s", "nothing heard from it"]]


def test_time_the_collector_was_not_running_is_not_watched(tmp_path):
    """The collector is killed at 08:12 (no clean stop: its last running stamp is 08:11:55.5),
    restarted at 08:15 (the site reconnects at once, so presence has no row for the gap), and
    stopped cleanly at 08:25: both gaps count as offline, cause collector down."""
    path = tmp_path / "c.db"
    st = Store(path)
    st.begin_run(minute(-1))
    s07 = Agent(st, "school-07")
    s07.start(minute(-1))
    run(st, {s07: [(minute(-1), minute(31))]}, minute(-1), minute(12))
    st.close()  # killed: the run has no stop
    st = s07.store = Store(path)
    st.begin_run(minute(15))
    run(st, {s07: [(minute(-1), minute(31))]}, minute(15), minute(25))
    st.end_run(minute(25))
    st.close()
    assert sqlite3.connect(path).execute("select count(*) from presence where receiver is null").fetchone()[0] == 1  # heard, once

    summary, html = make_report(path, tmp_path)
    [s] = summary["uptime"]
    assert s["method"] == "presence" and s["uptime"] == pytest.approx((1800 - 184.5 - 300) / 1800, abs=1e-4)
    assert s["offline_spells"] == [
        {"start": "2026-06-07T08:11:55Z", "end": "2026-06-07T08:15:00Z", "length_s": 184.5, "cause": "collector_down", "open": False},
        {"start": "2026-06-07T08:25:00Z", "end": "2026-06-07T08:30:00Z", "length_s": 300.0, "cause": "collector_down", "open": True}]
    assert [(r["receiver"], r["uptime"], r["offline_spells"]) for r in s["receivers"]] == [
        ("rx0", pytest.approx(s["uptime"], abs=1e-4), []), ("rx1", pytest.approx(s["uptime"], abs=1e-4), [])]
    assert [r[4] for r in cells(html, "offline-spells")] == ["collector down: not watched"] * 2
    note = html.split('id="uptime-methods"')[1].split("</p>")[0]
    assert "counts as offline: not watched, cause collector down" in note and "counts in the state it last recorded" not in note


def test_the_timeline_spans_the_session_and_hatches_offline_spells(tmp_path):
    """One 40 s alert at 08:07 in the 08:00-08:30 session: the report's timeline shows the whole
    session (not two minutes around the alert), school-12's silence 08:10-08:20 hatched grey in its
    lane, and the collector's downtime 08:21:55-08:25 cross-hatched in every lane."""
    import base64

    import matplotlib.dates as mdates
    import matplotlib.image
    import numpy as np

    from sdrwatch.views import plots

    path = tmp_path / "c.db"
    st = Store(path)
    st.begin_run(minute(-1))
    s12, s07 = Agent(st, "school-12"), Agent(st, "school-07")
    s12.start(minute(-1))
    s07.start(minute(-1))
    plan = {s12: [(minute(-1), minute(10)), (minute(20), minute(31))], s07: [(minute(-1), minute(31))]}
    run(st, plan, minute(-1), minute(7))
    al = {"type": "alert", "alert_id": "school-07-rx0-0123456789ab", "event": "open", "site": "school-07", "receiver": "rx0",
          "time": utc(minute(7)), "session": SESSION, "center_hz": 169.2e6, "bandwidth_hz": 12.5e3, "snr_db": 20.0,
          "label": "pager-fsk", "severity": 0.9, "duration_s": 40.0}
    st.ingest([Item("school-07", 10**6, "school-07", "agent", minute(7), al)], now=minute(7))
    run(st, plan, minute(7), minute(22))
    st.close()  # killed
    st = s12.store = s07.store = Store(path)
    st.begin_run(minute(25))
    run(st, plan, minute(25), minute(31))
    st.end_run(minute(31))
    st.close()

    data = report.load_report_data(path, SESSION)
    res = report.timeline_image(data, tmp_path / "t.png")
    lanes = res.panel("lanes")
    num = lambda t: mdates.date2num(dt.datetime.fromtimestamp(t, dt.timezone.utc))  # noqa: E731
    assert lanes.xlim[0] <= num(T0) < num(minute(30)) <= lanes.xlim[1]
    assert lanes.xlim[1] - lanes.xlim[0] < 1.05 * (num(minute(30)) - num(T0))
    img = (matplotlib.image.imread(str(res.path))[..., :3] * 255).round().astype(int)

    def share(colour, lane, t, rows=20):
        """Share of the lane's middle pixels around time t that have this colour."""
        r, c = lanes.row(lane), lanes.column(num(t))
        block = img[r - rows: r + rows, c - 6: c + 7]
        want = np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)])
        return float((np.abs(block - want) <= 12).all(axis=-1).mean())

    face, edge, _ = plots.OFFLINE_STYLE
    dface, dedge, _ = plots.COLLECTOR_DOWN_STYLE
    school07, school12 = 0, 1
    assert share(face, school12, minute(15)) > 0.3 and share(edge, school12, minute(15)) > 0.05  # hatched: face and hatch lines
    assert share(face, school07, minute(15)) == 0 and share("#dbe9f6", school07, minute(15)) > 0.9  # school-07 was up: the session shade
    for lane in (school07, school12):
        assert share(dface, lane, minute(23.5)) > 0.2 and share(dedge, lane, minute(23.5)) > 0.05
        assert share(face, lane, minute(27)) == 0  # watched again
    assert share(plots.severity_colour(0.9), school07, minute(7) + 20, rows=4) > 0.9  # the alert, at its time
    # the report embeds this picture
    _, html = make_report(path, tmp_path)
    png = base64.b64decode(html.split('alt="alert timeline" src="data:image/png;base64,')[1].split('"')[0])
    assert png == res.path.read_bytes()


def test_a_database_from_before_collector_runs_says_downtime_is_not_known(exam, tmp_path):
    con = sqlite3.connect(exam)
    con.execute("drop table collector_runs")
    con.commit()
    con.close()
    summary, html = make_report(exam, tmp_path)
    assert {s["site"]: s["uptime"] for s in summary["uptime"]}["school-07"] == 1.0
    assert "counts in the state it last recorded" in html.split('id="uptime-methods"')[1].split("</p>")[0]


def test_a_session_still_running_counts_to_the_last_record(tmp_path):
    """A report made at 08:25:02 of a database whose records end at 08:25 (school-07's last beat);
    school-12 has been silent since 08:20:00 and is listed as still offline."""
    st = Store(tmp_path / "live.db")
    s12, s07 = Agent(st, "school-12"), Agent(st, "school-07")
    s12.start(minute(-1))
    s07.start(minute(-1))
    run(st, {s12: [(minute(-1), minute(20))], s07: [(minute(-1), minute(25))]}, minute(-1), minute(25) + 1)
    st.close()
    data = report.load_report_data(tmp_path / "live.db", SESSION, now_s=minute(25) + 2)
    s = {x["site"]: x for x in data.sites}
    last = data.last_record_s
    assert last == minute(25) and s["school-12"]["counted_to"] == last
    assert s["school-12"]["uptime"] == pytest.approx((minute(20) + 10.5 - T0) / (last - T0), abs=1e-4)
    [spell] = s["school-12"]["offline_spells"]
    assert spell["start_s"] == minute(20) + 10.5 and spell["open"] and spell["cause"] == "silent"
    assert s["school-07"]["uptime"] == 1.0
    html = report.render_html(data, {})
    row = cells(html, "offline-spells")[0]
    assert row[:2] == ["school-12", "08:20:10"] and row[2].startswith("still offline at 08:25:0") and "(the last record)" in row[2]
    assert "The session is still running: counted to the collector's last record, 2026-06-07 08:25:00 UTC." in html


def test_time_after_the_collectors_last_record_is_not_counted_as_watched(tmp_path):
    """The collector's records stop at 08:20 (it died, or lost its network): a report after the
    session counts 08:20-08:30 as offline for every site, cause: no record."""
    st = Store(tmp_path / "c.db")
    s07 = Agent(st, "school-07")
    s07.start(minute(-1))
    run(st, {s07: [(minute(-1), minute(20))]}, minute(-1), minute(20) + 1)  # no tick after 08:20:00.5
    st.close()
    summary, html = make_report(tmp_path / "c.db", tmp_path)
    [s] = summary["uptime"]
    assert s["method"] == "presence" and s["uptime"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["offline_spells"] == [{"start": "2026-06-07T08:20:00Z", "end": "2026-06-07T08:30:00Z", "length_s": 600.0,
                                    "cause": "no_record", "open": True}]
    [row] = cells(html, "offline-spells")
    assert row[1] == "08:20:00" and row[2] == "still offline at 08:30:00 (the session end)" and row[4] == "no record at the collector after this"
    assert "Time after the collector's last record (2026-06-07 08:20:00 UTC) counts as offline." in html


def test_a_database_without_presence_still_reports_with_the_older_method(exam, tmp_path):
    """A collector from before the presence table: its uptime comes from agent runs, and the report
    says so (and that offline spells are not known); one site without presence rows falls back alone."""
    con = sqlite3.connect(exam)
    con.execute("delete from presence where site = 'school-03'")
    con.commit()
    summary, html = make_report(exam, tmp_path)
    up = {s["site"]: s for s in summary["uptime"]}
    assert up["school-12"]["method"] == "presence" and up["school-03"]["method"] == "agent runs"
    assert up["school-03"]["offline_spells"] is None and up["school-03"]["uptime"] == pytest.approx(0.9, abs=1e-3)
    note = html.split('id="uptime-methods"')[1].split("</p>")[0]
    assert "Uptime from <b>presence</b> (school-07, school-12)" in note and "Uptime from <b>agent runs</b> (school-03)" in note
    assert "Offline spells are not known for school-03 (no presence rows)." in html
    assert {r[0] for r in cells(html, "offline-spells")} == {"school-12"}

    con.execute("drop table presence")
    con.commit()
    con.close()
    summary, html = make_report(exam, tmp_path)
    up = {s["site"]: s for s in summary["uptime"]}
    assert {s["method"] for s in up.values()} == {"agent runs"}
    # an agent run counts from its start record to the site's last contact: the silence is not seen
    assert up["school-12"]["uptime"] == 1.0 and up["school-03"]["uptime"] == pytest.approx(0.9, abs=1e-3)
    assert [r[3] for r in cells(html, "sites")] == ["agent runs"] * 3
    assert "an outage while the agent ran is not seen" in html and 'id="offline-spells"' not in html
    assert "not known: the database has no presence rows for these sites" in html


def test_presence_uptime_rules():
    on, off = True, False
    # the state at the window's start is that of the last row before it
    assert report.presence_uptime([(-50, off, "silent"), (300, on, "heard")], 0, 600) == (
        0.5, [{"start_s": 0, "end_s": 300, "length_s": 300, "cause": "silent", "open": False}])
    # no row before: the opposite of the first (a row records a change)
    assert report.presence_uptime([(120, off, "silent")], 0, 600)[0] == pytest.approx(0.2)
    assert report.presence_uptime([(120, on, "heard")], 0, 600)[1][0]["cause"] == "not_heard"
    # only a row after the window: offline throughout, not heard
    assert report.presence_uptime([(900, on, "heard")], 0, 600) == (
        0.0, [{"start_s": 0, "end_s": 600, "length_s": 600, "cause": "not_heard", "open": True}])
    # a repeated state changes nothing; online stops at the collector's last record
    assert report.presence_uptime([(-10, on, "heard"), (100, on, "heard")], 0, 600, known_until_s=450)[0] == pytest.approx(0.75)
    assert report.presence_uptime([], 0, 600) == (0.0, [])
    assert report.presence_uptime([(0, on, "heard")], 600, 600) == (0.0, [])


def test_report_of_a_damaged_database_is_one_error_line(exam, tmp_path):
    """A collector database whose presence table is not what the collector writes, and one whose
    pages are damaged: one error line, exit 1."""
    con = sqlite3.connect(exam)
    con.execute("alter table presence rename to presence_old")
    con.execute("create table presence (id integer primary key, site text)")
    con.execute("insert into presence (site) values ('school-12')")
    con.commit()
    con.close()
    r = CliRunner().invoke(main, ["report", "--db", str(exam), "--session", SESSION, "-o", str(tmp_path / "r.html")])
    one_line(r, str(exam), "cannot read")
    bad = tmp_path / "damaged.db"
    raw = bytearray(exam.read_bytes())
    raw[4096 * 3: 4096 * 6] = b"\xff" * (4096 * 3)
    bad.write_bytes(bytes(raw))
    r = CliRunner().invoke(main, ["report", "--db", str(bad), "--session", SESSION, "-o", str(tmp_path / "r.html")])
    one_line(r, str(bad))
