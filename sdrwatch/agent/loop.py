"""The agent loop: one thread per receiver sweeps its share of the plan, pushes every block through
the streaming chain, and turns the chain's events into alert records; the main thread is the only
writer of the outbox (the durable alert log) and of stdout, and sends heartbeats.

::

    agent = Agent(load_config("site.toml"), baselines={"rx0": Baseline.load(...)}, out=print_record)
    summary = agent.run(duration_s=60)       # or until agent.stop() / SIGINT / SIGTERM

Per receiver (:class:`ReceiverWorker`)::

    open the Source (retry forever, "receiver_lost"/"receiver_regained" health records)
    for hop in plan.hops():                  # priority pass, then the next k background hops, ...
        source.tune(hop.center_hz)           # the backend discards what the retune spoilt
        read dwell_s of samples in blocks    # each block: chain.push(block), then hook.block(...)
        chain.end_dwell(hop.center_hz)       # then hook.dwell_end(...)
    at the end: chain.close_all()            # open emissions close (open_ended)

Time: the chain works on the receiver's sample clock (``Block.sample_index / rate``, kept monotonic
across reconnects). Each dwell's first sample is mapped to the wall clock (``Block.timestamp``, the
simulator's scene clock in a fast run), and an alert's ``time`` is the wall-clock of its onset, so
``session`` and the schedule's severity weight (:mod:`sdrwatch.sweep.schedule`) follow the onset.

Hooks (health monitors, evidence recorders, the spectrum log) are :class:`AgentHook` objects, one per
receiver, made by factories ``factory(rx: ReceiverContext) -> AgentHook | None``. The modules named in
:data:`HOOK_FACTORIES` are loaded when they exist; ``Agent(hooks=[...])`` adds more. See
``docs/agent.md`` ("Hooks") for the call order and what each call may do.
"""
from __future__ import annotations

import bisect
import importlib
import logging
import math
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import SdrwatchError
from ..sweep.plan import Hop, ReceiverPlan, SweepPlan, build_plan, dwell_guard_samples, retune_s_from_source
from ..sweep.schedule import ExamSchedule, utc_iso

log = logging.getLogger("sdrwatch.agent")

#: samples per read (0.109 s at 2.4 MS/s): a 0.1 s dwell is one block
BLOCK_SAMPLES = 1 << 18
#: seconds between heartbeats
HEARTBEAT_S = 5.0
#: on shutdown the uplink keeps sending what is unacked for at most this many seconds
UPLINK_DRAIN_S = 5.0
#: retry of a lost receiver: first wait, doubling up to the cap
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0
#: factories loaded if their module exists: "module:attribute", called as factory(rx_context)
HOOK_FACTORIES = ("sdrwatch.agent.health:HealthMonitor", "sdrwatch.agent.evidence:EvidenceRecorder")
#: a pass aims this much under priority_revisit_s (share of it): room for a retune slower than measured
REVISIT_MARGIN = 0.03
#: seconds between returns of freed heap to the system (:func:`heap_trimmer`)
TRIM_S = 10.0
#: dwells remembered for mapping sample-clock times to the wall clock
TIME_MAP_DWELLS = 20000


class AgentError(SdrwatchError):
    """The agent cannot start: a baseline that does not fit the plan, no state directory, ..."""


