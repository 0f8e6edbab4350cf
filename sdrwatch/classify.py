"""Classify emissions against the threat profiles in ``firmware_profiles/threats/*.toml``.

Each profile is one small file (name, bands, bandwidth range, time pattern, severity). An emission
gets the label of the best-fitting profile, or ``unknown``; ``reasons`` says why each near-miss did
not fit (like rtl_433's named rejections). Severity = profile severity x novelty weight, where novelty
is "new" (1.0), "changed" (0.8) or "emission" (no baseline: 0.6); an unknown emission gets 0.4 x weight.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from .dsp.tracker import Emission
from .errors import SdrwatchError

NOVELTY_WEIGHT = {"new": 1.0, "changed": 0.8, "emission": 0.6}
UNKNOWN_SEVERITY = 0.4
CONTINUOUS_MIN_S = 1.0  # on for at least this long in one piece: continuous (voice), not a burst


def profiles_dir() -> Path:
    from .resources import profiles_dir as _profiles_dir

    return _profiles_dir()


@dataclass(frozen=True)
class ThreatProfile:
    name: str
    description: str
    bands_hz: tuple[tuple[float, float], ...]
    bandwidth_hz: tuple[float, float]
    pattern: str  # "continuous" | "burst" | "any"
    severity: float
    min_duration_s: float = 0.0


@lru_cache(maxsize=4)
def load_threats(directory: str | None = None) -> tuple[ThreatProfile, ...]:
    d = Path(directory) if directory else profiles_dir() / "threats"
    out = []
    for path in sorted(d.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text())
            out.append(
                ThreatProfile(
                    name=str(data["name"]),
                    description=str(data.get("description", "")),
                    bands_hz=tuple((float(a), float(b)) for a, b in data["bands_hz"]),
                    bandwidth_hz=(float(data["bandwidth_hz"][0]), float(data["bandwidth_hz"][1])),
                    pattern=str(data.get("pattern", "any")),
                    severity=float(data["severity"]),
                    min_duration_s=float(data.get("min_duration_s", 0.0)),
                )
            )
        except (KeyError, ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
            raise SdrwatchError(f"{path}: bad threat profile ({type(exc).__name__}: {exc})") from None
    if not out:
        raise SdrwatchError(f"no threat profiles in {d}: every emission would be 'unknown' (set SDRWATCH_PROFILES "
                            "to a firmware_profiles folder with threats/*.toml, or reinstall sdrwatch)")
    return tuple(out)


def time_pattern(e: Emission) -> str:
    """"burst", "continuous" or "either" (a single piece cut by the edge of what was watched, too short
    to tell: a pager burst and a voice link look the same through a 0.1 s sweep dwell)."""
    on_s = (e.end_s - e.start_s) * e.duty / max(e.bursts, 1)
    if e.bursts > 1:
        return "burst" if e.duty < 0.9 else "continuous"
    if on_s >= CONTINUOUS_MIN_S:
        return "continuous"
    return "either" if e.open_ended else "burst"


def _misfit(p: ThreatProfile, e: Emission) -> str | None:
    """Why profile ``p`` does not fit emission ``e`` (None if it fits)."""
    if not any(lo <= e.center_hz <= hi for lo, hi in p.bands_hz):
        return f"{p.name}: outside its bands"
    lo, hi = p.bandwidth_hz
    if not lo <= e.bandwidth_hz <= hi:
        return f"{p.name}: bandwidth {e.bandwidth_hz / 1e3:.1f} kHz not in {lo / 1e3:g}-{hi / 1e3:g} kHz"
    pattern = time_pattern(e)
    if p.pattern == "continuous":
        if pattern == "burst":
            return f"{p.name}: bursty ({e.bursts} bursts, duty {e.duty:.0%})"
        if not e.open_ended and (e.end_s - e.start_s) < p.min_duration_s:
            return f"{p.name}: lasted {e.end_s - e.start_s:.2f} s, shorter than {p.min_duration_s:g} s"
    if p.pattern == "burst" and pattern == "continuous":
        return f"{p.name}: continuous, not bursts"
    return None


def classify(e: Emission, threats: tuple[ThreatProfile, ...] | None = None) -> Emission:
    """Set ``label``, ``severity`` and ``reasons`` of an emission in place and return it."""
    threats = load_threats() if threats is None else threats
    weight = NOVELTY_WEIGHT.get(e.novelty, 0.6)
    fits = []
    reasons = []
    for p in threats:
        why = _misfit(p, e)
        if why is None:
            fits.append(p)
        else:
            reasons.append(why)
    if fits:
        best = max(fits, key=lambda p: (p.pattern != "any", p.severity))
        e.label = best.name
        e.severity = best.severity * weight
    else:
        e.label = "unknown"
        e.severity = UNKNOWN_SEVERITY * weight
    e.reasons = reasons
    return e
