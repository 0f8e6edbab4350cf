"""Site config: one TOML file says which receivers a site has, which bands it watches, when its exam
sessions are, and where its state lives. ``load_config(path) -> SiteConfig``; the format is in
``docs/agent.md`` and ``examples/*.toml``.

Every problem is one :class:`ConfigError` line naming the file, the table and the key, e.g.
``site.toml: [[receiver]] 2: 'gain_db' must be a number of dB or "auto", not 'loud'``. Unknown keys are
errors (a typo never goes unnoticed), except inside ``[evidence]``, ``[[declare]]`` and ``[check]``,
which are passed through untouched for the evidence and check code to read. Relative paths (the state
directory, ``sim:`` scenes, recording files, collector keys) are resolved against the config file's
directory, so a config works wherever it is started from.

``site_config_toml(...)`` writes the text of a one-receiver site config (what the demo, the agent's
benchmarks and the tests start from); ``load_config`` reads it back like any other.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import SdrwatchError

SITE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

TOP_KEYS = {"site", "receiver", "band", "session", "sweep", "collector", "evidence", "declare", "check"}
SITE_KEYS = {"id", "timezone", "state_dir", "description"}
RECEIVER_KEYS = {"uri", "name", "sample_rate_hz", "gain_db", "ppm", "tuner"}
BAND_KEYS = {"name", "start_hz", "stop_hz", "priority", "comment"}
PRESET_BAND_KEYS = {"preset", "priority"}
SESSION_KEYS = {"name", "start", "end"}
SWEEP_KEYS = {"dwell_s", "background_dwell_s", "priority_revisit_s", "background", "retune_s", "min_overlap_s"}
COLLECTOR_KEYS = {"endpoint", "server_key", "agent_key"}
BACKGROUND_MODES = ("tuner", "bands", "none")

#: the fastest and slowest dwell a plan may ask for (shorter than one 5 ms frame sees nothing)
DWELL_MIN_S, DWELL_MAX_S = 0.01, 60.0
#: the tuning range of any RTL-SDR tuner lies inside this (with an upconverter, from 0)
FREQ_MAX_HZ = 3e9


class ConfigError(SdrwatchError):
    """A site config that cannot be used: unreadable, not TOML, an unknown key or a bad value."""


@dataclass(frozen=True)
class ReceiverConfig:
    """One dongle. ``gain_db`` None is automatic gain; ``tuner`` names the receiver profile the planner
    assumes before the receiver is opened (None: what the receiver reports, ``r820t`` offline)."""

    name: str
    uri: str
    sample_rate_hz: float = 2.4e6
    gain_db: float | None = None
    ppm: int = 0
    tuner: str | None = None


@dataclass(frozen=True)
class BandConfig:
    """A frequency range to watch. Priority bands are revisited within ``priority_revisit_s``."""

    name: str
    start_hz: float
    stop_hz: float
    priority: bool = False
    preset: str | None = None  # the preset file it came from, if any
    comment: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start_hz": self.start_hz, "stop_hz": self.stop_hz, "priority": self.priority}


@dataclass(frozen=True)
class SessionConfig:
    """An exam session: timezone-aware start and end."""

    name: str
    start: _dt.datetime
    end: _dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class SweepConfig:
    """How hops are timed. ``retune_s`` None: the receiver profile's worst settling time plus the
    samples discarded after a retune. ``background``: what the background tier sweeps (the rest of the
    tuner's range, only the non-priority bands, or nothing)."""

    dwell_s: float = 0.1
    background_dwell_s: float = 0.05
    priority_revisit_s: float = 3.0
    background: str = "tuner"
    retune_s: float | None = None
    min_overlap_s: float = 0.01


@dataclass(frozen=True)
class CollectorConfig:
    endpoint: str
    server_key: Path
    agent_key: Path


@dataclass(frozen=True)
class SiteConfig:
    path: Path
    site_id: str
    timezone: str
    state_dir: Path
    receivers: tuple[ReceiverConfig, ...]
    bands: tuple[BandConfig, ...]
    sessions: tuple[SessionConfig, ...] = ()
    sweep: SweepConfig = field(default_factory=SweepConfig)
    collector: CollectorConfig | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    declare: tuple[dict[str, Any], ...] = ()
    check: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def baselines_dir(self) -> Path:
        return self.state_dir / "baselines"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.db"


# ------------------------------------------------------------------------------------------ parsing
class _Table:
    """Typed access to one TOML table; every error is one line naming file, table and key."""

    def __init__(self, data: Any, where: str, allowed: set[str], file: str):
        self.file, self.where = file, where
        if not isinstance(data, dict):
            self.fail(f"must be a table, not {type(data).__name__}")
        self.data = data
        for key in data:
            if key not in allowed:
                self.fail(f"unknown key {key!r} (expected one of {', '.join(sorted(allowed))})")

    def fail(self, message: str, key: str | None = None):
        prefix = f"{self.file}: {self.where}: " if self.where else f"{self.file}: "
        raise ConfigError(prefix + (f"{key!r} " if key else "") + message)

    def has(self, key: str) -> bool:
        return key in self.data

    def string(self, key: str, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                self.fail("is required", key)
            return default
        v = self.data[key]
        if not isinstance(v, str) or not v.strip():
            self.fail(f"must be a non-empty string, not {v!r}", key)
        return v

    def number(self, key: str, default: Any = ..., *, lo: float = -math.inf, hi: float = math.inf,
               lo_open: bool = False, unit: str = "") -> Any:
        if key not in self.data:
            if default is ...:
                self.fail("is required", key)
            return default
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f"must be a number{(' of ' + unit) if unit else ''}, not {v!r}", key)
        x = float(v)
        if not math.isfinite(x):
            self.fail(f"must be finite, not {v!r}", key)
        if (x <= lo if lo_open else x < lo) or x > hi:
            if lo_open:
                rng = f"> {lo:g}" + ("" if hi == math.inf else f" and <= {hi:g}")
            else:
                rng = f">= {lo:g}" if hi == math.inf else f"between {lo:g} and {hi:g}"
            self.fail(f"must be {rng}{(' ' + unit) if unit else ''}, not {v!r}", key)
        return x

    def hz(self, key: str, default: Any = ...) -> Any:
        """Hz as a number (150e6) or a string with a k/M/G suffix ("150M")."""
        if key not in self.data:
            if default is ...:
                self.fail("is required", key)
            return default
        v = self.data[key]
        if isinstance(v, str):
            from ..radio.file import parse_hz

            try:
                x = parse_hz(v)
            except SdrwatchError:
                self.fail(f"must be a frequency in Hz (150e6 or \"150M\"), not {v!r}", key)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f"must be a frequency in Hz (150e6 or \"150M\"), not {v!r}", key)
        else:
            x = float(v)
        if not math.isfinite(x) or not 0 < x <= FREQ_MAX_HZ:
            self.fail(f"must be between 0 and {FREQ_MAX_HZ / 1e9:g} GHz, not {v!r}", key)
        return x

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.data:
            return default
        v = self.data[key]
        if not isinstance(v, bool):
            self.fail(f"must be true or false, not {v!r}", key)
        return v