def heap_trimmer() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)`` (None where there is no glibc). The numpy temporaries of the
    receiver threads are freed into glibc's arenas, which keep them (about 90 MB for a crowded hop)
    until trimmed; the agent trims every :data:`TRIM_S`."""
    import ctypes
    import ctypes.util

    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: fn(0)


# ----------------------------------------------------------------------------------------------- hooks
class AgentHook:
    """A per-receiver plug-in. Every method runs in the receiver's thread; the defaults do nothing.

    Call order: ``start`` once (after the receiver is first opened), then per dwell: ``block`` for
    every block after the chain has seen it, ``alert`` for every alert record built from the chain's
    events (before it is written, so the hook may add keys such as ``evidence``), ``dwell_end`` when
    the receiver leaves the hop; ``heartbeat`` every few seconds (its dict is merged into the
    receiver's heartbeat record); ``lost`` when the receiver fails; ``stop`` once at the end. To send
    records of its own (health, evidence references) a hook calls ``rx.emit(record)``. A hook that
    raises is reported once as a health record and then left out, so it cannot stop the sweep.
    """

    def start(self, rx: "ReceiverContext") -> None: ...

    def block(self, rx: "ReceiverContext", block, events: list) -> None: ...

    def alert(self, rx: "ReceiverContext", record: dict, event) -> None: ...

    def dwell_end(self, rx: "ReceiverContext", hop: Hop) -> None: ...

    def heartbeat(self, rx: "ReceiverContext") -> dict:
        return {}

    def lost(self, rx: "ReceiverContext", reason: str) -> None: ...

    def redwell(self, rx: "ReceiverContext") -> list:
        """(centre Hz, dwell s) to dwell on again right now, e.g. to confirm a hit (default: none)."""
        return []

    def stop(self, rx: "ReceiverContext") -> None: ...


@dataclass
class ReceiverContext:
    """What a hook sees of its receiver."""

    name: str
    site: str
    config: Any  # SiteConfig
    receiver: Any  # ReceiverConfig
    plan: ReceiverPlan
    state_dir: Path
    sample_rate_hz: float
    emit: Callable[[dict], None]  # queue a record for the outbox and stdout (thread-safe)
    source: Any = None  # the open Source, None while lost
    info: Any = None  # its SourceInfo
    hop: Hop | None = None  # the hop being dwelt on
    wall_time: Callable[[float], float] = lambda t: t  # sample-clock seconds -> unix seconds
    settings: Any = None  # the chain's Settings (spectrum and detector)


def load_hook_factories(names: Iterable[str] = HOOK_FACTORIES) -> list[Callable]:
    """The factories of :data:`HOOK_FACTORIES` whose modules exist (the others are skipped)."""
    out = []
    for target in names:
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        factory = getattr(module, attr, None)
        if factory is not None:
            out.append(factory)
    return out


# --------------------------------------------------------------------------------------------- records
def health(site: str, receiver: str | None, kind: str, message: str, severity: float = 0.0, **extra) -> dict:
    return {"type": "health", "kind": kind, "site": site, "receiver": receiver, "time": utc_iso(time.time(), ms=True),
            "severity": round(float(min(1.0, max(0.0, severity))), 3), "message": message, **extra}


class _TimeMap:
    """Sample-clock seconds -> wall-clock (unix) seconds, from the first sample of each dwell."""

    def __init__(self, sample_rate_hz: float):
        self.rate = float(sample_rate_hz)
        self._idx: list[int] = []
        self._wall: list[float] = []

    def add(self, sample_index: int, wall_s: float) -> None:
        if self._idx and sample_index <= self._idx[-1]:
            return
        self._idx.append(int(sample_index))
        self._wall.append(float(wall_s))
        if len(self._idx) > 2 * TIME_MAP_DWELLS:
            del self._idx[:TIME_MAP_DWELLS]
            del self._wall[:TIME_MAP_DWELLS]

    def __call__(self, t_s: float) -> float:
        if not self._idx:
            return time.time()
        n = int(round(t_s * self.rate))
        i = max(0, bisect.bisect_right(self._idx, n) - 1)
        return self._wall[i] + (n - self._idx[i]) / self.rate


# --------------------------------------------------------------------------------------------- workers
@dataclass
class WorkerStats:
    blocks: int = 0
    samples: int = 0
    dwells: int = 0
    lost: int = 0
    online: bool = False
    first_ts: float | None = None
    last_ts: float | None = None
    noise_floor_db: float | None = None
    background_per_pass: int | None = None  # as adapted to the measured retune cost
    visits: dict = field(default_factory=dict)  # priority hop centre -> recent visit times (source clock)


class ReceiverWorker(threading.Thread):
    """Sweeps one receiver's plan into a sink (the chain for the agent, a baseline learner for a
    capture). ``sink`` has ``push(block) -> events``, ``end_dwell(center_hz) -> events`` and
    ``close_all() -> events``; events go to ``on_events(worker, events)``."""

    def __init__(self, config, rc, plan: ReceiverPlan, sink, *, emit: Callable[[dict], None],
                 on_events: Callable[["ReceiverWorker", list], None] | None = None, duration_s: float | None = None,
                 stop: threading.Event | None = None, hooks: list[Callable] = (), source_options: dict | None = None,
                 source=None, settings=None):
        super().__init__(name=f"sdrwatch-rx-{rc.name}", daemon=True)
        self.config, self.rc, self.plan, self.sink = config, rc, plan, sink
        self.emit = emit
        self.on_events = on_events or (lambda w, evs: None)
        self.duration_s = duration_s
        self.stop_event = stop or threading.Event()
        self.source_options = source_options or {}
        self.source = source
        self.stats = WorkerStats()
        self.lock = threading.Lock()
        self.time_map = _TimeMap(rc.sample_rate_hz)
        self.ctx = ReceiverContext(rc.name, config.site_id, config, rc, plan, config.state_dir, rc.sample_rate_hz, emit,
                                   wall_time=self.time_map, settings=settings)
        self._hook_factories = list(hooks)
        self.hooks: list[AgentHook] = []
        self._sample_offset = 0  # keeps the sample clock monotonic across reconnects
        self._delivered = 0
        self._wall0 = time.time()
        self._want_floor = True
        self._lost_reported = False
        self.guard_samples = 0
        self.error: BaseException | None = None
        self.finished = False

    # -- source handling --------------------------------------------------------------------------------
    def _open(self):
        from ..radio.base import open_source

        opts = {"sample_rate_hz": self.rc.sample_rate_hz, "gain_db": self.rc.gain_db, "ppm": self.rc.ppm,
                "reconnect_attempts": 2, **self.source_options}
        src = open_source(self.rc.uri, **opts)
        try:
            src.set_sample_rate(self.rc.sample_rate_hz)
            src.set_gain(self.rc.gain_db)
            if self.rc.ppm:
                src.set_ppm(self.rc.ppm)
        except BaseException:
            src.close()
            raise
        return src

    def _connect(self) -> bool:
        """Open the source, retrying forever (with backoff) until it opens or the run stops."""
        wait = RETRY_FIRST_S
        while not self.stop_event.is_set():
            try:
                src = self.source if self.source is not None else self._open()
            except SdrwatchError as exc:
                if not self._lost_reported:
                    with self.lock:
                        self.stats.lost += 1
                    self.emit(health(self.config.site_id, self.rc.name, "receiver_lost", f"{self.rc.name}: {exc}; retrying", 0.8,
                                     uri=self.rc.uri))
                    self._lost_reported = True
                if self.stop_event.wait(wait):
                    return False
                wait = min(RETRY_MAX_S, wait * 2)
                continue
            self.source = src
            self._sample_offset = self._delivered
            self.ctx.source, self.ctx.info = src, src.describe()
            self.guard_samples = dwell_guard_samples(self.ctx.info, self.rc.sample_rate_hz)
            with self.lock:
                self.stats.online = True
            if self._lost_reported:
                self._lost_reported = False
                self.emit(health(self.config.site_id, self.rc.name, "receiver_regained", f"{self.rc.name}: receiver back", 0.0,
                                 uri=self.rc.uri))
            return True
        return False

    def _lose(self, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        with self.lock:
            self.stats.online = False
            self.stats.lost += 1
        self.emit(health(self.config.site_id, self.rc.name, "receiver_lost", f"{self.rc.name}: {reason}; retrying", 0.8, uri=self.rc.uri))
        self._lost_reported = True
        self._call("lost", reason)
        try:
            if self.source is not None:
                self.source.close()
        except Exception:  # noqa: BLE001 - a dead source may fail to close; it is dropped anyway
            pass
        self.source = self.ctx.source = None

    # -- hooks ------------------------------------------------------------------------------------------
    def _start_hooks(self) -> None:
        for factory in self._hook_factories:
            try:
                hook = factory(self.ctx)
            except Exception as exc:  # noqa: BLE001 - a plug-in must not stop the sweep
                self.emit(health(self.config.site_id, self.rc.name, "hook_failed", f"{getattr(factory, '__name__', factory)}: {exc}", 0.5))
                continue
            if hook is not None:
                self.hooks.append(hook)
        self._call("start")

    def _call(self, method: str, *args) -> list:
        out = []
        for hook in list(self.hooks):
            if not hasattr(hook, method):  # a hook written before the method existed
                continue
            try:
                out.append(getattr(hook, method)(self.ctx, *args))
            except Exception as exc:  # noqa: BLE001
                self.hooks.remove(hook)
                log.exception("hook %s.%s failed", type(hook).__name__, method)
                self.emit(health(self.config.site_id, self.rc.name, "hook_failed",
                                 f"{type(hook).__name__}.{method}: {exc}; the hook is disabled", 0.5))
        return out

    # -- the sweep --------------------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        src = 0.0
        if self.stats.first_ts is not None and self.stats.last_ts is not None:
            src = self.stats.last_ts - self.stats.first_ts
        return max(src, time.time() - self._wall0) if self.stats.lost else src

    def _done(self) -> bool:
        return self.stop_event.is_set() or (self.duration_s is not None and self.elapsed_s() >= self.duration_s)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the agent
            self.error = exc
            log.exception("receiver %s failed", self.rc.name)
        finally:
            try:
                self.on_events(self, list(self.sink.close_all()))
            except BaseException as exc:  # noqa: BLE001
                self.error = self.error or exc
            self._call("stop")
            if self.source is not None:
                try:
                    self.source.close()
                except Exception:  # noqa: BLE001
                    pass
            self.finished = True

    def _run(self) -> None:
        if not self._connect():
            return
        self._start_hooks()
        hops = self._passes()
        rate = self.rc.sample_rate_hz
        while not self._done():
            if self.source is None and not self._connect():
                return
            hop = next(hops)
            try:
                self._dwell(hop, rate)
                for extra in self._redwells(hop):
                    if self._done():
                        break
                    hop = extra
                    self._dwell(extra, rate)
            except SdrwatchError as exc:
                self.on_events(self, list(self.sink.end_dwell(hop.center_hz)))
                self._lose(exc)

    def _passes(self):
        """The plan's hops pass after pass, keeping the priority revisit: each pass is every priority
        hop, then background hops (where the last pass left off) for as long as the next one still
        ends the pass within ``priority_revisit_s`` less :data:`REVISIT_MARGIN` (never more than
        planned, at least one). Time is the receiver's clock (block timestamps), so what retunes and
        processing between dwells really cost (an rtl_tcp link's drain, a hop's first visit) shortens
        the pass it happens in; a background hop's cost (retune, overhead and dwell) is a running
        average of the ones measured."""
        p = self.plan
        n_bg, k_plan = len(p.background), p.background_per_pass
        deadline = self.config.sweep.priority_revisit_s * (1.0 - REVISIT_MARGIN)
        cursor, bg_cost = 0, None
        while True:
            start = self.stats.last_ts  # the end of the previous pass's final dwell
            yield from p.priority
            if not n_bg:
                continue
            if start is None:  # the first pass: from its first sample
                start = self.stats.first_ts
            k = 0
            while k < k_plan:
                now = self.stats.last_ts
                if k and p.priority and bg_cost is not None and now is not None and start is not None and now - start + bg_cost > deadline:
                    break
                yield p.background[cursor]
                cursor = (cursor + 1) % n_bg
                k += 1
                after = self.stats.last_ts
                if now is not None and after is not None and after > now:
                    bg_cost = after - now if bg_cost is None else 0.7 * bg_cost + 0.3 * (after - now)
            with self.lock:
                self.stats.background_per_pass = k

    def _redwells(self, after: Hop) -> list[Hop]:
        """Extra dwells hooks ask for now (``redwell(rx) -> [(center_hz, dwell_s)]``, e.g. the evidence
        recorder confirming an alert): on a hop of this receiver's plan, at most 5 s each."""
        out = []
        known = {h.center_hz: h for h in self.plan.priority + self.plan.background}
        for hook in list(self.hooks):
            ask = getattr(hook, "redwell", None)
            if ask is None:
                continue
            try:
                wanted = list(ask(self.ctx) or [])
            except Exception as exc:  # noqa: BLE001
                self.hooks.remove(hook)
                self.emit(health(self.config.site_id, self.rc.name, "hook_failed", f"{type(hook).__name__}.redwell: {exc}; the hook is disabled", 0.5))
                continue
            for center_hz, dwell_s in wanted:
                base = known.get(center_hz) or next((h for c, h in known.items() if abs(c - center_hz) < 1.0), None)
                if base is None or not (0 < float(dwell_s) <= 5.0):
                    continue
                out.append(replace(base, tier="redwell", dwell_s=float(dwell_s)))
        return out

    def _dwell(self, hop: Hop, rate: float) -> None:
        src = self.source
        self.ctx.hop = hop
        src.tune(hop.center_hz)
        if self.guard_samples:
            src.read(self.guard_samples)  # what the backend's retune hygiene may have let through
        want = max(1, int(round(hop.dwell_s * rate)))
        first = True
        while want > 0:
            n = min(BLOCK_SAMPLES, want)
            block = src.read(n)
            want -= len(block.iq)
            if self._sample_offset:
                block = replace(block, sample_index=block.sample_index + self._sample_offset)
            self._delivered = block.sample_index + len(block.iq)
            ts = block.timestamp if block.timestamp is not None else time.time() - len(block.iq) / rate
            if first:
                self.time_map.add(block.sample_index, ts)
                first = False
                if hop.tier == "priority":
                    with self.lock:
                        v = self.stats.visits.setdefault(hop.center_hz, [])
                        v.append(ts)
                        if len(v) > 32:
                            del v[:-32]
            events = list(self.sink.push(block))
            with self.lock:
                st = self.stats
                st.blocks += 1
                st.samples += len(block.iq)
                st.first_ts = ts if st.first_ts is None else st.first_ts
                st.last_ts = ts + len(block.iq) / rate
            if self._want_floor:
                self._want_floor = False
                self._noise_floor(block)
            self._call("block", block, events)
            self.on_events(self, events)
            if self.stop_event.is_set():
                break
        self.on_events(self, list(self.sink.end_dwell(hop.center_hz)))
        with self.lock:
            self.stats.dwells += 1
        self._call("dwell_end", hop)

    def _noise_floor(self, block) -> None:
        """Median bin power of the block's kept span, dB per bin (full scale 1.0): the heartbeat's floor."""
        from ..dsp.spectrum import SpectrumConfig, auto_fft_size, kept_bins, welch_psd

        n = auto_fft_size(self.rc.sample_rate_hz)
        iq = block.iq[: 64 * n]
        if len(iq) < n:
            return
        p = welch_psd(iq, self.rc.sample_rate_hz, SpectrumConfig(fft_size=n))[kept_bins(n, self.plan.crop)]
        floor = float(10 * np.log10(max(float(np.median(p)), 1e-20)))
        with self.lock:
            self.stats.noise_floor_db = round(floor, 2)

    def heartbeat(self) -> dict:
        """The receiver's heartbeat record (achieved against planned priority revisit)."""
        with self.lock:
            st = self.stats
            gaps = [np.diff(v) for v in st.visits.values() if len(v) > 1]
            revisit = float(np.mean(np.concatenate(gaps))) if gaps else None
            floor, online, lost, dwells, samples = st.noise_floor_db, st.online, st.lost, st.dwells, st.samples
            k = st.background_per_pass if st.background_per_pass is not None else self.plan.background_per_pass
        self._want_floor = True
        planned = self.plan.pass_s if self.plan.priority else (self.plan.revisit_s(self.plan.background[0]) if self.plan.background else None)
        extra: dict = {}
        for part in self._call("heartbeat"):
            if isinstance(part, dict):
                extra.update(part)
        sev = 0.0
        if not online:
            sev = 0.8
        elif revisit is not None and planned and revisit > 1.5 * planned:
            sev = 0.5
        rtxt = f"{revisit:.2f} s" if revisit is not None else "n/a"
        ptxt = f"{planned:.2f} s" if planned else "n/a"
        msg = (f"{self.rc.name}: {'online' if online else 'LOST'}, revisit {rtxt} (planned {ptxt}), {dwells} dwells"
               + (f", noise floor {floor:.1f} dB" if floor is not None else ""))
        rec = health(self.config.site_id, self.rc.name, "heartbeat", msg, sev,
                     revisit_s=None if revisit is None else round(revisit, 4),
                     planned_revisit_s=None if planned is None else round(planned, 4),
                     noise_floor_db=floor, online=online, dwells=dwells, samples=samples, lost=lost, background_per_pass=k)
        rec.update(extra)
        return rec


