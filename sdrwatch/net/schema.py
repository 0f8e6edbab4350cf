"""The one wire schema of sdrwatch: alert events, health, evidence references, spectrum snapshots and
operator dispositions, as agent, outbox, collector and console all read and write them.

A record is a flat JSON object with a ``type``. On the wire (and in the outbox) it travels in a
versioned envelope: the same object with ``"v": VERSION`` added, UTF-8 JSON, at most
``MAX_FRAME_BYTES`` long.

>>> rec = {"type": "health", "kind": "heartbeat", "site": "school-12", "receiver": None,
...        "time": "2026-06-01T08:00:00Z", "severity": 0.0, "message": "ok"}
>>> decode(encode(rec)) == rec
True

Every check failure raises :class:`SchemaError` with a one-line message naming the field. Records
may carry extra fields (kind-specific numbers), as long as they are plain JSON (finite numbers,
strings, lists, objects) and the whole frame stays under the size limit.

Spectrum snapshots carry their power compactly: ``power_db`` is base64 of uint8 steps of
``power_step_db`` (0.5 dB) above ``power_offset_db``; :func:`spectrum_record` builds one from an
array and :func:`spectrum_power_db` reads it back.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import datetime

from ..errors import SdrwatchError

VERSION = 1
#: the largest encoded record (envelope included), in bytes
MAX_FRAME_BYTES = 64 * 1024
#: the largest encoded spectrum snapshot, in bytes
MAX_SPECTRUM_BYTES = 16 * 1024
#: the longest string value anywhere in a record (a note, a message, a path)
MAX_STRING_CHARS = 4096
#: the deepest nesting of lists/objects inside a record
MAX_DEPTH = 6

TYPES = ("alert", "health", "evidence", "spectrum", "disposition")
ALERT_EVENTS = ("open", "update", "close")
DISPOSITIONS = ("cheating", "declared", "false_alarm", "other", "ack")
SPECTRUM_STEP_DB = 0.5


class SchemaError(SdrwatchError):
    """A record or frame that does not fit the wire schema; ``str(err)`` is one line."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _err(rtype: str, field: str, what: str) -> SchemaError:
    return SchemaError(f"{rtype} record: field '{field}' {what}")


# --- field checkers: each returns an error text or None -------------------------------------------------


def _is_num(v) -> bool:
    t = type(v)
    if t is float:
        return v - v == 0.0  # false for inf and nan
    return t is int or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def _number(v):
    return None if _is_num(v) else "must be a finite number"


def _number_or_null(v):
    return None if v is None or _is_num(v) else "must be a finite number or null"


def _frequency(v):
    return None if _is_num(v) and 0 <= v <= 1e11 else "must be a frequency in Hz (0..1e11)"


def _frequency_or_null(v):
    return None if v is None else _frequency(v)


def _unit(v):
    return None if _is_num(v) and 0.0 <= v <= 1.0 else "must be a number from 0 to 1"


def _count(v):
    return None if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53 else "must be a non-negative integer"


def _bool(v):
    return None if isinstance(v, bool) else "must be true or false"


def _text(v):
    if not isinstance(v, str):
        return "must be a string"
    return None


def _line(v):
    if not isinstance(v, str):
        return "must be a string"
    if "\n" in v or "\r" in v:
        return "must be one line"
    return None


def _text_or_null(v):
    return None if v is None else _line(v)


_OK_NAMES: set = set()  # names, ids and times already found valid (bounded): they repeat in every record
_OK_TIMES: set = set()


def _remember(cache: set, v: str) -> None:
    if len(cache) > 8192:
        cache.clear()
    cache.add(v)


def _name(v):
    if type(v) is str and v in _OK_NAMES:
        return None
    if isinstance(v, str) and _NAME.match(v):
        _remember(_OK_NAMES, v)
        return None
    return "must be a name of 1-64 letters, digits or ._:@- (starting with a letter or digit)"


def _id(v):
    return None if isinstance(v, str) and _ID.match(v) else "must be an id of 1-128 letters, digits or ._:@-"


def _name_or_null(v):
    return None if v is None else _name(v)


def _kind(v):
    return None if isinstance(v, str) and _KIND.match(v) else "must be a lower-case identifier"


