"""Fault injection for the simulator: what goes wrong with a real station, at scene times.

A scene file lists faults as ``[[fault]]`` tables; times are scene seconds (as for emitters)::

    [[fault]]
    kind = "antenna_off"     # the antenna is knocked off: every emitter vanishes and the front-end
    at_s = 30.0              # noise drops by drop_db (only the receiver's own noise is left)
    until_s = 60.0           # optional: put back at 60 s (default: never)
    drop_db = 10.0           # optional, default 10 dB

    [[fault]]
    kind = "stream_stop"     # the dongle stops delivering samples (unplugged, USB hang):
    at_s = 40.0              # SimSource.read raises SourceError; served over rtl_tcp, the server
                             # stops sending, so the client times out

    [[fault]]
    kind = "gain_step"       # the gain jumps by step_db (someone changed it, AGC left on)
    at_s = 20.0
    step_db = -12.0

``render(scene, ...)`` renders a span with the faults applied, cutting it at fault boundaries, so any
block split renders the same samples. The simulator calls it from ``SimSource.read`` when the scene
has faults (``Scene.faults``); ``stopped_at`` says when a stream stop begins inside a span.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import SourceError

KINDS = ("antenna_off", "stream_stop", "gain_step")
KEYS = {"kind", "at_s", "until_s", "drop_db", "step_db", "comment"}
DEFAULT_DROP_DB = 10.0


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float
    until_s: float = math.inf
    drop_db: float = DEFAULT_DROP_DB
    step_db: float = 0.0

    def active(self, t_s: float) -> bool:
        return self.at_s <= t_s < self.until_s


def _num(row: dict, key: str, where: str, default: Any = ..., lo: float = -math.inf) -> float:
    if key not in row:
        if default is ...:
            raise SourceError(f"{where}: missing field {key!r}")
        return default
    v = row[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < lo:
        raise SourceError(f"{where}: field {key!r} must be a number{'' if lo == -math.inf else f' >= {lo:g}'}, not {v!r}")
    return float(v)


def parse_faults(raw: Any, where: str = "<scene>") -> tuple[Fault, ...]:
    """The scene's ``[[fault]]`` tables; every problem is one :class:`SourceError` line."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SourceError(f"{where}: 'fault' must be an array of tables ([[fault]])")
    out = []
    for i, row in enumerate(raw):
        w = f"{where} fault[{i}]"
        if not isinstance(row, dict):
            raise SourceError(f"{w}: must be a table")
        unknown = sorted(set(row) - KEYS)
        if unknown:
            raise SourceError(f"{w}: unknown field {unknown[0]!r} (expected {', '.join(sorted(KEYS))})")
        kind = row.get("kind")
        if kind not in KINDS:
            raise SourceError(f"{w}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        at = _num(row, "at_s", w, lo=0.0)
        until = _num(row, "until_s", w, math.inf)
        if not until > at:
            raise SourceError(f"{w}: until_s must be after at_s")
        drop = _num(row, "drop_db", w, DEFAULT_DROP_DB, lo=0.0)
        step = _num(row, "step_db", w, 0.0)
        if kind == "gain_step" and "step_db" not in row:
            raise SourceError(f"{w}: a gain_step needs step_db")
        if not (math.isfinite(drop) and math.isfinite(step) and abs(step) <= 60 and drop <= 60):
            raise SourceError(f"{w}: drop_db and step_db must be finite and at most 60 dB")
        out.append(Fault(kind, at, until, drop, step))
    return tuple(out)


@dataclass(frozen=True)
class State:
    muted: bool = False
    noise_drop_db: float = 0.0
    gain_step_db: float = 0.0
    stopped: bool = False


def state_at(faults: tuple[Fault, ...], t_s: float) -> State:
    on = [f for f in faults if f.active(t_s)]
    off = [f for f in on if f.kind == "antenna_off"]
    return State(muted=bool(off), noise_drop_db=max((f.drop_db for f in off), default=0.0),
                 gain_step_db=sum(f.step_db for f in on if f.kind == "gain_step"),
                 stopped=any(f.kind == "stream_stop" for f in on))


def stopped_at(faults: tuple[Fault, ...], t0_s: float, t1_s: float) -> float | None:
    """Scene time at which a stream stop is in force within [t0, t1), or None."""
    times = [t0_s] + [f.at_s for f in faults if f.kind == "stream_stop" and t0_s < f.at_s < t1_s]
    hits = [t for t in times if state_at(faults, t).stopped]
    return min(hits) if hits else None


def render(scene, center_hz: float, sample_rate_hz: float, start_sample: int, num_samples: int, *,
           gain_db: float | None = None, ppm: float = 0.0) -> np.ndarray:
    """``scene.render`` with ``scene.faults`` applied (antenna off, gain steps), cut at their edges."""
    faults = scene.faults
    rate = float(sample_rate_hz)
    edges = sorted({int(math.ceil(t * rate)) for f in faults for t in (f.at_s, f.until_s) if math.isfinite(t)})
    cuts = [start_sample] + [n for n in edges if start_sample < n < start_sample + num_samples] + [start_sample + num_samples]
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        st = state_at(faults, a / rate)
        if not (st.muted or st.gain_step_db):
            parts.append(scene._render_plain(center_hz, rate, a, b - a, gain_db=gain_db, ppm=ppm))
            continue
        view = copy.copy(scene)
        if st.muted:
            view.emitters = []
            view.noise_dbfs_hz = scene.noise_dbfs_hz - st.noise_drop_db
        g = (scene.reference_gain_db if gain_db is None else float(gain_db)) + st.gain_step_db
        parts.append(view._render_plain(center_hz, rate, a, b - a, gain_db=g, ppm=ppm))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
