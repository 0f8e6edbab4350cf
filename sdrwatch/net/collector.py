"""The collector: a ZeroMQ ROUTER that takes record batches from allowlisted agents and consoles over
CURVE, stores them, acks them only after commit, and feeds live views.

- Every TCP socket is a CURVE server authenticated through ``zmq.auth`` (a ThreadAuthenticator with
  a credentials callback over ``KEYS/allowed``). The allowlist is re-read within a second of any
  change to that directory, so ``sdrwatch keys allow|revoke`` need no restart; a revoked key that is
  still connected is refused message by message.
- A sender's identity is the public key ZeroMQ authenticated (the ``User-Id`` frame property); its
  name, role and site come from the allowlist entry, never from what the records say.
- Batches are drained from the socket, decoded and validated (:mod:`sdrwatch.net.schema`), and handed
  to the sink (:class:`sdrwatch.store.Store`) in one transaction; batches that queue up while one
  commits go into the next transaction together (group commit). Refused frames are counted and acked
  (they can never become valid); nothing is acked before the sink has committed.
- :meth:`Collector.serve` tells the sink when it starts and when it stops cleanly (the store's
  ``collector_runs``), so the time it was not running is on record as time nobody watched.
- A PUB (XPUB) socket, also CURVE and for console keys only, carries every stored record as
  ``[b"feed", json {"feed_seq", "records"}]`` and a ``[b"beat", json {"feed_seq"}]`` twice a second.
  Consoles ask for history over the ROUTER; together with ``feed_seq`` nothing is missed (see
  :mod:`sdrwatch.net.client`).
"""
from __future__ import annotations

import json
import logging
import math
import os
import queue
import struct
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from . import keys as K
from . import schema
from .link import PROTOCOL, pack_seqs, unpack_batch, unpack_header

log = logging.getLogger("sdrwatch.net.collector")

ZAP_DOMAIN = "sdrwatch"
ZAP_DOMAIN_FEED = "sdrwatch-feed"
#: largest message part a peer may send before ZeroMQ drops its connection
MAX_PART_BYTES = 1024 * 1024
MAX_BATCH_RECORDS = 2000
#: the writer commits what is queued in one transaction, up to about this many records
GROUP_COMMIT_RECORDS = 20000
MAX_SEQ = 2**63 - 1
HISTORY_PAGE = 2000
RING_BATCHES = 5000
RING_BYTES = 64 * 1024 * 1024


class Item:
    """One authenticated record for the sink: sender name, its seq, its site and role (from the key), the
    sender's clock at sending (Unix s) and the validated record."""

    __slots__ = ("agent", "seq", "site", "role", "sent_time", "record", "text")

    def __init__(self, agent: str, seq: int, site: str | None, role: str, sent_time: float, record: dict,
                 frame: bytes | None = None):
        self.agent, self.seq, self.site, self.role, self.sent_time, self.record = agent, seq, site, role, sent_time, record
        # the record as JSON text for the database: the frame itself when it is ours and names the right site
        if frame is not None and frame.startswith(b'{"v":1,') and (role != "agent" or record.get("site") == site):
            self.text = "{" + frame[7:].decode()
        else:
            if role == "agent" and "site" in record:
                record["site"] = site
            self.text = None


class _Allowlist:
    """The credentials provider zmq.auth calls for every CURVE handshake, and the key -> KeyInfo map."""

    def __init__(self, keys_dir: Path):
        self.keys_dir = Path(keys_dir)
        self.signature = self.quick = None
        self.last_full = 0.0
        self.by_key: dict[bytes, K.KeyInfo] = {}
        self.reload()

    def reload(self) -> bool:
        """Re-read the allowlist if it changed: the directory every call, every file every 10 s."""
        quick = K.allowlist_signature(self.keys_dir, full=False)
        now = time.monotonic()
        if quick == self.quick and now - self.last_full < 10.0:
            return False
        self.quick, self.last_full = quick, now
        sig = K.allowlist_signature(self.keys_dir)
        if sig == self.signature:
            return False
        self.signature = sig
        self.by_key = K.load_allowlist(self.keys_dir)
        return True

    def callback(self, domain: str, key: bytes) -> bool:
        info = self.by_key.get(key)
        if info is None:
            return False
        if domain == ZAP_DOMAIN_FEED:
            return info.role == "console"
        return True


