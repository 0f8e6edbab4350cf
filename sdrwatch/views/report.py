"""The session duty report (值班报告): one self-contained HTML file, and a PDF through headless Chromium.

What it holds, from the collector's database (read-only; tables in docs/network.md):
sites and their uptime in the session (from the collector's ``presence`` history of online/offline
changes, with every offline spell longer than a minute, the time the collector itself was not
running counted as not watched; for a database without it, from heartbeat rows or agent start/stop
records, and the report says which), receiver health (with each receiver's uptime and its own
offline spells) and faults,
every alert of the session with its latest disposition and operator, the emissions logged rather
than alerted (covered by the band plan or a declared emitter: their entry, no disposition needed), the
alert timeline (across the session, with the sites' offline spells), the
spectrum and evidence spectrogram of the top alerts (embedded PNG), and every evidence hash with
whether the file at hand still matches it. When the records are sealed the report prints the
fingerprint of the sealed manifest.

Print layout: A4, one section per page (summary/sites/health; alerts and timeline; one page per
top alert; evidence hashes), so the PDF has ``3 + top alerts`` pages when each section fits.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import html
import json
import math
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SdrwatchError
from ..net.schema import utc_iso
from . import plots

TOP_ALERTS = 3
#: offline spells longer than this are listed in the report (shorter ones still count against uptime)
SPELL_LIST_MIN_S = 60.0
#: a receiver's first heartbeat after its site is heard again comes within a heartbeat or two (s)
RX_GRACE_S = 12.0
#: what began an offline spell: the ``reason`` of a site's presence row, or one of the two the report adds itself
SPELL_CAUSES = {
    "silent": "nothing heard from it",
    "not_heard": "not heard from yet in the session",
    "no_record": "no record at the collector after this",
    "collector_down": "collector down: not watched",
    "receiver_lost": "the agent reported the receiver lost",
}
DISPOSITION_NAMES = {"cheating": "cheating", "declared": "declared emitter", "false_alarm": "false alarm", "other": "other", "ack": "acknowledged"}


# --------------------------------------------------------------------------------------------------
# data


def _t(value) -> float | None:
    return plots._parse_time(value)


def _iso(t: float | None) -> str:
    return "" if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _hms(t: float | None) -> str:
    return "" if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%H:%M:%S")


def uptime(heartbeats_s: Sequence[float], start_s: float, end_s: float) -> float:
    """Share of [start, end] covered by heartbeats: each heartbeat vouches for half the nominal
    interval (the median gap) either side of it. 0 without heartbeats."""
    hb = np.sort(np.asarray([t for t in heartbeats_s if t is not None], dtype=float))
    if end_s <= start_s or not len(hb):
        return 0.0
    interval = float(np.median(np.diff(hb))) if len(hb) > 1 else 60.0
    lo = np.clip(hb - interval / 2, start_s, end_s)
    hi = np.clip(hb + interval / 2, start_s, end_s)
    covered, cur_lo, cur_hi = 0.0, lo[0], hi[0]
    for a, b in zip(lo[1:], hi[1:]):
        if a > cur_hi:
            covered += cur_hi - cur_lo
            cur_lo, cur_hi = a, b
        else:
            cur_hi = max(cur_hi, b)
    covered += cur_hi - cur_lo
    return float(min(1.0, covered / (end_s - start_s)))


def contact_uptime(intervals: Sequence[tuple[float, float]], start_s: float, end_s: float) -> float:
    """Share of [start, end] covered by the union of contact intervals (agent start to stop, or to
    the last contact), for a collector that keeps no heartbeat history."""
    if end_s <= start_s:
        return 0.0
    clipped = sorted((max(a, start_s), min(b, end_s)) for a, b in intervals if b > start_s and a < end_s)
    covered, cur = 0.0, None
    for a, b in clipped:
        if cur is None or a > cur[1]:
            if cur is not None:
                covered += cur[1] - cur[0]
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    if cur is not None:
        covered += cur[1] - cur[0]
    return float(min(1.0, covered / (end_s - start_s)))


def presence_uptime(changes: Sequence[tuple[float, bool, str | None]], start_s: float, end_s: float,
                    known_until_s: float | None = None, down: Sequence[tuple[float, float]] = ()) -> tuple[float, list[dict]]:
    """Share of [start_s, end_s] that a site (or one receiver) was online, and its offline spells,
    from the collector's ``presence`` rows (one row per online/offline change).

    Parameters
    ----------
    changes : sequence of (time_s, online, reason)
        Presence rows of one site or receiver, in the order written (time, then id), Unix seconds:
        the last row at or before ``start_s`` if there is one, the rows inside the window, and, when
        there is neither, the first row after the window. The state at ``start_s`` is that of the
        last row at or before it; with none, the opposite of the first row (a row records a change).
    start_s, end_s : float
        The window, Unix seconds.
    known_until_s : float, optional
        The collector's last record, Unix seconds: nothing is known after it, so online time stops
        there and the rest of the window is offline with cause ``no_record``. Default ``end_s``.
    down : sequence of (from_s, to_s)
        When the collector was not running (:func:`collector_down`): offline whatever the rows say,
        cause ``collector_down`` (nobody watched).

    Returns
    -------
    uptime : float
        Online share of the window, 0 to 1 (0 for an empty window or no rows).
    spells : list of dict
        Every offline period inside the window, in order: ``start_s``, ``end_s``, ``length_s``,
        ``cause`` (the ``reason`` of the row that began it, ``not_heard`` before the first row,
        ``no_record`` after the collector's last record, ``collector_down``) and ``open`` (still
        offline at ``end_s``).

    >>> presence_uptime([(0.0, True, "heard"), (600.0, False, "silent"), (1200.0, True, "heard")], 0.0, 3600.0)[0]
    0.8333333333333334
    """
    if end_s <= start_s or not changes:
        return 0.0, []
    until = end_s if known_until_s is None else min(end_s, max(start_s, known_until_s))
    before = [c for c in changes if c[0] <= start_s]
    inside = [c for c in changes if start_s < c[0] < end_s]
    if before:
        on, cause = bool(before[-1][1]), before[-1][2]
    else:
        first = changes[0] if not inside else inside[0]
        on, cause = not bool(first[1]), "not_heard"
    segments = []  # (from_s, to_s, online, cause)
    t = start_s
    for tc, online, reason in inside:
        if bool(online) == on:
            continue
        segments.append((t, tc, on, cause))
        t, on, cause = tc, bool(online), reason
    segments.append((t, end_s, on, cause))
    cut = []
    for a, b, online, why in segments:
        if b <= until or not online:
            cut.append((a, b, online, why))
        else:
            if a < until:
                cut.append((a, until, True, why))
            cut.append((max(a, until), b, False, "no_record"))
    gaps = sorted((max(a, start_s), min(b, end_s)) for a, b in down if b > start_s and a < end_s)
    if gaps:
        over = []
        for a, b, online, why in cut:
            t = a
            for ga, gb in gaps:
                if gb <= t or ga >= b:
                    continue
                if ga > t:
                    over.append((t, ga, online, why))
                over.append((max(t, ga), min(b, gb), False, "collector_down"))
                t = min(b, gb)
            if t < b:
                over.append((t, b, online, why))
        cut = []
        for seg in over:  # pieces of one state and cause side by side are one
            if cut and cut[-1][2:] == seg[2:] and cut[-1][1] >= seg[0]:
                cut[-1] = (cut[-1][0], seg[1], *seg[2:])
            elif seg[1] > seg[0]:
                cut.append(seg)
    online_s = sum(b - a for a, b, online, _ in cut if online)
    spells = [{"start_s": a, "end_s": b, "length_s": b - a, "cause": why, "open": b >= end_s}
              for a, b, online, why in cut if not online and b > a]
    return float(min(1.0, online_s / (end_s - start_s))), spells


def presence_changes(conn, site: str, start_s: float, end_s: float, receiver: str | None = None) -> list[tuple[float, bool, str | None]]:
    """A site's own ``presence`` rows (``receiver`` null), or with ``receiver`` that receiver's, that
    decide its state in [start_s, end_s], as :func:`presence_uptime` takes them: the last row at or
    before ``start_s``, every row inside, and, when there is neither, the first row after. [] when
    the database has no presence table (a collector from before it) or no row for it."""
    if not plots.has_table(conn, "presence"):
        return []
    lo, hi = utc_iso(start_s), utc_iso(end_s)
    if receiver is None:
        mine, key = "select online, time, reason from presence where site = ? and (receiver is null or receiver = '')", (site,)
    else:
        mine, key = "select online, time, reason from presence where site = ? and receiver = ?", (site, receiver)
    rows = conn.execute(f"{mine} and time <= ? order by time desc, id desc limit 1", (*key, lo)).fetchall()
    rows += conn.execute(f"{mine} and time > ? and time < ? order by time, id", (*key, lo, hi)).fetchall()
    if not rows:
        rows = conn.execute(f"{mine} and time >= ? order by time, id limit 1", (*key, hi)).fetchall()
    return [(t, bool(online), reason) for online, time_, reason in rows if (t := _t(time_)) is not None]


def collector_down(conn) -> list[tuple[float, float]] | None:
    """When the collector was not running (Unix s), from its ``collector_runs`` rows: from each run's
    end (its clean stop, or the last ``last_alive`` stamp of a run that was killed) to the next run's
    start, and after a last run that stopped cleanly (to infinity). A last run without a stop is
    taken as still running (time after its stamp is the report's "no record"). None when the
    database has no run rows (a collector from before them): downtime is then not known."""
    if not plots.has_table(conn, "collector_runs"):
        return None
    runs = []
    for started, alive, stopped in conn.execute("select started, last_alive, stopped from collector_runs order by started, id"):
        a = _t(started)
        if a is not None:
            runs.append((a, _t(stopped), max(a, _t(alive) or a)))
    if not runs:
        return None
    down = []
    for (a, stopped, alive), (nxt, _, _) in zip(runs, runs[1:]):
        end = stopped if stopped is not None else alive
        if nxt > end:
            down.append((end, nxt))
    if runs[-1][1] is not None:
        down.append((runs[-1][1], math.inf))
    return down


def last_record_time(conn) -> float | None:
    """When the collector last wrote anything it heard or noticed (Unix s): the newest of its presence
    rows, site contacts, health records, alert events and its own running stamp. None for an empty
    database."""
    best = None
    for table, column in (("presence", "time"), ("sites", "last_heartbeat"), ("receivers", "last_heartbeat"),
                          ("health", "received_time"), ("alerts", "last_received_time"), ("alert_events", "received_time"),
                          ("collector_runs", "last_alive")):
        if not plots.has_table(conn, table) or column not in {r[1] for r in conn.execute(f"pragma table_info([{table}])")}:
            continue
        t = _t(conn.execute(f"select max([{column}]) from [{table}]").fetchone()[0])
        if t is not None and (best is None or t > best):
            best = t
    return best


def resolve_evidence(path: str | None, roots: Sequence[Path]) -> Path | None:
    """The evidence's data file (``.sigmf-data``) if it can be found: as given, or under one of ``roots``."""
    if not path:
        return None
    p = Path(path)
    stem = p.name.split(".sigmf")[0]
    candidates = [p] + [r / p for r in roots] + [r / p.name for r in roots] + [r / "evidence" / p.name for r in roots]
    for c in candidates:
        data = c.with_name(stem + ".sigmf-data")
        if data.is_file() and data.with_name(stem + ".sigmf-meta").is_file():
            return data
    return None


def file_digest(path: Path, algorithm: str = "sha512") -> str:
    """Hex digest of a file's bytes (read 1 MiB at a time): SHA-512 for evidence, SHA-256 for seals."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ReportData:
    db_path: Path
    session: str
    sites: list[dict]
    receivers: list[dict]
    faults: list[dict]
    alerts: list[dict]
    evidence: list[dict]
    timeline: dict
    start_s: float | None
    end_s: float | None
    logged: list[dict] = field(default_factory=list)  # covered by the band plan or a [[declare]] entry: not alerts
    last_record_s: float | None = None  # the collector's last record of anything (Unix s)
    collector_down: list | None = None  # (from_s, to_s) the collector was not running; None: not known (no run rows)
    generated: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))

    @property
    def top_alerts(self) -> list[dict]:
        ranked = sorted(self.alerts, key=lambda a: (-(a.get("severity") or 0.0), a.get("t") or 0.0))
        return [a for a in ranked if a.get("kind") != "health"][:TOP_ALERTS]


@contextlib.contextmanager
def _readable(db_path: str | Path):
    """SQLite errors past opening (a damaged page, a table not as the collector writes it) as one line."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise SdrwatchError(f"{db_path}: cannot read the collector database ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def load_report_data(db_path: str | Path, session: str, evidence_roots: Sequence[Path] = (), *,
                     now_s: float | None = None) -> ReportData:
    """Everything the report shows about one session, from the collector's database.

    Uptime per site comes from the first of these the database has for it: ``presence`` (the
    collector's online/offline changes; see :func:`presence_uptime`), heartbeat rows in ``health``
    (:func:`uptime`), or the agent's start and stop records (:func:`contact_uptime`). With presence, a
    session that ended before ``now_s`` (Unix s, default the clock) is counted whole, time after the
    collector's last record as offline; a session still running is counted to that last record."""
    with _readable(db_path):
        return _load_report_data(Path(db_path), session, evidence_roots, now_s)


def _load_report_data(db_path: Path, session: str, evidence_roots: Sequence[Path], now_s: float | None) -> ReportData:
    import time

    now_s = time.time() if now_s is None else float(now_s)
    timeline = plots.timeline_from_db(db_path, session)  # also refuses an unknown session
    conn = plots.open_db(db_path)
    try:
        sessions = [s for s in plots.table_rows(conn, "sessions") if s.get("name") == session]
        site_rows = {r["site"]: r for r in plots.table_rows(conn, "sites")}
        receivers = plots.table_rows(conn, "receivers")
        health = plots.table_rows(conn, "health")
        dispositions = plots.table_rows(conn, "dispositions")
        evidence_rows = plots.table_rows(conn, "evidence")
        last_rx = conn.execute("select max(received_time) from health").fetchone()[0] if plots.table_rows(conn, "health", "limit 1") else None
        last_record = last_record_time(conn)
        everything = sorted(timeline["alerts"], key=lambda a: a.get("t") or 0.0)
        now = _t(last_rx) or max((a.get("t_end") or a.get("t") or 0.0 for a in everything), default=None)
        starts = [_t(s.get("start")) for s in sessions if _t(s.get("start")) is not None]
        ends = [_t(s.get("end")) for s in sessions if _t(s.get("end")) is not None]
        span_lo = min(starts) if starts else min((a["t"] for a in everything), default=None)
        span_hi = max(ends) if ends else now
        site_names = sorted({s.get("site") for s in sessions if s.get("site")} | {a.get("site") for a in everything if a.get("site")})
        down = collector_down(conn)
        windows, presence, rx_presence = {}, {}, {}
        for name in site_names:
            mine = [s for s in sessions if s.get("site") == name]
            lo = min((_t(s.get("start")) for s in mine if _t(s.get("start")) is not None), default=span_lo)
            hi = max((_t(s.get("end")) for s in mine if _t(s.get("end")) is not None), default=span_hi)
            # presence and agent runs: a session over by now counts whole, one still running to the last record
            ended = hi is not None and hi <= now_s and bool(ends)
            hi_p = hi if ended or last_record is None else (last_record if hi is None else min(hi, last_record))
            windows[name] = (lo, hi, hi_p)
            if lo is not None and hi_p is not None and hi_p > lo:
                presence[name] = presence_changes(conn, name, lo, hi_p)
                if presence[name]:
                    rx_names = {r.get("receiver") for r in receivers if r.get("site") == name} | {r[0] for r in conn.execute(
                        "select distinct receiver from presence where site = ? and receiver is not null and receiver != ''", (name,))}
                    for rx in sorted(x for x in rx_names if x):
                        rx_presence[(name, rx)] = presence_changes(conn, name, lo, hi_p, rx)
    finally:
        conn.close()
    roots = [db_path.parent, *map(Path, evidence_roots)]
    alerts = [a for a in everything if not a.get("covered_by")]
    logged = [a for a in everything if a.get("covered_by")]
    by_alert: dict[str, list[dict]] = {}
    for d in sorted(dispositions, key=lambda d: (_t(d.get("time")) or 0.0, d.get("id") or 0)):
        by_alert.setdefault(d.get("alert_id"), []).append(d)
    for a in alerts:
        hist = by_alert.get(a["alert_id"], [])
        real = [d for d in hist if d.get("disposition") != "ack"]
        acks = [d for d in hist if d.get("disposition") == "ack"]
        a["disposition"] = real[-1] if real else None
        a["ack"] = acks[-1] if acks else None
        a["dispositions"] = hist
    sites = []
    for name in site_names:
        lo, hi, hi_p = windows[name]
        hi_seen = min(hi, now) if (hi is not None and now is not None and now > (lo or 0)) else hi
        beats = [_t(h.get("agent_time")) or _t(h.get("received_time")) for h in health if h.get("site") == name and h.get("kind") == "heartbeat"]
        beats = [b for b in beats if b is not None and lo is not None and hi is not None and lo - 120 <= b <= hi + 120]
        row = site_rows.get(name, {})
        method = "heartbeats"
        changes = presence.get(name)
        spells: list[dict] | None = None
        rx_up: list[dict] | None = None
        counted_to = hi_seen
        if changes:
            method, counted_to = "presence", hi_p
            up, spells = presence_uptime(changes, lo, hi_p, last_record, down or ())
            rx_up = receiver_uptime({rx: ch for (site, rx), ch in rx_presence.items() if site == name and ch},
                                    lo, hi_p, last_record, down or (), spells)
        elif lo is None or not hi_seen:
            up = 0.0
        elif beats:
            up = uptime(beats, lo, hi_seen)
        else:
            # no heartbeat history: each agent run counts from its start record to its stop record (or
            # to the site's last contact while it still runs)
            method, counted_to = "agent runs", hi_p
            marks = sorted(((_t(h.get("agent_time")) or _t(h.get("received_time")), h.get("kind")) for h in health
                            if h.get("site") == name and h.get("kind") in ("start", "stop")), key=lambda x: x[0] or 0.0)
            last = _t(row.get("last_heartbeat"))
            intervals, opened = [], None
            for t, kind in marks:
                if t is None:
                    continue
                if kind == "start":
                    if opened is not None:
                        intervals.append((opened, t))
                    opened = t
                elif opened is not None:
                    intervals.append((opened, t))
                    opened = None
            if opened is not None:
                intervals.append((opened, max(opened, last or opened)))
            up = contact_uptime(intervals, lo, hi_p) if hi_p is not None else 0.0
        sites.append({"site": name, "start": lo, "end": hi, "uptime": up, "uptime_method": method, "counted_to": counted_to,
                      "offline_s": None if spells is None else sum(x["length_s"] for x in spells),
                      "offline_spells": None if spells is None else [x for x in spells if x["length_s"] > SPELL_LIST_MIN_S],
                      "all_offline_spells": spells,
                      "receivers": rx_up, "heartbeats": len(beats), "online": row.get("online"), "last_heartbeat": _t(row.get("last_heartbeat")),
                      "alerts": sum(1 for a in alerts if a.get("site") == name),
                      "logged": sum(1 for a in logged if a.get("site") == name)})
    evidence = []
    seen = set()
    ev_by_sha = {e.get("sha512"): e for e in evidence_rows}
    for a in everything:
        sha = a.get("evidence_sha512")
        if not sha or sha in seen:
            continue
        seen.add(sha)
        row = ev_by_sha.get(sha, {})
        found = resolve_evidence(a.get("evidence_path") or row.get("path"), roots)
        state = "not at the collector"
        if found is not None:
            state = "matches" if file_digest(found) == sha else "DIFFERS"
        a["evidence_file"] = found
        evidence.append({"alert_id": a["alert_id"], "site": a.get("site"), "path": a.get("evidence_path") or row.get("path"),
                         "bytes": row.get("bytes"), "sha512": sha, "state": state, "file": found})
    return ReportData(db_path, session, sites, [r for r in receivers if r.get("site") in site_names], timeline["faults"], alerts, evidence,
                      timeline, span_lo, span_hi, logged=logged, last_record_s=last_record, collector_down=down)


def receiver_uptime(changes: dict[str, list], start_s: float, end_s: float, known_until_s: float | None,
                    down: Sequence[tuple[float, float]], site_spells: Sequence[dict]) -> list[dict]:
    """Each receiver's uptime in a site's window from its own presence rows (:func:`presence_uptime`),
    and its offline spells longer than a minute that are its own: a spell counts when more than a
    minute of it falls outside the site's offline spells (a site that goes silent takes its receivers
    with it, and that is the site's spell). The site's spells are held open RX_GRACE_S longer, the
    time a receiver's first heartbeat may follow the site's first record."""
    site_off = [(x["start_s"], x["end_s"] + RX_GRACE_S) for x in site_spells]
    out = []
    for rx, ch in sorted(changes.items()):
        up, spells = presence_uptime(ch, start_s, end_s, known_until_s, down)
        own = []
        for x in spells:
            shared = sum(max(0.0, min(x["end_s"], b) - max(x["start_s"], a)) for a, b in site_off)
            if x["length_s"] - shared > SPELL_LIST_MIN_S:
                own.append(x)
        out.append({"receiver": rx, "uptime": up, "offline_s": sum(x["length_s"] for x in spells), "offline_spells": own})
    return out


def site_uptime(data: ReportData) -> list[dict]:
    """Each site's uptime as plain JSON: ``site``, ``uptime`` (0-1), ``method`` (presence, heartbeats
    or agent runs), ``counted_to`` (UTC) and, with presence, ``offline_s``, the ``offline_spells``
    longer than a minute (``start``, ``end`` UTC, ``length_s``, ``cause``, ``open``) and ``receivers``
    (each ``receiver``, ``uptime``, ``offline_s`` and its own ``offline_spells``, as the report's
    receiver spells table lists them); else those are null."""
    def utc(t):
        return None if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def spells_json(spells):
        return None if spells is None else [{"start": utc(x["start_s"]), "end": utc(x["end_s"]), "length_s": round(x["length_s"], 1),
                                             "cause": x["cause"], "open": x["open"]} for x in spells]

    out = []
    for s in data.sites:
        rxs = s.get("receivers")
        out.append({"site": s["site"], "uptime": round(s["uptime"], 4), "method": s["uptime_method"], "counted_to": utc(s.get("counted_to")),
                    "offline_s": None if s.get("offline_s") is None else round(s["offline_s"], 1),
                    "offline_spells": spells_json(s.get("offline_spells")),
                    "receivers": None if rxs is None else [
                        {"receiver": r["receiver"], "uptime": round(r["uptime"], 4), "offline_s": round(r["offline_s"], 1),
                         "offline_spells": spells_json(r["offline_spells"])} for r in rxs]})
    return out


def _spectrum_hop(conn, alert: dict) -> tuple[plots.SpectrumHop, str] | None:
    """The collector's spectrum snapshot nearest the alert (same site, covering its frequency)."""
    rows = plots.table_rows(conn, "spectra", "where site = ?", (alert.get("site"),))
    best = None
    for r in rows:
        power = decode_spectrum_power(r)
        if power is None or not r.get("start_hz") or not r.get("bin_hz"):
            continue
        f = float(r["start_hz"]) + float(r["bin_hz"]) * np.arange(len(power))
        c = float(alert.get("center_hz") or 0.0)
        if not len(f) or not f[0] <= c <= f[-1]:
            continue
        dt = abs((_t(r.get("time")) or 0.0) - (alert.get("t") or 0.0))
        if best is None or dt < best[0]:
            best = (dt, plots.SpectrumHop(f, power), str(r.get("time") or ""))
    return (best[1], best[2]) if best else None


def decode_spectrum_power(row: dict) -> np.ndarray | None:
    """``power_db`` of a stored snapshot (the wire's base64 uint8 steps, :func:`sdrwatch.net.schema.spectrum_power_db`),
    from the row's columns or its ``record`` JSON; None if it is neither."""
    from ..net.schema import spectrum_power_db

    candidates = [row]
    if isinstance(row.get("record"), str):
        try:
            candidates.append(json.loads(row["record"]))
        except ValueError:
            pass
    for rec in candidates:
        if isinstance(rec, dict) and isinstance(rec.get("power_db"), str) and "power_offset_db" in rec and "power_step_db" in rec:
            try:
                p = np.asarray(spectrum_power_db(rec), dtype=float)
            except (ValueError, TypeError, KeyError):
                continue
            if p.ndim == 1 and len(p):
                return p
    return None


# --------------------------------------------------------------------------------------------------
# HTML


CSS = """
:root { --high: #d62728; --medium: #ff7f0e; --low: #8c8c00; --ink: #1b1b1b; --mute: #666; --rule: #d0d0d0; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "WenQuanYi Micro Hei", "Noto Sans CJK SC", Arial, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1100px; padding: 16px 24px; font-size: 13px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 2px; } h2 { font-size: 16px; margin: 18px 0 6px; border-bottom: 2px solid var(--ink); padding-bottom: 2px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
.sub { color: var(--mute); margin: 0 0 8px; }
.fingerprint { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; background: #f4f4f4; padding: 4px 8px; border-left: 4px solid #3b6ea5; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
th, td { border-bottom: 1px solid var(--rule); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; } thead { display: table-header-group; }
.sev { font-weight: 700; } .sev.high { color: var(--high); } .sev.medium { color: var(--medium); } .sev.low { color: var(--low); }
tr.high td:first-child { border-left: 5px solid var(--high); } tr.medium td:first-child { border-left: 5px solid var(--medium); }
tr.low td:first-child { border-left: 5px solid var(--low); } tr.logged td { color: var(--mute); }
tr.logged td:first-child { border-left: 5px solid #a0a0a0; }
.pending { color: var(--high); font-weight: 600; } .bad { color: var(--high); font-weight: 700; } .ok { color: #2b7a2b; }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 11px; word-break: break-all; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
.facts dt { color: var(--mute); } .facts dd { margin: 0; }
.cards { display: flex; gap: 10px; flex-wrap: wrap; margin: 8px 0; }
.card { border: 1px solid var(--rule); border-radius: 4px; padding: 6px 12px; min-width: 130px; }
.card b { display: block; font-size: 20px; }
figure { margin: 6px 0; } figure img { width: 100%; max-height: 100mm; object-fit: contain; } figcaption { color: var(--mute); font-size: 11px; }
.none { color: var(--mute); font-style: italic; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5px; }
  section.page { break-before: page; }
  section.first { break-before: auto; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  figure img { max-height: 92mm; }
}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _num(value, fmt: str) -> str:
    return "" if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) else format(value, fmt)


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _disposition_cell(a: dict) -> str:
    d = a.get("disposition")
    if d is None:
        ack = a.get("ack")
        if ack:
            return f'<span class="pending">acknowledged, no disposition</span><br><span class="sub">{_e(ack.get("operator"))}, {_e(_hms(_t(ack.get("time"))))}</span>'
        return '<span class="pending">no disposition</span>'
    name = DISPOSITION_NAMES.get(d.get("disposition"), d.get("disposition"))
    note = f'<br>{_e(d.get("note"))}' if d.get("note") else ""
    return f'<b>{_e(name)}</b>{note}'


def logged_groups(logged: Sequence[dict]) -> list[dict]:
    """Logged emissions grouped by site, receiver, covering entry, class and frequency (5 kHz steps),
    so a gate remote pressed all day is one row: how many times, first and last onset, the longest,
    the strongest. Ordered by site, then first onset."""
    groups: dict[tuple, list[dict]] = {}
    for a in logged:
        key = (a.get("site"), a.get("receiver"), a.get("covered_by"), a.get("label"), round(float(a.get("center_hz") or 0.0) / 5e3))
        groups.setdefault(key, []).append(a)
    out = []
    for (site, receiver, entry, label, _), rows in groups.items():
        times = [a["t"] for a in rows if a.get("t") is not None]
        out.append({"site": site, "receiver": receiver, "covered_by": entry, "label": label, "count": len(rows),
                    "center_hz": float(np.median([float(a.get("center_hz") or 0.0) for a in rows])),
                    "bandwidth_hz": max(float(a.get("bandwidth_hz") or 0.0) for a in rows),
                    "first": min(times, default=None), "last": max(times, default=None),
                    "longest_s": max((a["duration_s"] for a in rows if isinstance(a.get("duration_s"), (int, float))), default=None),
                    "snr_db": max((a["snr_db"] for a in rows if isinstance(a.get("snr_db"), (int, float))), default=None)})
    return sorted(out, key=lambda g: (str(g["site"]), g["first"] or 0.0))


def _duration(seconds: float) -> str:
    """A length for people: ``42 s``, ``9 min 49 s``, ``1 h 02 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


#: how each uptime method works, as the report's note under the sites table says it
UPTIME_METHODS = {
    "presence": ("the collector's record of each change between online and offline. A site goes offline when the "
                 "collector has heard nothing from it for its <code>--offline-after</code> time (10 s by default), so a spell "
                 "begins that long after the site's last record, and ends at the first record heard again."),
    "heartbeats": "heartbeat rows in the database, each vouching for half the usual heartbeat interval either side; offline spells are not known.",
    "agent runs": ("the database holds no presence or heartbeat rows for them, so uptime runs from each agent start record "
                   "to its stop record (or the site's last contact): an outage while the agent ran is not seen, and offline spells are not known."),
}


def _uptime_notes(data: ReportData) -> str:
    """The note under the sites table: how each uptime figure in use was made, and nothing else."""
    lines = []
    for method, text in UPTIME_METHODS.items():
        mine = [s for s in data.sites if s.get("uptime_method") == method]
        if not mine:
            continue
        if method == "presence":
            if data.collector_down is None:
                text += (" The collector keeps this record only while it runs, and this database does not say when it ran: time while "
                         "the collector itself was stopped counts in the state it last recorded.")
            else:
                from ..store.db import RUN_ALIVE_S

                text += (" Time while the collector itself was not running (from its record of its own runs, each start, clean stop "
                         f"and a stamp every {RUN_ALIVE_S:g} s) counts as offline: not watched, cause collector down.")
            if any(x["cause"] == "no_record" for s in mine for x in s.get("offline_spells") or ()):
                text += f" Time after the collector's last record ({_e(_iso(data.last_record_s))} UTC) counts as offline."
        running = sorted({_iso(s["counted_to"]) for s in mine if s.get("counted_to") is not None and (s["end"] is None or s["counted_to"] < s["end"] - 0.5)})
        if running and method != "heartbeats":
            text += f" The session is still running: counted to the collector's last record, {_e(', '.join(running))} UTC."
        lines.append(f"Uptime from <b>{_e(method)}</b> ({_e(', '.join(s['site'] for s in mine))}): {text}")
    return '<p class="sub" id="uptime-methods">' + "<br>".join(lines) + "</p>" if lines else ""


def _spells_table(data: ReportData) -> str:
    """Every offline spell longer than a minute of the sites whose uptime comes from presence."""
    known = [s for s in data.sites if s.get("uptime_method") == "presence"]
    unknown = [s["site"] for s in data.sites if s.get("uptime_method") != "presence"]
    out = ['<h3>Offline spells (longer than a minute)</h3>']
    rows = [(s, x) for s in known for x in s.get("offline_spells") or ()]
    if not known:
        out.append('<p class="none">not known: the database has no presence rows for these sites</p>')
        return "".join(out)
    if not rows:
        out.append(f'<p class="none">no site was offline for more than a minute in the session{" (not known for " + _e(", ".join(unknown)) + ")" if unknown else ""}</p>')
        return "".join(out)
    out.append('<table id="offline-spells"><thead><tr><th>site</th><th>offline from (UTC)</th><th>back (UTC)</th><th class="num">length</th>'
               '<th>cause</th></tr></thead><tbody>')
    for s, x in rows:
        out.append(f'<tr><td>{_e(s["site"])}</td><td>{_e(_hms(x["start_s"]))}</td><td>{_spell_back(s, x)}</td><td class="num">{_e(_duration(x["length_s"]))}</td>'
                   f'<td>{_e(_cause(x["cause"]))}</td></tr>')
    out.append("</tbody></table>")
    if unknown:
        out.append(f'<p class="sub">Offline spells are not known for {_e(", ".join(unknown))} (no presence rows).</p>')
    return "".join(out)


def _receiver_spells_table(data: ReportData) -> str:
    """Receiver offline spells of more than a minute of their own (not their site's outage)."""
    known = [s for s in data.sites if s.get("receivers")]
    if not known:
        return ""
    rows = [(s, r, x) for s in known for r in s["receivers"] for x in r["offline_spells"]]
    out = ['<p class="sub" id="receiver-uptime">Receiver uptime from the collector\'s presence record of each receiver in its site\'s '
           'session: offline when the agent reports the receiver lost (its heartbeats then say so too), when no heartbeat of it is heard '
           'for <code>--offline-after</code>, and whenever its site is offline.</p>']
    if not rows:
        out.append('<p class="none">no receiver was offline for more than a minute while its site was online</p>')
        return "".join(out)
    out.append('<h3>Receiver offline spells (more than a minute while the site was online)</h3>'
               '<table id="receiver-offline-spells"><thead><tr><th>site</th><th>receiver</th><th>offline from (UTC)</th><th>back (UTC)</th>'
               '<th class="num">length</th><th>cause</th></tr></thead><tbody>')
    for s, r, x in rows:
        out.append(f'<tr><td>{_e(s["site"])}</td><td>{_e(r["receiver"])}</td><td>{_e(_hms(x["start_s"]))}</td><td>{_spell_back(s, x)}</td>'
                   f'<td class="num">{_e(_duration(x["length_s"]))}</td><td>{_e(_cause(x["cause"], receiver=True))}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _cause(cause: str | None, receiver: bool = False) -> str:
    if receiver and cause == "silent":
        return "no heartbeat of it heard"
    return SPELL_CAUSES.get(cause, cause or "offline")


def _spell_back(s: dict, x: dict) -> str:
    back = _e(_hms(x["end_s"]))
    if x["open"]:
        back = f'<span class="bad">still offline at {back}</span> ({"the session end" if s["end"] is not None and x["end_s"] >= s["end"] - 0.5 else "the last record"})'
    return back


def render_html(data: ReportData, images: dict[str, Path], fingerprint: str | None = None) -> str:
    sev_counts = {name: 0 for _, name, _ in plots.SEVERITY_LEVELS}
    for a in data.alerts:
        sev_counts[plots.severity_level(a.get("severity"))] += 1
    pending = sum(1 for a in data.alerts if a.get("disposition") is None)
    out = [f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>值班报告 Duty report: {_e(data.session)}</title><style>{CSS}</style></head><body>
<section class="page first" id="summary">
<h1>值班报告 · Duty report — session {_e(data.session)}</h1>
<p class="sub">{_e(_iso(data.start_s))} – {_e(_iso(data.end_s))} UTC · {len(data.sites)} site(s) · generated {_e(data.generated)} by sdrwatch from {_e(data.db_path.name)}</p>"""]
    if fingerprint:
        out.append(f'<p class="fingerprint" id="fingerprint">Sealed: manifest fingerprint (SHA-256) {_e(fingerprint)}</p>')
    else:
        out.append('<p class="sub" id="fingerprint">Not sealed: <code>sdrwatch seal</code> archives these records with a signed manifest and prints its fingerprint here.</p>')
    out.append('<div class="cards">' + "".join(
        f'<div class="card"><b>{v}</b>{_e(k)}</div>' for k, v in (
            ("alerts", len(data.alerts)), ("high severity", sev_counts["high"]), ("without disposition", pending),
            ("logged, not alerted", len(data.logged)), ("health faults", len(data.faults)), ("evidence files", len(data.evidence))))
        + "</div>")
    out.append('<h2>Sites</h2><table id="sites"><thead><tr><th>site</th><th>session</th><th class="num">uptime</th><th>uptime from</th>'
               '<th class="num">offline &gt; 1 min</th><th>now</th><th>last heartbeat</th><th class="num">alerts</th><th class="num">logged</th></tr></thead><tbody>')
    for s in data.sites:
        online = {1: '<span class="ok">online</span>', 0: '<span class="bad">offline</span>'}.get(s.get("online"), '<span class="none">unknown</span>')
        method = s.get("uptime_method")
        span = f'{_e(_hms(s["start"]))}–{_e(_hms(s["end"]))}'
        if method == "presence":
            spells = s.get("offline_spells") or []
            off = f'{len(spells)}' + (f' ({_e(_duration(sum(x["length_s"] for x in spells)))})' if spells else "")
        else:
            off = '<span class="none">not known</span>'
        how = {"heartbeats": f'heartbeats ({s["heartbeats"]})'}.get(method, method)
        cls = " bad" if s.get("offline_spells") else ""
        out.append(f'<tr><td>{_e(s["site"])}</td><td>{span}</td><td class="num{cls}">{100 * s["uptime"]:.1f} %</td>'
                   f'<td>{_e(how)}</td><td class="num">{off}</td><td>{online}</td><td>{_e(_iso(s.get("last_heartbeat")))}</td><td class="num">{s["alerts"]}</td>'
                   f'<td class="num">{s["logged"]}</td></tr>')
    out.append("</tbody></table>")
    out.append(_uptime_notes(data))
    out.append(_spells_table(data))
    rx_up = {(s["site"], r["receiver"]): r for s in data.sites for r in s.get("receivers") or ()}
    out.append('<h2>Receiver health</h2><table id="receivers"><thead><tr><th>site</th><th>receiver</th><th class="num">uptime</th><th>now</th>'
               '<th class="num">achieved revisit</th><th class="num">noise floor</th><th>last heartbeat</th></tr></thead><tbody>')
    for r in sorted(data.receivers, key=lambda r: (r.get("site"), r.get("receiver"))):
        online = {1: '<span class="ok">online</span>', 0: '<span class="bad">offline</span>'}.get(r.get("online"), "")
        rv = _num(r.get("revisit_s"), ".1f")
        nf = _num(r.get("noise_floor_db"), ".1f")
        u = rx_up.get((r.get("site"), r.get("receiver")))
        up = '<span class="none">not known</span>' if u is None else f'{100 * u["uptime"]:.1f} %'
        out.append(f'<tr><td>{_e(r.get("site"))}</td><td>{_e(r.get("receiver"))}</td><td class="num{" bad" if u and u["offline_s"] > SPELL_LIST_MIN_S else ""}">{up}</td>'
                   f'<td>{online}</td><td class="num">{rv + " s" if rv else ""}</td>'
                   f'<td class="num">{nf + " dB" if nf else ""}</td><td>{_e(_iso(_t(r.get("last_heartbeat"))))}</td></tr>')
    if not data.receivers:
        out.append('<tr><td colspan="7" class="none">no receiver reported</td></tr>')
    out.append("</tbody></table>")
    out.append(_receiver_spells_table(data))
    out.append("<h3>Health faults</h3>")
    if data.faults:
        out.append('<table id="faults"><thead><tr><th>time (UTC)</th><th>site</th><th>receiver</th><th>kind</th><th>message</th></tr></thead><tbody>')
        for h in sorted(data.faults, key=lambda h: h["t"]):
            out.append(f'<tr><td>{_e(_hms(h["t"]))}</td><td>{_e(h.get("site"))}</td><td>{_e(h.get("receiver"))}</td><td class="bad">{_e(h.get("kind"))}</td><td>{_e(h.get("message"))}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="none">no health fault in this session</p>')
    out.append("</section>")
    # alerts
    out.append('<section class="page" id="alerts"><h2>Alerts</h2>')
    if data.alerts:
        out.append('<table id="alert-table"><thead><tr><th>time (UTC)</th><th>site / receiver</th><th class="num">MHz</th><th class="num">kHz</th>'
                   '<th class="num">SNR dB</th><th>class</th><th class="num">severity</th><th>state</th><th>disposition</th><th>operator</th><th>alert</th></tr></thead><tbody>')
        for a in data.alerts:
            lvl = plots.severity_level(a.get("severity"))
            d = a.get("disposition") or {}
            op = d.get("operator") or (a.get("ack") or {}).get("operator") or ""
            out.append(f'<tr class="{lvl}" id="alert-{_e(a["alert_id"])}"><td>{_e(_hms(a["t"]))}</td><td>{_e(a.get("site"))} / {_e(a.get("receiver"))}</td>'
                       f'<td class="num">{_num((a.get("center_hz") or 0) / 1e6, ".4f")}</td><td class="num">{_num((a.get("bandwidth_hz") or 0) / 1e3, ".1f")}</td>'
                       f'<td class="num">{_num(a.get("snr_db"), ".1f")}</td><td>{_e(a.get("label"))}</td>'
                       f'<td class="num"><span class="sev {lvl}">{_num(a.get("severity"), ".2f")}</span></td><td>{_e(a.get("state"))}</td>'
                       f'<td>{_disposition_cell(a)}</td><td>{_e(op)}</td><td class="mono">{_e(a["alert_id"])}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="none">no alert in this session</p>')
    out.append('<h3>Logged, not alerted</h3>')
    if data.logged:
        out.append(f'<p class="sub">{len(data.logged)} emission(s) the band plan or a declared emitter (<code>[[declare]]</code>) covers, '
                   'kept on record with the entry that covers them (they need no disposition); one row per site, entry, class and frequency.</p>'
                   '<table id="logged-table"><thead><tr><th>site / receiver</th><th class="num">MHz</th><th class="num">kHz</th><th>class</th>'
                   '<th>covered by</th><th class="num">times</th><th>first (UTC)</th><th>last (UTC)</th><th class="num">longest s</th>'
                   '<th class="num">SNR dB</th></tr></thead><tbody>')
        for i, g in enumerate(logged_groups(data.logged)):
            out.append(f'<tr class="logged" id="logged-{i + 1}"><td>{_e(g["site"])} / {_e(g["receiver"])}</td>'
                       f'<td class="num">{_num(g["center_hz"] / 1e6, ".4f")}</td><td class="num">{_num(g["bandwidth_hz"] / 1e3, ".1f")}</td>'
                       f'<td>{_e(g["label"])}</td><td>{_e(g["covered_by"])}</td><td class="num">{g["count"]}</td>'
                       f'<td>{_e(_hms(g["first"]))}</td><td>{_e(_hms(g["last"]))}</td><td class="num">{_num(g["longest_s"], ".1f")}</td>'
                       f'<td class="num">{_num(g["snr_db"], ".1f")}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="none">nothing covered by the band plan or a declared emitter in this session</p>')
    if "timeline" in images:
        out.append(f'<figure><img alt="alert timeline" src="{_img(images["timeline"])}"><figcaption>One lane per site, across the session; the session shaded; '
                   'alerts in their severity colour (red high, orange medium, olive low); logged emissions as thin grey bars; '
                   'health faults as purple crosses; a site offline hatched grey, the collector down cross-hatched.</figcaption></figure>')
    out.append("</section>")
    for i, a in enumerate(data.top_alerts):
        lvl = plots.severity_level(a.get("severity"))
        d = a.get("disposition") or {}
        out.append(f'<section class="page top-alert" id="top-{i + 1}"><h2>Top alert {i + 1}: {_e(a.get("label"))} at {_num((a.get("center_hz") or 0) / 1e6, ".4f")} MHz, {_e(a.get("site"))}</h2>'
                   f'<dl class="facts"><dt>alert</dt><dd class="mono">{_e(a["alert_id"])}</dd><dt>onset</dt><dd>{_e(_iso(a["t"]))} UTC, {_num(a.get("duration_s"), ".1f")} s</dd>'
                   f'<dt>receiver</dt><dd>{_e(a.get("receiver"))}</dd><dt>bandwidth</dt><dd>{_num((a.get("bandwidth_hz") or 0) / 1e3, ".1f")} kHz</dd>'
                   f'<dt>SNR / peak</dt><dd>{_num(a.get("snr_db"), ".1f")} dB / {_num(a.get("peak_dbfs"), ".1f")} dBFS</dd>'
                   f'<dt>severity</dt><dd><span class="sev {lvl}">{_num(a.get("severity"), ".2f")} ({lvl})</span></dd>'
                   f'<dt>disposition</dt><dd>{_disposition_cell(a)}{(" — " + _e(d.get("operator")) + ", " + _e(_iso(_t(d.get("time")))) + " UTC") if d else ""}</dd>'
                   f'<dt>evidence</dt><dd class="mono">{_e(a.get("evidence_sha512") or "none")}</dd></dl>')
        for key, what in ((f"spectrum-{a['alert_id']}", "spectrum during the alert"), (f"evidence-{a['alert_id']}", "spectrogram of the IQ evidence")):
            if key in images:
                out.append(f'<figure><img alt="{_e(what)}" src="{_img(images[key])}"><figcaption>{_e(what)}</figcaption></figure>')
            else:
                out.append(f'<p class="none">no {_e(what)}</p>')
        out.append("</section>")
    out.append('<section class="page" id="evidence"><h2>Evidence hashes (SHA-512 of the IQ data)</h2>')
    if data.evidence:
        out.append('<table id="evidence-table"><thead><tr><th>alert</th><th>site</th><th>file</th><th class="num">bytes</th><th>SHA-512</th><th>file at hand</th></tr></thead><tbody>')
        for e in data.evidence:
            cls = {"matches": "ok", "DIFFERS": "bad"}.get(e["state"], "none")
            out.append(f'<tr><td class="mono">{_e(e["alert_id"])}</td><td>{_e(e["site"])}</td><td class="mono">{_e(Path(str(e["path"])).name if e["path"] else "")}</td>'
                       f'<td class="num">{_e(e.get("bytes"))}</td><td class="mono">{_e(e["sha512"])}</td><td class="{cls}">{_e(e["state"])}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="none">no evidence recorded in this session</p>')
    out.append("</section></body></html>\n")
    return "".join(out)


def spectrum_from_log(log_path: Path, alert: dict) -> tuple[list, str] | None:
    """Mean and max-hold of the sweeps of an rtl_power-style spectrum log during an alert (UTC times)."""
    import warnings

    log = plots.read_spectrum_log(log_path)
    t0 = alert.get("t")
    if t0 is None or not len(log.times):
        return None
    t1 = alert.get("t_end") or t0
    sel = (log.times >= t0 - 1.0) & (log.times <= t1 + 1.0)
    if not sel.any():
        return None
    hops = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in log.bands:
            rows = b.power_db[sel]
            if not np.isfinite(rows).any():
                continue
            hops.append(plots.SpectrumHop(b.freq_hz, np.nanmean(rows, axis=0), maxhold_db=np.nanmax(rows, axis=0)))
    return (hops, f"{int(sel.sum())} sweeps from {_hms(t0)}") if hops else None


def timeline_with_spells(data: ReportData) -> dict:
    """The report's timeline data with every offline spell of the sites whose uptime comes from
    presence (``offline``: site, start, end, cause), for :func:`plots.plot_timeline`."""
    offline = [{"site": s["site"], "start": x["start_s"], "end": x["end_s"], "cause": x["cause"]}
               for s in data.sites for x in s.get("all_offline_spells") or ()]
    return {**data.timeline, "offline": offline}


def timeline_image(data: ReportData, out: Path) -> plots.PlotResult:
    """The report's timeline: across the whole session (when the database knows its times), with
    the sites' offline spells."""
    known = data.start_s is not None and data.end_s is not None and data.end_s > data.start_s
    return plots.plot_timeline(timeline_with_spells(data), out, title=f"alert timeline, session {data.session}",
                               span=(data.start_s, data.end_s) if known else None)


def write_report(db_path: str | Path, session: str, out_html: str | Path, *, fingerprint: str | None = None,
                 evidence_roots: Sequence[Path] = (), pdf: str | Path | None = None,
                 spectrum_logs: dict | None = None) -> ReportData:
    """Write the duty report (and, with ``pdf``, print it through headless Chromium)."""
    out_html = Path(out_html)
    if not out_html.parent.is_dir():
        raise SdrwatchError(f"cannot write {out_html}: no such directory {out_html.parent}")
    if pdf is not None and not Path(pdf).parent.is_dir():
        raise SdrwatchError(f"cannot write {pdf}: no such directory {Path(pdf).parent}")
    data = load_report_data(db_path, session, evidence_roots)
    with tempfile.TemporaryDirectory(prefix="sdrwatch-report-") as tmp:
        tmpd = Path(tmp)
        images: dict[str, Path] = {}
        if data.timeline["sites"] and (data.alerts or data.logged or data.faults or data.timeline["sessions"]):
            images["timeline"] = timeline_image(data, tmpd / "timeline.png").path
        conn = plots.open_db(db_path)
        try:
            for i, a in enumerate(data.top_alerts):
                with _readable(db_path):
                    got = _spectrum_hop(conn, a)
                hops, when = ([got[0]], got[1]) if got is not None else (None, None)
                log_path = (spectrum_logs or {}).get(a.get("site"))
                if hops is None and log_path is not None and Path(log_path).is_file():
                    from_log = spectrum_from_log(Path(log_path), a)
                    if from_log is not None:
                        hops, when = from_log
                if hops:
                    images[f"spectrum-{a['alert_id']}"] = plots.plot_spectrum(hops, tmpd / f"spectrum{i}.png", detections=[a], site=a.get("site"),
                                                                              receiver=a.get("receiver"), time=when, size_px=(1100, 460)).path
                ev = a.get("evidence_file")
                if ev is not None:
                    try:
                        images[f"evidence-{a['alert_id']}"] = plots.plot_evidence(ev, tmpd / f"evidence{i}.png", alert=a, size_px=(1100, 560)).path
                    except SdrwatchError:
                        pass  # a damaged evidence file is reported in the hash table, not fatal here
        finally:
            conn.close()
        text = render_html(data, images, fingerprint)
    plots.write_atomically(out_html, text.encode("utf-8"))
    if pdf is not None:
        print_pdf(out_html, Path(pdf))
    return data


# --------------------------------------------------------------------------------------------------
# Chromium


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio", "--hide-scrollbars")


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SdrwatchError("Chromium is not installed (apt-get install chromium); it prints the report to PDF")


def run_chromium(args: Sequence[str], timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throw-away profile; its own chatter is kept out of sight."""
    with tempfile.TemporaryDirectory(prefix="sdrwatch-chromium-") as profile:
        cmd = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        env = {**os.environ, "HOME": profile}
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SdrwatchError(f"Chromium did not finish within {timeout_s:.0f} s") from None


def print_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4, the report's print CSS, no browser header/footer)."""
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp{os.getpid()}.pdf")
    try:
        proc = run_chromium(["--no-pdf-header-footer", f"--print-to-pdf={tmp}", html_path.resolve().as_uri()])
        if not tmp.is_file() or tmp.stat().st_size == 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SdrwatchError(f"Chromium did not write {pdf_path} ({tail[0][:200]})")
        os.replace(tmp, pdf_path)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf_path


def pdf_pages(path: str | Path) -> int:
    """Pages of a PDF Chromium wrote (its page objects are plain ``/Type /Page`` dictionaries)."""
    import re

    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", Path(path).read_bytes()))
