"""Load generator for the collector: many agents, each with its own allowlisted CURVE key and its own
DEALER, speaking the real protocol through :class:`sdrwatch.net.link.LinkSession`.

Records are pre-encoded (valid :mod:`sdrwatch.net.schema` frames), released at ``rate`` alerts/s
in total (or as fast as the window allows), and heartbeats go out every ``heartbeat_s`` per agent.
Latency is measured from release ("emit") to the ack, which the collector sends only after commit.
"""
from __future__ import annotations

import heapq
import os
import resource
import time
import uuid
from pathlib import Path

from . import keys as K
from . import schema
from .link import LinkSession, curve_client_socket


class _Source:
    """An in-memory stand-in for an outbox: pre-encoded alerts released on a schedule, plus heartbeats."""

    def __init__(self, name: str, site: str, n_alerts: int, rate_per_s: float | None, heartbeat_s: float | None, t0: float, seq0: int,
                 beat_offset_s: float = 0.0):
        self.site = site
        self.n_alerts = n_alerts
        self.rate = rate_per_s
        self.heartbeat_s = heartbeat_s
        self.t0 = t0
        self.seq = seq0
        token = b"ALERTIDPLACEHOLDER0000000"
        tmpl = {"type": "alert", "alert_id": token.decode(), "event": "open", "site": site, "receiver": "rx0",
                "time": schema.utc_now(), "session": "loadgen", "center_hz": 446.00625e6, "bandwidth_hz": 12500.0,
                "start_s": 0.0, "end_s": 1.0, "duration_s": 1.0, "peak_dbfs": -42.5, "snr_db": 21.0, "duty": 1.0,
                "bursts": 1, "open_ended": True, "novelty": "new", "label": "nbfm_voice", "severity": 0.9,
                "reasons": ["in_threat_band"], "scale_s": 0.02, "hop_center_hz": 446.0e6}
        self.template = schema.encode(tmpl)
        self.token = token
        self.prefix = f"{name}-{uuid.uuid4().hex[:8]}-".encode()
        self.released = 0  # alerts handed out
        self.pending: list[tuple[int, bytes]] = []  # released, not yet taken by the session
        self.emit: dict[int, float] = {}  # seq -> emit time (monotonic), alerts only
        self.alert_seqs: set[int] = set()
        self.acked_alerts = 0
        self.heartbeats = 0
        self.acked_heartbeats = 0
        self.beat_offset_s = beat_offset_s
        self.next_beat = float("inf")  # heartbeats start once connected (see start_beats)
        self.latencies: list[float] = []
        self.beat_latencies: list[float] = []
        sample = schema.decode(self.template.replace(token, self.prefix + b"0"))
        assert sample["type"] == "alert"

    def start_beats(self, now: float) -> None:
        if self.heartbeat_s and self.next_beat == float("inf"):
            self.next_beat = now + self.beat_offset_s

    def due(self, now: float) -> float:
        """Monotonic time of the next release."""
        t = self.next_beat
        if self.released < self.n_alerts:
            t = min(t, now if self.rate is None else self.t0 + self.released / self.rate)
        return t

    def _release(self, now: float, limit: int) -> None:
        if self.released < self.n_alerts:
            target = self.n_alerts if self.rate is None else min(self.n_alerts, int((now - self.t0) * self.rate) + 1)
            target = min(target, self.released + max(limit - len(self.pending), 0))
            for i in range(self.released, target):
                self.seq += 1
                self.pending.append((self.seq, self.template.replace(self.token, self.prefix + str(i).encode())))
                self.emit[self.seq] = now
                self.alert_seqs.add(self.seq)
            self.released = max(self.released, target)
        if now >= self.next_beat:
            self.seq += 1
            self.heartbeats += 1
            self.pending.append((self.seq, schema.encode({
                "type": "health", "kind": "heartbeat", "site": self.site, "receiver": "rx0", "time": schema.utc_now(),
                "severity": 0.0, "message": "ok", "revisit_s": 1.0, "planned_revisit_s": 1.0, "noise_floor_db": -95.0})))
            self.emit[self.seq] = now
            self.next_beat += self.heartbeat_s
            if self.next_beat < now:
                self.next_beat = now + self.heartbeat_s

    def unsent_frames(self, limit: int, after: int = 0):
        self._release(time.monotonic(), limit)
        take, self.pending = self.pending[:limit], self.pending[limit:]
        return take

    def mark_acked(self, seqs) -> None:
        now = time.monotonic()
        for s in seqs:
            t = self.emit.pop(s, None)
            if t is None:
                continue
            if s in self.alert_seqs:
                self.alert_seqs.discard(s)
                self.acked_alerts += 1
                self.latencies.append(now - t)
            else:
                self.acked_heartbeats += 1
                self.beat_latencies.append(now - t)

    def unacked_count(self) -> int:
        return len(self.emit) + len(self.pending)