def _time(v):
    if type(v) is str and v in _OK_TIMES:
        return None
    if not isinstance(v, str) or not _TIME.match(v):
        return 'must be UTC ISO-8601 ending in "Z", e.g. "2026-06-01T08:00:00Z"'
    try:
        datetime.fromisoformat(v[:-1][:26])
    except ValueError:
        return "is not a valid date and time"
    _remember(_OK_TIMES, v)
    return None


def _time_or_null(v):
    return None if v is None else _time(v)


def _sha512(v):
    return None if isinstance(v, str) and _HEX128.match(v) else "must be 128 lower-case hex digits (SHA-512)"


def _one_of(choices):
    def check(v):
        return None if v in choices else "must be one of " + ", ".join(choices)

    return check


def _exact(value):
    def check(v):
        return None if v == value else f"must be {value!r}"

    return check


def _list_of(check, max_items=1024):
    def run(v):
        if not isinstance(v, list):
            return "must be a list"
        if len(v) > max_items:
            return f"has more than {max_items} items"
        for i, item in enumerate(v):
            e = check(item)
            if e:
                return f"item {i} {e}"
        return None

    return run


def _object(fields: dict, optional: dict | None = None):
    def run(v):
        if not isinstance(v, dict):
            return "must be an object"
        for k, check in fields.items():
            if k not in v:
                return f"lacks '{k}'"
            e = check(v[k])
            if e:
                return f"'{k}' {e}"
        for k, check in (optional or {}).items():
            if k in v:
                e = check(v[k])
                if e:
                    return f"'{k}' {e}"
        return None

    return run


def _evidence_ref(v):
    return _object({"sha512": _sha512, "bytes": _count}, {"path": _text})(v)


def _covered_by(v):
    if v is None or isinstance(v, (str, dict)):
        return None
    return "must be a string, an object or null"


# --- record specs: (required fields, optional fields) -------------------------------------------------

_ALERT_REQUIRED = {
    "alert_id": _id,
    "event": _one_of(ALERT_EVENTS),
    "site": _name,
    "receiver": _name,
    "time": _time,
    "center_hz": _frequency,
    "bandwidth_hz": _frequency,
}
_ALERT_OPTIONAL = {
    "session": _text_or_null,
    "start_s": _number_or_null,
    "end_s": _number_or_null,
    "duration_s": _number_or_null,
    "peak_dbfs": _number_or_null,
    "snr_db": _number_or_null,
    "duty": _number_or_null,
    "bursts": _count,
    "open_ended": _bool,
    "novelty": _line,
    "label": _line,
    "severity": _unit,
    "reasons": _list_of(_line, 64),
    "scale_s": _number_or_null,
    "hop_center_hz": _frequency_or_null,
    "evidence": lambda v: None if v is None else _evidence_ref(v),
    "covered_by": _covered_by,
    "end_time": _time_or_null,
}
_HEALTH_REQUIRED = {
    "kind": _kind,
    "site": _name,
    "receiver": _name_or_null,
    "time": _time,
    "severity": _unit,
    "message": _line,
}
_HEALTH_OPTIONAL = {
    "sessions": _list_of(_object({"name": _line}, {"start": _time_or_null, "end": _time_or_null}), 256),
    "bands": _list_of(_object({"name": _line, "start_hz": _frequency, "stop_hz": _frequency}, {"priority": _number_or_null}), 1024),
    "receivers": _list_of(lambda v: _name(v) if isinstance(v, str) else _object({"receiver": _name}, {
        "revisit_s": _number_or_null, "planned_revisit_s": _number_or_null, "noise_floor_db": _number_or_null,
        "online": _bool})(v), 64),
    "revisit_s": _number_or_null,
    "planned_revisit_s": _number_or_null,
    "noise_floor_db": _number_or_null,
}
_EVIDENCE_REQUIRED = {
    "alert_id": _id,
    "path": _line,
    "sha512": _sha512,
    "bytes": _count,
    "site": _name,
    "time": _time,
}
_SPECTRUM_REQUIRED = {
    "site": _name,
    "receiver": _name,
    "time": _time,
    "start_hz": _frequency,
    "bin_hz": lambda v: None if _is_num(v) and 0 < v <= 1e9 else "must be a positive bin width in Hz",
    "power_db": _text,
    "power_offset_db": _number,
    "power_step_db": lambda v: None if _is_num(v) and 0 < v <= 10 else "must be a positive step in dB",
}
_DISPOSITION_REQUIRED = {
    "alert_id": _id,
    "operator": lambda v: _line(v) or (None if 0 < len(v.strip()) <= 64 else "must be a name of 1-64 characters"),
    "disposition": _one_of(DISPOSITIONS),
    "note": _line,
    "time": _time,
}

