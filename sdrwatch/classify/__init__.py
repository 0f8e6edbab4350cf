"""Classify emissions against the classes in ``firmware_profiles/``: threats and benign emitters.

The registry ``firmware_profiles/classes.toml`` lists every class explicitly; each is one small file,
``threats/<name>.toml`` or ``benign/<name>.toml`` (name, bands, bandwidth range, time pattern,
modulations, severity, optional duration limits). An emission gets the label of the best-fitting
class, or ``unknown``; ``reasons`` gives, for every class that did not fit, a reason code and why
(like rtl_433's named rejections), and first the reason for the label it got.

Reason codes (``<class>/<code>: <why>``): ``band`` outside its bands, ``bandwidth``, ``pattern``
(bursts where it is continuous or the reverse), ``duration`` (shorter than ``min_duration_s``),
``span`` (active shorter than ``min_span_s`` or longer than ``max_span_s``), ``on`` (one transmission
longer than ``max_on_s``), ``modulation`` (the IQ features say another modulation).

Choosing among the classes that fit: a class whose modulation the features confirm beats one that
could not be checked; then the narrower band (a 409.7625 MHz walkie-talkie channel beats the
400-470 MHz voice band); then a definite time pattern beats "any"; then the higher severity.

Severity = class severity x novelty weight, where novelty is "new" (1.0), "changed" (0.8) or
"emission" (no baseline: 0.6); an unknown emission gets 0.4 x weight. Benign classes carry low
severities; whether an emission is *alerted* is the allowlist's business (:mod:`sdrwatch.classify.allowlist`).

Features: ``classify(e, features=...)`` takes :class:`sdrwatch.dsp.features.Features` computed from
an IQ snippet of the emission (``features_from_iq`` below, or ``classify_with_iq``); without them
only band, bandwidth and time pattern decide, as in a replay of spectra alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from ..dsp.features import Features, extract
from ..dsp.tracker import Emission
from ..errors import SdrwatchError

NOVELTY_WEIGHT = {"new": 1.0, "changed": 0.8, "emission": 0.6}
UNKNOWN_SEVERITY = 0.4
CONTINUOUS_MIN_S = 1.0  # on for at least this long in one piece: continuous (voice), not a burst
MODULATIONS = ("ook", "fsk", "fm", "chirp", "cw")
PATTERNS = ("continuous", "burst", "any")
REGISTRY_FILE = "classes.toml"


def profiles_dir() -> Path:
    """The firmware_profiles folder (``$SDRWATCH_PROFILES`` or the package data, see sdrwatch.resources)."""
    from ..resources import profiles_dir as _profiles_dir

    return _profiles_dir()


@dataclass(frozen=True)
class ClassProfile:
    name: str
    description: str
    bands_hz: tuple[tuple[float, float], ...]
    bandwidth_hz: tuple[float, float]
    pattern: str  # "continuous" | "burst" | "any"
    severity: float
    min_duration_s: float = 0.0
    threat: bool = True
    modulation: tuple[str, ...] = ()  # empty: any
    min_span_s: float = 0.0
    max_span_s: float = float("inf")
    max_on_s: float = float("inf")

    def band_containing(self, f_hz: float) -> tuple[float, float] | None:
        return next(((lo, hi) for lo, hi in self.bands_hz if lo <= f_hz <= hi), None)


ThreatProfile = ClassProfile  # the name before benign classes existed


def _load_profile(path: Path, threat: bool) -> ClassProfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        modulation = tuple(str(m) for m in data.get("modulation", ()))
        p = ClassProfile(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            bands_hz=tuple((float(a), float(b)) for a, b in data["bands_hz"]),
            bandwidth_hz=(float(data["bandwidth_hz"][0]), float(data["bandwidth_hz"][1])),
            pattern=str(data.get("pattern", "any")),
            severity=float(data["severity"]),
            min_duration_s=float(data.get("min_duration_s", 0.0)),
            threat=threat,
            modulation=modulation,
            min_span_s=float(data.get("min_span_s", 0.0)),
            max_span_s=float(data.get("max_span_s", float("inf"))),
            max_on_s=float(data.get("max_on_s", float("inf"))),
        )
    except OSError as exc:
        raise SdrwatchError(f"{path}: cannot read class profile ({exc.strerror or exc})") from None
    except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SdrwatchError(f"{path}: bad class profile ({type(exc).__name__}: {exc})") from None
    if p.name != path.stem:
        raise SdrwatchError(f"{path}: name {p.name!r} does not match the file name")
    if p.pattern not in PATTERNS:
        raise SdrwatchError(f"{path}: pattern {p.pattern!r} is not one of {', '.join(PATTERNS)}")
    bad = [m for m in p.modulation if m not in MODULATIONS]
    if bad:
        raise SdrwatchError(f"{path}: modulation {bad[0]!r} is not one of {', '.join(MODULATIONS)}")
    if not p.bands_hz or any(not lo < hi for lo, hi in p.bands_hz) or not 0 < p.bandwidth_hz[0] <= p.bandwidth_hz[1]:
        raise SdrwatchError(f"{path}: bands_hz and bandwidth_hz must be non-empty [low, high] ranges")
    if not 0.0 <= p.severity <= 1.0:
        raise SdrwatchError(f"{path}: severity {p.severity} is not in 0..1")
    return p


def load_classes(directory: str | None = None) -> tuple[ClassProfile, ...]:
    """Every registered class (threats first), from ``directory`` (default: :func:`profiles_dir`)."""
    return _load_classes(str(Path(directory) if directory else profiles_dir()))


@lru_cache(maxsize=8)
def _load_classes(directory: str) -> tuple[ClassProfile, ...]:
    d = Path(directory)
    reg_path = d / REGISTRY_FILE
    if not reg_path.is_file():
        raise SdrwatchError(f"no threat profiles in {d}: the class registry {REGISTRY_FILE} is missing (set SDRWATCH_PROFILES "
                            "to a firmware_profiles folder with classes.toml, threats/ and benign/, or reinstall sdrwatch)")
    try:
        registry = tomllib.loads(reg_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SdrwatchError(f"{reg_path}: cannot read the class registry ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SdrwatchError(f"{reg_path}: bad class registry ({exc})") from None
    out: list[ClassProfile] = []
    for group, threat in (("threats", True), ("benign", False)):
        names = registry.get(group, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SdrwatchError(f"{reg_path}: '{group}' must be a list of class names")
        for name in names:
            path = d / group / f"{name}.toml"
            if not path.is_file():
                raise SdrwatchError(f"{reg_path}: class {name!r} is registered but {path} does not exist")
            out.append(_load_profile(path, threat))
        listed = set(names)
        for path in sorted((d / group).glob("*.toml")) if (d / group).is_dir() else []:
            if path.stem not in listed:
                raise SdrwatchError(f"{path}: not in the registry {reg_path} (add {path.stem!r} to '{group}')")
    if not any(p.threat for p in out):
        raise SdrwatchError(f"no threat profiles in {d}: the class registry {reg_path} lists no threats "
                            "(every emission would pass as benign or 'unknown')")
    seen: set[str] = set()
    for p in out:
        if p.name in seen:
            raise SdrwatchError(f"{reg_path}: class {p.name!r} is registered twice")
        seen.add(p.name)
    return tuple(out)


def load_threats(directory: str | None = None) -> tuple[ClassProfile, ...]:
    """The threat classes only."""
    return tuple(p for p in load_classes(directory) if p.threat)


def _cache_clear() -> None:
    _load_classes.cache_clear()


load_classes.cache_clear = _cache_clear  # type: ignore[attr-defined]
load_threats.cache_clear = _cache_clear  # type: ignore[attr-defined]


def class_named(name: str, classes: tuple[ClassProfile, ...] | None = None) -> ClassProfile | None:
    return next((p for p in (load_classes() if classes is None else classes) if p.name == name), None)


def time_pattern(e: Emission) -> str:
    """"burst", "continuous" or "either" (a single piece cut by the edge of what was watched, too short
    to tell: a pager burst and a voice link look the same through a 0.1 s sweep dwell)."""
    on_s = _on_s(e)
    if e.bursts > 1:
        return "burst" if e.duty < 0.9 else "continuous"
    if on_s >= CONTINUOUS_MIN_S:
        return "continuous"
    return "either" if e.open_ended else "burst"


def _on_s(e: Emission) -> float:
    """Mean length of one transmission (s)."""
    return (e.end_s - e.start_s) * e.duty / max(e.bursts, 1)


def _one_long_burst(p: ClassProfile, e: Emission, features: Features | None) -> bool:
    """A single transmission of up to ``max_on_s`` whose modulation the features confirm counts as a
    burst of a bursty class (a 2 s pager message is one burst, not a voice link)."""
    return (e.bursts <= 1 and _on_s(e) <= p.max_on_s < float("inf") and bool(p.modulation)
            and features is not None and features.modulation in p.modulation)


def misfit(p: ClassProfile, e: Emission, features: Features | None = None) -> str | None:
    """Why class ``p`` does not fit emission ``e``: ``"<class>/<code>: <why>"``, or None if it fits."""
    if p.band_containing(e.center_hz) is None:
        return f"{p.name}/band: outside its bands"
    lo, hi = p.bandwidth_hz
    if not lo <= e.bandwidth_hz <= hi:
        return f"{p.name}/bandwidth: {e.bandwidth_hz / 1e3:.1f} kHz not in {lo / 1e3:g}-{hi / 1e3:g} kHz"
    pattern = time_pattern(e)
    span_s = e.end_s - e.start_s
    if p.pattern == "continuous":
        if pattern == "burst":
            return f"{p.name}/pattern: bursty ({e.bursts} bursts, duty {e.duty:.0%})"
        if not e.open_ended and span_s < p.min_duration_s:
            return f"{p.name}/duration: lasted {span_s:.2f} s, shorter than {p.min_duration_s:g} s"
    if p.pattern == "burst" and pattern == "continuous" and not _one_long_burst(p, e, features):
        return f"{p.name}/pattern: continuous, not bursts"
    if span_s < p.min_span_s:
        return f"{p.name}/span: active {span_s:.2f} s, shorter than {p.min_span_s:g} s"
    if span_s > p.max_span_s:
        return f"{p.name}/span: active {span_s:.1f} s, longer than {p.max_span_s:g} s"
    if _on_s(e) > p.max_on_s and not (e.open_ended and e.bursts <= 1):
        return f"{p.name}/on: transmissions of {_on_s(e):.2f} s, longer than {p.max_on_s:g} s"
    if p.modulation and features is not None and features.modulation != "unknown" and features.modulation not in p.modulation:
        return f"{p.name}/modulation: {features.modulation}, not {' or '.join(p.modulation)}"
    return None


def _rank(p: ClassProfile, e: Emission, features: Features | None) -> tuple:
    confirmed = bool(p.modulation) and features is not None and features.modulation in p.modulation
    lo, hi = p.band_containing(e.center_hz) or (0.0, float("inf"))
    return (confirmed, -(hi - lo), p.pattern != "any", p.severity)


def classify(e: Emission, threats: tuple[ClassProfile, ...] | None = None, *, features: Features | None = None) -> Emission:
    """Set ``label``, ``severity`` and ``reasons`` of an emission in place and return it.

    ``threats``: the classes to choose from (default: every registered class, benign ones too).
    ``features``: modulation features from the emission's IQ, when a snippet was available."""
    classes = load_classes() if threats is None else threats
    weight = NOVELTY_WEIGHT.get(e.novelty, 0.6)
    fits = []
    reasons = []
    for p in classes:
        why = misfit(p, e, features)
        if why is None:
            fits.append(p)
        else:
            reasons.append(why)
    mod = f", modulation {features.modulation}" if features is not None else ""
    if fits:
        best = max(fits, key=lambda p: _rank(p, e, features))
        e.label = best.name
        e.severity = best.severity * weight
        kind = "threat" if best.threat else "benign"
        lo, hi = best.band_containing(e.center_hz)
        head = f"{best.name}/fit: {kind}, band {lo / 1e6:g}-{hi / 1e6:g} MHz{mod}"
        others = [p.name for p in fits if p is not best]
        if others:
            head += f" (also fits {', '.join(others)})"
        reasons.insert(0, head)
    else:
        e.label = "unknown"
        e.severity = UNKNOWN_SEVERITY * weight
        if mod:
            reasons.insert(0, f"unknown/fit: no class fits{mod}")
    e.reasons = reasons
    return e


def features_from_iq(e: Emission, iq, sample_rate_hz: float, center_hz: float) -> Features:
    """Features of emission ``e`` from IQ taken at ``center_hz`` (the hop centre) and ``sample_rate_hz``."""
    return extract(iq, sample_rate_hz, offset_hz=e.center_hz - center_hz, bandwidth_hz=e.bandwidth_hz)


def classify_with_iq(e: Emission, iq, sample_rate_hz: float, center_hz: float) -> Emission:
    """:func:`classify` with features from an IQ snippet of the emission (see :func:`features_from_iq`)."""
    return classify(e, features=features_from_iq(e, iq, sample_rate_hz, center_hz))


def is_threat_label(label: str) -> bool:
    p = class_named(label)
    return bool(p and p.threat)
