"""The allowlist: the national band plan (``firmware_profiles/bandplan/*.toml``) plus a site's own
declarations (``[[declare]]`` in its config), and which entry, if any, covers an emission.

An entry covers an emission only when all of these fit (domain.md §5, "class plausibility"):

* **band**: the emission's centre lies in one of the entry's bands;
* **bandwidth**: its bandwidth lies in the entry's range (default: the range of the entry's class);
* **class**: its label is one of the entry's classes (so an NBFM voice link inside a TV channel, or
  FSK bursts in the broadcast band, are never covered by the TV or broadcast entries);
* **schedule**, where the entry has one: the moment asked about (the emission's latest wall-clock
  time) lies inside one of its windows. Without a wall-clock time a scheduled entry covers nothing.

A covered emission is logged with ``covered_by`` = the entry's name (``bandplan:<name>`` or
``site:<name>``) and is not alerted; when it outlives its window its next event is no longer covered
and is alerted. Pure functions: nothing here reads a clock.

A site declaration::

    [[declare]]
    name = "campus-fm-listening"          # required, unique
    class = "campus-fm"                   # or classes = [...]; registered class names
    center_hz = 86.0e6                    # with tolerance_hz (default 10 kHz) ...
    # start_hz = ..., stop_hz = ...       # ... or a band
    bandwidth_hz = [60e3, 250e3]          # optional (default: the class's range)
    schedule = [["2027-06-08T14:50:00+08:00", "2027-06-08T15:25:00+08:00"]]   # optional windows
    # schedule = "sessions"               # on during the exam sessions (room jammers)
    note = "listening test, building A"
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from ..dsp.tracker import Emission
from ..errors import SdrwatchError
from . import class_named, load_classes, profiles_dir

DEFAULT_TOLERANCE_HZ = 10e3
DECLARE_KEYS = {"name", "class", "classes", "center_hz", "tolerance_hz", "start_hz", "stop_hz", "bands_hz",
                "bandwidth_hz", "schedule", "note", "comment"}
BANDPLAN_ENTRY_KEYS = {"name", "bands_hz", "classes", "bandwidth_hz", "note", "comment"}


class AllowlistError(SdrwatchError):
    """A band plan file or a site declaration that cannot be used (one line naming the entry)."""


@dataclass(frozen=True)
class Entry:
    name: str  # "bandplan:<name>" or "site:<name>"
    bands_hz: tuple[tuple[float, float], ...]
    classes: tuple[str, ...]
    bandwidth_hz: tuple[float, float] | None = None  # None: the class's range
    windows: tuple[tuple[float, float], ...] | None = None  # unix seconds; None: always
    note: str = ""

    def misfit(self, e: Emission, at_unix_s: float | None = None) -> str | None:
        """Why this entry does not cover ``e`` at ``at_unix_s`` (None: it covers it)."""
        if not any(lo <= e.center_hz <= hi for lo, hi in self.bands_hz):
            return f"{self.name}/band: {e.center_hz / 1e6:.4f} MHz outside it"
        if e.label not in self.classes:
            return f"{self.name}/class: {e.label}, not {' or '.join(self.classes)}"
        bw = self.bandwidth_hz
        if bw is None:
            p = class_named(e.label)
            bw = p.bandwidth_hz if p is not None else (0.0, math.inf)
        if not bw[0] <= e.bandwidth_hz <= bw[1]:
            return f"{self.name}/bandwidth: {e.bandwidth_hz / 1e3:.1f} kHz not in {bw[0] / 1e3:g}-{bw[1] / 1e3:g} kHz"
        if self.windows is not None:
            if at_unix_s is None:
                return f"{self.name}/schedule: scheduled, and the time is not known"
            if not any(a <= at_unix_s <= b for a, b in self.windows):
                when = _dt.datetime.fromtimestamp(at_unix_s, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                return f"{self.name}/schedule: {when} outside its windows"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bands_hz": [list(b) for b in self.bands_hz], "classes": list(self.classes),
                "bandwidth_hz": list(self.bandwidth_hz) if self.bandwidth_hz else None,
                "windows": [list(w) for w in self.windows] if self.windows is not None else None, "note": self.note}


@dataclass(frozen=True)
class Allowlist:
    entries: tuple[Entry, ...]

    def covering(self, e: Emission, at_unix_s: float | None = None) -> Entry | None:
        """The first entry (site declarations first, then the band plan) that covers ``e``."""
        return next((x for x in self.entries if x.misfit(e, at_unix_s) is None), None)

    def reasons(self, e: Emission, at_unix_s: float | None = None) -> list[str]:
        """Why each entry whose band holds ``e`` does not cover it (reason codes as in classify)."""
        out = []
        for x in self.entries:
            why = x.misfit(e, at_unix_s)
            if why is not None and "/band:" not in why:
                out.append(why)
        return out

    def __len__(self) -> int:
        return len(self.entries)


# --------------------------------------------------------------------------------------- parsing
def _hz(value: Any, where: str, key: str) -> float:
    if isinstance(value, str):
        from ..radio.file import parse_hz

        try:
            return float(parse_hz(value, what=key))
        except SdrwatchError as exc:
            raise AllowlistError(f"{where}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise AllowlistError(f"{where}: '{key}' must be a frequency in Hz, not {value!r}")
    return float(value)


def _range(value: Any, where: str, key: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise AllowlistError(f"{where}: '{key}' must be a [low, high] pair, not {value!r}")
    lo, hi = _hz(value[0], where, key), _hz(value[1], where, key)
    if not lo < hi:
        raise AllowlistError(f"{where}: '{key}' must have low < high, not {value!r}")
    return lo, hi


def _classes(row: dict, where: str) -> tuple[str, ...]:
    raw = row.get("classes", [row["class"]] if "class" in row else None)
    if raw is None:
        raise AllowlistError(f"{where}: give 'class' or 'classes' (what the entry covers)")
    if isinstance(raw, str) or not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise AllowlistError(f"{where}: 'classes' must be a non-empty list of class names")
    known = {p.name for p in load_classes()}
    for c in raw:
        if c not in known:
            raise AllowlistError(f"{where}: unknown class {c!r} (see firmware_profiles/classes.toml)")
    return tuple(raw)


def _time(value: Any, tz: _dt.tzinfo, where: str) -> float:
    from ..agent.config import aware_datetime

    dt = aware_datetime(value, tz)
    if dt is None:
        if isinstance(value, str):
            raise AllowlistError(f"{where}: 'schedule' times must be ISO-8601 such as \"2027-06-08T14:50:00+08:00\", not {value!r}")
        raise AllowlistError(f"{where}: 'schedule' times must be ISO-8601 strings, not {value!r}")
    return dt.timestamp()


def parse_declarations(rows: Iterable[dict], *, tz: _dt.tzinfo = _dt.timezone.utc,
                       sessions: Iterable[tuple[float, float]] = (), where: str = "config") -> tuple[Entry, ...]:
    """Site ``[[declare]]`` tables -> entries named ``site:<name>``. ``sessions``: the exam sessions
    as (start, end) unix seconds, for ``schedule = "sessions"``."""
    out: list[Entry] = []
    names: set[str] = set()
    sessions = tuple(sessions)
    for i, row in enumerate(rows, 1):
        w = f"{where}: [[declare]] {i}"
        if not isinstance(row, dict):
            raise AllowlistError(f"{w}: must be a table")
        unknown = sorted(set(row) - DECLARE_KEYS)
        if unknown:
            raise AllowlistError(f"{w}: unknown key {unknown[0]!r} (expected {', '.join(sorted(DECLARE_KEYS))})")
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AllowlistError(f"{w}: 'name' is required (a short text)")
        w = f"{where}: [[declare]] {name!r}"
        if name in names:
            raise AllowlistError(f"{w}: declared twice")
        names.add(name)
        classes = _classes(row, w)
        ways = [k for k in ("center_hz", "start_hz", "bands_hz") if k in row]
        if len(ways) != 1:
            raise AllowlistError(f"{w}: give exactly one of center_hz (with tolerance_hz), start_hz/stop_hz or bands_hz")
        if "center_hz" in row:
            c = _hz(row["center_hz"], w, "center_hz")
            tol = _hz(row.get("tolerance_hz", DEFAULT_TOLERANCE_HZ), w, "tolerance_hz")
            bands = ((c - tol, c + tol),)
        elif "start_hz" in row:
            if "stop_hz" not in row:
                raise AllowlistError(f"{w}: 'start_hz' needs 'stop_hz'")
            bands = (_range([row["start_hz"], row["stop_hz"]], w, "start_hz/stop_hz"),)
        else:
            raw = row["bands_hz"]
            if not isinstance(raw, list) or not raw:
                raise AllowlistError(f"{w}: 'bands_hz' must be a list of [low, high] pairs")
            bands = tuple(_range(b, w, "bands_hz") for b in raw)
        bw = _range(row["bandwidth_hz"], w, "bandwidth_hz") if "bandwidth_hz" in row else None
        windows = None
        sched = row.get("schedule")
        if sched == "sessions":
            windows = sessions
        elif sched is not None:
            if not isinstance(sched, list) or not all(isinstance(p, list) and len(p) == 2 for p in sched):
                raise AllowlistError(f"{w}: 'schedule' must be \"sessions\" or a list of [start, end] times")
            windows = tuple((_time(a, tz, w), _time(b, tz, w)) for a, b in sched)
            for a, b in windows:
                if not a < b:
                    raise AllowlistError(f"{w}: a 'schedule' window ends before it starts")
        note = row.get("note", row.get("comment", ""))
        out.append(Entry(f"site:{name}", bands, classes, bw, windows, str(note)))
    return tuple(out)


@lru_cache(maxsize=4)
def _load_bandplan(directory: str) -> tuple[Entry, ...]:
    d = Path(directory)
    files = sorted(d.glob("*.toml")) if d.is_dir() else []
    if not files:
        raise AllowlistError(f"no band plan in {d} (expected firmware_profiles/bandplan/*.toml)")
    out: list[Entry] = []
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise AllowlistError(f"{path}: not a readable band plan ({exc})") from None
        rows = data.get("entry", [])
        if not isinstance(rows, list) or not rows:
            raise AllowlistError(f"{path}: no [[entry]] tables")
        for i, row in enumerate(rows, 1):
            w = f"{path}: [[entry]] {i}"
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                raise AllowlistError(f"{w}: needs a 'name'")
            unknown = sorted(set(row) - BANDPLAN_ENTRY_KEYS)
            if unknown:
                raise AllowlistError(f"{w}: unknown key {unknown[0]!r}")
            if not isinstance(row.get("bands_hz"), list) or not row["bands_hz"]:
                raise AllowlistError(f"{w}: 'bands_hz' must be a list of [low, high] pairs")
            bands = tuple(_range(b, w, "bands_hz") for b in row["bands_hz"])
            bw = _range(row["bandwidth_hz"], w, "bandwidth_hz") if "bandwidth_hz" in row else None
            out.append(Entry(f"bandplan:{row['name']}", bands, _classes(row, w), bw, None, str(row.get("note", ""))))
    return tuple(out)


def load_bandplan(directory: str | Path | None = None) -> tuple[Entry, ...]:
    """The national band plan entries (every ``firmware_profiles/bandplan/*.toml``)."""
    return _load_bandplan(str(Path(directory) if directory else profiles_dir() / "bandplan"))


def site_allowlist(config) -> Allowlist:
    """A site's declarations (from its :class:`~sdrwatch.agent.config.SiteConfig`) then the band plan."""
    tz = getattr(config, "tz", _dt.timezone.utc)
    sessions = [(s.start.timestamp(), s.end.timestamp()) for s in getattr(config, "sessions", ())]
    site = parse_declarations(getattr(config, "declare", ()), tz=tz, sessions=sessions, where=str(getattr(config, "path", "config")))
    return Allowlist(site + load_bandplan())


def cover(e: Emission, allowlist: Allowlist, at_unix_s: float | None = None) -> str | None:
    """``covered_by`` for ``e``: the covering entry's name, or None (alert it)."""
    entry = allowlist.covering(e, at_unix_s)
    return entry.name if entry is not None else None