SPECS = {
    "alert": (_ALERT_REQUIRED, _ALERT_OPTIONAL),
    "health": (_HEALTH_REQUIRED, _HEALTH_OPTIONAL),
    "evidence": (_EVIDENCE_REQUIRED, {"receiver": _name_or_null}),
    "spectrum": (_SPECTRUM_REQUIRED, {"bins": _count}),
    "disposition": (_DISPOSITION_REQUIRED, {"console": _name_or_null}),
}


def _plain(v, depth: int = 0):
    """Error text if ``v`` is not plain, bounded JSON (finite numbers, short strings, shallow nesting)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return None if -(2**63) <= v < 2**63 else "holds an integer out of range"
    if isinstance(v, float):
        return None if math.isfinite(v) else "holds a non-finite number"
    if isinstance(v, str):
        return None if len(v) <= MAX_STRING_CHARS else f"holds a string longer than {MAX_STRING_CHARS} characters"
    if depth >= MAX_DEPTH:
        return f"is nested deeper than {MAX_DEPTH} levels"
    if isinstance(v, list):
        for item in v:
            e = _plain(item, depth + 1)
            if e:
                return e
        return None
    if isinstance(v, dict):
        for k, item in v.items():
            if not isinstance(k, str):
                return "has a non-string key"
            e = _plain(item, depth + 1)
            if e:
                return e
        return None
    return f"holds a {type(v).__name__}, not JSON"


_MERGED = {t: {**req, **opt} for t, (req, opt) in SPECS.items()}
_SCALARS = (str, int, float, bool, type(None))


def validate(record: dict) -> dict:
    """Check ``record`` against the schema and return it (unchanged); raise :class:`SchemaError`."""
    if not isinstance(record, dict):
        raise SchemaError(f"record must be a JSON object, not {type(record).__name__}")
    rtype = record.get("type")
    if not isinstance(rtype, str) or rtype not in SPECS:
        shown = rtype if isinstance(rtype, str) and len(rtype) <= 32 else type(rtype).__name__
        raise SchemaError(f"record type {shown!r} is not one of " + ", ".join(TYPES))
    for key in SPECS[rtype][0]:
        if key not in record:
            raise _err(rtype, key, "is missing")
    spec = _MERGED[rtype]
    for key, value in record.items():
        check = spec.get(key)
        if check is not None:
            e = check(value)
            if e:
                raise _err(rtype, key, e)
            tv = type(value)
            if tv is str:
                if len(value) > MAX_STRING_CHARS and key != "power_db":
                    raise _err(rtype, key, f"holds a string longer than {MAX_STRING_CHARS} characters")
                continue
            if tv in _SCALARS:
                continue
        elif key == "type":
            continue
        elif not isinstance(key, str) or len(key) > 64:
            raise SchemaError(f"{rtype} record: a field name is not a string of at most 64 characters")
        elif key == "v":
            raise _err(rtype, "v", "is reserved for the envelope")
        e = _plain(value)
        if e:
            raise _err(rtype, key, e)
    if rtype == "spectrum":
        _check_spectrum_power(record)
    return record


# --- the fast path: one straight-line check per record type ---------------------------------------------
#
# validate() walks a record field by field through the checker functions above; that is the reference and
# it words the errors. For the types that arrive by the thousand (alert events, health) a function generated
# from the same specs tests the common shapes inline (exact types, plain strings and numbers) and answers
# only "certainly valid" (True) or "ask validate()" (False): a record it passes, validate() passes too
# (tests/test_net_schema.py checks that on hypothesis-made records), and everything else goes to
# validate(), which accepts it or raises the usual one-line error.

_M = object()
_LINE = "(type(v) is str and len(v) <= MAX_STRING_CHARS and '\\n' not in v and '\\r' not in v)"
_NUM = "(type(v) is float and v - v == 0.0 or type(v) is int)"
_INLINE = {
    _number: _NUM,
    _number_or_null: f"(v is None or {_NUM})",
    _frequency: "((type(v) is float or type(v) is int) and 0 <= v <= 1e11)",
    _frequency_or_null: "(v is None or (type(v) is float or type(v) is int) and 0 <= v <= 1e11)",
    _unit: "((type(v) is float or type(v) is int) and 0.0 <= v <= 1.0)",
    _count: "(type(v) is int and 0 <= v < 2**53)",
    _bool: "(type(v) is bool)",
    _line: _LINE,
    _text_or_null: f"(v is None or {_LINE})",
    _name: "(type(v) is str and (v in _OK_NAMES or _name(v) is None))",
    _name_or_null: "(v is None or type(v) is str and (v in _OK_NAMES or _name(v) is None))",
    _id: "(type(v) is str and _ID.match(v) is not None)",
    _kind: "(type(v) is str and _KIND.match(v) is not None)",
    _time: "(type(v) is str and (v in _OK_TIMES or _time(v) is None))",
    _time_or_null: "(v is None or type(v) is str and (v in _OK_TIMES or _time(v) is None))",
}


def _field_ok(check, v) -> bool:
    """What validate() does with one known field, as a yes/no."""
    if check(v) is not None:
        return False
    if type(v) is str:
        return len(v) <= MAX_STRING_CHARS
    return type(v) in _SCALARS or _plain(v) is None


def _extras_ok(record: dict, keys) -> bool:
    """What validate() does with fields the spec does not name, as a yes/no."""
    for k in keys:
        if type(k) is not str or len(k) > 64 or k == "v":
            return False
        x = record[k]
        t = type(x)
        if t is float:
            if x - x != 0.0:
                return False
        elif t is str:
            if len(x) > MAX_STRING_CHARS:
                return False
        elif t is int:
            if not -(2**63) <= x < 2**63:
                return False
        elif not (x is None or t is bool) and _plain(x) is not None:
            return False
    return True


def _make_fast(rtype: str):
    required, optional = SPECS[rtype]
    env = {"MAX_STRING_CHARS": MAX_STRING_CHARS, "_OK_NAMES": _OK_NAMES, "_OK_TIMES": _OK_TIMES, "_name": _name,
           "_time": _time, "_ID": _ID, "_KIND": _KIND, "_M": _M, "_field_ok": _field_ok, "_extras_ok": _extras_ok,
           "KNOWN": frozenset(required) | frozenset(optional) | {"type"}}
    lines = ["def fast(r):", f"    if r.get('type') != {rtype!r}:", "        return False", "    extra = r.keys() - KNOWN", "    if extra and not _extras_ok(r, extra):", "        return False"]
    for i, (field, check) in enumerate([*required.items(), *optional.items()]):
        expr = _INLINE.get(check)
        if expr is None and isinstance(check, type(_line)) and check.__code__ is _one_of(()).__code__:
            env[f"C{i}"] = tuple(check.__closure__[0].cell_contents)
            expr = f"(type(v) is str and v in C{i})"
        if expr is None:
            env[f"C{i}"] = check
            expr = f"_field_ok(C{i}, v)"
        lines.append(f"    v = r.get({field!r}, _M)")
        if field in required:
            lines.append(f"    if v is _M or not {expr}:")
        else:
            lines.append(f"    if v is not _M and not {expr}:")
        lines.append("        return False")
    lines.append("    return True")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the specs, no outside input
    return env["fast"]


#: record type -> its fast check (True: valid for certain; False: validate() decides)
FAST_CHECKS = {t: _make_fast(t) for t in ("alert", "health", "evidence")}


def check_fast(record: dict) -> dict:
    """:func:`validate`, quicker for the common records: the same answer, the same errors."""
    rtype = record.get("type") if type(record) is dict else None
    fast = FAST_CHECKS.get(rtype) if type(rtype) is str else None
    if fast is None or not fast(record):
        validate(record)
    return record


def _check_spectrum_power(record: dict) -> None:
    try:
        raw = base64.b64decode(record["power_db"], validate=True)
    except (binascii.Error, ValueError):
        raise _err("spectrum", "power_db", "is not base64") from None
    if not raw:
        raise _err("spectrum", "power_db", "holds no bins")
    if "bins" in record and record["bins"] != len(raw):
        raise _err("spectrum", "bins", f"says {record['bins']} but power_db holds {len(raw)}")


def _reject_constant(name: str):
    raise SchemaError(f"frame holds {name}, which is not JSON")


try:  # orjson parses the same strict JSON (no NaN/Infinity) about 5x faster
    import orjson

    def _loads(frame: bytes):
        try:
            return orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            msg = str(exc)
            if "utf-8" in msg.lower() or "surrogate" in msg.lower():
                raise SchemaError("frame is not UTF-8") from None
            if "recursion" in msg.lower() or "depth" in msg.lower():  # orjson < 3.9 / >= 3.9 wording
                raise SchemaError("frame is nested too deeply") from None
            raise ValueError(msg) from None
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib parser is the fallback
    def _loads(frame: bytes):
        return json.loads(frame.decode("utf-8"), parse_constant=_reject_constant)


def encode(record: dict) -> bytes:
    """Validate ``record`` and return its versioned frame (UTF-8 JSON with ``"v"``)."""
    validate(record)
    frame = json.dumps({"v": VERSION, **record}, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    _check_size(record["type"], len(frame))
    return frame


def _check_size(rtype: str, size: int) -> None:
    if size > MAX_FRAME_BYTES:
        raise SchemaError(f"{rtype} frame is {size} bytes, more than the limit of {MAX_FRAME_BYTES}")
    if rtype == "spectrum" and size > MAX_SPECTRUM_BYTES:
        raise SchemaError(f"spectrum frame is {size} bytes, more than the limit of {MAX_SPECTRUM_BYTES}")


def decode(frame: bytes) -> dict:
    """Parse and validate one frame; return the record without its envelope; raise :class:`SchemaError`."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise SchemaError(f"frame must be bytes, not {type(frame).__name__}")
    size = len(frame)
    if size > MAX_FRAME_BYTES:
        raise SchemaError(f"frame is {size} bytes, more than the limit of {MAX_FRAME_BYTES}")
    try:
        obj = _loads(frame if type(frame) is bytes else bytes(frame))
    except UnicodeDecodeError:
        raise SchemaError("frame is not UTF-8") from None
    except RecursionError:
        raise SchemaError("frame is nested too deeply") from None
    except ValueError as exc:
        raise SchemaError(f"frame is not JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(obj, dict):
        raise SchemaError("frame is not a JSON object")
    v = obj.pop("v", None)
    if v != VERSION:
        shown = v if isinstance(v, int) and not isinstance(v, bool) else type(v).__name__ if v is not None else "missing"
        raise SchemaError(f"frame version {shown} is not supported (this sdrwatch speaks version {VERSION})")
    check_fast(obj)
    _check_size(obj["type"], size)
    return obj


# --- spectrum snapshots ---------------------------------------------------------------------------------


def spectrum_record(site: str, receiver: str, time: str, start_hz: float, bin_hz: float, power_db) -> dict:
    """A spectrum snapshot record from an array of powers in dB (quantised to 0.5 dB steps, uint8)."""
    import numpy as np

    p = np.asarray(power_db, dtype=np.float64)
    finite = p[np.isfinite(p)]
    offset = float(np.floor(finite.min())) if finite.size else 0.0
    q = np.where(np.isfinite(p), np.round((p - offset) / SPECTRUM_STEP_DB), 0)
    q = np.clip(q, 0, 255).astype(np.uint8)
    rec = {
        "type": "spectrum",
        "site": site,
        "receiver": receiver,
        "time": time,
        "start_hz": float(start_hz),
        "bin_hz": float(bin_hz),
        "bins": int(q.size),
        "power_offset_db": offset,
        "power_step_db": SPECTRUM_STEP_DB,
        "power_db": base64.b64encode(q.tobytes()).decode("ascii"),
    }
    return validate(rec)


def spectrum_power_db(record: dict):
    """The powers of a spectrum snapshot as a float32 numpy array, in dB."""
    import numpy as np

    q = np.frombuffer(base64.b64decode(record["power_db"]), dtype=np.uint8)
    return (record["power_offset_db"] + q.astype(np.float32) * record["power_step_db"]).astype(np.float32)


def utc_now() -> str:
    """Now as the schema's UTC ISO-8601 time with milliseconds, e.g. ``2026-06-01T08:00:00.123Z``."""
    from datetime import timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc_iso(unix_s: float) -> str:
    """Unix seconds as the schema's UTC ISO-8601 time with milliseconds (as :func:`utc_now`): the
    times the collector stores, so they compare as text in SQL."""
    from datetime import timezone

    return datetime.fromtimestamp(unix_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
