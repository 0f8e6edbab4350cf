"""``sdrwatch keys`` (ZeroMQ certificate files, Ed25519 seal keys, allow/revoke/list, one-line errors)
and the collector store on its own (idempotent batches, alert state, evidence, skew, online/offline)."""
import json
import os
import stat
import subprocess
import time

import pytest
import zmq.auth

from netproc import CLI, alert
from sdrwatch.net.collector import Item
from sdrwatch.store import Store


def sdrwatch(*args):
    """The command line in-process (click's runner): exit code, stdout and stderr as a process gives them."""
    from click.testing import CliRunner

    from sdrwatch.cli import main

    return CliRunner().invoke(main, list(args))


def test_keys_cli_runs_as_a_process(tmp_path):
    res = subprocess.run(CLI + ["keys", "init", "--dir", str(tmp_path / "k")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and json.loads(res.stdout)["public_key"]
    res = subprocess.run(CLI + ["keys", "init", "--dir", str(tmp_path / "k")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1


def test_keys_cli_writes_zmq_certificates_and_seal_keys(tmp_path):
    d = tmp_path / "keys"
    res = sdrwatch("keys", "init", "--dir", str(d))
    assert res.exit_code == 0, res.stderr
    pub, sec = zmq.auth.load_certificate(str(d / "collector.key_secret"))
    assert json.loads(res.stdout)["public_key"] == pub.decode() and len(sec) == 40
    assert zmq.auth.load_certificate(str(d / "collector.key")) == (pub, None)
    assert stat.S_IMODE(os.stat(d / "collector.key_secret").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(d / "collector-sign.key").st_mode) == 0o600
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

    priv = load_pem_private_key((d / "collector-sign.key").read_bytes(), None)
    pubk = load_pem_public_key((d / "collector-sign.pub").read_bytes())
    pubk.verify(priv.sign(b"seal"), b"seal")  # raises if the pair does not match

    res = sdrwatch("keys", "new", "school-12", "--site", "school-12", "--dir", str(d))
    assert res.exit_code == 0, res.stderr
    assert zmq.auth.load_certificate(str(d / "school-12.key_secret"))[1]
    assert stat.S_IMODE(os.stat(d / "school-12.key_secret").st_mode) == 0o600
    assert sdrwatch("keys", "new", "desk-1", "--console", "--dir", str(d)).exit_code == 0
    allowed = zmq.auth.load_certificates(str(d / "allowed"))
    assert set(allowed) == {zmq.auth.load_certificate(str(d / f"{n}.key"))[0] for n in ("school-12", "desk-1")}

    listed = [json.loads(x) for x in sdrwatch("keys", "list", "--dir", str(d)).stdout.splitlines()]
    assert {(k["name"], k["site"], k["role"], k["allowed"]) for k in listed} == {
        ("school-12", "school-12", "agent", True), ("desk-1", None, "console", True)}
    assert sdrwatch("keys", "revoke", "school-12", "--dir", str(d)).exit_code == 0
    assert not (d / "allowed" / "school-12.key").exists()
    listed = {json.loads(x)["name"]: json.loads(x) for x in sdrwatch("keys", "list", "--dir", str(d)).stdout.splitlines()}
    assert listed["school-12"]["allowed"] is False
    res = sdrwatch("keys", "allow", "school-12", "--dir", str(d))
    assert res.exit_code == 0 and json.loads(res.stdout)["site"] == "school-12"
    # a public key made elsewhere
    other = tmp_path / "elsewhere"
    other.mkdir()
    pub_file, _ = zmq.auth.create_certificates(str(other), "school-40")
    res = sdrwatch("keys", "allow", "school-40", "--site", "school-40", "--public", pub_file, "--dir", str(d))
    assert res.exit_code == 0, res.stderr
    assert (d / "allowed" / "school-40.key").exists()


@pytest.mark.parametrize("args,needle", [
    (["keys", "new", "x", "--site", "x", "--dir", "{d}/none"], "not a keys directory"),
    (["keys", "new", "x", "--dir", "{d}/keys"], "needs --site"),
    (["keys", "new", "../evil", "--site", "s", "--dir", "{d}/keys"], "must be 1-64"),
    (["keys", "new", "collector", "--site", "s", "--dir", "{d}/keys"], "reserved"),
    (["keys", "new", "a1", "--site", "a1", "--dir", "{d}/keys"], "already exists"),
    (["keys", "init", "--dir", "{d}/keys"], "refusing to overwrite"),
    (["keys", "revoke", "nobody", "--dir", "{d}/keys"], "not on the allowlist"),
    (["keys", "allow", "nobody", "--dir", "{d}/keys"], "no public key"),
    (["keys", "allow", "zz", "--site", "zz", "--public", "{d}/junk", "--dir", "{d}/keys"], "cannot read certificate"),
    (["keys", "allow", "a2", "--site", "a2", "--public", "{d}/keys/a1.key", "--dir", "{d}/keys"], "already allowed as"),
    (["keys", "list", "--dir", "{d}/none"], "not a keys directory"),
])
def test_keys_bad_input_is_one_line(tmp_path, args, needle):
    from sdrwatch.net import keys as K

    K.init(tmp_path / "keys")
    K.new(tmp_path / "keys", "a1", "a1")
    (tmp_path / "junk").write_text("not a certificate\n")
    (tmp_path / "none").mkdir()
    res = sdrwatch(*[a.format(d=tmp_path) for a in args])
    assert res.exit_code == 1, res.stdout
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and needle in res.stderr, res.stderr


def items(agent, site, recs, seq0=1, sent=None, role="agent"):
    sent = time.time() if sent is None else sent
    return [Item(agent, seq0 + i, site, role, sent, dict(r)) for i, r in enumerate(recs)]


def test_store_is_idempotent_and_tracks_alert_state(tmp_path):
    st = Store(tmp_path / "c.db")
    a = alert(1, "s1")
    evs = [dict(a, event="open"), dict(a, event="update", snr_db=25.0), dict(a, event="close", duration_s=12.5,
                                                                              evidence={"path": "e/1", "sha512": "cd" * 64, "bytes": 9})]
    batch = items("s1", "s1", evs)
    st.ingest(batch)
    st.ingest(batch)  # a resend: nothing twice
    st.ingest(items("s1", "s1", evs[:2]) + items("s1", "s1", [alert(2, "s1")], seq0=10))
    db = st.db
    assert db["alert_events"].count == 4 and db["alerts"].count == 2
    row = db["alerts"].get("a-1")
    assert (row["state"], row["last_event"], row["events"], row["snr_db"], row["duration_s"]) == ("closed", "close", 3, 20.0, 12.5)
    assert row["evidence_sha512"] == "cd" * 64 and db["evidence"].get("cd" * 64)["alert_id"] == "a-1"
    assert json.loads(row["record"])["event"] == "close"


def test_store_evidence_before_alert_and_dispositions(tmp_path):
    st = Store(tmp_path / "c.db")
    ev = {"type": "evidence", "alert_id": "a-5", "path": "e/5", "sha512": "ef" * 64, "bytes": 3, "site": "s1",
          "time": "2026-06-01T08:00:01Z"}
    st.ingest(items("s1", "s1", [ev]))
    st.ingest(items("s1", "s1", [alert(5, "s1")], seq0=2))
    assert st.db["alerts"].get("a-5")["evidence_sha512"] == "ef" * 64
    d = {"type": "disposition", "alert_id": "a-5", "operator": "J. Chen", "disposition": "cheating", "note": "",
         "time": "2026-06-01T08:05:00Z"}
    st.ingest(items("desk", None, [d], seq0=7, role="console"))
    st.ingest(items("desk", None, [d], seq0=7, role="console"))
    assert st.db["dispositions"].count == 1
    assert (st.db["alerts"].get("a-5")["disposition"], st.db["alerts"].get("a-5")["operator"]) == ("cheating", "J. Chen")


def test_store_flags_clock_skew_and_tracks_online_offline(tmp_path):
    st = Store(tmp_path / "c.db", skew_limit_s=5, offline_after_s=2)
    now = time.time()
    beat = {"type": "health", "kind": "heartbeat", "site": "s1", "receiver": None, "time": "2026-06-01T08:00:00Z",
            "severity": 0.0, "message": "ok", "receivers": [{"receiver": "rx0", "revisit_s": 3.0, "noise_floor_db": -96.0},
                                                            {"receiver": "rx1", "revisit_s": 4.0}]}
    _, changes = st.ingest(items("s1", "s1", [beat, alert(1, "s1")], sent=now - 60), now=now)
    assert {(c["type"], c.get("receiver"), c["online"]) for c in changes} == {("site", None, True), ("receiver", "rx0", True), ("receiver", "rx1", True)}
    assert st.db["alerts"].get("a-1")["clock_skewed"] == 1 and st.db["sites"].get("s1")["clock_skewed"] == 1
    assert st.db["alerts"].get("a-1")["clock_skew_s"] == pytest.approx(60, abs=0.01)
    assert st.db["health"].count == 0  # heartbeats update sites/receivers, they are not health rows
    assert st.tick(now + 1) == []
    down = st.tick(now + 3)
    assert {(c["type"], c.get("receiver"), c["online"]) for c in down} == {("site", None, False), ("receiver", "rx0", False), ("receiver", "rx1", False)}
    assert st.db["sites"].get("s1")["online"] == 0 and st.db["receivers"].get(("s1", "rx0"))["online"] == 0
    sites = st.sites()
    assert sites[0]["site"] == "s1" and [r["receiver"] for r in sites[0]["receivers"]] == ["rx0", "rx1"]
    # back, then a receiver lost and regained: every transition is one presence row, in order
    lost = {**beat, "kind": "receiver_lost", "receiver": "rx1", "severity": 1.0, "message": "rx1 lost"}
    del lost["receivers"]
    regained = {**lost, "kind": "receiver_regained", "severity": 0.0, "message": "rx1 back"}
    st.ingest(items("s1", "s1", [beat], seq0=10, sent=now + 4), now=now + 4)
    st.ingest(items("s1", "s1", [lost], seq0=20, sent=now + 5), now=now + 5)
    st.ingest([Item("s1", 50, "s1", "agent", now + 6, regained)], now=now + 6)
    got = [(r["site"], r["receiver"], r["online"], r["reason"]) for r in st.db["presence"].rows_where(order_by="id")]
    assert got == [("s1", None, 1, "heard"), ("s1", "rx0", 1, "heard"), ("s1", "rx1", 1, "heard"),
                   ("s1", None, 0, "silent"), ("s1", "rx0", 0, "silent"), ("s1", "rx1", 0, "silent"),
                   ("s1", None, 1, "heard"), ("s1", "rx0", 1, "heard"), ("s1", "rx1", 1, "heard"),
                   ("s1", "rx1", 0, "receiver_lost"), ("s1", "rx1", 1, "receiver_regained")]
    times = [r["time"] for r in st.db["presence"].rows_where(order_by="id")]
    assert times == sorted(times)


def test_heartbeats_of_a_lost_receiver_keep_it_offline(tmp_path):
    """The agent reports a receiver lost, then keeps beating for it with ``online: false`` (as
    ReceiverWorker.heartbeat sends it) until it is regained: presence holds one offline spell, not
    an offline row followed by a heartbeat's online row 5 s later."""
    st = Store(tmp_path / "c.db", offline_after_s=10)
    now = time.time()

    def beat(rx, online, **kw):
        return {"type": "health", "kind": "heartbeat", "site": "s1", "receiver": rx, "time": "2026-06-01T08:00:00Z",
                "severity": 0.0 if online else 0.8, "message": f"{rx}: {'online' if online else 'LOST'}", "online": online,
                "revisit_s": None if not online else 2.9, "planned_revisit_s": 2.96, "noise_floor_db": None, **kw}

    lost = {"type": "health", "kind": "receiver_lost", "site": "s1", "receiver": "rx1", "time": "2026-06-01T08:00:10Z",
            "severity": 1.0, "message": "rx1 lost"}
    regained = {**lost, "kind": "receiver_regained", "severity": 0.0, "message": "rx1 back"}
    seq = 0

    def send(recs, t):
        nonlocal seq
        its = []
        for r in recs:
            seq += 1
            its.append(Item("s1", seq, "s1", "agent", now + t, r))
        st.ingest(its, now=now + t)
        st.tick(now + t + 0.5)

    send([beat("rx0", True), beat("rx1", True)], 0)
    send([lost], 7)
    for t in range(10, 40, 5):
        send([beat("rx0", True), beat("rx1", False)], t)
    # in one batch: a beat sent before the loss, the loss, and the beats after it; then back
    send([beat("rx1", True), regained, beat("rx0", True), beat("rx1", True)], 40)
    send([beat("rx1", True), lost, beat("rx0", True), beat("rx1", False)], 45)
    rows = [(r["receiver"], r["online"], r["reason"]) for r in st.db["presence"].rows_where("receiver = 'rx1'", order_by="id")]
    assert rows == [("rx1", 1, "heard"), ("rx1", 0, "receiver_lost"), ("rx1", 1, "receiver_regained"), ("rx1", 0, "receiver_lost")]
    assert st.db["receivers"].get(("s1", "rx1"))["online"] == 0 and st.db["receivers"].get(("s1", "rx0"))["online"] == 1
    # a heartbeat alone that says a receiver is lost (no receiver_lost record with it) is one offline row
    send([beat("rx0", False)], 50)
    last = list(st.db["presence"].rows_where("receiver = 'rx0'", order_by="id"))[-1]
    assert (last["online"], last["reason"]) == (0, "receiver_lost")
    st.close()


def test_a_database_made_before_collector_runs_opens_and_records_them(tmp_path):
    """A collector database with the tables as the code before ``collector_runs`` wrote them (and
    rows in them): the store opens it, adds the table, and keeps working."""
    import sqlite3

    import sqlite_utils

    from sdrwatch.store.db import INDEXES, TABLES

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    old.enable_wal()
    for name, spec in TABLES.items():
        if name != "collector_runs":
            old[name].create(spec["columns"], pk=spec["pk"])
    for table, cols in INDEXES:
        old[table].create_index(cols)
    old["sites"].insert({"site": "s1", "online": 1, "last_heartbeat": "2026-06-01T08:00:00.000Z"})
    old["presence"].insert({"site": "s1", "online": 1, "time": "2026-06-01T08:00:00.000Z", "reason": "heard"})
    old.close()
    st = Store(path)
    run = st.begin_run()
    st.ingest(items("s1", "s1", [alert(1, "s1")]))
    st.end_run()
    st.close()
    con = sqlite3.connect(path)
    assert con.execute("select id, stopped is not null from collector_runs").fetchall() == [(run, 1)]
    assert con.execute("select count(*) from alerts").fetchone()[0] == 1 and con.execute("select count(*) from presence").fetchone()[0] == 1


def test_a_collector_process_records_its_runs(tmp_path):
    """A real collector: a SIGTERM stop is recorded; a SIGKILLed run keeps its last running stamp
    (every RUN_ALIVE_S); the report reads the time between the runs as the collector down."""
    import sqlite3

    from netproc import CollectorProc
    from sdrwatch.store.db import RUN_ALIVE_S
    from sdrwatch.views import plots, report

    keys, db = tmp_path / "keys", tmp_path / "c.db"
    assert sdrwatch("keys", "init", "--dir", str(keys)).exit_code == 0
    c = CollectorProc(db, keys).start()
    first = c.proc.pid
    time.sleep(0.5)
    c.stop()
    c = CollectorProc(db, keys).start()
    time.sleep(RUN_ALIVE_S + 1.5)
    c.kill()
    rows = sqlite3.connect(db).execute("select pid, started, last_alive, stopped from collector_runs order by id").fetchall()
    assert [r[0] for r in rows] == [first, c.proc.pid]
    assert rows[0][3] is not None and rows[0][2] == rows[0][3] and rows[1][3] is None
    t = [[plots._parse_time(v) for v in r[1:]] for r in rows]
    assert RUN_ALIVE_S - 0.5 <= t[1][1] - t[1][0] <= RUN_ALIVE_S + 1.5  # the killed run was stamped while it ran
    conn = plots.open_db(db)
    assert report.collector_down(conn) == [(t[0][2], t[1][0])]  # from the clean stop to the restart
    conn.close()


def test_store_history_pages_cover_everything(tmp_path):
    st = Store(tmp_path / "c.db")
    st.ingest(items("s1", "s1", [alert(i, "s1") for i in range(25)]))
    seen, after = [], None
    while True:
        page, after = st.history_page(None, "alerts", after, 10)
        seen += page
        if after is None:
            break
    assert sorted(r["alert_id"] for r in seen) == sorted(f"a-{i}" for i in range(25))
    assert all(r["type"] == "alert" and r["site"] == "s1" and r["state"] == "open" for r in seen)


def test_store_refuses_an_unusable_file_in_one_line(tmp_path):
    from sdrwatch.store import StoreError

    bad = tmp_path / "c.db"
    bad.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="cannot open collector database"):
        Store(bad)
