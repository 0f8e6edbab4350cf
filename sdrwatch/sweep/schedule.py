"""The exam schedule: which session an instant falls in, and how much an alert then weighs.

Cheating transmitters start 30-60 minutes after a session opens, once the questions have leaked
and been solved, and run until it ends (``research/domain.md`` 1.4); test transmissions happen the
afternoon or evening before. So the weight of an alert rises through a session and stays raised on
the day before an exam day:

==========================================  ==================================================
when (site time zone)                       weight ``w``
==========================================  ==================================================
inside session s (start <= t < end)         ``0.7 + 0.3 x (t - start) / (end - start)``
an exam day, outside its sessions           ``0.5``
the day before an exam day (the eve)        ``0.6``
any other time                              ``0.3``
==========================================  ==================================================

An alert's severity is ``classified severity x w(onset)``, rounded to 3 decimals, so the same
emitter weighs 0.7 of its class at a session's start, 1.0 at its end, 0.6 the day before and 0.3 on
a quiet weekday. Alerts outside sessions keep being raised, with ``session`` null. An exam day is a
calendar day (site time) on which any session starts; its eve is the calendar day before, unless that
is an exam day itself.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo

SESSION_START_WEIGHT = 0.7
SESSION_END_WEIGHT = 1.0
EXAM_DAY_WEIGHT = 0.5
EVE_WEIGHT = 0.6
OUTSIDE_WEIGHT = 0.3


@dataclass(frozen=True)
class Moment:
    """Where an instant falls: ``phase`` is "session", "exam-day", "eve" or "outside"."""

    phase: str
    weight: float
    session: str | None = None
    progress: float | None = None  # 0 at the session's start, 1 at its end


def _as_datetime(t: float | _dt.datetime) -> _dt.datetime:
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            raise ValueError("a naive datetime has no time zone")
        return t
    return _dt.datetime.fromtimestamp(float(t), tz=_dt.timezone.utc)


class ExamSchedule:
    """Sessions of a site (``SessionConfig`` items with aware ``start``/``end``) in its time zone."""

    def __init__(self, sessions: Sequence, timezone: str | ZoneInfo = "UTC"):
        self.tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.sessions = tuple(sorted(sessions, key=lambda s: s.start))
        self.exam_days = frozenset(s.start.astimezone(self.tz).date() for s in self.sessions)

    @classmethod
    def from_config(cls, config) -> "ExamSchedule":
        return cls(config.sessions, config.timezone)

    def session_at(self, t: float | _dt.datetime):
        """The session (``SessionConfig``) that holds ``t`` (unix seconds or an aware datetime), or None."""
        dt = _as_datetime(t)
        for s in self.sessions:
            if s.start <= dt < s.end:
                return s
        return None

    def moment(self, t: float | _dt.datetime) -> Moment:
        dt = _as_datetime(t)
        s = self.session_at(dt)
        if s is not None:
            x = (dt - s.start) / (s.end - s.start)
            return Moment("session", SESSION_START_WEIGHT + (SESSION_END_WEIGHT - SESSION_START_WEIGHT) * x, s.name, x)
        day = dt.astimezone(self.tz).date()
        if day in self.exam_days:
            return Moment("exam-day", EXAM_DAY_WEIGHT)
        if day + _dt.timedelta(days=1) in self.exam_days:
            return Moment("eve", EVE_WEIGHT)
        return Moment("outside", OUTSIDE_WEIGHT)

    def weight_at(self, t: float | _dt.datetime) -> float:
        return self.moment(t).weight

    def severity(self, classified: float, t: float | _dt.datetime) -> float:
        """``classified x w(t)``, in [0, 1], 3 decimals."""
        return round(min(1.0, max(0.0, float(classified) * self.weight_at(t))), 3)

    def as_records(self) -> list[dict]:
        """Sessions as the agent's "start" health record carries them (UTC ISO-8601, "Z")."""
        return [{"name": s.name, "start": utc_iso(s.start), "end": utc_iso(s.end)} for s in self.sessions]


def utc_iso(t: float | _dt.datetime, *, ms: bool = False) -> str:
    """UTC ISO-8601 with a "Z": ``2027-06-07T01:30:00Z`` (``ms``: with milliseconds)."""
    dt = _as_datetime(t).astimezone(_dt.timezone.utc)
    if ms:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
