"""The agent's uplink: sends the outbox to the collector over ZeroMQ (DEALER -> ROUTER, CURVE) and marks
records acked only when the collector has committed them.

Wire protocol, version 1 (every message starts with ``PROTOCOL``):

==========================  =====================================================================
agent/console -> collector  ``[PROTOCOL, b"B", header, body]`` a batch of records in one part:
                            ``header`` = big-endian float64 sender's Unix time, then one uint64
                            sequence number per record, then one uint32 frame length per record;
                            ``body`` = the frames (:func:`schema.encode` output) back to back
agent/console -> collector  ``[PROTOCOL, b"R", header, frame, frame, ...]`` the same batch, one part
                            per frame (``header`` without the lengths); what senders before the
                            one-part batch sent, still accepted
console -> collector        ``[PROTOCOL, b"Q", request_id, json]`` a request (history, sites, ...)
collector -> sender         ``[PROTOCOL, b"A", seqs]`` committed (or permanently refused) seqs
collector -> sender         ``[PROTOCOL, b"E", text]`` the batch was refused (key not allowed, ...)
collector -> console        ``[PROTOCOL, b"Y", request_id, json]`` the answer to a request
==========================  =====================================================================

One part per batch matters: CURVE encrypts, and ZeroMQ and pyzmq handle, every message part on its
own, so a batch in one part costs the same few operations whatever it holds. A sender falls back to
``R`` batches when a collector answers ``B`` with "unknown message kind".

The uplink keeps at most ``window`` records in flight. If no ack arrives within the resend timeout,
every record still in flight is sent again, and the timeout doubles (with jitter) up to
``backoff_max_s``; any ack, or a new connection, resets it. The collector inserts idempotently on
(agent, seq), so a resend never stores anything twice. Nothing is kept in memory that is not in the
outbox: a restarted agent starts again from its unacked rows.
"""
from __future__ import annotations

import logging
import os
import random
import struct
import threading
import time
from collections import OrderedDict
from pathlib import Path

from . import keys as K
from .schema import utc_now

log = logging.getLogger("sdrwatch.net.link")

PROTOCOL = b"SDRW1"
MAX_BATCH_RECORDS = 1000
MAX_BATCH_BYTES = 1024 * 1024


def pack_header(seqs, sent_time: float | None = None) -> bytes:
    n = len(seqs)
    return struct.pack(f">d{n}Q", time.time() if sent_time is None else sent_time, *seqs)


def unpack_header(header: bytes) -> tuple[float, tuple[int, ...]]:
    """(sender time, seqs); ValueError if it is not a header."""
    if len(header) < 8 or (len(header) - 8) % 8:
        raise ValueError("bad batch header")
    n = (len(header) - 8) // 8
    vals = struct.unpack(f">d{n}Q", header)
    return vals[0], vals[1:]


def pack_batch(seqs, frames, sent_time: float | None = None) -> tuple[bytes, bytes]:
    """(header, body) of a one-part ``B`` batch: the frames back to back, their seqs and lengths in the header."""
    n = len(seqs)
    header = struct.pack(f">d{n}Q{n}I", time.time() if sent_time is None else sent_time, *seqs, *map(len, frames))
    return header, b"".join(frames)


def unpack_batch(header: bytes, body: bytes) -> tuple[float, tuple[int, ...], list[bytes]]:
    """(sender time, seqs, frames) of a ``B`` batch; ValueError if header and body do not fit together."""
    if len(header) < 8 or (len(header) - 8) % 12:
        raise ValueError("bad batch header")
    n = (len(header) - 8) // 12
    vals = struct.unpack(f">d{n}Q{n}I", header)
    lengths = vals[1 + n:]
    if sum(lengths) != len(body):
        raise ValueError("batch header does not match its body")
    frames = []
    pos = 0
    for ln in lengths:
        end = pos + ln
        frames.append(body[pos:end])
        pos = end
    return vals[0], vals[1:1 + n], frames


def pack_seqs(seqs) -> bytes:
    return struct.pack(f">{len(seqs)}Q", *seqs)


def unpack_seqs(data: bytes) -> tuple[int, ...]:
    if len(data) % 8:
        raise ValueError("bad ack")
    return struct.unpack(f">{len(data) // 8}Q", data)


