"""IQ evidence: on an alert the agent keeps the signal itself, as SigMF with ``core:sha512``.

Per receiver, :class:`EvidenceRecorder` (an agent hook, see ``docs/agent.md``) keeps a ring buffer of
the current hop's recent blocks. On the first event of an alert that no allowlist entry covers:

1. **Pre-trigger**: the ring's samples from ``pre_s`` before the emission's start are taken.
2. **Confirm**: blocks at that hop keep being added until ``post_s`` after the trigger. If the sweep
   leaves the hop first, the recorder asks for a **re-dwell** of ``redwell_s`` there (the loop's
   ``redwell`` hook call). Re-dwells are bounded by :class:`RedwellBudget`: at most ``redwell_share``
   (default 10 %) of each minute of sweep time, so a noisy band cannot starve the sweep; a capture
   whose re-dwell is refused is written with what it has.
3. **Write**: :func:`write_evidence` writes ``STATE_DIR/evidence/<alert_id>.sigmf-{data,meta}`` with
   sdrwatch's one SigMF writer (:class:`sdrwatch.radio.file.SigMFWriter`: ``core:sha512`` of the
   data), one capture per contiguous segment, and annotations: the emission's edges (sample span and
   ``core:freq_lower_edge``/``upper_edge``), its label and the alert id. The metadata's own hash
   (``sdrwatch:meta_sha512``, over the canonical JSON without that key) makes a change to the
   annotations as detectable as one to the samples.
4. **Reference**: an ``evidence`` record (alert id, path, sha512, bytes) is emitted, and the alert's
   next events carry ``evidence`` = {path, sha512, bytes}: a strong hit alerts at once and its
   evidence follows as an ``update``.

The recorder also re-labels each alert with modulation features from the ring's IQ
(:func:`sdrwatch.classify.classify` with :mod:`sdrwatch.dsp.features`) and marks it ``covered_by``
when the band plan or a site declaration covers it (:mod:`sdrwatch.classify.allowlist`); covered
emissions get no evidence.

**Disk budget** (``[evidence] budget_mb``, default 500): after each write, while the folder is over
budget, the oldest evidence of a *closed* alert below ``high_severity`` (default 0.7) is deleted,
lowest severity first; evidence of an open or high-severity alert is never deleted (a ``disk``
health record says so when the budget cannot be kept).

``verify_evidence(path)`` lists what does not match (empty: all good), naming the file.

Config (all optional)::

    [evidence]
    budget_mb = 500         # disk budget of STATE_DIR/evidence
    pre_s = 0.5             # samples kept from before the trigger
    post_s = 1.0            # confirmation after the trigger
    redwell_s = 0.5         # one re-dwell
    redwell_share = 0.1     # share of sweep time re-dwells may take, per minute
    high_severity = 0.7     # evidence at or above this is never deleted
    format = "cu8"          # cu8 (2 bytes/sample, the dongle's own) or cf32
"""
from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import SdrwatchError
from .loop import AgentHook, health

DEFAULTS: dict[str, Any] = {"budget_mb": 500.0, "pre_s": 0.5, "post_s": 1.0, "redwell_s": 0.5, "redwell_share": 0.1,
                            "high_severity": 0.7, "format": "cu8", "max_wait_s": 20.0, "ring_s": 2.0}
#: the window over which the re-dwell share is kept (seconds of wall time)
REDWELL_WINDOW_S = 60.0
META_HASH_KEY = "sdrwatch:meta_sha512"


class EvidenceError(SdrwatchError):
    """Evidence that cannot be written or read (one line)."""