# -------------------------------------------------------------------------------------------------- agent
class AlertBuilder:
    """Chain events of one receiver -> alert records (record shape in sdrwatch.net.schema; keys in docs/agent.md)."""

    def __init__(self, site: str, receiver: str, schedule: ExamSchedule, wall_time: Callable[[float], float], t_ref: float = 0.0):
        self.site, self.receiver, self.schedule, self.wall_time = site, receiver, schedule, wall_time
        self.t_ref = float(t_ref)  # wall-clock (unix s) that start_s/end_s count from: the agent's start
        self._ids: dict[int, tuple[str, float]] = {}  # track id -> (alert id, onset wall time)

    def records(self, events: Iterable) -> list[tuple[dict, Any]]:
        out = []
        for ev in events:
            e = ev.emission
            known = self._ids.get(ev.track_id)
            if known is None:
                onset = self.wall_time(e.start_s)
                known = self._ids[ev.track_id] = (f"{self.site}-{self.receiver}-{uuid.uuid4().hex[:12]}", onset)
            aid, onset = known
            rec = {"type": "alert", "alert_id": aid, "event": ev.event, "site": self.site, "receiver": self.receiver,
                   "time": utc_iso(onset, ms=True)}
            moment = self.schedule.moment(onset)
            rec["session"] = moment.session
            rec.update(e.as_record())
            # a sweeping receiver's sample clock skips the time spent on other hops: the record's
            # times are wall-clock seconds from the agent's start; the sample clock stays as sample_*_s
            end = max(onset, self.wall_time(e.end_s))
            rec["sample_start_s"], rec["sample_end_s"] = rec["start_s"], rec["end_s"]
            rec["start_s"] = round(onset - self.t_ref, 6)
            rec["end_s"] = round(end - self.t_ref, 6)
            rec["duration_s"] = round(end - onset, 6)
            rec["severity"] = self.schedule.severity(e.severity, onset)
            rec["end_time"] = utc_iso(end, ms=True)
            if ev.event == "close":
                if getattr(ev, "merged_into", None) is not None and ev.merged_into in self._ids:
                    rec["merged_into"] = self._ids[ev.merged_into][0]
                self._ids.pop(ev.track_id, None)
            out.append((rec, ev))
        return out