def _array_of_tables(data: dict, key: str, file: str) -> list:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ConfigError(f"{file}: '{key}' must be an array of tables ([[{key}]])")
    return v


def _resolve(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _resolve_uri(uri: str, base: Path, t: _Table) -> str:
    """Resolve relative scene and file paths against the config's directory; check the URI's shape."""
    from ..radio.base import scheme_of

    uri = uri.strip()
    scheme = scheme_of(uri)
    if "://" in uri and scheme not in ("rtlsdr", "rtl_tcp"):
        t.fail(f"unknown receiver scheme {scheme!r} in {uri!r} (expected rtlsdr://N, rtl_tcp://HOST:PORT, sim:SCENE or a file)", "uri")
    try:
        if scheme == "rtl_tcp":
            from ..radio.rtl_tcp import parse_host_port

            parse_host_port(uri)
            return uri
        if scheme == "rtlsdr":
            from ..radio.rtlsdr import _parse_uri as parse_rtlsdr  # shape check only (pyrtlsdr not needed)

            parse_rtlsdr(uri)
            return uri
        if scheme == "sim":
            from ..radio.sim.source import parse_sim_uri

            spec, _opts = parse_sim_uri(uri)
            rest = uri[4:]
            query = rest.partition("?")[2]
            cand = _resolve(base, spec)
            if cand.is_file():
                return f"sim:{cand}" + (f"?{query}" if query else "")
            from ..radio.sim.source import resolve_scene_path

            resolve_scene_path(spec)  # a name in recordings/scenes/, or one clear error
            return uri
    except SdrwatchError as exc:
        t.fail(str(exc), "uri")
    path = uri[5:] if uri.startswith("file:") else uri
    cand = _resolve(base, path)
    if not cand.exists():
        t.fail(f"receiver {uri!r} is not a known URI and no such recording {cand} exists", "uri")
    return str(cand)


def _parse_receivers(data: dict, base: Path, file: str) -> tuple[ReceiverConfig, ...]:
    rows = _array_of_tables(data, "receiver", file)
    if not rows:
        raise ConfigError(f"{file}: no [[receiver]]: a site needs at least one receiver")
    out: list[ReceiverConfig] = []
    names: set[str] = set()
    for i, row in enumerate(rows, 1):
        t = _Table(row, f"[[receiver]] {i}", RECEIVER_KEYS, file)
        name = t.string("name", f"rx{i - 1}")
        if not NAME_RE.match(name):
            t.fail("must be letters, digits and . _ : - (at most 64)", "name")
        if name in names:
            t.fail(f"{name!r} is used by an earlier receiver", "name")
        names.add(name)
        uri = _resolve_uri(t.string("uri"), base, t)
        rate = t.number("sample_rate_hz", 2.4e6, lo=225_001, hi=3_200_000, unit="S/s")
        gain: float | None
        g = t.data.get("gain_db", "auto")
        if isinstance(g, str):
            if g != "auto":
                t.fail(f'must be a number of dB or "auto", not {g!r}', "gain_db")
            gain = None
        else:
            gain = t.number("gain_db", lo=-10, hi=60, unit="dB")
        ppm = t.data.get("ppm", 0)
        if isinstance(ppm, bool) or not isinstance(ppm, int) or not -1000 <= ppm <= 1000:
            t.fail(f"must be an integer between -1000 and 1000, not {ppm!r}", "ppm")
        tuner = t.string("tuner", None)
        if tuner is not None:
            from ..radio.profiles import load_profile

            try:
                prof = load_profile(tuner)
                prof.check_sample_rate(rate)
            except SdrwatchError as exc:
                t.fail(str(exc), "tuner")
        out.append(ReceiverConfig(name, uri, rate, gain, int(ppm), tuner))
    return tuple(out)


def _parse_bands(data: dict, base: Path, file: str) -> tuple[BandConfig, ...]:
    from ..sweep.bands import load_band_preset

    rows = _array_of_tables(data, "band", file)
    if not rows:
        raise ConfigError(f"{file}: no [[band]]: a site watches at least one band (or preset = \"gaokao-cases\")")
    out: list[BandConfig] = []
    for i, row in enumerate(rows, 1):
        where = f"[[band]] {i}"
        if isinstance(row, dict) and "preset" in row:
            t = _Table(row, where, PRESET_BAND_KEYS, file)
            try:
                preset = load_band_preset(t.string("preset"), base)
            except SdrwatchError as exc:
                t.fail(str(exc), "preset")
            prio = t.boolean("priority", None) if t.has("priority") else None
            for b in preset:
                out.append(BandConfig(b.name, b.start_hz, b.stop_hz, b.priority if prio is None else prio, b.preset, b.comment))
            continue
        t = _Table(row, where, BAND_KEYS, file)
        name = t.string("name")
        if not NAME_RE.match(name):
            t.fail("must be letters, digits and . _ : - (at most 64)", "name")
        start, stop = t.hz("start_hz"), t.hz("stop_hz")
        if stop <= start:
            t.fail(f"must be above start_hz ({stop:g} <= {start:g})", "stop_hz")
        out.append(BandConfig(name, start, stop, t.boolean("priority", False), None, t.data.get("comment", "") if isinstance(t.data.get("comment", ""), str) else t.fail("must be a string", "comment")))
    seen: set[str] = set()
    for b in out:
        if b.name in seen:
            raise ConfigError(f"{file}: band name {b.name!r} is used twice (bands and presets share one namespace)")
        seen.add(b.name)
    return tuple(out)


def aware_datetime(value: Any, tz: _dt.tzinfo) -> _dt.datetime | None:
    """A TOML date-time or an ISO-8601 string (``Z`` for UTC too) as an aware datetime; one without an
    offset is in ``tz`` (site-local). None when ``value`` is neither."""
    if isinstance(value, _dt.datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def _parse_time(value: Any, tz: ZoneInfo, t: _Table, key: str) -> _dt.datetime:
    dt = aware_datetime(value, tz)
    if dt is None:
        what = "an ISO-8601 date and time" if isinstance(value, str) else "a date and time"
        t.fail(f"must be {what} such as \"2027-06-07T09:00:00+08:00\", not {value!r}", key)
    return dt


def _parse_sessions(data: dict, tz: ZoneInfo, file: str) -> tuple[SessionConfig, ...]:
    rows = _array_of_tables(data, "session", file)
    out: list[SessionConfig] = []
    for i, row in enumerate(rows, 1):
        t = _Table(row, f"[[session]] {i}", SESSION_KEYS, file)
        name = t.string("name")
        if not NAME_RE.match(name):
            t.fail("must be letters, digits and . _ : - (at most 64)", "name")
        if "start" not in row:
            t.fail("is required", "start")
        if "end" not in row:
            t.fail("is required", "end")
        start = _parse_time(row["start"], tz, t, "start")
        end = _parse_time(row["end"], tz, t, "end")
        if end <= start:
            t.fail(f"must be after start ({end.isoformat()} <= {start.isoformat()})", "end")
        if end - start > _dt.timedelta(hours=24):
            t.fail("is more than 24 h after start: one session per exam paper", "end")
        out.append(SessionConfig(name, start, end))
    names = [s.name for s in out]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError(f"{file}: session name {n!r} is used twice")
    ordered = sorted(out, key=lambda s: s.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise ConfigError(f"{file}: sessions {a.name!r} and {b.name!r} overlap")
    return tuple(ordered)


def _parse_sweep(data: dict, file: str) -> SweepConfig:
    t = _Table(data.get("sweep", {}), "[sweep]", SWEEP_KEYS, file)
    d = SweepConfig()
    dwell = t.number("dwell_s", d.dwell_s, lo=DWELL_MIN_S, hi=DWELL_MAX_S, unit="s")
    bg_dwell = t.number("background_dwell_s", d.background_dwell_s, lo=DWELL_MIN_S, hi=DWELL_MAX_S, unit="s")
    revisit = t.number("priority_revisit_s", d.priority_revisit_s, lo=0.0, lo_open=True, hi=3600, unit="s")
    background = t.string("background", d.background)
    if background not in BACKGROUND_MODES:
        t.fail(f"must be one of {', '.join(BACKGROUND_MODES)}, not {background!r}", "background")
    retune = t.number("retune_s", None, lo=0.0, hi=5.0, unit="s")
    overlap = t.number("min_overlap_s", d.min_overlap_s, lo=0.0, hi=10.0, unit="s")
    if overlap > min(dwell, bg_dwell):
        t.fail(f"({overlap:g} s) cannot exceed the dwell ({min(dwell, bg_dwell):g} s)", "min_overlap_s")
    return SweepConfig(dwell, bg_dwell, revisit, background, retune, overlap)


def _parse_collector(data: dict, base: Path, file: str) -> CollectorConfig | None:
    if "collector" not in data:
        return None
    t = _Table(data["collector"], "[collector]", COLLECTOR_KEYS, file)
    endpoint = t.string("endpoint")
    if not re.match(r"^(tcp|ipc)://\S+$", endpoint):
        t.fail(f"must be a ZeroMQ endpoint such as \"tcp://127.0.0.1:5555\", not {endpoint!r}", "endpoint")
    return CollectorConfig(endpoint, _resolve(base, t.string("server_key")), _resolve(base, t.string("agent_key")))


def _passthrough_table(data: dict, key: str, file: str) -> dict[str, Any]:
    v = data.get(key, {})
    if not isinstance(v, dict):
        raise ConfigError(f"{file}: [{key}] must be a table")
    return dict(v)


def load_config(path: str | Path) -> SiteConfig:
    """Read and check a site config. Raises :class:`ConfigError` (one line) on any problem."""
    p = Path(path)
    file = str(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({str(exc).splitlines()[0]})") from None
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{file}: unknown table {key!r} (expected {', '.join(sorted(TOP_KEYS))})")
    base = p.resolve().parent
    if "site" not in data:
        raise ConfigError(f"{file}: no [site] table (it needs at least id = \"school-12\")")
    st = _Table(data["site"], "[site]", SITE_KEYS, file)
    site_id = st.string("id")
    if not SITE_ID_RE.match(site_id):
        st.fail(f"must be letters, digits and . _ - (at most 64), not {site_id!r}", "id")
    tz_name = st.string("timezone", "UTC")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        st.fail(f"is not a known time zone such as \"Asia/Shanghai\", not {tz_name!r}", "timezone")
    state_dir = _resolve(base, st.string("state_dir", "state"))
    description = st.string("description", "")
    declare = _array_of_tables(data, "declare", file)
    return SiteConfig(
        path=p.resolve(),
        site_id=site_id,
        timezone=tz_name,
        state_dir=state_dir,
        receivers=_parse_receivers(data, base, file),
        bands=_parse_bands(data, base, file),
        sessions=_parse_sessions(data, tz, file),
        sweep=_parse_sweep(data, file),
        collector=_parse_collector(data, base, file),
        evidence=_passthrough_table(data, "evidence", file),
        declare=tuple(dict(d) for d in declare),
        check=_passthrough_table(data, "check", file),
        description=description,
    )


# ------------------------------------------------------------------------------------------ writing
#: the two priority bands the shipped exam scenes (``exam-site``, ``demo``) put their cheaters in
SCENE_BANDS = (BandConfig("pager-169", 168.5e6, 170.3e6, True), BandConfig("voice-220", 219.4e6, 221.2e6, True))

_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_string(text: str) -> str:
    # JSON's escapes (\" \\ \n \t \uXXXX ...) are TOML's; DEL is the one control character JSON leaves raw
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else _toml_string(key)  # fullmatch: "$" would let "k\n" through


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a site config holds finite numbers only, not {value!r}")
        return repr(value)
    if isinstance(value, _dt.datetime):
        return _toml_string(value.isoformat())
    if isinstance(value, (str, Path)):
        return _toml_string(str(value))
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if hasattr(value, "item"):  # a numpy scalar
        return _toml_value(value.item())
    raise ValueError(f"cannot write {type(value).__name__} {value!r} into a site config")


def _toml_table(header: str, rows: Mapping[str, Any]) -> str:
    lines = [header] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in rows.items() if v is not None]
    return "\n".join(lines) + "\n"


def site_config_toml(site_id: str, uri: str, bands: Iterable[BandConfig | tuple] = SCENE_BANDS, *,
                     receiver: str = "rx0", sample_rate_hz: float = 2.4e6, gain_db: float | None = 29.7,
                     tuner: str | None = None, timezone: str = "UTC", state_dir: str | Path = "state",
                     sessions: Iterable[SessionConfig | tuple] = (), sweep: Mapping[str, Any] | None = None,
                     collector: Mapping[str, Any] | None = None, evidence: Mapping[str, Any] | None = None,
                     declare: Iterable[Mapping[str, Any]] = (), check: Mapping[str, Any] | None = None,
                     comment: str = "") -> str:
    """The TOML text of a site with one receiver, in the format :func:`load_config` reads.

    ``bands``: :class:`BandConfig` or ``(name, start_hz, stop_hz, priority)`` tuples (default
    :data:`SCENE_BANDS`). ``sessions``: :class:`SessionConfig` or ``(name, start, end)`` with datetimes
    or ISO-8601 strings. ``sweep``, ``collector``, ``evidence``, ``check``: the keys of those tables
    (left out when None); ``declare``: one mapping per ``[[declare]]`` entry. ``gain_db`` None is
    automatic gain. ``comment`` becomes ``#`` lines at the top. Values are written exactly (floats by
    ``repr``), so a loaded config holds the numbers given; what the loader refuses (a bad key or value)
    is refused when the text is loaded, in one line, as for any hand-written file. Example::

        path.write_text(site_config_toml("school-12", "sim:demo", sweep={"background": "none"}))
        config = load_config(path)
    """
    head = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    parts = [head] if head else []
    parts.append(_toml_table("[site]", {"id": site_id, "timezone": timezone, "state_dir": state_dir}))
    parts.append(_toml_table("[[receiver]]", {"name": receiver, "uri": uri, "sample_rate_hz": float(sample_rate_hz),
                                              "gain_db": "auto" if gain_db is None else float(gain_db), "tuner": tuner}))
    for b in bands:
        name, start_hz, stop_hz, priority = (b.name, b.start_hz, b.stop_hz, b.priority) if isinstance(b, BandConfig) else b
        parts.append(_toml_table("[[band]]", {"name": name, "start_hz": float(start_hz), "stop_hz": float(stop_hz),
                                              "priority": bool(priority)}))
    for s in sessions:
        name, start, end = (s.name, s.start, s.end) if isinstance(s, SessionConfig) else s
        parts.append(_toml_table("[[session]]", {"name": name, "start": start, "end": end}))
    for header, table in (("[sweep]", sweep), ("[collector]", collector), ("[evidence]", evidence)):
        if table is not None:
            parts.append(_toml_table(header, table))
    for entry in declare:
        parts.append(_toml_table("[[declare]]", entry))
    if check is not None:
        parts.append(_toml_table("[check]", check))
    return "\n".join(parts)