# ------------------------------------------------------------------------------------------ budget
class RedwellBudget:
    """Re-dwell time allowed: at most ``share`` of every ``window_s`` seconds (a sliding window)."""

    def __init__(self, share: float = 0.1, window_s: float = REDWELL_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.share, self.window_s, self.clock = float(share), float(window_s), clock
        self._spent: collections.deque[tuple[float, float]] = collections.deque()

    def used_s(self) -> float:
        now = self.clock()
        while self._spent and self._spent[0][0] < now - self.window_s:
            self._spent.popleft()
        return sum(d for _, d in self._spent)

    def allow(self, dwell_s: float) -> bool:
        """True (and the time is booked) when ``dwell_s`` more fits in the window's share."""
        if self.used_s() + dwell_s > self.share * self.window_s + 1e-9:
            return False
        self._spent.append((self.clock(), float(dwell_s)))
        return True


# ------------------------------------------------------------------------------------------ files
def _canonical(meta: dict) -> bytes:
    return json.dumps({k: v for k, v in meta.items()}, sort_keys=True, separators=(",", ":")).encode()


def _meta_hash(meta: dict) -> str:
    glob = {k: v for k, v in meta.get("global", {}).items() if k != META_HASH_KEY}
    return hashlib.sha512(_canonical({**meta, "global": glob})).hexdigest()


@dataclass
class Segment:
    """Contiguous samples of one tuning: ``sample_index`` on the receiver's sample clock."""

    center_hz: float
    sample_index: int
    iq: np.ndarray
    timestamp: float | None = None

    @property
    def end_index(self) -> int:
        return self.sample_index + len(self.iq)


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join segments that follow each other at one tuning; drop overlaps."""
    out: list[Segment] = []
    for s in sorted(segments, key=lambda s: s.sample_index):
        if out and out[-1].center_hz == s.center_hz and s.sample_index <= out[-1].end_index:
            skip = out[-1].end_index - s.sample_index
            if skip < len(s.iq):
                last = out[-1]
                out[-1] = Segment(last.center_hz, last.sample_index, np.concatenate([last.iq, s.iq[skip:]]), last.timestamp)
        else:
            out.append(s)
    return out


@dataclass
class EvidenceFile:
    meta_path: Path
    data_path: Path
    sha512: str
    bytes: int

    def ref(self) -> dict:
        return {"path": str(self.meta_path), "sha512": self.sha512, "bytes": self.bytes}


def write_evidence(stem: str | Path, segments: list[Segment], sample_rate_hz: float, *, emission, alert_id: str,
                   label: str, severity: float, site: str = "", receiver: str = "", threat: bool = True,
                   fmt: str = "cu8", extra: dict | None = None) -> EvidenceFile:
    """Write the segments as one SigMF recording with the emission annotated (module docstring)."""
    from ..radio.file import SigMFWriter, iso_utc

    segs = _merge([s for s in segments if len(s.iq)])
    if not segs:
        raise EvidenceError(f"{stem}: no samples to keep as evidence")
    glob = {"core:description": f"sdrwatch evidence for alert {alert_id}: {label}",
            "sdrwatch:alert_id": alert_id, "sdrwatch:site": site, "sdrwatch:receiver": receiver,
            "sdrwatch:severity": round(float(severity), 3), "sdrwatch:label": label}
    glob.update(extra or {})
    w = SigMFWriter(stem, fmt=fmt, sample_rate_hz=sample_rate_hz, global_extra=glob, overwrite=True)
    try:
        pos = 0
        e_lo = int(math.floor(emission.start_s * sample_rate_hz))
        e_hi = int(math.ceil(emission.end_s * sample_rate_hz))
        for s in segs:
            w.start_capture(s.center_hz, datetime=iso_utc(s.timestamp) if s.timestamp else None,
                            extra={"sdrwatch:sample_index": int(s.sample_index)})
            w.write(s.iq)
            a, b = max(e_lo, s.sample_index), min(e_hi, s.end_index)
            if b <= a:  # a confirmation segment after what the chain has timed: the emission may go on
                a, b = s.sample_index, s.end_index
                comment = "confirmation dwell after the trigger"
            else:
                comment = "the emission as detected"
            w.annotate(pos + a - s.sample_index, b - a, freq_lower_hz=emission.center_hz - emission.bandwidth_hz / 2,
                       freq_upper_hz=emission.center_hz + emission.bandwidth_hz / 2, label=label, comment=comment,
                       extra={"sdrwatch:alert_id": alert_id, "sdrwatch:threat": bool(threat),
                              "sdrwatch:severity": round(float(severity), 3)})
            pos += len(s.iq)
        meta_path = w.close()
    except BaseException:
        w.abort()
        raise
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["global"][META_HASH_KEY] = _meta_hash(meta)
    tmp = meta_path.with_name(meta_path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, meta_path)
    return EvidenceFile(meta_path, w.data_path, meta["global"]["core:sha512"], w.data_path.stat().st_size)


def _pair(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    name = p.name
    for ext in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".sigmf-meta"), p.with_name(name + ".sigmf-data")


def verify_evidence(path: str | Path) -> list[str]:
    """Problems with an evidence recording (``.sigmf-meta``, ``.sigmf-data`` or the stem), each naming
    the file: the data against ``core:sha512``, the metadata against ``sdrwatch:meta_sha512``.
    Empty list: it verifies."""
    meta_path, data_path = _pair(path)
    problems: list[str] = []
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
            raise ValueError("no 'global' object")
    except FileNotFoundError:
        return [f"{meta_path}: missing"]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"{meta_path}: metadata is damaged ({' '.join(str(exc).split())})"]
    want_meta = meta["global"].get(META_HASH_KEY)
    if want_meta is not None and want_meta != _meta_hash(meta):
        problems.append(f"{meta_path}: metadata changed since it was written ({META_HASH_KEY} does not match)")
    want = meta["global"].get("core:sha512")
    if not want:
        problems.append(f"{meta_path}: no core:sha512 to check the data against")
        return problems
    h = hashlib.sha512()
    try:
        with open(data_path, "rb") as fh:
            for chunk in iter(lambda: fh.read(4 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        problems.append(f"{data_path}: missing")
        return problems
    except OSError as exc:
        problems.append(f"{data_path}: cannot read ({exc.strerror or exc})")
        return problems
    if h.hexdigest().lower() != str(want).lower():
        problems.append(f"{data_path}: checksum mismatch: the samples do not match core:sha512 in {meta_path.name}")
    return problems


# ------------------------------------------------------------------------------------------ store
@dataclass
class _Stored:
    meta_path: Path
    data_path: Path
    alert_id: str
    severity: float
    mtime: float
    bytes: int


class EvidenceStore:
    """The evidence folder and its disk budget (module docstring)."""

    def __init__(self, directory: str | Path, budget_bytes: float, high_severity: float = 0.7):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.budget_bytes = float(budget_bytes)
        self.high_severity = float(high_severity)
        self.open_alerts: set[str] = set()
        self.files: dict[str, _Stored] = {}
        for meta in sorted(self.dir.glob("*.sigmf-meta")):
            self._index(meta)

    def _index(self, meta_path: Path) -> None:
        data_path = _pair(meta_path)[1]
        try:
            g = json.loads(meta_path.read_text(encoding="utf-8")).get("global", {})
            size = data_path.stat().st_size + meta_path.stat().st_size
            mtime = meta_path.stat().st_mtime
        except (OSError, ValueError):
            return
        aid = str(g.get("sdrwatch:alert_id", meta_path.name[: -len(".sigmf-meta")]))
        sev = g.get("sdrwatch:severity", 1.0)
        self.files[aid] = _Stored(meta_path, data_path, aid, float(sev) if isinstance(sev, (int, float)) else 1.0, mtime, size)

    def add(self, f: EvidenceFile, alert_id: str, severity: float) -> None:
        self.files[alert_id] = _Stored(f.meta_path, f.data_path, alert_id, float(severity), time.time(),
                                       f.bytes + f.meta_path.stat().st_size)

    def used_bytes(self) -> int:
        return sum(s.bytes for s in self.files.values())

    def deletable(self) -> list[_Stored]:
        """Evidence that may go, in the order it goes: lowest severity first, then oldest."""
        ok = [s for s in self.files.values() if s.alert_id not in self.open_alerts and s.severity < self.high_severity]
        return sorted(ok, key=lambda s: (s.severity, s.mtime))

    def enforce(self) -> tuple[list[str], bool]:
        """Delete evidence until within budget: (alert ids deleted, whether the budget is kept)."""
        gone = []
        for s in self.deletable():
            if self.used_bytes() <= self.budget_bytes:
                break
            for p in (s.data_path, s.meta_path):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
            self.files.pop(s.alert_id, None)
            gone.append(s.alert_id)
        return gone, self.used_bytes() <= self.budget_bytes


# ------------------------------------------------------------------------------------------ the hook
@dataclass
class _Capture:
    alert_id: str
    center_hz: float
    segments: list[Segment]
    until_index: int  # collect at this tuning up to this sample index
    started: float  # monotonic
    emission: Any
    record: dict
    redwell_asked: bool = False


def _number(cfg: dict, key: str) -> float:
    v = cfg.get(key, DEFAULTS[key])
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise EvidenceError(f"[evidence] {key} must be a number >= 0, not {v!r}")
    return float(v)


@dataclass
class EvidenceSettings:
    budget_mb: float = 500.0
    pre_s: float = 0.5
    post_s: float = 1.0
    redwell_s: float = 0.5
    redwell_share: float = 0.1
    high_severity: float = 0.7
    format: str = "cu8"
    max_wait_s: float = 20.0
    ring_s: float = 2.0

    @classmethod
    def from_config(cls, cfg: dict | None) -> "EvidenceSettings":
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(DEFAULTS))
        if unknown:
            raise EvidenceError(f"[evidence] unknown key {unknown[0]!r} (expected {', '.join(sorted(DEFAULTS))})")
        fmt = cfg.get("format", "cu8")
        if fmt not in ("cu8", "cs8", "cs16", "cf32"):
            raise EvidenceError(f"[evidence] format must be cu8, cs8, cs16 or cf32, not {fmt!r}")
        share = _number(cfg, "redwell_share")
        if share > 0.5:
            raise EvidenceError(f"[evidence] redwell_share {share:g} is over 0.5: re-dwells would starve the sweep")
        return cls(**{k: _number(cfg, k) for k in DEFAULTS if k != "format"}, format=fmt)


class EvidenceRecorder(AgentHook):
    """The agent hook (module docstring). ``factory(rx)``: one per receiver."""

    def __init__(self, rx, *, clock: Callable[[], float] = time.monotonic):
        from ..classify.allowlist import site_allowlist

        self.settings = EvidenceSettings.from_config(getattr(rx.config, "evidence", None))
        self.clock = clock
        self.rate = float(rx.sample_rate_hz)
        self.allowlist = site_allowlist(rx.config)
        self.store = EvidenceStore(Path(rx.state_dir) / "evidence", self.settings.budget_mb * 1e6, self.settings.high_severity)
        self.budget = RedwellBudget(self.settings.redwell_share, clock=clock)
        self._ring: collections.deque[Segment] = collections.deque()
        self._ring_samples = 0
        self._ring_center: float | None = None
        self.captures: dict[str, _Capture] = {}
        self.written: dict[str, EvidenceFile] = {}
        self.features: dict[str, Any] = {}
        self._redwell: list[tuple[float, float]] = []
        self.stats = {"evidence_files": 0, "redwells": 0, "redwells_refused": 0, "evidence_deleted": 0}

    # -- ring -------------------------------------------------------------------------------------
    def block(self, rx, block, events) -> None:
        if block.center_hz != self._ring_center:
            self._ring.clear()
            self._ring_samples = 0
            self._ring_center = block.center_hz
        seg = Segment(block.center_hz, int(block.sample_index), np.array(block.iq, dtype=np.complex64, copy=True), block.timestamp)
        self._ring.append(seg)
        self._ring_samples += len(seg.iq)
        limit = int(self.settings.ring_s * self.rate)
        while len(self._ring) > 1 and self._ring_samples - len(self._ring[0].iq) >= limit:
            self._ring_samples -= len(self._ring.popleft().iq)
        for cap in list(self.captures.values()):
            if cap.center_hz == block.center_hz and seg.sample_index < cap.until_index:
                if not cap.segments or seg.sample_index >= cap.segments[-1].end_index:
                    cap.segments.append(seg)
                if seg.end_index >= cap.until_index:
                    self._finish(rx, cap)

    def _ring_iq(self, start_index: int) -> list[Segment]:
        return [s for s in self._ring if s.end_index > start_index]

    # -- alerts -----------------------------------------------------------------------------------
    def alert(self, rx, record, event) -> None:
        from ..classify import class_named, classify
        from ..classify.allowlist import cover
        from ..dsp.features import extract

        e = event.emission
        aid = record["alert_id"]
        feats = self.features.get(aid)
        if feats is None and self._ring_center is not None and e.hop_center_hz == self._ring_center:
            segs = self._ring_iq(int(e.start_s * self.rate))
            if segs:
                iq = np.concatenate([s.iq for s in segs])
                feats = extract(iq, self.rate, offset_hz=e.center_hz - self._ring_center, bandwidth_hz=e.bandwidth_hz)
                if feats.modulation != "unknown":
                    self.features[aid] = feats
        if feats is not None:
            before = e.severity
            classify(e, features=feats)
            record["label"], record["reasons"] = e.label, list(e.reasons)[:64]
            if before > 0:
                record["severity"] = round(min(1.0, max(0.0, record.get("severity", before) * e.severity / before)), 3)
            record["modulation"] = feats.modulation
        covered = cover(e, self.allowlist, rx.wall_time(e.end_s))
        if covered:
            record["covered_by"] = covered
        if aid in self.written:
            record["evidence"] = self.written[aid].ref()
        if event.event == "close":
            self.store.open_alerts.discard(aid)
            self.features.pop(aid, None)
            cap = self.captures.get(aid)
            if cap is not None:
                cap.emission = e
        else:
            self.store.open_alerts.add(aid)
        if covered or aid in self.written or aid in self.captures or event.event == "close":
            return
        p = class_named(e.label)
        start = int(e.start_s * self.rate) - int(self.settings.pre_s * self.rate)
        pre = self._ring_iq(start) if e.hop_center_hz == self._ring_center else []
        now_index = pre[-1].end_index if pre else int(e.end_s * self.rate)
        cap = _Capture(aid, e.hop_center_hz, list(pre), now_index + int(self.settings.post_s * self.rate), self.clock(), e,
                       {"label": e.label, "severity": record.get("severity", e.severity), "threat": bool(p and p.threat)})
        self.captures[aid] = cap

    def dwell_end(self, rx, hop) -> None:
        for cap in list(self.captures.values()):
            if cap.center_hz != hop.center_hz:
                continue
            if self.clock() - cap.started > self.settings.max_wait_s or cap.redwell_asked:
                self._finish(rx, cap)
            elif self.settings.redwell_s > 0 and self.budget.allow(self.settings.redwell_s):
                cap.redwell_asked = True
                self._redwell.append((cap.center_hz, self.settings.redwell_s))
                self.stats["redwells"] += 1
            else:
                self.stats["redwells_refused"] += 1
                self._finish(rx, cap)

    def redwell(self, rx) -> list[tuple[float, float]]:
        """(centre Hz, dwell s) the loop should dwell on now (within the re-dwell budget)."""
        out, self._redwell = self._redwell, []
        return out

    def _finish(self, rx, cap: _Capture) -> None:
        self.captures.pop(cap.alert_id, None)
        if not cap.segments:
            return
        try:
            f = write_evidence(self.store.dir / cap.alert_id, cap.segments, self.rate, emission=cap.emission,
                               alert_id=cap.alert_id, label=cap.record["label"], severity=cap.record["severity"],
                               site=rx.site, receiver=rx.name, threat=cap.record["threat"], fmt=self.settings.format)
        except SdrwatchError as exc:
            rx.emit(health(rx.site, rx.name, "disk", f"evidence for {cap.alert_id} not written: {exc}", 0.6))
            return
        self.written[cap.alert_id] = f
        self.store.add(f, cap.alert_id, cap.record["severity"])
        self.stats["evidence_files"] += 1
        from ..sweep.schedule import utc_iso

        rx.emit({"type": "evidence", "alert_id": cap.alert_id, "path": str(f.meta_path), "sha512": f.sha512,
                 "bytes": f.bytes, "site": rx.site, "receiver": rx.name, "time": utc_iso(time.time(), ms=True)})
        gone, kept = self.store.enforce()
        self.stats["evidence_deleted"] += len(gone)
        for aid in gone:
            self.written.pop(aid, None)
        if not kept:
            rx.emit(health(rx.site, rx.name, "disk", f"evidence uses {self.store.used_bytes() / 1e6:.1f} MB, over its "
                           f"{self.settings.budget_mb:g} MB budget: all of it belongs to open or high-severity alerts", 0.7,
                           evidence_bytes=self.store.used_bytes()))
        if len(self.written) > 4096:  # keep the reference map bounded over a long day
            for aid in list(self.written)[:1024]:
                self.written.pop(aid, None)

    def heartbeat(self, rx) -> dict:
        return {"evidence_bytes": self.store.used_bytes(), "redwell_used_s": round(self.budget.used_s(), 3),
                **self.stats}

    def stop(self, rx) -> None:
        for cap in list(self.captures.values()):
            self._finish(rx, cap)

    def lost(self, rx, reason: str) -> None:
        self._ring.clear()
        self._ring_samples = 0
        self._ring_center = None