@dataclass
class AgentSummary:
    alerts: int = 0  # distinct alert ids opened
    events: int = 0
    health: int = 0
    records: int = 0
    stopped_by: str = "duration"
    receivers: dict = field(default_factory=dict)


class Agent:
    """The site agent (module docstring). ``baselines`` maps receiver names to a
    :class:`~sdrwatch.baseline.Baseline` (a receiver without one runs in noise-floor mode);
    ``out(record)`` gets every record as it is written (stdout); ``outbox_path`` defaults to
    ``STATE_DIR/outbox.db`` (``False``: no outbox, for benchmarks); ``sources`` gives open Sources by
    receiver name instead of opening the config's URIs."""

    def __init__(self, config, *, baselines: dict | None = None, out: Callable[[dict], None] | None = None,
                 outbox_path: str | Path | None | bool = None, hooks: Iterable[Callable] | None = None,
                 load_default_hooks: bool = True, source_options: dict | None = None, heartbeat_s: float = HEARTBEAT_S,
                 baseline_note: str = "", sources: dict | None = None):
        self.config = config
        self.baselines = dict(baselines or {})
        self.out = out
        self.outbox_path = config.outbox_path if outbox_path is None else outbox_path
        self.hooks = (load_hook_factories() if load_default_hooks else []) + list(hooks or [])
        self.source_options = source_options or {}
        self.heartbeat_s = float(heartbeat_s)
        self.baseline_note = baseline_note
        self.given_sources = dict(sources or {})  # receiver name -> an open Source (benchmarks, embedding programs)
        self.schedule = ExamSchedule.from_config(config)
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.plan: SweepPlan | None = None
        self.workers: list[ReceiverWorker] = []
        self.summary = AgentSummary()
        self.outbox = None
        self.uplink = None

    def stop(self) -> None:
        """Ask the run to end (safe from a signal handler or another thread)."""
        self._stop.set()

    # -- setup -------------------------------------------------------------------------------------------
    def _open_sources(self) -> dict:
        """Open every receiver once up front so the plan uses what they report (tuner, retune cost);
        a receiver that does not open now is planned from the config and retried by its worker."""
        from ..radio.base import open_source

        sources = dict(self.given_sources)
        for rc in self.config.receivers:
            if rc.name in sources:
                continue
            opts = {"sample_rate_hz": rc.sample_rate_hz, "gain_db": rc.gain_db, "ppm": rc.ppm, "reconnect_attempts": 2, **self.source_options}
            try:
                src = open_source(rc.uri, **opts)
                src.set_sample_rate(rc.sample_rate_hz)
                src.set_gain(rc.gain_db)
                sources[rc.name] = src
            except SdrwatchError as exc:
                log.warning("receiver %s did not open: %s", rc.name, exc)
        return sources

    def _plan(self, sources: dict) -> SweepPlan:
        from ..radio.profiles import load_profile

        tuners, retune = {}, {}
        for rc in self.config.receivers:
            src = sources.get(rc.name)
            if src is None:
                continue
            info = src.describe()
            try:
                tuners[rc.name] = load_profile(info.tuner).key
            except SdrwatchError:
                pass
            if self.config.sweep.retune_s is None:
                r = retune_s_from_source(info, rc.sample_rate_hz)
                if r is not None:
                    retune[rc.name] = r
        return build_plan(self.config, tuners=tuners, retune_s=retune)

    def _settings(self, rp: ReceiverPlan):
        from dataclasses import replace as dc_replace

        from ..dsp.chain import Settings

        s = Settings()
        return dc_replace(s, spectrum=dc_replace(s.spectrum, crop=rp.crop))

    def _make_chain(self, rc, rp: ReceiverPlan):
        from ..replay import make_chain

        base = self.baselines.get(rc.name)
        settings = self._settings(rp)
        if base is not None:
            check_baseline_fits(base, rp, rc.name)
        chain = make_chain(rc.sample_rate_hz, base, settings, update_s=1.0)
        return chain, chain.settings

    # -- the run -----------------------------------------------------------------------------------------
    def emit(self, record: dict) -> None:
        self._queue.put(record)

    def _checked(self, record: dict) -> dict:
        from ..net import schema

        try:
            return schema.validate(record)
        except SdrwatchError as exc:  # a bug: report it rather than lose the run
            log.error("record refused by the schema: %s: %r", exc, record)
            return health(self.config.site_id, record.get("receiver") if isinstance(record.get("receiver"), str) else None,
                          "record_refused", f"a {record.get('type')} record was refused: {exc}", 0.5)

    def _write(self, record: dict) -> None:
        self._write_many([record])

    def _write_many(self, records: list[dict]) -> None:
        """Validate, append to the outbox in one transaction (durable before anything is printed), print."""
        records = [self._checked(r) for r in records]
        if self.outbox is not None and records:
            self.outbox.append_many(records)
        for record in records:
            self._account(record)

    def _account(self, record: dict) -> None:
        self.summary.records += 1
        if record["type"] == "alert":
            self.summary.events += 1
            if record["event"] == "open":
                self.summary.alerts += 1
        elif record["type"] == "health":
            self.summary.health += 1
        if self.out is not None:
            self.out(record)

    def _drain(self, timeout: float) -> None:
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return
        while len(batch) < 500:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._write_many(batch)
        if not self._queue.empty():
            self._drain(0.0)

    def _start_uplink(self) -> None:
        c = self.config.collector
        if c is None or self.outbox is None:
            return
        try:
            from ..net.link import Uplink
        except ModuleNotFoundError:
            self.emit(health(self.config.site_id, None, "uplink", "no uplink in this sdrwatch: alerts stay in the outbox", 0.3))
            return
        try:
            self.uplink = Uplink(self.outbox, c.endpoint, c.server_key, c.agent_key)
            self.uplink.start()
        except SdrwatchError as exc:
            self.uplink = None
            self.emit(health(self.config.site_id, None, "uplink", f"collector link not started: {exc}; alerts stay in the outbox", 0.6))

    def run(self, duration_s: float | None = None) -> AgentSummary:
        """Run until ``duration_s`` seconds of every receiver's samples (or forever), :meth:`stop`,
        or KeyboardInterrupt; then close every open emission and write everything out."""
        cfg = self.config
        if self.outbox_path:
            from ..net.outbox import Outbox

            try:
                Path(self.outbox_path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise AgentError(f"cannot create the state directory {Path(self.outbox_path).parent}: {exc.strerror or exc}") from None
            self.outbox = Outbox(self.outbox_path)
        sources = self._open_sources()
        try:
            self.plan = plan = self._plan(sources)
            chains = {rc.name: self._make_chain(rc, plan.receiver(rc.name)) for rc in cfg.receivers}
        except BaseException:
            for s in sources.values():
                s.close()
            if self.outbox is not None:
                self.outbox.close()
            raise
        self._start_uplink()
        self.emit(health(cfg.site_id, None, "start",
                         f"sdrwatch agent for site {cfg.site_id}: {len(cfg.receivers)} receiver(s), "
                         f"{sum(len(r.priority) for r in plan.receivers)} priority and {sum(len(r.background) for r in plan.receivers)} "
                         f"background hops, priority revisit {max((r.pass_s for r in plan.receivers if r.priority), default=0):.2f} s"
                         + (f"; {self.baseline_note}" if self.baseline_note else ""), 0.0,
                         sessions=self.schedule.as_records(),
                         bands=[{"name": b.name, "start_hz": b.start_hz, "stop_hz": b.stop_hz, "priority": int(b.priority)} for b in cfg.bands],
                         receivers=[rc.name for rc in cfg.receivers]))
        builders: dict[str, AlertBuilder] = {}
        t_ref = time.time()

        def on_events(worker: ReceiverWorker, events: list) -> None:
            if not events:
                return
            b = builders[worker.rc.name]
            for rec, ev in b.records(events):
                worker._call("alert", rec, ev)
                self.emit(rec)

        for rc in cfg.receivers:
            chain, settings = chains[rc.name]
            w = ReceiverWorker(cfg, rc, plan.receiver(rc.name), chain, emit=self.emit, on_events=on_events, duration_s=duration_s,
                               stop=self._stop, hooks=self.hooks, source_options=self.source_options, source=sources.get(rc.name),
                               settings=settings)
            builders[rc.name] = AlertBuilder(cfg.site_id, rc.name, self.schedule, w.time_map, t_ref)
            self.workers.append(w)
        for w in self.workers:
            w.start()
        next_beat = time.monotonic() + self.heartbeat_s
        trim, next_trim = heap_trimmer(), time.monotonic() + TRIM_S
        try:
            while any(w.is_alive() for w in self.workers):
                self._drain(0.1)
                if time.monotonic() >= next_beat:
                    next_beat += self.heartbeat_s
                    for w in self.workers:
                        self.emit(self._with_uplink(w.heartbeat()))
                if trim is not None and time.monotonic() >= next_trim:
                    next_trim = time.monotonic() + TRIM_S
                    trim()
            if self._stop.is_set():
                self.summary.stopped_by = "signal"
        except KeyboardInterrupt:
            self.summary.stopped_by = "interrupt"
            self._stop.set()
        finally:
            self._stop.set()
            for w in self.workers:
                w.join()
            self._drain(0.0)
            for w in self.workers:
                self.summary.receivers[w.rc.name] = w.heartbeat()
            errors = [w for w in self.workers if w.error is not None]
            for w in errors:
                self._write(health(cfg.site_id, w.rc.name, "receiver_failed", f"{w.rc.name}: {w.error}", 1.0))
            self._write(health(cfg.site_id, None, "stop", f"sdrwatch agent for site {cfg.site_id} stopped ({self.summary.stopped_by}); "
                                                           f"{self.summary.alerts} alert(s)", 0.0))
            if self.uplink is not None:
                self.uplink.drain(UPLINK_DRAIN_S)  # what the last moments raised still reaches the collector
                self.uplink.stop()
            if self.outbox is not None:
                self.outbox.close()
        return self.summary

    def _with_uplink(self, rec: dict) -> dict:
        if self.uplink is not None:
            try:
                st = self.uplink.status()
                rec["uplink"] = {k: st[k] for k in ("connected", "unacked") if k in st}
            except Exception:  # noqa: BLE001 - status is informative only
                pass
        return rec


def check_baseline_fits(base, rp: ReceiverPlan, receiver: str) -> None:
    """A baseline must have been captured with this plan's crop and cover every hop of it."""
    crop = base.meta.get("spectrum", {}).get("crop")
    if crop is not None and abs(float(crop) - rp.crop) > 1e-6:
        raise AgentError(f"the baseline for {receiver} was captured with crop {float(crop):g} but the plan crops {rp.crop:g}: "
                         f"capture a new layer with this config (sdrwatch baseline capture)")
    have = np.array(sorted(h.center_hz for h in base.hops))
    missing = [h for h in rp.priority + rp.background if not len(have) or np.min(np.abs(have - h.center_hz)) > 1e3]
    if missing:
        raise AgentError(f"the baseline for {receiver} has no hop at {missing[0].center_hz / 1e6:.4f} MHz "
                         f"({len(missing)} of the plan's {len(rp.priority) + len(rp.background)} hops are missing): "
                         f"capture a new layer with this config (sdrwatch baseline capture)")


# ------------------------------------------------------------------------------------ baseline capture
class _LearnerSink:
    """A :class:`~sdrwatch.dsp.chain.BaselineLearner` behind the worker's sink interface."""

    def __init__(self, learner):
        self.learner = learner

    def push(self, block):
        self.learner.push(block)
        return ()

    def end_dwell(self, center_hz):
        self.learner.end_dwell(center_hz)
        return ()

    def close_all(self):
        return ()


#: a baseline capture keeps frames of every hop for its percentiles (a reservoir sample of the whole
#: capture): priority hops up to the learner's default, the background hops share what is left of
#: this budget per receiver (MB), at least CAPTURE_MIN_FRAMES each
CAPTURE_KEEP_MB = 256.0
CAPTURE_MIN_FRAMES = 50


def capture_keep_frames(rp: ReceiverPlan, frame_bytes: int, default: int = 4000) -> dict[int, int]:
    """Frames kept per hop (``round(center_hz)`` -> frames) for a capture of ``rp``: a whole-tuner
    background (about 960 hops at 2.4 MS/s) at the learner's default would hold 12 GB."""
    prio = {round(h.center_hz): default for h in rp.priority}
    left = CAPTURE_KEEP_MB * 2**20 - len(prio) * default * frame_bytes
    n_bg = max(1, len(rp.background))
    bg = int(min(default, max(CAPTURE_MIN_FRAMES, left / n_bg / max(1, frame_bytes))))
    return {**{round(h.center_hz): bg for h in rp.background}, **prio}


def capture_baselines(config, duration_s: float, *, source_options: dict | None = None,
                      progress: Callable[[float], None] | None = None, stop: threading.Event | None = None) -> tuple[dict, SweepPlan]:
    """Sweep the site's plan for ``duration_s`` seconds of every receiver's samples into the one
    baseline learner, one per receiver; returns ({receiver: Baseline}, plan). ``progress(fraction)``
    is called about every 0.2 s. Health records of lost receivers are logged, not written."""
    from ..baseline import now_iso
    from ..dsp.chain import BaselineLearner

    helper = Agent(config, outbox_path=False, load_default_hooks=False, source_options=source_options)
    sources = helper._open_sources()
    plan = helper._plan(sources)
    stop = stop or threading.Event()
    workers = []

    def emit(rec: dict) -> None:
        log.warning("%s", rec.get("message"))

    for rc in config.receivers:
        rp = plan.receiver(rc.name)
        settings = helper._settings(rp)
        learner = BaselineLearner(rc.sample_rate_hz, settings)
        learner.max_frames_for = capture_keep_frames(rp, learner.frame_bytes, learner.max_frames)
        w = ReceiverWorker(config, rc, rp, _LearnerSink(learner), emit=emit, duration_s=duration_s, stop=stop,
                           source=sources.get(rc.name), source_options=source_options)
        w.learner = learner
        workers.append(w)
    for w in workers:
        w.start()
    try:
        while any(w.is_alive() for w in workers):
            time.sleep(0.2)
            if progress:
                progress(min(1.0, min(w.elapsed_s() for w in workers) / duration_s))
    except KeyboardInterrupt:
        stop.set()
        for w in workers:
            w.join()
        raise
    for w in workers:
        w.join()
        if w.error is not None:
            raise w.error
    if stop.is_set():
        raise KeyboardInterrupt
    created = now_iso()
    out = {}
    for w in workers:
        try:
            out[w.rc.name] = w.learner.finish(source=f"{config.site_id}/{w.rc.name} {w.rc.uri}", created=created)
        except SdrwatchError as exc:
            raise AgentError(f"receiver {w.rc.name}: {exc}") from None
    return out, plan
