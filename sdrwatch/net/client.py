"""The operator console's connection to the collector: history, live feed, sites and dispositions.

>>> # c = ConsoleClient("tcp://collector:5555", "keys", "desk-1")
>>> # c.history()            # every alert (latest state), health, evidence, dispositions, sessions, sites
>>> # c.poll(0.5)            # live records since (never a record missed between history and poll)
>>> # c.send_disposition(alert_id, "false_alarm", "proctor's radio", operator="J. Chen")  # True once stored
>>> # c.close()

Nothing is missed by joining late: the client subscribes to the live feed first and waits until a
feed message arrives (so its subscription is active), then asks for history, which carries the feed
number it is complete up to; :meth:`poll` returns only feed records after it. If the feed skipped
numbers (a slow console), the missing batches are fetched from the collector, or the history again.
Records may therefore appear twice (once in history, once live); key alerts by ``alert_id``.

``keys_dir`` holds ``collector.key`` and ``NAME.key_secret`` (made by ``sdrwatch keys new NAME
--console``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import keys as K
from . import schema
from .link import PROTOCOL, curve_client_socket, pack_header, unpack_seqs
from ..errors import SdrwatchError

HISTORY_PARTS = ("alerts", "health", "evidence", "dispositions", "sessions")


class ConsoleError(SdrwatchError):
    """The collector could not be reached or refused the console."""


class ConsoleClient:
    def __init__(self, endpoint: str, keys_dir, name: str, timeout_s: float = 10.0):
        import zmq

        self.endpoint = endpoint
        self.keys_dir = Path(keys_dir)
        self.name = name
        self.timeout_s = float(timeout_s)
        self.server_public = K.load_public(self.keys_dir / "collector.key")
        self.public, self.secret = K.load_secret(self.keys_dir / f"{name}.key_secret")
        self.ctx = zmq.Context()
        self.sock = curve_client_socket(self.ctx, endpoint, self.server_public, self.public, self.secret)
        self.sub = None
        self.feed_seq = 0  # records in feed batches up to this number are already known
        self._req = 0
        self._seq = int(time.time() * 1e6)
        self._pending: list[dict] = []

    # --- request/reply --------------------------------------------------------------------------------------

    def _request(self, req: dict, timeout_s: float | None = None) -> dict:
        import zmq

        self._req += 1
        rid = str(self._req).encode()
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        resend_at = time.monotonic() + 2.0
        self.sock.send_multipart([PROTOCOL, b"Q", rid, json.dumps(req).encode()])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConsoleError(f"collector {self.endpoint} did not answer within {self.timeout_s:g} s "
                                   "(is it running, and is this console key allowed?)")
            if self.sock.poll(int(min(left, max(0.01, resend_at - time.monotonic())) * 1000)):
                frames = self.sock.recv_multipart()
                if len(frames) >= 4 and frames[0] == PROTOCOL and frames[1] == b"Y" and frames[2] == rid:
                    ans = json.loads(frames[3])
                    if "error" in ans:
                        raise ConsoleError(f"collector: {ans['error']}")
                    return ans
                if len(frames) >= 3 and frames[0] == PROTOCOL and frames[1] == b"E":
                    raise ConsoleError(f"collector refused this console: {frames[2].decode(errors='replace')}")
            elif time.monotonic() >= resend_at:  # the request may have been lost to a reconnect
                resend_at = time.monotonic() + 2.0
                try:
                    self.sock.send_multipart([PROTOCOL, b"Q", rid, json.dumps(req).encode()], flags=zmq.NOBLOCK)
                except zmq.Again:
                    pass

    def _subscribe(self) -> None:
        """Subscribe to the feed and wait until the subscription demonstrably works (a beat arrives)."""
        import zmq

        if self.sub is not None:
            return
        hello = self._request({"op": "hello"})
        if hello.get("role") != "console":
            raise ConsoleError(f"key {self.name!r} is an {hello.get('role')} key, not a console key")
        pub = hello["pub"]
        host = urlsplit(self.endpoint).hostname
        parts = urlsplit(pub)
        if parts.hostname in ("0.0.0.0", "*", "::", None):
            pub = f"tcp://{host}:{parts.port}"
        self.sub = curve_client_socket(self.ctx, pub, self.server_public, self.public, self.secret, sock_type=zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 100000)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.sub.poll(200):
                self.sub.recv_multipart()  # anything seen: the subscription is live from here on
                return
        raise ConsoleError(f"no live feed from {pub} within {self.timeout_s:g} s (is this key a console key?)")

    # --- API ------------------------------------------------------------------------------------------------

    def history(self, since_time: str | None = None) -> list[dict]:
        """Every alert (its latest state), health record, evidence reference, disposition and session
        received since ``since_time`` (UTC ISO, default: all), followed by the current sites."""
        self._subscribe()
        self._drain_sub()  # what came before this snapshot is in it
        self._pending = []
        out: list[dict] = []
        snapshot = None
        for part in HISTORY_PARTS:
            after = None
            while True:
                ans = self._request({"op": "history", "part": part, "since_time": since_time, "after": after})
                if snapshot is None:
                    snapshot = ans["feed_seq"]
                out.extend(ans["items"])
                after = ans["next"]
                if after is None:
                    break
        out.extend(self.sites())
        self.feed_seq = snapshot or 0
        return out

    def sites(self) -> list[dict]:
        """Every site's state: online, last_heartbeat, clock skew, and its receivers."""
        return self._request({"op": "sites"})["items"]

    def _drain_sub(self) -> None:
        import zmq

        while True:
            try:
                self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return

    def poll(self, timeout_s: float = 0.0) -> list[dict]:
        """Live records stored since the last history/poll (waits up to ``timeout_s`` for the first)."""
        import zmq

        self._subscribe()
        out, self._pending = self._pending, []
        deadline = time.monotonic() + timeout_s
        while True:
            wait = 0 if out else max(0, int((deadline - time.monotonic()) * 1000))
            if not self.sub.poll(wait):
                return out
            while True:
                try:
                    topic, body = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except ValueError:
                    continue
                msg = json.loads(body)
                n = msg.get("feed_seq", 0)
                if topic == b"beat":
                    if n > self.feed_seq:
                        out.extend(self._catch_up(n))
                    continue
                if n <= self.feed_seq:
                    continue
                if n > self.feed_seq + 1:
                    out.extend(self._catch_up(n - 1))
                out.extend(msg["records"])
                self.feed_seq = n
            if out:
                return out

    def _catch_up(self, upto: int) -> list[dict]:
        """Records of feed batches after ``self.feed_seq`` up to ``upto`` that this client did not see."""
        ans = self._request({"op": "since", "feed_seq": self.feed_seq})
        if not ans["complete"]:
            return self.history()
        out = []
        for b in ans["batches"]:
            if self.feed_seq < b["feed_seq"] <= upto:
                out.extend(b["records"])
                self.feed_seq = b["feed_seq"]
        self.feed_seq = max(self.feed_seq, upto)
        return out

    def send_disposition(self, alert_id: str, disposition: str, note: str = "", operator: str = "",
                         timeout_s: float | None = None) -> bool:
        """Send an operator's decision on an alert; True once the collector has stored it."""
        rec = schema.validate({"type": "disposition", "alert_id": alert_id, "operator": operator or self.name,
                               "disposition": disposition, "note": note, "time": schema.utc_now()})
        self._seq += 1
        seq = self._seq
        frame = schema.encode(rec)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while time.monotonic() < deadline:
            self.sock.send_multipart([PROTOCOL, b"R", pack_header([seq]), frame])
            resend = time.monotonic() + 1.0
            while time.monotonic() < min(resend, deadline):
                if self.sock.poll(100):
                    frames = self.sock.recv_multipart()
                    if len(frames) >= 3 and frames[0] == PROTOCOL and frames[1] == b"A" and seq in unpack_seqs(frames[2]):
                        return True
                    if len(frames) >= 3 and frames[0] == PROTOCOL and frames[1] == b"E":
                        raise ConsoleError(f"collector refused this console: {frames[2].decode(errors='replace')}")
        return False

    def close(self) -> None:
        for s in (self.sub, self.sock):
            if s is not None:
                s.close(0)
        self.ctx.term()

    def __enter__(self) -> "ConsoleClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