def curve_client_socket(ctx, endpoint: str, server_public: bytes, public: bytes, secret: bytes, sock_type=None):
    """A DEALER (by default) that talks CURVE to ``endpoint``, pinned to the collector's public key."""
    import zmq

    sock = ctx.socket(zmq.DEALER if sock_type is None else sock_type)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server_public
    sock.setsockopt(zmq.LINGER, 0)
    # ZMTP pings find a dead link; slow enough that thousands of agents cost the collector little
    sock.setsockopt(zmq.HEARTBEAT_IVL, 5000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 20000)
    sock.setsockopt(zmq.HEARTBEAT_TTL, 30000)
    sock.setsockopt(zmq.HANDSHAKE_IVL, 20000)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    if sock.type == zmq.DEALER:
        sock.setsockopt(zmq.IMMEDIATE, 1)  # no queueing to a collector that is not there: we resend ourselves
        sock.setsockopt(zmq.SNDHWM, 10000)
    sock.connect(endpoint)
    return sock


class LinkSession:
    """The send/ack/resend state of one sender over one socket; driven by :class:`Uplink` or loadgen.

    ``source`` is an :class:`~sdrwatch.net.outbox.Outbox` (or anything with ``unsent_frames(limit,
    after)`` and ``mark_acked(seqs)``). In-flight records are kept in the order they were sent. The
    collector handles one connection's messages in order, so an ack for a record means that every
    record sent before it and still unacked was lost: those are sent again at once (fast retransmit).
    When no ack comes at all, what is older than the resend timeout is sent again; the timeout follows
    the measured ack round trip (as TCP's RTO: srtt + 4 rttvar, at least ``backoff_initial_s``) and
    doubles, up to ``backoff_max_s``, while resends bring no ack. As in TCP, the window opens from one
    batch as acks come back (slow start) and halves on a timeout, so a slow collector is not flooded.
    """

    def __init__(self, source, sock, window: int = 5000, batch: int = 500, backoff_initial_s: float = 2.0,
                 backoff_max_s: float = 30.0, on_ack=None):
        self.source = source
        self.sock = sock
        self.window = max(1, int(window))
        self.batch = max(1, min(int(batch), MAX_BATCH_RECORDS))
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = max(float(backoff_max_s), self.backoff_initial_s)
        self.on_ack = on_ack
        # seq -> [frame, last sent (monotonic), resent?, send number], in the order they were (last) sent
        self.inflight: OrderedDict[int, list] = OrderedDict()
        self._send_no = 0
        self.cwnd = self.batch  # slow start: the window opens as acks come back
        self.after = 0  # highest seq taken from the source
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.timeout_s = self.backoff_initial_s
        self._acked_since_resend = True
        self.sent = self.acked = self.resent = 0
        self.last_ack_time: str | None = None
        self.last_ack_mono = float("-inf")
        self.refused: str | None = None
        self.connected = False
        self.source_empty = False
        self.one_part = True  # B batches; False once a collector said it does not know them

    @property
    def deadline(self) -> float:
        """When to resend if no ack comes: the resend timeout after the oldest in-flight record was sent
        or after the last ack, whichever is later (while acks flow, fast retransmit does the work)."""
        if not self.inflight:
            return float("inf")
        return max(next(iter(self.inflight.values()))[1], self.last_ack_mono) + self.timeout_s

    def _rto(self) -> float:
        if self.srtt is None:
            return self.backoff_initial_s
        return min(self.backoff_max_s, max(self.backoff_initial_s, self.srtt + 4 * self.rttvar))

    def _send(self, items: list[tuple[int, bytes]]) -> bool:
        parts, size, seqs = [], 0, []
        ok = True
        for seq, frame in items:
            if parts and (size + len(frame) > MAX_BATCH_BYTES or len(parts) >= self.batch):
                ok = self._send_parts(seqs, parts) and ok
                parts, size, seqs = [], 0, []
            parts.append(frame)
            seqs.append(seq)
            size += len(frame)
        if parts:
            ok = self._send_parts(seqs, parts) and ok
        return ok

    def _send_parts(self, seqs, parts) -> bool:
        import zmq

        if self.one_part:
            msg = [PROTOCOL, b"B", *pack_batch(seqs, parts)]
        else:
            msg = [PROTOCOL, b"R", pack_header(seqs), *parts]
        try:
            self.sock.send_multipart(msg, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        return True

    def pump(self, now: float) -> None:
        """Resend what is overdue, then send new records while the window has room."""
        inflight = self.inflight
        if inflight and now >= self.deadline:
            due = []
            for seq, ent in inflight.items():
                if now - ent[1] < self.timeout_s:
                    break
                due.append(seq)
            self._resend(due, now)
            self.cwnd = max(self.batch, self.cwnd // 2)
            if not self._acked_since_resend:
                self.timeout_s = min(self.timeout_s * 2, self.backoff_max_s) * random.uniform(0.9, 1.1)
            self._acked_since_resend = False
        room = min(self.window, self.cwnd) - len(inflight)
        self.source_empty = False
        while room > 0 and self.connected:
            items = self.source.unsent_frames(min(room, self.batch), after=self.after)
            if not items:
                self.source_empty = True
                break
            self._send(items)  # if the link just dropped, the resend or the reconnect sends them
            for seq, frame in items:
                self._send_no += 1
                inflight[seq] = [frame, now, False, self._send_no]
            self.after = items[-1][0]
            self.sent += len(items)
            room -= len(items)

    def _resend(self, seqs, now: float) -> None:
        items = []
        inflight = self.inflight
        for seq in seqs:
            ent = inflight[seq]
            self._send_no += 1
            ent[1], ent[2], ent[3] = now, True, self._send_no
            inflight.move_to_end(seq)
            items.append((seq, ent[0]))
        if items and self._send(items):
            self.resent += len(items)

    def on_connected(self, now: float) -> None:
        self.connected = True
        self.refused = None
        self.timeout_s = self._rto()
        self._resend(list(self.inflight), now)

    def on_message(self, frames: list[bytes], now: float) -> None:
        if len(frames) < 2 or frames[0] != PROTOCOL:
            return
        if frames[1] == b"A" and len(frames) >= 3:
            try:
                seqs = unpack_seqs(frames[2])
            except ValueError:
                return
            done = []
            sample = None
            newest = 0
            for s in seqs:
                ent = self.inflight.pop(s, None)
                if ent is not None:
                    done.append(s)
                    newest = max(newest, ent[3])
                    if not ent[2]:  # Karn: only first transmissions time the round trip
                        sample = now - ent[1]
            if done:
                lost = []
                for seq, ent in self.inflight.items():
                    if ent[3] >= newest:
                        break
                    lost.append(seq)
                if lost:
                    self._resend(lost, now)
                if sample is not None:
                    if self.srtt is None:
                        self.srtt, self.rttvar = sample, sample / 2
                    else:
                        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
                        self.srtt = 0.875 * self.srtt + 0.125 * sample
                self.source.mark_acked(done)
                self.acked += len(done)
                self.cwnd = min(self.window, self.cwnd + len(done))
                self.last_ack_time = utc_now()
                self.last_ack_mono = now
                self.timeout_s = self._rto()
                self._acked_since_resend = True
                self.refused = None
                if self.on_ack:
                    self.on_ack(done, now)
        elif frames[1] == b"E" and len(frames) >= 3:
            text = frames[2].decode("utf-8", "replace")[:200]
            if self.one_part and text == "unknown message kind":
                self.one_part = False  # a collector from before one-part batches: send R batches
                log.info("collector does not take one-part batches; sending one part per record")
                self._resend(list(self.inflight), now)
                return
            if text != self.refused:
                log.warning("collector refused records: %s", text)
            self.refused = text


class Uplink:
    """Sends an outbox to a collector from a background thread, forever, with backoff.

    >>> # up = Uplink(outbox, "tcp://collector:5555", "keys/collector.key", "keys/school-12.key_secret")
    >>> # up.start(); ...; up.status(); up.drain(5.0); up.stop()
    """

    def __init__(self, outbox, endpoint: str, collector_public_key_file, agent_secret_key_file, window: int = 5000,
                 batch: int = 500, backoff_initial_s: float = 2.0, backoff_max_s: float = 30.0):
        self.outbox = outbox
        self.endpoint = endpoint
        self.server_public = K.load_public(collector_public_key_file)
        self.public, self.secret = K.load_secret(agent_secret_key_file)
        self.window, self.batch = window, batch
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: LinkSession | None = None
        self._auth_failed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._unacked_cache = (0.0, 0)
        self._auth_backoff_s = backoff_initial_s

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def start(self) -> "Uplink":
        if hasattr(self.outbox, "add_listener"):
            self.outbox.add_listener(self._wake)
        self._thread = threading.Thread(target=self._run, name="sdrwatch-uplink", daemon=True)
        self._thread.start()
        return self

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Keep sending until every record in the outbox is acked, for at most ``timeout_s`` seconds (an
        agent that is shutting down calls this before :meth:`stop`). True when nothing is left unacked.
        Returns at once when the collector refuses our key; what is left stays in the outbox either way."""
        t_end = time.monotonic() + max(0.0, timeout_s)
        self._wake()
        while True:
            try:
                if self.outbox.unacked_count() == 0:
                    return True
            except Exception:  # noqa: BLE001 - a closed outbox: nothing more can be sent
                return False
            if self._thread is None or not self._thread.is_alive() or self._auth_failed:
                return False
            s = self._session
            if s is not None and s.refused:
                return False
            now = time.monotonic()
            if now >= t_end:
                return False
            time.sleep(min(0.02, t_end - now))

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake()
        if self._thread:
            self._thread.join(timeout_s)
        if hasattr(self.outbox, "remove_listener"):
            self.outbox.remove_listener(self._wake)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def status(self) -> dict:
        """For health records: connected, unacked, in_flight, last_ack_time, sent, acked, resent, refused."""
        s = self._session
        now = time.monotonic()
        if now - self._unacked_cache[0] > 0.5:
            try:
                self._unacked_cache = (now, self.outbox.unacked_count())
            except Exception:  # noqa: BLE001 - a status call must not fail
                pass
        return {
            "endpoint": self.endpoint,
            "connected": bool(s and s.connected),
            "unacked": self._unacked_cache[1],
            "in_flight": len(s.inflight) if s else 0,
            "last_ack_time": s.last_ack_time if s else None,
            "sent": s.sent if s else 0,
            "acked": s.acked if s else 0,
            "resent": s.resent if s else 0,
            "refused": (s.refused if s else None) or ("collector refused our key (not allowed)" if self._auth_failed else None),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve()
            except Exception as exc:  # noqa: BLE001 - the uplink retries forever and says so in status()
                log.warning("uplink to %s failed (%s); retrying", self.endpoint, exc)
                self._stop.wait(1.0)

    def _serve(self) -> None:
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        ctx = zmq.Context()
        sock = curve_client_socket(ctx, self.endpoint, self.server_public, self.public, self.secret)
        mon = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        sess = self._session
        if sess is None:
            sess = LinkSession(self.outbox, sock, self.window, self.batch, self.backoff_initial_s, self.backoff_max_s)
            self._session = sess
        sess.sock = sock
        sess.connected = False
        retry_at = None  # after a refused handshake ZeroMQ does not try again by itself: we do, with backoff
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(mon, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if retry_at is not None and now >= retry_at:
                    return  # _run opens a new socket
                sess.pump(now)
                wait_ms = 1000 if not sess.inflight else max(1, int((sess.deadline - now) * 1000) + 1)
                if sess.connected and not sess.source_empty and len(sess.inflight) < min(sess.window, sess.cwnd):
                    wait_ms = 0
                events = dict(poller.poll(min(wait_ms, 1000)))
                now = time.monotonic()
                if self._wake_r in events:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                if mon in events:
                    while True:
                        try:
                            ev = recv_monitor_message(mon, zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                            self._auth_failed = False
                            self._auth_backoff_s = self.backoff_initial_s
                            sess.on_connected(now)
                        elif ev["event"] == zmq.EVENT_DISCONNECTED:
                            sess.connected = False
                        elif ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                            if not self._auth_failed:
                                log.warning("collector %s refused our key (not on its allowlist)", self.endpoint)
                            self._auth_failed = True
                            retry_at = now + self._auth_backoff_s * random.uniform(0.9, 1.1)
                            self._auth_backoff_s = min(self._auth_backoff_s * 2, self.backoff_max_s)
                if sock in events:
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        sess.on_message(frames, now)
        finally:
            sock.disable_monitor()
            mon.close(0)
            sock.close(0)
            ctx.term()


def load_link_keys(server_key: str | Path, agent_key: str | Path) -> tuple[bytes, bytes, bytes]:
    """(collector public, own public, own secret) from the two certificate files."""
    pub = K.load_public(server_key)
    own_pub, own_sec = K.load_secret(agent_key)
    return pub, own_pub, own_sec
