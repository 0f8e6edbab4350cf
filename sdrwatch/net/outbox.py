"""The agent's durable outbox: every record the agent emits, numbered, on disk before it is sent.

The outbox is the agent's local alert log (it works with no collector at all) and the queue the
uplink (:mod:`sdrwatch.net.link`) sends from. It is one SQLite file in WAL mode:

>>> import tempfile, os
>>> ob = Outbox(os.path.join(tempfile.mkdtemp(), "outbox.db"))
>>> seq = ob.append({"type": "health", "kind": "start", "site": "s1", "receiver": None,
...                  "time": "2026-06-01T08:00:00Z", "severity": 0.0, "message": "started"})
>>> [s for s, _ in ob.unsent(10)] == [seq]
True
>>> ob.mark_acked([seq]); ob.unsent(10)
[]
>>> ob.close()

- ``append`` validates the record (:func:`sdrwatch.net.schema.validate`), gives it the next sequence
  number and commits with ``synchronous=FULL`` before it returns: a record whose ``append`` returned
  survives a crash or a power cut.
- Sequence numbers grow for the life of the file. A new file starts at the microseconds since 1970 at
  its creation, so an agent whose outbox was deleted and recreated never reuses a number the collector
  has already stored (the collector is idempotent on (agent, seq)).
- A row is marked acked only when the collector has committed it (``mark_acked``); acked rows stay as
  the local log.
- The disk bound ``max_bytes`` counts record bytes. When a new record would pass it, the oldest
  spectrum snapshots go first, then the oldest health records (acked ones before unacked ones);
  alert events, evidence references and dispositions never go, even past the bound. Each time it
  drops something it logs a warning and appends a ``health`` record of kind ``disk`` saying how many of
  each type went (at most one a minute).
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from . import schema
from ..errors import SdrwatchError

log = logging.getLogger("sdrwatch.net.outbox")

#: default disk bound: 256 MiB of records
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: record types that may be dropped when the outbox is full, first to go first
EVICTABLE = ("spectrum", "health")
#: after an eviction the outbox is brought down to this fraction of its bound
EVICT_TO = 0.9
#: at most one "disk" health record per this many seconds
DISK_NOTICE_INTERVAL_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    time TEXT,
    bytes INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    frame BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_unacked ON outbox(seq) WHERE acked = 0;
CREATE INDEX IF NOT EXISTS outbox_type ON outbox(type, acked, seq);
CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value TEXT);
"""


class OutboxError(SdrwatchError):
    """An outbox file that cannot be opened or written."""


