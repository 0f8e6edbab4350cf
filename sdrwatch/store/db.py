"""The collector's SQLite database, written through sqlite-utils (WAL, batched, idempotent).

One :meth:`Store.ingest` call is one transaction holding a whole batch of records from any number of
agents; the collector acks the batch only after it returns. Every record is keyed by (agent, seq):
a record seen before is skipped, so resends never store anything twice. The tables are documented
in ``docs/network.md``; they open in sqlite-utils and Datasette as they are.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import orjson
import sqlite_utils

from ..errors import SdrwatchError
from ..net import schema
from ..net.collector import Item  # noqa: F401 - the record holder the collector hands over

#: |agent clock - collector clock| above this many seconds sets ``clock_skewed``
DEFAULT_SKEW_LIMIT_S = 5.0
#: a site or receiver not heard from for this many seconds is offline
DEFAULT_OFFLINE_AFTER_S = 10.0

TABLES: dict[str, dict] = {
    "alerts": dict(columns={
        "alert_id": str, "site": str, "receiver": str, "agent": str, "agent_time": str, "received_time": str,
        "last_received_time": str, "center_hz": float, "bandwidth_hz": float, "snr_db": float, "peak_dbfs": float,
        "label": str, "severity": float, "session": str, "state": str, "evidence_sha512": str, "evidence_path": str,
        "first_event_time": str, "last_event": str, "events": int, "duration_s": float, "novelty": str,
        "clock_skew_s": float, "clock_skewed": int, "disposition": str, "operator": str, "disposition_time": str,
        "record": str}, pk="alert_id"),
    "alert_events": dict(columns={
        "agent": str, "seq": int, "alert_id": str, "event": str, "site": str, "receiver": str, "agent_time": str,
        "received_time": str, "sent_time": str, "clock_skew_s": float, "center_hz": float, "bandwidth_hz": float,
        "snr_db": float, "peak_dbfs": float, "severity": float, "label": str, "session": str, "record": str},
        pk=("agent", "seq")),
    "health": dict(columns={
        "agent": str, "seq": int, "site": str, "receiver": str, "kind": str, "severity": float, "message": str,
        "agent_time": str, "received_time": str, "clock_skew_s": float, "record": str}, pk=("agent", "seq")),
    "evidence": dict(columns={
        "sha512": str, "alert_id": str, "site": str, "receiver": str, "path": str, "bytes": int, "agent_time": str,
        "received_time": str, "agent": str}, pk="sha512"),
    "sites": dict(columns={
        "site": str, "online": int, "last_heartbeat": str, "last_heartbeat_agent_time": str, "agent": str,
        "first_seen": str, "clock_skew_s": float, "clock_skewed": int, "receivers": int, "last_health": str},
        pk="site"),
    "receivers": dict(columns={
        "site": str, "receiver": str, "online": int, "last_heartbeat": str, "revisit_s": float,
        "planned_revisit_s": float, "noise_floor_db": float, "agent": str}, pk=("site", "receiver")),
    "sessions": dict(columns={"site": str, "name": str, "start": str, "end": str, "agent": str}, pk=("site", "name")),
    "dispositions": dict(columns={
        "id": int, "console": str, "seq": int, "alert_id": str, "operator": str, "disposition": str, "note": str,
        "time": str, "received_time": str}, pk="id"),
    "spectra": dict(columns={
        "site": str, "receiver": str, "time": str, "received_time": str, "start_hz": float, "bin_hz": float,
        "bins": int, "power_offset_db": float, "power_step_db": float, "power_db": str}, pk=("site", "receiver")),
    "presence": dict(columns={
        "id": int, "site": str, "receiver": str, "online": int, "time": str, "agent": str, "reason": str}, pk="id"),
    "collector_runs": dict(columns={
        "id": int, "started": str, "last_alive": str, "stopped": str, "pid": int, "host": str}, pk="id"),
    "agents": dict(columns={
        "name": str, "role": str, "site": str, "public_key": str, "first_seen": str, "last_seen": str,
        "records": int, "rejected": int, "last_reject": str, "clock_skew_s": float}, pk="name"),
}
INDEXES = [
    ("alerts", ["site", "agent_time"]), ("alerts", ["center_hz"]), ("alerts", ["last_received_time"]),
    ("alert_events", ["alert_id"]), ("health", ["site", "received_time"]), ("health", ["kind"]),
    ("evidence", ["alert_id"]), ("dispositions", ["alert_id"]), ("dispositions", ["received_time"]),
    ("presence", ["site", "time"]),
]
#: the presence history keeps at most this many rows (the oldest go first)
PRESENCE_MAX_ROWS = 1_000_000
#: a running collector stamps ``collector_runs.last_alive`` this often (s): a run that ends without a
#: clean stop (SIGKILL, a power cut) ended at most this long after its stamp
RUN_ALIVE_S = 5.0

ALERT_COLS = list(TABLES["alerts"]["columns"])
EVENT_COLS = list(TABLES["alert_events"]["columns"])
HEALTH_COLS = list(TABLES["health"]["columns"])


class StoreError(SdrwatchError):
    """A collector database that cannot be opened or written."""


iso = schema.utc_iso  # the times stored: the schema's


def _dumps(obj) -> str:
    return orjson.dumps(obj).decode()


def _said_online(value) -> bool:
    """A heartbeat's ``online`` for a receiver: only ``false`` (or 0) says it is lost; a heartbeat
    without the field counts as online, as it always has."""
    return not (isinstance(value, (bool, int, float)) and value == 0)


class Store:
    """The collector database (see the module docstring and docs/network.md)."""

    def __init__(self, path: str | Path, skew_limit_s: float = DEFAULT_SKEW_LIMIT_S,
                 offline_after_s: float = DEFAULT_OFFLINE_AFTER_S):
        self.path = Path(path)
        self.skew_limit_s = float(skew_limit_s)
        self.offline_after_s = float(offline_after_s)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one thread at a time (the collector's writer thread while serving)
            self.db = sqlite_utils.Database(sqlite3.connect(str(self.path), check_same_thread=False, timeout=30))
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=FULL")  # an acked record survives a power cut, not only a crash
            self._create()
        except Exception as exc:  # sqlite3.DatabaseError and friends
            raise StoreError(f"cannot open collector database {self.path}: {str(exc).splitlines()[0]}") from None
        self.conn = self.db.conn
        upd = [c for c in ALERT_COLS if c not in ("alert_id", "received_time", "first_event_time", "disposition", "operator", "disposition_time")]
        self._event_insert = (
            f"INSERT OR IGNORE INTO alert_events ({', '.join(EVENT_COLS)}) VALUES ({', '.join('?' * len(EVENT_COLS))})")
        self._alert_upsert = (
            f"INSERT INTO alerts ({', '.join(ALERT_COLS)}) VALUES ({', '.join('?' * len(ALERT_COLS))}) "
            f"ON CONFLICT(alert_id) DO UPDATE SET {', '.join(f'[{c}] = excluded.[{c}]' for c in upd)}")
        self._has_evidence = self.conn.execute("SELECT 1 FROM evidence LIMIT 1").fetchone() is not None
        self._presence_rows = self.conn.execute("SELECT COUNT(*) FROM presence").fetchone()[0]
        self._last_seen: dict[str, float] = {}
        self._online: dict[str, bool] = {r["site"]: bool(r["online"]) for r in self.db["sites"].rows}
        self._rx_last: dict[tuple[str, str], float] = {}
        self._rx_counts: dict[str, int] = {}  # receivers per site, recounted when _rx_online grows
        self._rx_counted = -1
        self._rx_online: dict[tuple[str, str], bool] = {(r["site"], r["receiver"]): bool(r["online"]) for r in self.db["receivers"].rows}
        self._run_id: int | None = None  # this collector run's row in collector_runs (begin_run)
        self._run_alive = 0.0

    def _create(self) -> None:
        for name, spec in TABLES.items():
            self.db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)
        self.db["dispositions"].create_index(["console", "seq"], unique=True, if_not_exists=True)
        for table, cols in INDEXES:
            self.db[table].create_index(cols, if_not_exists=True)

    def close(self) -> None:
        try:
            self.db.close()
        except Exception:  # noqa: BLE001
            pass

    # --- collector runs -------------------------------------------------------------------------------------

    def begin_run(self, now: float | None = None) -> int:
        """Record that a collector starts serving from this database (a ``collector_runs`` row); its
        ``last_alive`` is stamped every RUN_ALIVE_S by :meth:`tick`, ``stopped`` by :meth:`end_run`.
        The time between one run's end and the next run's start is time nobody watched."""
        now = time.time() if now is None else now
        try:
            with self.db.atomic():
                cur = self.conn.execute("INSERT INTO collector_runs (started, last_alive, pid, host) VALUES (?, ?, ?, ?)",
                                        (iso(now), iso(now), os.getpid(), socket.gethostname()[:64]))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write collector database {self.path}: {str(exc).splitlines()[0]}") from None
        self._run_id, self._run_alive = cur.lastrowid, now
        return self._run_id

    def end_run(self, now: float | None = None) -> None:
        """Record a clean stop of the run :meth:`begin_run` began."""
        if self._run_id is None:
            return
        t = iso(time.time() if now is None else now)
        with self.db.atomic():
            self.conn.execute("UPDATE collector_runs SET stopped = ?, last_alive = ? WHERE id = ?", (t, t, self._run_id))
        self._run_id = None

    # --- ingest -------------------------------------------------------------------------------------------

    def _fresh(self, table: str, key: str, items: list[Item]) -> list[Item]:
        """The items whose (key, seq) is not in ``table`` yet (and not repeated within the batch)."""
        by_agent: dict[str, list[Item]] = defaultdict(list)
        for it in items:
            by_agent[it.agent].append(it)
        out = []
        for agent, its in by_agent.items():
            seqs = [it.seq for it in its]
            seen = {r[0] for r in self.conn.execute(
                f"SELECT seq FROM [{table}] WHERE [{key}] = ? AND seq BETWEEN ? AND ?", (agent, min(seqs), max(seqs)))}
            for it in its:
                if it.seq not in seen:
                    seen.add(it.seq)
                    out.append(it)
        return out

    def ingest(self, items: list[Item], now: float | None = None, feed: bool = True) -> tuple[list[dict], list[dict]]:
        """Store a batch in one transaction. Return (new records for the live feed if ``feed``, site changes)."""
        now = time.time() if now is None else now
        recv = iso(now)
        out: list[dict] | None = [] if feed else None
        by_type: dict[str, list[Item]] = defaultdict(list)
        for it in items:
            by_type[it.record["type"]].append(it)
        with self.db.atomic():
            alerts = self._fresh("alert_events", "agent", by_type["alert"])
            if alerts:
                self._ingest_alerts(alerts, now, recv, out)
            health = [it for it in by_type["health"] if it.record["kind"] != "heartbeat"]
            beats = [it for it in by_type["health"] if it.record["kind"] == "heartbeat"]
            health = self._fresh("health", "agent", health)
            if health:
                self._ingest_health(health, now, recv, out if out is not None else [])
            if beats and out is not None:
                for it in beats:
                    out.append(self._annotate(it, now, recv))
            if by_type["evidence"]:
                self._ingest_evidence(by_type["evidence"], now, recv, out if out is not None else [])
            disp = self._fresh("dispositions", "console", by_type["disposition"])
            if disp:
                self._ingest_dispositions(disp, recv, out if out is not None else [])
            if by_type["spectrum"]:
                rows = {}
                for it in by_type["spectrum"]:
                    r = it.record
                    rows[(it.site, r["receiver"])] = {
                        "site": it.site, "receiver": r["receiver"], "time": r["time"], "received_time": recv,
                        "start_hz": r["start_hz"], "bin_hz": r["bin_hz"], "bins": r.get("bins"),
                        "power_offset_db": r["power_offset_db"], "power_step_db": r["power_step_db"],
                        "power_db": r["power_db"]}
                    if out is not None:
                        out.append(self._annotate(it, now, recv))
                self.db["spectra"].insert_all(rows.values(), pk=("site", "receiver"), replace=True)
            changes = self._touch_sites(items, beats, now, recv, health)
            self._note_presence(changes, "heard")
            self._touch_agents(items, now, recv)
        return out or [], changes

    def _annotate(self, it: Item, now: float, recv: str) -> dict:
        rec = dict(it.record)
        rec.update(agent=it.agent, seq=it.seq, received_time=recv, clock_skew_s=round(now - it.sent_time, 3))
        return rec

    def _ingest_alerts(self, items: list[Item], now: float, recv: str, feed: list[dict] | None) -> None:
        events = []
        # the common case, a new alert with one "open" event in the batch, gets its alerts row in the same
        # pass; every other alert (more events, evidence, a row that may exist) goes the general way below
        fast: dict[str, tuple] = {}
        latest: dict[str, list[Item]] = {}
        per_message: dict[float, tuple] = {}
        limit = self.skew_limit_s
        for it in items:
            r = it.record
            g = r.get
            pm = per_message.get(it.sent_time)
            if pm is None:
                skew = round(now - it.sent_time, 3)
                pm = per_message[it.sent_time] = (iso(it.sent_time), skew, int(abs(skew) > limit))
            if it.text is None:
                it.text = _dumps(r)
            alert_id = r["alert_id"]
            event = r["event"]
            t = r["time"]
            snr, peak, sev, label, session = g("snr_db"), g("peak_dbfs"), g("severity"), g("label"), g("session")
            events.append((it.agent, it.seq, alert_id, event, it.site, r["receiver"], t, recv, pm[0], pm[1],
                           r["center_hz"], r["bandwidth_hz"], snr, peak, sev, label, session, it.text))
            its = latest.get(alert_id)
            if its is not None:
                its.append(it)
                fast.pop(alert_id, None)
                continue
            latest[alert_id] = [it]
            if event == "open" and not g("evidence"):
                fast[alert_id] = (alert_id, it.site, r["receiver"], it.agent, t, recv, recv, r["center_hz"],
                                  r["bandwidth_hz"], snr, peak, label, sev, session, "open", None, None, t, "open", 1,
                                  g("duration_s"), g("novelty"), pm[1], pm[2], None, None, None, it.text)
        self.conn.executemany(self._event_insert, events)
        existing: dict[str, dict] = {}
        ids = [a for a in latest if a not in fast]
        for i in range(0, len(ids), 500):
            chunk = ids[i: i + 500]
            cur = self.conn.execute(f"SELECT * FROM alerts WHERE alert_id IN ({', '.join('?' * len(chunk))})", chunk)
            names = [d[0] for d in cur.description]
            for row in cur:
                existing[row[0]] = dict(zip(names, row))
        early_evidence: dict[str, tuple] = {}
        if self._has_evidence:
            all_ids = list(latest)
            for i in range(0, len(all_ids), 500):
                chunk = all_ids[i: i + 500]
                for a, sha, path in self.conn.execute(
                        f"SELECT alert_id, sha512, path FROM evidence WHERE alert_id IN ({', '.join('?' * len(chunk))})", chunk):
                    early_evidence[a] = (sha, path)
        rows = []
        if early_evidence:
            for alert_id, (sha, path) in early_evidence.items():
                row = fast.get(alert_id)
                if row is not None:
                    fast[alert_id] = row[:15] + (sha, path) + row[17:]
        rows.extend(fast.values())
        if feed is not None:
            for alert_id in fast:
                feed.append({**self._annotate(latest[alert_id][0], now, recv), "state": "open"})
        evidence_rows = []
        for alert_id, its in latest.items():
            if alert_id in fast:
                continue
            row = existing.get(alert_id)
            if len(its) > 1:
                its.sort(key=lambda x: x.seq)
            for it in its:
                r = it.record
                skew = round(now - it.sent_time, 3)
                if row is None:
                    row = dict.fromkeys(ALERT_COLS)
                    row["alert_id"] = alert_id
                    row["received_time"] = recv
                    row["first_event_time"] = r["time"]
                    row["events"] = 0
                    if alert_id in early_evidence:
                        row["evidence_sha512"], row["evidence_path"] = early_evidence[alert_id]
                event = r["event"]
                row.update(
                    site=it.site, receiver=r["receiver"], agent=it.agent, agent_time=r["time"], last_received_time=recv,
                    center_hz=r["center_hz"], bandwidth_hz=r["bandwidth_hz"], snr_db=r.get("snr_db"),
                    peak_dbfs=r.get("peak_dbfs"), label=r.get("label"), severity=r.get("severity"),
                    session=r.get("session"), state="closed" if event == "close" else "open",
                    last_event=event, events=(row["events"] or 0) + 1, duration_s=r.get("duration_s"),
                    novelty=r.get("novelty"), clock_skew_s=skew, clock_skewed=int(abs(skew) > self.skew_limit_s),
                    record=it.text)
                evd = r.get("evidence")
                if evd and evd.get("sha512"):
                    row["evidence_sha512"] = evd["sha512"]
                    row["evidence_path"] = evd.get("path")
                    evidence_rows.append({"sha512": evd["sha512"], "alert_id": alert_id, "site": it.site,
                                          "receiver": r["receiver"], "path": evd.get("path"), "bytes": evd.get("bytes"),
                                          "agent_time": r["time"], "received_time": recv, "agent": it.agent})
                if feed is not None:
                    feed.append({**self._annotate(it, now, recv), "state": row["state"]})
            rows.append(tuple(row[c] for c in ALERT_COLS))
        self.conn.executemany(self._alert_upsert, rows)
        if evidence_rows:
            self.db["evidence"].insert_all(evidence_rows, pk="sha512", ignore=True)
            self._has_evidence = True

    def _ingest_health(self, items: list[Item], now: float, recv: str, feed: list[dict]) -> None:
        rows = []
        for it in items:
            r = it.record
            rows.append((it.agent, it.seq, it.site, r.get("receiver"), r["kind"], r["severity"], r["message"], r["time"],
                         recv, round(now - it.sent_time, 3), _dumps({**r, "site": it.site})))
            feed.append(self._annotate(it, now, recv))
            if r["kind"] == "start":
                sessions = [{"site": it.site, "name": s["name"], "start": s.get("start"), "end": s.get("end"), "agent": it.agent}
                            for s in r.get("sessions") or []]
                if sessions:
                    self.db["sessions"].insert_all(sessions, pk=("site", "name"), replace=True)
            if r["kind"] in ("receiver_lost", "receiver_regained") and r.get("receiver"):
                on = r["kind"] == "receiver_regained"
                if self._rx_online.get((it.site, r["receiver"])) != on:
                    self._note_presence([{"site": it.site, "receiver": r["receiver"], "online": on, "time": recv,
                                          "agent": it.agent}], r["kind"])
                self.conn.execute(
                    "INSERT INTO receivers (site, receiver, online, last_heartbeat, agent) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(site, receiver) DO UPDATE SET online = excluded.online",
                    (it.site, r["receiver"], int(on), recv, it.agent))
                self._rx_online[(it.site, r["receiver"])] = on
        self.conn.executemany(
            f"INSERT OR IGNORE INTO health ({', '.join(HEALTH_COLS)}) VALUES ({', '.join('?' * len(HEALTH_COLS))})", rows)

    def _ingest_evidence(self, items: list[Item], now: float, recv: str, feed: list[dict]) -> None:
        rows = []
        for it in items:
            r = it.record
            rows.append({"sha512": r["sha512"], "alert_id": r["alert_id"], "site": it.site, "receiver": r.get("receiver"),
                         "path": r["path"], "bytes": r["bytes"], "agent_time": r["time"], "received_time": recv, "agent": it.agent})
            self.conn.execute("UPDATE alerts SET evidence_sha512 = ?, evidence_path = ? WHERE alert_id = ? AND site = ?",
                              (r["sha512"], r["path"], r["alert_id"], it.site))
            feed.append(self._annotate(it, now, recv))
        self.db["evidence"].insert_all(rows, pk="sha512", ignore=True)
        self._has_evidence = True

    def _ingest_dispositions(self, items: list[Item], recv: str, feed: list[dict]) -> None:
        for it in items:
            r = it.record
            self.conn.execute(
                "INSERT OR IGNORE INTO dispositions (console, seq, alert_id, operator, disposition, note, time, received_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (it.agent, it.seq, r["alert_id"], r["operator"], r["disposition"], r["note"], r["time"], recv))
            self.conn.execute("UPDATE alerts SET disposition = ?, operator = ?, disposition_time = ? WHERE alert_id = ?",
                              (r["disposition"], r["operator"], r["time"], r["alert_id"]))
            feed.append({**r, "console": it.agent, "seq": it.seq, "received_time": recv})

    def _touch_sites(self, items: list[Item], beats: list[Item], now: float, recv: str,
                     health: list[Item] = ()) -> list[dict]:
        """Every record from an agent is a sign of life; heartbeats also carry receiver state (a
        receiver heartbeat's ``online``; a lost receiver keeps sending ``online: false``). A heartbeat
        sent before a ``receiver_lost``/``receiver_regained`` of the same batch does not undo it."""
        changes = []
        sites: dict[str, Item] = {}
        for it in items:
            if it.role == "agent" and it.site:
                sites[it.site] = it
        if not sites:
            return changes
        last_beat: dict[str, Item] = {it.site: it for it in beats}
        rows = []
        for site, it in sites.items():
            self._last_seen[site] = now
            skew = round(now - it.sent_time, 3)
            beat = last_beat.get(site)
            rows.append((site, recv, beat.record["time"] if beat else None, it.agent, recv, skew,
                         int(abs(skew) > self.skew_limit_s), _dumps(beat.record) if beat else None))
            if not self._online.get(site):
                self._online[site] = True
                changes.append({"type": "site", "site": site, "online": True, "agent": it.agent, "time": recv})
        self.conn.executemany(
            "INSERT INTO sites (site, online, last_heartbeat, last_heartbeat_agent_time, agent, first_seen, clock_skew_s, "
            "clock_skewed, last_health) VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(site) DO UPDATE SET "
            "online = 1, last_heartbeat = ?2, last_heartbeat_agent_time = COALESCE(?3, last_heartbeat_agent_time), agent = ?4, "
            "clock_skew_s = ?6, clock_skewed = ?7, last_health = COALESCE(?8, last_health)", rows)
        rx_rows = {}
        said: dict[tuple, int] = {}  # (agent, site, receiver) -> seq of the batch's last receiver_lost/regained
        for it in health:
            if it.record["kind"] in ("receiver_lost", "receiver_regained"):
                k = (it.agent, it.site, it.record.get("receiver"))
                said[k] = max(it.seq, said.get(k, -1))
        for it in sorted(beats, key=lambda x: x.seq) if said else beats:
            r = it.record
            entries = [e for e in (r.get("receivers") or []) if isinstance(e, dict)]
            if r.get("receiver"):
                entries.append({"receiver": r["receiver"], "revisit_s": r.get("revisit_s"), "online": r.get("online", True),
                                "planned_revisit_s": r.get("planned_revisit_s"), "noise_floor_db": r.get("noise_floor_db")})
            for e in entries:
                key = (it.site, e["receiver"])
                online = _said_online(e.get("online", True))
                if said and it.seq < said.get((it.agent, it.site, e["receiver"]), -1):
                    online = self._rx_online.get(key, online)  # older than what the agent said since
                rx_rows[key] = (it.site, e["receiver"], int(online), recv, e.get("revisit_s"), e.get("planned_revisit_s"),
                                e.get("noise_floor_db"), it.agent)
                self._rx_last[key] = now
                if self._rx_online.get(key) != online:
                    self._rx_online[key] = online
                    changes.append({"type": "receiver", "site": it.site, "receiver": e["receiver"], "online": online, "time": recv,
                                    "agent": it.agent, **({} if online else {"reason": "receiver_lost"})})
        if rx_rows:
            self.conn.executemany(
                "INSERT INTO receivers (site, receiver, online, last_heartbeat, revisit_s, planned_revisit_s, noise_floor_db, agent) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(site, receiver) DO UPDATE SET online = ?3, last_heartbeat = ?4, "
                "revisit_s = ?5, planned_revisit_s = ?6, noise_floor_db = ?7, agent = ?8", list(rx_rows.values()))
            if len(self._rx_online) != self._rx_counted:  # receivers are only ever added: recount when one was
                self._rx_counts = defaultdict(int)
                for site_, _ in self._rx_online:
                    self._rx_counts[site_] += 1
                self._rx_counted = len(self._rx_online)
            self.conn.executemany("UPDATE sites SET receivers = ? WHERE site = ?",
                                  [(self._rx_counts.get(s, 0), s) for s in {k[0] for k in rx_rows}])
        return changes

    def _touch_agents(self, items: list[Item], now: float, recv: str) -> None:
        counts: dict[str, list] = {}
        for it in items:
            c = counts.setdefault(it.agent, [it, 0])
            c[1] += 1
        self.conn.executemany(
            "INSERT INTO agents (name, role, site, first_seen, last_seen, records, rejected, clock_skew_s) "
            "VALUES (?1, ?2, ?3, ?4, ?4, ?5, 0, ?6) ON CONFLICT(name) DO UPDATE SET role = ?2, site = ?3, last_seen = ?4, "
            "records = records + ?5, clock_skew_s = ?6",
            [(a, it.role, it.site, recv, n, round(now - it.sent_time, 3)) for a, (it, n) in counts.items()])

    def note_rejects(self, rejects: dict[str, tuple[int, str]], info: dict[str, tuple[str, str | None, str]], now: float | None = None) -> None:
        """Count refused frames per sender: ``rejects`` maps name -> (count, last reason)."""
        if not rejects:
            return
        recv = iso(time.time() if now is None else now)
        with self.db.atomic():
            self.conn.executemany(
                "INSERT INTO agents (name, role, site, public_key, first_seen, last_seen, records, rejected, last_reject) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0, ?6, ?7) ON CONFLICT(name) DO UPDATE SET rejected = rejected + ?6, "
                "last_reject = ?7, last_seen = ?5",
                [(name, info[name][1], info[name][2], info[name][0], recv, n, reason) for name, (n, reason) in rejects.items()])

    def note_keys(self, entries: list[tuple[str, str, str | None, str]]) -> None:
        """Record (name, role, site, public_key) of every allowed key in ``agents``."""
        with self.db.atomic():
            self.conn.executemany(
                "INSERT INTO agents (name, role, site, public_key, records, rejected) VALUES (?1, ?2, ?3, ?4, 0, 0) "
                "ON CONFLICT(name) DO UPDATE SET role = ?2, site = ?3, public_key = ?4", entries)

    # --- liveness -----------------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[dict]:
        """Mark sites and receivers offline that have not been heard from; return the state changes."""
        now = time.time() if now is None else now
        changes = []
        if self._run_id is not None and now - self._run_alive >= RUN_ALIVE_S:
            self._run_alive = now
            with self.db.atomic():
                self.conn.execute("UPDATE collector_runs SET last_alive = ? WHERE id = ?", (iso(now), self._run_id))
        down_sites = [s for s, on in self._online.items() if on and now - self._last_seen.get(s, 0.0) > self.offline_after_s]
        down_rx = [k for k, on in self._rx_online.items() if on and now - self._rx_last.get(k, 0.0) > self.offline_after_s]
        if not down_sites and not down_rx:
            return changes
        t = iso(now)
        with self.db.atomic():
            for s in down_sites:
                self._online[s] = False
                self.conn.execute("UPDATE sites SET online = 0 WHERE site = ?", (s,))
                changes.append({"type": "site", "site": s, "online": False, "time": t})
            for site, rx in down_rx:
                self._rx_online[(site, rx)] = False
                self.conn.execute("UPDATE receivers SET online = 0 WHERE site = ? AND receiver = ?", (site, rx))
                changes.append({"type": "receiver", "site": site, "receiver": rx, "online": False, "time": t})
            self._note_presence(changes, "silent")
            if self._presence_rows > PRESENCE_MAX_ROWS * 1.01:
                self.conn.execute("DELETE FROM presence WHERE id <= (SELECT MAX(id) FROM presence) - ?", (PRESENCE_MAX_ROWS,))
                self._presence_rows = PRESENCE_MAX_ROWS
        return changes

    def _note_presence(self, changes: list[dict], reason: str) -> None:
        """One ``presence`` row per online/offline change of a site or receiver (inside a transaction)."""
        if changes:
            self.conn.executemany(
                "INSERT INTO presence (site, receiver, online, time, agent, reason) VALUES (?, ?, ?, ?, ?, ?)",
                [(c["site"], c.get("receiver"), int(bool(c["online"])), c["time"], c.get("agent"), c.get("reason", reason))
                 for c in changes])
            self._presence_rows += len(changes)

    # --- reading (console requests) ------------------------------------------------------------------------

    def sites(self) -> list[dict]:
        rxs = defaultdict(list)
        for r in self.db["receivers"].rows:
            rxs[r["site"]].append({k: r[k] for k in ("receiver", "online", "last_heartbeat", "revisit_s",
                                                      "planned_revisit_s", "noise_floor_db")})
        out = []
        for r in self.db["sites"].rows_where(order_by="site"):
            r = dict(r)
            r.pop("last_health", None)
            r["online"] = bool(r["online"])
            r["receivers"] = sorted(rxs.get(r["site"], []), key=lambda x: x["receiver"])
            for x in r["receivers"]:
                x["online"] = bool(x["online"])
            out.append({"type": "site", **r})
        return out

    def history_page(self, since_time: str | None, part: str, after: str | None, limit: int) -> tuple[list[dict], str | None]:
        """One page of history: ``part`` is alerts, health, dispositions, evidence or sessions."""
        since = since_time or ""
        if part == "alerts":
            rows = self.conn.execute(
                "SELECT * FROM alerts WHERE last_received_time >= ? AND alert_id > ? ORDER BY alert_id LIMIT ?",
                (since, after or "", limit))
            names = [d[0] for d in rows.description]
            out = []
            for row in rows:
                d = dict(zip(names, row))
                rec = json.loads(d.pop("record"))
                rec.update({k: v for k, v in d.items() if k not in rec or k in ("site", "received_time")})
                rec["type"] = "alert"
                out.append(rec)
            nxt = out[-1]["alert_id"] if len(out) == limit else None
            return out, nxt
        if part == "health":
            key = int(after or 0)
            rows = self.conn.execute(
                "SELECT rowid, record, agent, seq, received_time FROM health WHERE received_time >= ? AND rowid > ? "
                "ORDER BY rowid LIMIT ?", (since, key, limit)).fetchall()
            out = [{**json.loads(rec), "agent": a, "seq": s, "received_time": t} for _, rec, a, s, t in rows]
            return out, (str(rows[-1][0]) if len(rows) == limit else None)
        if part == "dispositions":
            rows = list(self.db["dispositions"].rows_where("received_time >= ? AND id > ?", [since, int(after or 0)],
                                                            order_by="id", limit=limit))
            out = [{"type": "disposition", **r} for r in rows]
            return out, (str(rows[-1]["id"]) if len(rows) == limit else None)
        if part == "evidence":
            rows = list(self.db["evidence"].rows_where("received_time >= ? AND sha512 > ?", [since, after or ""],
                                                        order_by="sha512", limit=limit))
            return [{"type": "evidence", **r} for r in rows], (rows[-1]["sha512"] if len(rows) == limit else None)
        if part == "sessions":
            return [{"type": "session", **r} for r in self.db["sessions"].rows], None
        raise StoreError(f"unknown history part {part!r}")