def _feed_endpoint(bind: str, pub_bind: str | None) -> str:
    if pub_bind:
        return pub_bind
    parts = urlsplit(bind)
    port = parts.port or 0
    return f"tcp://{parts.hostname}:{port + 1 if port else 0}"


class Collector:
    """Serve ``bind`` until :meth:`stop` (or SIGTERM in the CLI). ``sink`` is a :class:`sdrwatch.store.Store`.

    Two threads: this one owns the sockets (receive, decode, validate, send acks, publish); a writer
    thread owns the sink (commit batches, answer console requests) so that receiving goes on while a
    batch is committed. A bounded queue between them pushes back on senders when the disk is slow.
    """

    def __init__(self, bind: str, sink, keys_dir, pub_bind: str | None = None, reload_interval_s: float = 1.0,
                 stats_interval_s: float = 10.0, on_stats=None):
        import zmq

        self.bind_endpoint = bind
        self.sink = sink
        self.keys_dir = Path(keys_dir)
        self.reload_interval_s = reload_interval_s
        self.stats_interval_s = stats_interval_s
        self.on_stats = on_stats
        self.public, self.secret = K.load_secret(self.keys_dir / "collector.key_secret")
        self.allow = _Allowlist(self.keys_dir)
        self.ctx = zmq.Context()
        from zmq.auth.thread import ThreadAuthenticator

        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self.allow)
        self.auth.configure_curve_callback(domain=ZAP_DOMAIN_FEED, credentials_provider=self.allow)
        self.router = self._server_socket(zmq.ROUTER, ZAP_DOMAIN)
        self.router.setsockopt(zmq.RCVHWM, 100000)
        self.router.setsockopt(zmq.SNDHWM, 100000)
        self.pub = self._server_socket(zmq.XPUB, ZAP_DOMAIN_FEED)
        self.pub.setsockopt(zmq.XPUB_VERBOSER, 1)
        self.pub.setsockopt(zmq.SNDHWM, 100000)
        try:
            self.router.bind(bind)
            self.pub.bind(_feed_endpoint(bind, pub_bind))
        except zmq.ZMQError as exc:
            self.close()
            from ..errors import SdrwatchError

            raise SdrwatchError(f"cannot listen on {bind}: {exc}") from None
        self.endpoint = self.router.last_endpoint.decode()
        self.pub_endpoint = self.pub.last_endpoint.decode()
        self.subscribers = 0
        # owned by the writer thread
        self.feed_seq = 0
        self.ring: deque[tuple[int, bytes]] = deque()
        self.ring_bytes = 0
        self.stats = {"received": 0, "stored_batches": 0, "messages": 0, "rejected": 0, "refused_messages": 0,
                      "requests": 0, "store_errors": 0, "queue": 0}
        self._rejects: dict[str, tuple[int, str]] = {}
        self._refused_log: dict[bytes, float] = {}
        self._running = False
        self._work: queue.Queue = queue.Queue(maxsize=8)
        self._done: deque = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._writer: threading.Thread | None = None
        self._store_ok = True
        self.sink.note_keys(self._key_entries())

    def _key_entries(self):
        return [(i.name, i.role, i.site, i.public_key.decode()) for i in self.allow.by_key.values()]

    def _server_socket(self, kind, domain: str):
        import zmq

        s = self.ctx.socket(kind)
        s.curve_server = True
        s.curve_publickey = self.public
        s.curve_secretkey = self.secret
        s.zap_domain = domain.encode()
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.MAXMSGSIZE, MAX_PART_BYTES)
        s.setsockopt(zmq.HANDSHAKE_IVL, 20000)
        s.setsockopt(zmq.HEARTBEAT_IVL, 10000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 30000)
        return s

    # --- the socket thread -------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._running = False

    def serve(self, duration_s: float | None = None) -> None:
        import zmq

        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.pub, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        self._running = True
        begin, end = getattr(self.sink, "begin_run", None), getattr(self.sink, "end_run", None)
        if begin is not None:
            begin()  # the run's start is on record: downtime between runs is time nobody watched
        self._writer = threading.Thread(target=self._write_loop, name="sdrwatch-collector-writer", daemon=True)
        self._writer.start()
        t_end = None if duration_s is None else time.monotonic() + duration_s
        next_beat = next_reload = next_tick = time.monotonic()
        next_stats = time.monotonic() + self.stats_interval_s
        try:
            while self._running and (t_end is None or time.monotonic() < t_end):
                events = dict(poller.poll(100))
                if self.pub in events:
                    self._read_subscriptions()
                if self._wake_r in events or self._done:
                    self._send_done()
                if self.router in events:
                    self._drain()
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + 0.5
                    if self.subscribers:
                        self.pub.send_multipart([b"beat", json.dumps({"feed_seq": self.feed_seq}).encode()])
                if now >= next_reload:
                    next_reload = now + self.reload_interval_s
                    if self.allow.reload():
                        log.info("allowlist reloaded: %d keys", len(self.allow.by_key))
                        self._work.put(("keys", self._key_entries()))
                if now >= next_tick:
                    next_tick = now + 1.0
                    if self._rejects:
                        infos = {i.name: (i.public_key.decode(), i.role, i.site) for i in self.allow.by_key.values()}
                        rejects = {k: v for k, v in self._rejects.items() if k in infos}
                        self._rejects = {}
                        self._work.put(("rejects", rejects, infos))
                    self._work.put(("tick",))
                if now >= next_stats and self.on_stats:
                    next_stats = now + self.stats_interval_s
                    self.on_stats(self.status())
        finally:
            self._work.put(("stop",))
            self._writer.join(10)
            self._send_done()
            if end is not None and not self._writer.is_alive():
                try:
                    end()  # a clean stop: the report counts the time after it as not watched
                except Exception as exc:  # noqa: BLE001 - stopping goes on; the run's last_alive stamp remains
                    log.warning("could not record the collector's stop: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def status(self) -> dict:
        return {"type": "collector", "time": schema.utc_now(), "bind": self.endpoint, "pub": self.pub_endpoint,
                "keys": len(self.allow.by_key), "subscribers": self.subscribers, "feed_seq": self.feed_seq,
                "store_ok": self._store_ok, **self.stats, "queue": self._work.qsize()}

    def _read_subscriptions(self) -> None:
        import zmq

        while True:
            try:
                msg = self.pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg[:1] == b"\x01":
                self.subscribers += 1
            elif msg[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    def _refuse(self, ident: bytes, text: str) -> None:
        self.stats["refused_messages"] += 1
        now = time.monotonic()
        if now - self._refused_log.get(ident, 0.0) > 1.0:
            self._refused_log[ident] = now
            if len(self._refused_log) > 10000:
                self._refused_log.clear()
            self.router.send_multipart([ident, PROTOCOL, b"E", text.encode()])

    def _reject(self, info: K.KeyInfo, reason: str) -> None:
        self.stats["rejected"] += 1
        n, _ = self._rejects.get(info.name, (0, ""))
        self._rejects[info.name] = (n + 1, reason[:200])

    def _send_done(self) -> None:
        try:
            while os.read(self._wake_r, 65536):
                pass
        except (BlockingIOError, OSError):
            pass
        while self._done:
            kind, payload = self._done.popleft()
            if kind == "send":
                self.router.send_multipart(payload)
            elif kind == "feed":
                self.pub.send_multipart([b"feed", payload])

    def _drain(self) -> None:
        """Read what is waiting (up to a bound) and queue it for the writer as one batch."""
        import zmq

        items: list = []
        acks: dict[bytes, list[int]] = {}
        requests: list = []
        t0 = time.monotonic()
        router = self.router
        by_key = self.allow.by_key
        decode = schema.decode
        SchemaError = schema.SchemaError
        while len(items) < 5000 and time.monotonic() - t0 < 0.05:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.stats["messages"] += 1
            if len(frames) < 2:
                continue
            ident = frames[0].bytes
            try:
                user = frames[1].get("User-Id")
            except zmq.ZMQError:
                user = None
            info = by_key.get(user.encode()) if user else None
            if info is None:
                self._refuse(ident, "key not allowed")
                continue
            parts = [f.bytes for f in frames[1:]]
            if parts[0] != PROTOCOL or len(parts) < 3:
                self._reject(info, "not an sdrwatch message")
                self._refuse(ident, f"expected {PROTOCOL.decode()} messages")
                continue
            kind = parts[1]
            if kind == b"B" or kind == b"R":
                try:
                    if kind == b"B":
                        if len(parts) != 4:
                            raise ValueError("batch header does not match its body")
                        sent_time, seqs, frames_ = unpack_batch(parts[2], parts[3])
                    else:
                        sent_time, seqs = unpack_header(parts[2])
                        frames_ = parts[3:]
                        if len(seqs) != len(frames_):
                            raise ValueError("batch header does not match its frames")
                    if len(seqs) > MAX_BATCH_RECORDS:
                        raise ValueError(f"batch holds more than {MAX_BATCH_RECORDS} records")
                except (ValueError, struct.error) as exc:
                    text = str(exc) if isinstance(exc, ValueError) else "bad batch header"
                    self._reject(info, text)
                    self._refuse(ident, text)
                    continue
                wall = time.time()
                if not math.isfinite(sent_time) or abs(sent_time - wall) > 10 * 365 * 86400:
                    sent_time = wall
                done = acks.setdefault(ident, [])
                name, site, role = info.name, info.site, info.role
                is_console = role == "console"
                for seq, frame in zip(seqs, frames_):
                    done.append(seq)
                    if seq > MAX_SEQ:
                        self._reject(info, "sequence number out of range")
                        continue
                    try:
                        rec = decode(frame)
                    except SchemaError as exc:
                        self._reject(info, str(exc))
                        continue
                    if (rec["type"] == "disposition") != is_console:
                        self._reject(info, f"a {role} key may not send {rec['type']} records")
                        continue
                    items.append(Item(name, seq, site, role, sent_time, rec, frame))
            elif kind == b"Q" and len(parts) >= 4:
                requests.append((ident, info, parts[2], parts[3]))
            else:
                self._reject(info, "unknown message kind")
                self._refuse(ident, "unknown message kind")
        if items or acks or requests:
            self.stats["received"] += len(items)
            self._work.put(("batch", items, acks, requests))  # blocks when the writer is behind: backpressure

    # --- the writer thread --------------------------------------------------------------------------------

    def _emit(self, kind: str, payload) -> None:
        self._done.append((kind, payload))
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _store_failed(self, exc: Exception) -> None:
        self.stats["store_errors"] += 1
        if self._store_ok:
            log.error("collector database write failed (%s); nothing acked, senders will resend",
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        self._store_ok = False

    def _write_loop(self) -> None:
        held = None
        while True:
            job = held if held is not None else self._work.get()
            held = None
            kind = job[0]
            try:
                if kind == "stop":
                    return
                if kind == "batch":
                    # group commit: whatever else is queued behind this batch goes into the same transaction
                    items, acks, requests = job[1], job[2], job[3]  # the writer owns them now
                    while len(items) < GROUP_COMMIT_RECORDS:
                        try:
                            nxt = self._work.get_nowait()
                        except queue.Empty:
                            break
                        if nxt[0] != "batch":
                            held = nxt
                            break
                        items.extend(nxt[1])
                        for ident, seqs in nxt[2].items():
                            acks.setdefault(ident, []).extend(seqs)
                        requests.extend(nxt[3])
                    self._commit(items, acks, requests)
                elif kind == "tick":
                    self._publish(self.sink.tick())
                elif kind == "rejects":
                    self.sink.note_rejects(job[1], job[2])
                elif kind == "keys":
                    self.sink.note_keys(job[1])
            except Exception as exc:  # noqa: BLE001 - the writer must keep going; senders resend
                self._store_failed(exc)

    def _commit(self, items, acks, requests) -> None:
        ok = True
        if items:
            try:
                feed, changes = self.sink.ingest(items, feed=self.subscribers > 0)
            except Exception as exc:  # noqa: BLE001 - a full disk or a locked database: no ack, they resend
                self._store_failed(exc)
                ok = False
            else:
                if not self._store_ok:
                    log.warning("collector database writable again")
                self._store_ok = True
                self.stats["stored_batches"] += 1
                self._publish(feed + changes)
        if ok:
            for ident, seqs in acks.items():
                if seqs:
                    self._emit("send", [ident, PROTOCOL, b"A", pack_seqs(seqs)])
        for req in requests:
            self._answer(*req)

    def _publish(self, records: list[dict]) -> None:
        if not records:
            return
        self.feed_seq += 1
        if not self.subscribers:
            return
        body = orjson.dumps({"feed_seq": self.feed_seq, "records": records})
        self._emit("feed", body)
        self.ring.append((self.feed_seq, body))
        self.ring_bytes += len(body)
        while self.ring and (len(self.ring) > RING_BATCHES or self.ring_bytes > RING_BYTES):
            self.ring_bytes -= len(self.ring.popleft()[1])

    def _answer(self, ident: bytes, info: K.KeyInfo, req_id: bytes, body: bytes) -> None:
        self.stats["requests"] += 1
        try:
            req = orjson.loads(body)
            if not isinstance(req, dict):
                raise ValueError("request is not an object")
            answer = self._handle(info, req)
        except (ValueError, TypeError, KeyError) as exc:
            answer = {"error": f"bad request: {str(exc)[:200]}"}
        except Exception as exc:  # noqa: BLE001 - a request must never stop the collector
            answer = {"error": f"request failed: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"}
        self._emit("send", [ident, PROTOCOL, b"Y", req_id, orjson.dumps(answer)])

    def _handle(self, info: K.KeyInfo, req: dict) -> dict:
        op = req.get("op")
        if op == "hello":
            return {"name": info.name, "role": info.role, "site": info.site, "pub": self.pub_endpoint,
                    "feed_seq": self.feed_seq}
        if info.role != "console":
            return {"error": f"{str(op)[:40]!r} is for console keys"}
        if op == "sites":
            return {"items": self.sink.sites(), "feed_seq": self.feed_seq}
        if op == "history":
            part = req.get("part", "alerts")
            if part not in HISTORY_PARTS:
                raise ValueError(f"part must be one of {', '.join(HISTORY_PARTS)}")
            since = req.get("since_time")
            if since is not None and not isinstance(since, str):
                raise ValueError("since_time must be a string")
            after = req.get("after")
            limit = max(1, min(int(req.get("limit", HISTORY_PAGE)), HISTORY_PAGE))
            items, nxt = self.sink.history_page(since, part, None if after is None else str(after), limit)
            return {"items": items, "next": nxt, "feed_seq": self.feed_seq}
        if op == "since":
            after = int(req["feed_seq"])
            batches = [b for s, b in self.ring if s > after]
            complete = after >= self.feed_seq or (bool(self.ring) and self.ring[0][0] <= after + 1)
            return {"batches": [orjson.loads(b) for b in batches], "complete": complete, "feed_seq": self.feed_seq}
        if op == "stats":
            return self.status()
        return {"error": f"unknown op {str(op)[:40]!r}"}

    def close(self) -> None:
        for s in ("router", "pub"):
            sock = getattr(self, s, None)
            if sock is not None:
                sock.close(0)
        try:
            self.auth.stop()
        except Exception:  # noqa: BLE001
            pass
        self.ctx.term()
        for fd in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


HISTORY_PARTS = ("alerts", "health", "evidence", "dispositions", "sessions")