class Outbox:
    """A durable, numbered, disk-bounded queue of schema records (see the module docstring)."""

    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        if self.max_bytes <= 0:
            raise OutboxError(f"outbox bound must be positive, not {max_bytes}")
        self._lock = threading.RLock()
        self._appended = threading.Condition(self._lock)
        self.dropped = {t: 0 for t in EVICTABLE}
        self._pending_notice = {t: 0 for t in EVICTABLE}
        self._last_notice = 0.0
        self._last_full_log = 0.0
        self._site: str | None = None
        self._listeners: list = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                if self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone() is None:
                    start = int(time.time() * 1e6)
                    self._db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('outbox', ?)", (start,))
            row = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM outbox").fetchone()
            self._bytes = int(row[0])
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from None
        except OSError as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc.strerror or exc}") from None

    # --- writing ----------------------------------------------------------------------------------------

    def _tx(self):
        db = self._db

        class _T:
            def __enter__(self_):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_, et, ev, tb):
                db.execute("COMMIT" if et is None else "ROLLBACK")
                return False

        return _T()

    def append(self, record: dict) -> int:
        """Validate, number and durably store one record; return its sequence number."""
        return self.append_many([record])[0]

    def append_many(self, records: Iterable[dict]) -> list[int]:
        """Validate all, then store all in one transaction (all or none); return their sequence numbers."""
        records = list(records)
        frames = [(r["type"], r.get("time"), schema.encode(r)) for r in records]
        if not frames:
            return []
        for r in records:
            if r.get("site"):
                self._site = r["site"]
        with self._lock:
            incoming = sum(len(f) for _, _, f in frames)
            try:
                with self._tx():
                    if self._bytes + incoming > self.max_bytes:
                        self._evict(self._bytes + incoming - int(self.max_bytes * EVICT_TO))
                    seqs = []
                    for rtype, rtime, frame in frames:
                        cur = self._db.execute(
                            "INSERT INTO outbox(type, time, bytes, frame) VALUES (?, ?, ?, ?)", (rtype, rtime, len(frame), frame)
                        )
                        seqs.append(cur.lastrowid)
            except sqlite3.DatabaseError as exc:
                self._bytes = int(self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM outbox").fetchone()[0])
                raise OutboxError(f"cannot write outbox {self.path}: {exc}") from None
            self._bytes += incoming
            self._maybe_notice()
            self._appended.notify_all()
            for listener in list(self._listeners):
                listener()
            return seqs

    def add_listener(self, callback) -> None:
        """Call ``callback()`` (quick, non-blocking) after every append, e.g. to wake an uplink."""
        self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _evict(self, need_bytes: int) -> None:
        """Delete the oldest droppable rows until ``need_bytes`` are freed (inside a transaction)."""
        freed = 0
        for rtype in EVICTABLE:
            for acked in (1, 0):
                while freed < need_bytes:
                    rows = self._db.execute(
                        "SELECT seq, bytes FROM outbox WHERE type = ? AND acked = ? ORDER BY seq LIMIT 500", (rtype, acked)
                    ).fetchall()
                    if not rows:
                        break
                    take = []
                    for seq, nbytes in rows:
                        take.append((seq,))
                        freed += nbytes
                        if freed >= need_bytes:
                            break
                    self._db.executemany("DELETE FROM outbox WHERE seq = ?", take)
                    self.dropped[rtype] += len(take)
                    self._pending_notice[rtype] += len(take)
        self._bytes -= freed
        if freed < need_bytes and time.monotonic() - self._last_full_log > DISK_NOTICE_INTERVAL_S:
            self._last_full_log = time.monotonic()
            log.warning("outbox %s is over its bound of %d bytes with alerts only; alerts are kept", self.path, self.max_bytes)

    def _maybe_notice(self) -> None:
        if not any(self._pending_notice.values()):
            return
        now = time.monotonic()
        if now - self._last_notice < DISK_NOTICE_INTERVAL_S and self._last_notice:
            return
        counts = dict(self._pending_notice)
        what = ", ".join(f"{n} {t} record{'s' if n != 1 else ''}" for t, n in counts.items() if n)
        message = f"outbox full ({self.max_bytes} bytes): dropped the oldest {what}; alerts are kept"
        log.warning("%s (%s)", message, self.path)
        self._last_notice = now
        for t in self._pending_notice:
            self._pending_notice[t] = 0
        if self._site is None:
            return
        rec = {"type": "health", "kind": "disk", "site": self._site, "receiver": None, "time": schema.utc_now(),
               "severity": 0.5, "message": message, "dropped_spectrum": counts["spectrum"], "dropped_health": counts["health"]}
        frame = schema.encode(rec)
        with self._tx():
            self._db.execute("INSERT INTO outbox(type, time, bytes, frame) VALUES (?, ?, ?, ?)", ("health", rec["time"], len(frame), frame))
        self._bytes += len(frame)

    def mark_acked(self, seqs: Iterable[int]) -> None:
        """Mark records the collector has committed; unknown numbers are ignored."""
        runs = _runs(sorted({int(s) for s in seqs}))  # acks come in long runs: one range update per run
        if not runs:
            return
        with self._lock:
            with self._tx():
                self._db.executemany("UPDATE outbox SET acked = 1 WHERE seq BETWEEN ? AND ? AND acked = 0", runs)

    # --- reading ----------------------------------------------------------------------------------------

    def unsent(self, limit: int = 100, after: int = 0) -> list[tuple[int, dict]]:
        """Up to ``limit`` unacked records, oldest first, with sequence numbers above ``after``."""
        return [(seq, schema.decode(frame)) for seq, frame in self.unsent_frames(limit, after)]

    def unsent_frames(self, limit: int = 100, after: int = 0) -> list[tuple[int, bytes]]:
        """Like :meth:`unsent` but the encoded frames, ready for the wire."""
        with self._lock:
            return [
                (seq, bytes(frame))
                for seq, frame in self._db.execute(
                    "SELECT seq, frame FROM outbox WHERE acked = 0 AND seq > ? ORDER BY seq LIMIT ?", (int(after), int(limit))
                )
            ]

    def unacked_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE acked = 0").fetchone()[0])

    def records(self, type: str | None = None) -> Iterator[dict]:  # noqa: A002 - the schema's field name
        """Every stored record (acked or not), oldest first, optionally of one ``type``."""
        last = 0
        while True:
            with self._lock:
                if type is None:
                    rows = self._db.execute("SELECT seq, frame FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1000", (last,)).fetchall()
                else:
                    rows = self._db.execute(
                        "SELECT seq, frame FROM outbox WHERE type = ? AND seq > ? ORDER BY seq LIMIT 1000", (type, last)
                    ).fetchall()
            if not rows:
                return
            for seq, frame in rows:
                yield json_record(frame)
            last = rows[-1][0]

    def wait_for_append(self, timeout_s: float) -> None:
        """Block until something is appended in this process or ``timeout_s`` passes."""
        with self._appended:
            self._appended.wait(timeout_s)

    def stats(self) -> dict:
        """Counts for health reports: records, unacked, bytes, max_bytes, dropped per type."""
        with self._lock:
            total, unacked = self._db.execute("SELECT COUNT(*), COALESCE(SUM(acked = 0), 0) FROM outbox").fetchone()
            return {"records": int(total), "unacked": int(unacked), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "dropped": dict(self.dropped)}

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct numbers as (first, last) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for s in seqs:
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


def json_record(frame: bytes) -> dict:
    """A stored frame back to its record (frames in the outbox were validated on the way in)."""
    rec = json.loads(frame)
    rec.pop("v", None)
    return rec
