"""Receiver (tuner) profiles: what an RTL-SDR tuner can tune, which gains and rates it accepts, how it settles.

One TOML file per tuner lives in ``firmware_profiles/receivers/`` (``r820t.toml``, ``r828d.toml``, ``e4000.toml``,
``fc0012.toml``, ``fc0013.toml``, ``fc2580.toml``); each file's header comment names the source of its numbers.
The directory is :func:`sdrwatch.resources.profiles_dir` (package data, in a wheel too); the environment variable
``SDRWATCH_PROFILES`` points somewhere else (the directory that holds ``receivers/``).

Usage::

    prof = load_profile("R820T2")          # file stem, tuner name or alias; case-insensitive
    prof.check_frequency(1_150e6)          # raises PlanError for a frequency the tuner cannot tune
    prof.check_sample_rate(2.4e6)
    prof.nearest_gain_db(30.0)             # -> 29.7, rounded to the table like librtlsdr since 2023
    profile_for_tuner_id(5).name           # -> "R820T" (rtl_tcp greeting tuner type)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import PlanError

#: environment variable that overrides the profile directory (the one that contains ``receivers/``)
PROFILES_ENV = "SDRWATCH_PROFILES"

_REQUIRED = (
    "name", "rtl_tcp_tuner_id", "frequency_ranges_hz", "gains_tenth_db", "sample_rate_ranges_hz",
    "max_safe_sample_rate_hz", "settle_s", "discard_samples", "typical_ppm", "if_type",
    "image_rejection_db", "noise_figure_db", "usable_fraction",
)


def profiles_dir() -> Path:
    """Directory holding ``receivers/*.toml`` (``$SDRWATCH_PROFILES`` or ``<repo>/firmware_profiles``)."""
    from ..resources import profiles_dir as _profiles_dir

    return _profiles_dir()


def _mhz(hz: float) -> str:
    return f"{hz / 1e6:g}"


def _ranges_text(ranges: list[tuple[float, float]]) -> str:
    return ", ".join(f"{_mhz(lo)}-{_mhz(hi)} MHz" for lo, hi in ranges)


@dataclass(frozen=True)
class ReceiverProfile:
    """One tuner's limits and behaviour. Frequencies in Hz, gains in dB unless the name says tenths."""

    key: str  # file stem, e.g. "r820t"
    name: str  # tuner name as librtlsdr prints it, e.g. "R820T"
    rtl_tcp_tuner_id: int
    frequency_ranges_hz: tuple[tuple[float, float], ...]
    gaps_hz: tuple[tuple[float, float], ...]
    gains_tenth_db: tuple[int, ...]
    sample_rate_ranges_hz: tuple[tuple[float, float], ...]
    max_safe_sample_rate_hz: float
    settle_s: float  # typical time until a retune has settled
    settle_max_s: float  # worst observed
    discard_samples: int  # samples sdrwatch drops after each retune
    typical_ppm: float
    ppm_spread: float
    if_type: str  # "low-IF" or "zero-IF" (zero-IF -> DC spike)
    if_hz: float
    image_rejection_db: float
    noise_figure_db: float
    usable_fraction: float  # central fraction of each hop worth keeping (edge roll-off crop)
    aliases: tuple[str, ...] = ()
    description: str = ""
    degraded_above_hz: float | None = None
    upconverter_below_hz: float | None = None  # RTL-SDR Blog V4: tuned as f + offset below this
    upconverter_offset_hz: float = 0.0
    path: Path | None = field(default=None, compare=False)

    # ------------------------------------------------------------------ derived
    @property
    def gains_db(self) -> list[float]:
        """Manual gain steps in dB, ascending."""
        return [g / 10.0 for g in self.gains_tenth_db]

    @property
    def usable_ranges_hz(self) -> list[tuple[float, float]]:
        """Frequency ranges with the gaps cut out."""
        out: list[tuple[float, float]] = []
        for lo, hi in self.frequency_ranges_hz:
            pieces = [(lo, hi)]
            for glo, ghi in self.gaps_hz:
                nxt = []
                for plo, phi in pieces:
                    if ghi <= plo or glo >= phi:
                        nxt.append((plo, phi))
                        continue
                    if plo < glo:
                        nxt.append((plo, glo))
                    if ghi < phi:
                        nxt.append((ghi, phi))
                pieces = nxt
            out.extend(pieces)
        return out

    @property
    def zero_if(self) -> bool:
        return self.if_type.lower().startswith("zero")

    # ------------------------------------------------------------------ validation
    def tunable(self, center_hz: float) -> bool:
        return any(lo <= center_hz <= hi for lo, hi in self.usable_ranges_hz)

    def check_frequency(self, center_hz: float) -> float:
        """Return ``center_hz`` if the tuner can tune it, else raise a one-line :class:`PlanError`."""
        f = float(center_hz)
        if self.tunable(f):
            return f
        for glo, ghi in self.gaps_hz:
            if glo < f < ghi:
                raise PlanError(
                    f"{_mhz(f)} MHz is in the {self.name} tuning gap {_mhz(glo)}-{_mhz(ghi)} MHz "
                    f"(tunable: {_ranges_text(self.usable_ranges_hz)})"
                )
        raise PlanError(f"{_mhz(f)} MHz is outside the {self.name} tuning range ({_ranges_text(self.usable_ranges_hz)})")

    def check_sample_rate(self, rate_hz: float) -> float:
        """Return ``rate_hz`` if librtlsdr accepts it, else raise a one-line :class:`PlanError`."""
        r = float(rate_hz)
        if any(lo <= r <= hi for lo, hi in self.sample_rate_ranges_hz):
            return r
        ranges = ", ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in self.sample_rate_ranges_hz)
        raise PlanError(f"sample rate {r:.0f} S/s is not valid for {self.name} (valid: {ranges} S/s)")

    def nearest_gain_db(self, gain_db: float) -> float:
        """The table gain closest to ``gain_db`` (ties go to the lower step, as librtlsdr's loop does)."""
        g10 = float(gain_db) * 10.0
        best = min(self.gains_tenth_db, key=lambda t: (abs(t - g10), t))
        return best / 10.0

    def check_gain(self, gain_db: float | None) -> float | None:
        """``None`` (automatic gain) passes through; a number is rounded with :meth:`nearest_gain_db`."""
        if gain_db is None:
            return None
        try:
            value = float(gain_db)
        except (TypeError, ValueError):
            raise PlanError(f"gain {gain_db!r} is not a number of dB (or None for automatic gain)") from None
        if value != value:
            raise PlanError("gain NaN is not a number of dB")
        return self.nearest_gain_db(value)

    def settle_samples(self, sample_rate_hz: float) -> int:
        """Samples that pass before a retune settles at ``sample_rate_hz`` (``settle_s`` worth)."""
        return int(round(self.settle_s * sample_rate_hz))

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "aliases": list(self.aliases),
            "rtl_tcp_tuner_id": self.rtl_tcp_tuner_id,
            "description": self.description,
            "frequency_ranges_hz": [list(r) for r in self.frequency_ranges_hz],
            "gaps_hz": [list(r) for r in self.gaps_hz],
            "gains_db": self.gains_db,
            "sample_rate_ranges_hz": [list(r) for r in self.sample_rate_ranges_hz],
            "max_safe_sample_rate_hz": self.max_safe_sample_rate_hz,
            "settle_s": self.settle_s,
            "settle_max_s": self.settle_max_s,
            "discard_samples": self.discard_samples,
            "typical_ppm": self.typical_ppm,
            "ppm_spread": self.ppm_spread,
            "if_type": self.if_type,
            "if_hz": self.if_hz,
            "image_rejection_db": self.image_rejection_db,
            "noise_figure_db": self.noise_figure_db,
            "usable_fraction": self.usable_fraction,
            "degraded_above_hz": self.degraded_above_hz,
            "upconverter_below_hz": self.upconverter_below_hz,
            "upconverter_offset_hz": self.upconverter_offset_hz,
        }


def _pairs(value: Any, where: str, key: str) -> tuple[tuple[float, float], ...]:
    try:
        out = tuple((float(a), float(b)) for a, b in value)
    except (TypeError, ValueError):
        raise PlanError(f"{where}: field {key!r} must be a list of [low, high] pairs") from None
    for lo, hi in out:
        if hi < lo:
            raise PlanError(f"{where}: field {key!r} has a range with high < low ({lo:g} > {hi:g})")
    return out


def _parse(path: Path) -> ReceiverProfile:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"{where}: cannot read receiver profile ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{where}: not valid TOML ({exc})") from None
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise PlanError(f"{where}: receiver profile lacks field {missing[0]!r}")
    gains = tuple(int(g) for g in data["gains_tenth_db"])
    if not gains:
        raise PlanError(f"{where}: field 'gains_tenth_db' is empty")
    return ReceiverProfile(
        key=path.stem.lower(),
        name=str(data["name"]),
        aliases=tuple(str(a) for a in data.get("aliases", [])),
        description=str(data.get("description", "")),
        rtl_tcp_tuner_id=int(data["rtl_tcp_tuner_id"]),
        frequency_ranges_hz=_pairs(data["frequency_ranges_hz"], where, "frequency_ranges_hz"),
        gaps_hz=_pairs(data.get("gaps_hz", []), where, "gaps_hz"),
        gains_tenth_db=tuple(sorted(gains)),
        sample_rate_ranges_hz=_pairs(data["sample_rate_ranges_hz"], where, "sample_rate_ranges_hz"),
        max_safe_sample_rate_hz=float(data["max_safe_sample_rate_hz"]),
        settle_s=float(data["settle_s"]),
        settle_max_s=float(data.get("settle_max_s", data["settle_s"])),
        discard_samples=int(data["discard_samples"]),
        typical_ppm=float(data["typical_ppm"]),
        ppm_spread=float(data.get("ppm_spread", 0.0)),
        if_type=str(data["if_type"]),
        if_hz=float(data.get("if_hz", 0.0)),
        image_rejection_db=float(data["image_rejection_db"]),
        noise_figure_db=float(data["noise_figure_db"]),
        usable_fraction=float(data["usable_fraction"]),
        degraded_above_hz=float(data["degraded_above_hz"]) if "degraded_above_hz" in data else None,
        upconverter_below_hz=float(data["upconverter_below_hz"]) if "upconverter_below_hz" in data else None,
        upconverter_offset_hz=float(data.get("upconverter_offset_hz", 0.0)),
        path=path,
    )


@lru_cache(maxsize=8)
def _load_dir(directory: str) -> tuple[ReceiverProfile, ...]:
    folder = Path(directory) / "receivers"
    if not folder.is_dir():
        raise PlanError(f"no receiver profiles in {folder} (set {PROFILES_ENV} to the firmware_profiles directory)")
    return tuple(_parse(p) for p in sorted(folder.glob("*.toml")))


def all_profiles() -> list[ReceiverProfile]:
    """Every receiver profile, sorted by file name."""
    return list(_load_dir(str(profiles_dir())))


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def load_profile(name_or_tuner: str) -> ReceiverProfile:
    """Profile by file stem, tuner name or alias, case-insensitive (``"R820T2"`` -> the r820t profile)."""
    want = _norm(str(name_or_tuner))
    profiles = all_profiles()
    for prof in profiles:
        if want in {_norm(prof.key), _norm(prof.name), *(_norm(a) for a in prof.aliases)}:
            return prof
    names = ", ".join(p.key for p in profiles)
    raise PlanError(f"unknown tuner {name_or_tuner!r} (profiles: {names})")


def profile_for_tuner_id(tuner_id: int) -> ReceiverProfile:
    """Profile for an rtl_tcp greeting tuner type (1 E4000 ... 5 R820T, 6 R828D)."""
    for prof in all_profiles():
        if prof.rtl_tcp_tuner_id == int(tuner_id):
            return prof
    raise PlanError(f"unknown rtl_tcp tuner type {tuner_id} (known: 1 E4000, 2 FC0012, 3 FC0013, 4 FC2580, 5 R820T, 6 R828D)")