def _raise_fd_limit(n_needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n_needed))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def ensure_keys(keys_dir: Path, n: int, prefix: str) -> list[tuple[str, str]]:
    """(name, site) of ``n`` agent keys ``PREFIX0..``; missing ones are created and allowed."""
    out = []
    made = 0
    for i in range(n):
        name = f"{prefix}{i}"
        if not (keys_dir / f"{name}.key_secret").exists():
            K.new(keys_dir, name, name, check_duplicates=False)  # fresh key pairs cannot collide
            made += 1
        elif not (keys_dir / "allowed" / f"{name}.key").exists():
            K.allow(keys_dir, name, site=name)
            made += 1
        out.append((name, name))
    if made:
        time.sleep(1.5)  # a running collector re-reads its allowlist every second
    return out


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run(endpoint: str, keys_dir, agents: int, alerts: int, rate: float | None = None, heartbeat_s: float | None = None,
        duration_s: float | None = None, timeout_s: float = 600.0, window: int = 5000, batch: int = 500,
        prefix: str = "loadgen-", collector_pid: int | None = None, progress=None) -> dict:
    """Run the load; return the summary dict (``complete`` says whether every alert was acked)."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    keys_dir = Path(keys_dir)
    names = ensure_keys(keys_dir, agents, prefix)
    server_public = K.load_public(keys_dir / "collector.key")
    _raise_fd_limit(8 * agents + 256)
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 4 * agents + 64)
    per_agent = [alerts // agents + (1 if i < alerts % agents else 0) for i in range(agents)]
    sessions, sources, monitors = [], [], {}
    poller = zmq.Poller()
    seq0 = int(time.time() * 1e6)
    t_start = time.monotonic()
    creds = [K.load_secret(keys_dir / f"{name}.key_secret") for name, _ in names]
    by_sock: dict = {}
    mon_of: dict = {}

    def open_socket(i: int):
        sock = curve_client_socket(ctx, endpoint, server_public, *creds[i])
        mon = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        monitors[mon] = i
        mon_of[i] = mon
        by_sock[sock] = i
        poller.register(sock, zmq.POLLIN)
        poller.register(mon, zmq.POLLIN)
        return sock

    def reopen(i: int):
        """A refused handshake is not retried by ZeroMQ (e.g. keys just created, allowlist not re-read yet)."""
        old, mon = sessions[i].sock, mon_of.pop(i)
        for sock_ in (old, mon):
            poller.unregister(sock_)
        by_sock.pop(old, None)
        monitors.pop(mon, None)
        mon.close(0)
        old.close(0)
        sessions[i].sock = open_socket(i)
        sessions[i].connected = False

    for i, (name, site) in enumerate(names):
        src = _Source(name, site, per_agent[i], None if rate is None else rate / agents, heartbeat_s, t_start, seq0,
                      beat_offset_s=(heartbeat_s or 0.0) * i / agents)
        sessions.append(LinkSession(src, None, window=window, batch=batch))
        sources.append(src)
        sessions[i].sock = open_socket(i)
    retry_at: dict[int, float] = {}
    heap = [(0.0, i) for i in range(agents)]  # (when to pump, agent)
    queued_at = [0.0] * agents
    auth_failed = 0
    connected = 0
    cpu0 = _cpu_s(collector_pid) if collector_pid else None
    t_connected = None
    cpu_connected = None
    beats_connected = 0
    t0 = time.monotonic()
    # heartbeats run for duration_s once every agent is connected (or 60 s after the start)
    end_load = None if duration_s is None else t0 + 60 + duration_s
    deadline = t0 + timeout_s
    last_check = last_progress = 0.0
    stopped_beats = False

    def schedule(i: int, when: float) -> None:
        if when < queued_at[i] or queued_at[i] <= time.monotonic():
            queued_at[i] = when
            heapq.heappush(heap, (when, i))

    try:
        while True:
            now = time.monotonic()
            for i in [i for i, t in retry_at.items() if now >= t]:
                del retry_at[i]
                reopen(i)
                schedule(i, now + 0.05)
            if end_load is not None and now >= end_load and not stopped_beats:
                stopped_beats = True
                for s_ in sources:
                    s_.heartbeat_s = None
                    s_.next_beat = float("inf")
            while heap and heap[0][0] <= now:
                when, i = heapq.heappop(heap)
                if when != queued_at[i]:
                    continue  # superseded
                sess = sessions[i]
                sess.pump(now)
                room = len(sess.inflight) < min(sess.window, sess.cwnd)
                nd = sources[i].due(now) if (sess.connected and room) else (now + 0.2 if not sess.connected else float("inf"))
                if sess.inflight:
                    nd = min(nd, sess.deadline)
                if nd <= now:
                    nd = now + 0.001
                if nd != float("inf"):
                    queued_at[i] = nd
                    heapq.heappush(heap, (nd, i))
                else:
                    queued_at[i] = 0.0
            if now - last_check >= 0.1:
                last_check = now
                total_acked = sum(s_.acked_alerts for s_ in sources)
                load_over = end_load is None or now >= end_load
                if load_over and total_acked >= alerts and all(s_.released >= s_.n_alerts and not s_.unacked_count() for s_ in sources):
                    break
                if now >= deadline:
                    break
                if progress and now - last_progress >= 1.0:
                    last_progress = now
                    progress(total_acked, alerts)
            wait_ms = max(0, min(100, int(((heap[0][0] if heap else now + 0.1) - time.monotonic()) * 1000) + 1))
            for sock, _ in poller.poll(wait_ms):
                if sock in monitors:
                    i = monitors[sock]
                    try:
                        ev = recv_monitor_message(sock, zmq.NOBLOCK)
                    except zmq.Again:
                        continue
                    if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        sessions[i].on_connected(time.monotonic())
                        sources[i].start_beats(time.monotonic())
                        connected += 1
                        if connected == agents and t_connected is None:
                            t_connected = time.monotonic()
                            cpu_connected = _cpu_s(collector_pid) if collector_pid else None
                            beats_connected = sum(s_.acked_heartbeats for s_ in sources)
                            if duration_s is not None:
                                end_load = t_connected + duration_s
                        # the monitor's work is done: fewer sockets to poll
                        poller.unregister(sock)
                        monitors.pop(sock, None)
                        mon_of.pop(i, None)
                        sessions[i].sock.disable_monitor()
                        sock.close(0)
                        schedule(i, time.monotonic())
                    elif ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                        auth_failed += 1
                        retry_at[i] = time.monotonic() + 0.5
                    continue
                i = by_sock.get(sock)
                if i is None:
                    continue
                sess = sessions[i]
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    sess.on_message(frames, time.monotonic())
                if sources[i].released < sources[i].n_alerts or sess.inflight:
                    schedule(i, time.monotonic())  # room in the window again / new deadline
    finally:
        t1 = time.monotonic()
        cpu1 = _cpu_s(collector_pid) if collector_pid else None
        for mon in monitors:
            mon.close(0)
        for s_ in sessions:
            s_.sock.close(0)
        ctx.term()
    seconds = t1 - t0
    lat = sorted(x for s in sources for x in s.latencies)
    beat_lat = sorted(x for s in sources for x in s.beat_latencies)

    def pct(p, xs=lat):
        return round(1000 * xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 2) if xs else None

    acked = sum(s.acked_alerts for s in sources)
    summary = {
        "agents": agents, "alerts": alerts, "sent": sum(s.sent for s in sessions), "acked": acked,
        "resent": sum(s.resent for s in sessions), "heartbeats": sum(s.heartbeats for s in sources),
        "heartbeats_acked": sum(s.acked_heartbeats for s in sources), "seconds": round(seconds, 3),
        "alerts_per_s": round(acked / seconds, 1) if seconds > 0 else None,
        "alerts/s": round(acked / seconds, 1) if seconds > 0 else None,  # the summary key deployment scripts read
        "latency_ms": {"p50": pct(50), "p99": pct(99), "max": round(1000 * lat[-1], 2) if lat else None},
        # acked per second while every agent was connected
        "heartbeats_per_s": round((sum(s.acked_heartbeats for s in sources) - beats_connected) / (t1 - (t_connected or t0)), 1),
        "heartbeat_latency_ms": {"p50": pct(50, beat_lat), "p99": pct(99, beat_lat)},
        "connected": connected, "connect_s": round(t_connected - t0, 3) if t_connected else None, "auth_failed": auth_failed,
        "complete": acked >= alerts and all(s.unacked_count() == 0 for s in sources),
    }
    if cpu0 is not None and cpu1 is not None:
        summary["collector_cpu_cores"] = round((cpu1 - cpu0) / seconds, 3)
        summary["collector_cpu_s"] = round(cpu1 - cpu0, 3)
        if acked:
            summary["collector_cpu_us_per_alert"] = round(1e6 * (cpu1 - cpu0) / acked, 1)
        if cpu_connected is not None and heartbeat_s:
            # while every agent is connected and heartbeating (the handshakes excluded)
            summary["collector_cpu_cores_heartbeating"] = round((cpu1 - cpu_connected) / (t1 - t_connected), 3)
    return summary
