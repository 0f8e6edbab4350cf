"""Scene files (TOML) and the renderer: emitters + noise + RTL-SDR artefacts -> complex64 IQ.

See ``docs/scenes.md`` for the file format and the realism model with formulas.
"""
from __future__ import annotations

import math
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ...errors import PlanError, SdrwatchError, SourceError
from ..iq import SCALE
from ..profiles import ReceiverProfile, load_profile
from .emitters import DEFAULT_RAMP_S, KIND_FIELDS, KINDS, Emitter, OOK, make_emitter
from .schedule import Schedule, first_sample, sub_seed

#: the roll-off of the dongle's band edges: a 21-tap FIR, -0.7 dB at 70 %, -3.7 dB at 85 % and -8 dB at
#: 100 % of rate/2. These are ``firwin2(21, [0, 0.7, 0.9, 1], [1, 0.97, 0.55, 0.25],
#: window=("kaiser", 4.0))`` normalised to unit DC gain, in float32, written out so that the
#: simulator does not import ``scipy.signal`` (half a second for every ``sdrwatch simulate``);
#: ``tests/test_sim.py`` holds them to ``firwin2``.
ROLLOFF_TAPS = np.array([
    -0.0005471142358146608, 0.0011242773616686463, -0.0013815147103741765, 0.0014132262440398335,
    -0.002403238555416465, 0.007979363203048706, -0.02083892747759819, 0.04320189356803894,
    -0.06804154068231583, 0.09787751734256744, 0.8832321166992188, 0.09787751734256744,
    -0.06804154068231583, 0.04320189356803894, -0.02083892747759819, 0.007979363203048706,
    -0.002403238555416465, 0.0014132262440398335, -0.0013815147103741765, 0.0011242773616686463,
    -0.0005471142358146608], dtype=np.float32)
ROLLOFF_TAPS.setflags(write=False)

NOISE_CHUNK = 1 << 16
SUB_BLOCK = 1 << 15

_SCENE_KEYS = {"name", "description", "seed", "tuner", "noise_dbfs_hz", "floor_dbfs_hz", "reference_gain_db"}
_DONGLE_KEYS = {"dc_offset_dbfs", "dc_offset_phase_deg", "iq_amplitude_db", "iq_phase_deg", "ppm_error",
                "rolloff", "quantize", "stale_samples"}
_COMMON_KEYS = {"kind", "label", "freq_hz", "power_dbfs", "snr_db", "threat", "bandwidth_hz", "ramp_s",
                "fading_db_pp", "fading_period_s", "comment", "seed", "schedule", "windows", "bursts", "duty",
                "start_s", "stop_s"}


def irr_db(amplitude_db: float, phase_deg: float) -> float:
    """Image rejection ratio of an IQ imbalance: (1 + 2g cos(phi) + g^2) / (1 - 2g cos(phi) + g^2), in dB."""
    g = 10.0 ** (amplitude_db / 20.0)
    c = math.cos(math.radians(phase_deg))
    den = 1.0 - 2.0 * g * c + g * g
    if den <= 0.0:
        return math.inf
    return 10.0 * math.log10((1.0 + 2.0 * g * c + g * g) / den)


def amplitude_db_for_irr(irr: float) -> float:
    """Amplitude imbalance (dB, no phase error) that gives an image rejection of ``irr`` dB."""
    r = 10.0 ** (irr / 20.0)
    return 20.0 * math.log10((r - 1.0) / (r + 1.0))


@dataclass
class Dongle:
    """RTL-SDR artefacts applied after the emitters and noise are summed."""

    dc_offset_dbfs: float = -50.0
    dc_offset_phase_deg: float = 45.0
    iq_amplitude_db: float = 0.0
    iq_phase_deg: float = 0.0
    ppm_error: float = 0.0
    rolloff: bool = True
    quantize: bool = True
    stale_samples: int | None = None  # None: the profile's settle_s worth of samples

    @property
    def image_rejection_db(self) -> float:
        return irr_db(self.iq_amplitude_db, self.iq_phase_deg)

    @property
    def image_coefficient(self) -> complex:
        """kappa in r = x + kappa * conj(x) (= nu/mu of the mu*x + nu*conj(x) model)."""
        g = 10.0 ** (self.iq_amplitude_db / 20.0)
        phi = math.radians(self.iq_phase_deg)
        mu = (1.0 + g * complex(math.cos(phi), -math.sin(phi))) / 2.0
        nu = (1.0 - g * complex(math.cos(phi), math.sin(phi))) / 2.0
        return nu / mu


def _fir_symmetric(x: np.ndarray, taps: np.ndarray, out: np.ndarray) -> None:
    """``out = np.convolve(x, taps, 'valid')`` for a symmetric (linear-phase) FIR, folded: half the multiplies."""
    n, L = len(out), len(taps)
    mid = L // 2
    np.multiply(x[mid: mid + n], taps[mid], out=out)
    tmp = np.empty(n, dtype=np.complex64)
    for j in range(mid):
        np.add(x[j: j + n], x[L - 1 - j: L - 1 - j + n], out=tmp)
        tmp *= taps[j]
        out += tmp


def quantize_cu8(iq: np.ndarray) -> None:
    """In place: the cu8 round trip ``to_iq(from_iq(iq, "cu8"), "cu8")`` (round, clip to 0..255, back)."""
    _dtype, offset, scale = SCALE["cu8"]  # the one normalisation (sdrwatch.radio.iq)
    v = iq.view(np.float32)
    v *= np.float32(offset)
    v += np.float32(offset)
    np.rint(v, out=v)
    np.clip(v, 0.0, 255.0, out=v)
    v -= np.float32(offset)
    v *= np.float32(scale)


#: emitters stronger than this are not radio at a receiver but a broken scene (0 dBFS is full scale)
MAX_EMITTER_DBFS = 60.0
#: deviations, bit rates and bandwidths above this are no emitter a dongle could see
MAX_EMITTER_HZ = 10e6


#: bounds of every scene value (docs/scenes.md): (low, high) inclusive; values outside are refused in one
#: line before anything is rendered (a burst every nanosecond, a 1e6 dB fade, a negative bandwidth
#: are a broken scene, not a radio one)
SCENE_BOUNDS = {
    "noise_dbfs_hz": (-400.0, -30.0), "floor_dbfs_hz": (-400.0, -30.0), "reference_gain_db": (-20.0, 100.0),
}
DONGLE_BOUNDS = {
    "dc_offset_dbfs": (-400.0, 0.0), "dc_offset_phase_deg": (-360.0, 360.0), "iq_amplitude_db": (-20.0, 20.0),
    "iq_phase_deg": (-45.0, 45.0), "ppm_error": (-1000.0, 1000.0), "stale_samples": (0, 10_000_000),
}
EMITTER_BOUNDS = {
    "freq_hz": (1.0, 1e11), "bandwidth_override_hz": (1.0, MAX_EMITTER_HZ), "ramp_s": (0.0, 10.0),
    "fading_db_pp": (0.0, 60.0), "fading_period_s": (1e-3, 1e7),
    # kind-specific
    "audio_hz": (1.0, 100e3), "audio_bw_hz": (1.0, 100e3), "bt": (0.05, 10.0), "short_us": (1.0, 1e6),
    "long_us": (1.0, 1e6), "sync_gap_us": (0.0, 1e7), "repeats": (1, 10_000),
}
SCHEDULE_BOUNDS = {
    "period_s": (1e-3, 1e10), "length_s": (1e-5, 1e10), "offset_s": (-1e10, 1e10), "jitter_s": (0.0, 1e10),
    "mean_on_s": (1e-3, 1e10), "start_s": (-1e10, 1e10), "stop_s": (-1e10, 1e10),
}
MAX_WINDOWS = 100_000
MAX_EMITTERS = 1000


def _check_bounds(where: str, values: dict[str, Any], bounds: dict[str, tuple]) -> None:
    for key, (lo, hi) in bounds.items():
        v = values.get(key)
        if v is None or isinstance(v, bool) or (key in ("start_s", "stop_s") and math.isinf(v)):
            continue  # absent (or an unbounded schedule edge)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise SourceError(f"{where}: field {key.replace('bandwidth_override_hz', 'bandwidth_hz')!r} is {v:g}, "
                              f"outside {lo:g} to {hi:g}")


def check_scene_bounds(scene: "Scene", where: str) -> None:
    """Refuse any scene value outside the documented bounds (``SCENE_BOUNDS`` ... ``SCHEDULE_BOUNDS``)."""
    _check_bounds(f"{where} [scene]", vars(scene), SCENE_BOUNDS)
    _check_bounds(f"{where} [dongle]", vars(scene.dongle), DONGLE_BOUNDS)
    if len(scene.emitters) > MAX_EMITTERS:
        raise SourceError(f"{where}: {len(scene.emitters)} emitters (at most {MAX_EMITTERS})")
    for i, e in enumerate(scene.emitters):
        at = f"{where} emitter[{i}] ({e.label!r})"
        _check_bounds(at, vars(e), EMITTER_BOUNDS)
        sched = e.schedule
        used = {"start_s", "stop_s"} | ({"period_s", "length_s", "offset_s", "jitter_s"} if sched.kind == "bursts" else set()) \
            | ({"mean_on_s"} if sched.kind == "duty" else set())
        _check_bounds(at, {k: getattr(sched, k, None) for k in used}, SCHEDULE_BOUNDS)
        windows = getattr(sched, "windows", None) or ()
        if len(windows) > MAX_WINDOWS:
            raise SourceError(f"{at}: {len(windows)} windows (at most {MAX_WINDOWS})")
        for a, b in windows:
            if not (math.isfinite(a) and math.isfinite(b) and -1e10 <= a < b <= 1e10):
                raise SourceError(f"{at}: field 'windows' has [{a:g}, {b:g}], outside -1e10 to 1e10 s")
        if e.bandwidth_hz <= 0 or not math.isfinite(e.bandwidth_hz):
            raise SourceError(f"{at}: its bandwidth is {e.bandwidth_hz:g} Hz")


class _Fields:
    """Typed access to one TOML table with one-line errors naming the file and the field."""

    def __init__(self, data: Any, where: str, allowed: set[str] | None = None):
        if not isinstance(data, dict):
            raise SourceError(f"{where} must be a table")
        self.data, self.where = data, where
        if allowed is not None:
            for key in data:
                if key not in allowed:
                    raise SourceError(f"{where}: unknown field {key!r} (expected one of {', '.join(sorted(allowed))})")

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, typ: type, default: Any = ..., *, required: bool = False) -> Any:
        if key not in self.data:
            if required or default is ...:
                raise SourceError(f"{self.where}: missing field {key!r}")
            return default
        value = self.data[key]
        try:
            if typ is bool:
                if not isinstance(value, bool):
                    raise TypeError
                return value
            if typ is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError
                out = float(value)
                if not math.isfinite(out):
                    raise TypeError
                return out
            if typ is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError
                return int(value)
            if typ is str:
                if not isinstance(value, str):
                    raise TypeError
                return value
        except TypeError:
            name = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}[typ]
            raise SourceError(f"{self.where}: field {key!r} must be {name}, not {value!r}") from None
        raise AssertionError(typ)


def _parse_schedule(f: _Fields, seed: int, kind: str, emitter_extra: dict[str, Any]) -> Schedule:
    present = [k for k in ("windows", "bursts", "duty") if f.has(k)]
    sched = f.get("schedule", str, "always")
    if sched != "always":
        raise SourceError(f"{f.where}: field 'schedule' must be \"always\" (use windows, bursts or duty tables)")
    if len(present) > 1:
        raise SourceError(f"{f.where}: give only one of windows, bursts, duty (found {', '.join(present)})")
    start_s = f.get("start_s", float, -math.inf)
    stop_s = f.get("stop_s", float, math.inf)
    if not present:
        return Schedule("always", start_s=start_s, stop_s=stop_s, seed=seed)
    which = present[0]
    if which == "windows":
        raw = f.data["windows"]
        try:
            wins = tuple((float(a), float(b)) for a, b in raw)
        except (TypeError, ValueError):
            raise SourceError(f"{f.where}: field 'windows' must be a list of [start_s, end_s] pairs") from None
        for a, b in wins:
            if b <= a:
                raise SourceError(f"{f.where}: field 'windows' has a window that ends before it starts ({a}, {b})")
        return Schedule("windows", windows=wins, start_s=start_s, stop_s=stop_s, seed=seed)
    if which == "bursts":
        b = _Fields(f.data["bursts"], f"{f.where} bursts", {"period_s", "length_s", "offset_s", "jitter_s"})
        period = b.get("period_s", float, required=True)
        default_len = emitter_extra.get("transmission_s", ...)
        length = b.get("length_s", float, default_len)
        if length is ...:
            raise SourceError(f"{b.where}: missing field 'length_s'")
        offset = b.get("offset_s", float, 0.0)
        jitter = b.get("jitter_s", float, 0.0)
        if period <= 0 or length <= 0 or jitter < 0:
            raise SourceError(f"{b.where}: period_s and length_s must be > 0 and jitter_s >= 0")
        if length + 2 * jitter > period:
            raise SourceError(f"{b.where}: length_s + 2*jitter_s ({length + 2 * jitter:g} s) exceeds period_s ({period:g} s)")
        return Schedule("bursts", period_s=period, length_s=length, offset_s=offset, jitter_s=jitter,
                        start_s=start_s, stop_s=stop_s, seed=seed)
    d = _Fields(f.data["duty"], f"{f.where} duty", {"fraction", "mean_on_s"})
    fraction = d.get("fraction", float, required=True)
    mean_on = d.get("mean_on_s", float, required=True)
    if not 0.0 < fraction <= 0.66 or mean_on <= 0:
        raise SourceError(f"{d.where}: fraction must be in (0, 0.66] and mean_on_s > 0")
    return Schedule("duty", fraction=fraction, mean_on_s=mean_on, start_s=start_s, stop_s=stop_s, seed=seed)


class Scene:
    """A parsed, validated RF scene. Build with :meth:`from_toml` or :meth:`from_dict`."""

    def __init__(self, *, name: str, seed: int, profile: ReceiverProfile, noise_dbfs_hz: float,
                 floor_dbfs_hz: float, reference_gain_db: float, dongle: Dongle, emitters: list[Emitter],
                 description: str = "", path: Path | None = None):
        self.name = name
        self.description = description
        self.seed = int(seed)
        self.profile = profile
        self.noise_dbfs_hz = float(noise_dbfs_hz)
        self.floor_dbfs_hz = float(floor_dbfs_hz)
        self.reference_gain_db = float(reference_gain_db)
        self.dongle = dongle
        self.emitters = list(emitters)
        self.path = path
        self.recording: dict[str, Any] | None = None  # the optional [recording] table (capture plan), unparsed
        self._noise_cache: OrderedDict = OrderedDict()
        self.faults: tuple = ()  # [[fault]] tables (sdrwatch.radio.sim.faults)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_toml(cls, path: str | Path, *, seed: int | None = None, tuner: str | None = None) -> "Scene":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise SourceError(f"cannot read scene {p}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SourceError(f"{p}: not a scene (not UTF-8 text)") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SourceError(f"{p}: not valid TOML ({exc})") from None
        except RecursionError:
            raise SourceError(f"{p}: not a scene (nested too deeply)") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise SourceError(f"{p}: not a scene ({' '.join(str(exc).split())[:100]})") from None
        return cls.from_dict(data, where=str(p), seed=seed, tuner=tuner, path=p)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "<scene>", seed: int | None = None,
                  tuner: str | None = None, path: Path | None = None) -> "Scene":
        top = _Fields(data, where, {"scene", "dongle", "emitter", "recording", "fault"})
        recording = data.get("recording")
        if recording is not None and not isinstance(recording, dict):
            raise SourceError(f"{where}: [recording] must be a table")
        s = _Fields(data.get("scene", {}), f"{where} [scene]", _SCENE_KEYS)
        scene_seed = seed if seed is not None else s.get("seed", int, 1)
        tuner_name = tuner or s.get("tuner", str, "r820t")
        try:
            profile = load_profile(tuner_name)
        except PlanError as exc:
            raise SourceError(f"{where} [scene]: field 'tuner': {exc}") from None
        d = _Fields(data.get("dongle", {}), f"{where} [dongle]", _DONGLE_KEYS)
        if d.has("iq_amplitude_db") or d.has("iq_phase_deg"):
            iq_amp = d.get("iq_amplitude_db", float, 0.0)
        else:
            iq_amp = amplitude_db_for_irr(profile.image_rejection_db)
        stale = d.get("stale_samples", int, None)
        if stale is not None and stale < 0:
            raise SourceError(f"{d.where}: field 'stale_samples' must be >= 0")
        dongle = Dongle(
            dc_offset_dbfs=d.get("dc_offset_dbfs", float, -30.0 if profile.zero_if else -50.0),
            dc_offset_phase_deg=d.get("dc_offset_phase_deg", float, 45.0),
            iq_amplitude_db=iq_amp,
            iq_phase_deg=d.get("iq_phase_deg", float, 0.0),
            ppm_error=d.get("ppm_error", float, 0.0),
            rolloff=d.get("rolloff", bool, True),
            quantize=d.get("quantize", bool, True),
            stale_samples=stale,
        )
        noise = s.get("noise_dbfs_hz", float, -100.0)
        floor = s.get("floor_dbfs_hz", float, -140.0)
        ref_gain = s.get("reference_gain_db", float, 29.7)
        raw_emitters = data.get("emitter", [])
        if not isinstance(raw_emitters, list):
            raise SourceError(f"{where}: 'emitter' must be an array of tables ([[emitter]])")
        emitters = []
        labels: set[str] = set()
        for i, raw in enumerate(raw_emitters):
            e = cls._parse_emitter(raw, f"{where} emitter[{i}]", i, scene_seed, noise, floor)
            if e.label in labels:
                raise SourceError(f"{where} emitter[{i}]: duplicate label {e.label!r}")
            labels.add(e.label)
            emitters.append(e)
        del top
        scene = cls(name=s.get("name", str, Path(where).stem), description=s.get("description", str, ""),
                    seed=scene_seed, profile=profile, noise_dbfs_hz=noise, floor_dbfs_hz=floor,
                    reference_gain_db=ref_gain, dongle=dongle, emitters=emitters, path=path)
        scene.recording = dict(recording) if recording else None
        from .faults import parse_faults  # fault injection ([[fault]] tables): sdrwatch/radio/sim/faults.py

        scene.faults = parse_faults(data.get("fault"), where)
        check_scene_bounds(scene, where)
        return scene

    @staticmethod
    def _parse_emitter(raw: Any, where: str, index: int, scene_seed: int, noise: float, floor: float) -> Emitter:
        pre = _Fields(raw, where)
        kind = pre.get("kind", str, required=True)
        if kind not in KINDS:
            raise SourceError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        specific_spec = KIND_FIELDS[kind]
        f = _Fields(raw, where, _COMMON_KEYS | set(specific_spec))
        label = f.get("label", str, f"{kind}-{index}")
        where = f"{where} ({label!r})"
        f.where = where
        seed = f.get("seed", int, None)
        seed = sub_seed(scene_seed, 0xE1, index) if seed is None else sub_seed(seed, 0xE1)
        specific = {}
        for key, (typ, default) in specific_spec.items():
            specific[key] = f.get(key, typ, default)
        if kind == "ook":
            code = specific["code"]
            if not 0 < code < (1 << 24) or (code >> 8) == 0 or (code & 0xFF) == 0:
                raise SourceError(f"{where}: field 'code' must be a 24-bit value with non-zero id (code >> 8) and cmd (code & 0xFF)")
        if kind == "lora" and not 6 <= specific["sf"] <= 12:
            raise SourceError(f"{where}: field 'sf' must be 6..12")
        if kind == "nbfm" and specific["audio"] not in ("voice", "noise", "tone"):
            raise SourceError(f"{where}: field 'audio' must be \"voice\", \"noise\" or \"tone\"")
        for key in ("deviation_hz", "bit_rate_bps", "chirp_bw_hz", "channel_hz", "bt", "short_us", "long_us"):
            if specific.get(key) is not None and specific[key] <= 0:
                raise SourceError(f"{where}: field {key!r} must be > 0")
        for key in ("deviation_hz", "bit_rate_bps", "chirp_bw_hz", "channel_hz"):
            if specific.get(key) is not None and specific[key] > MAX_EMITTER_HZ:
                raise SourceError(f"{where}: field {key!r} must be at most {MAX_EMITTER_HZ:g}")
        if f.has("power_dbfs") == f.has("snr_db"):
            raise SourceError(f"{where}: give exactly one of 'power_dbfs' and 'snr_db'")
        common = dict(
            label=label,
            freq_hz=f.get("freq_hz", float, required=True),
            power_dbfs=0.0,
            threat=f.get("threat", bool, False),
            schedule=Schedule(),
            seed=seed,
            ramp_s=f.get("ramp_s", float, DEFAULT_RAMP_S[kind]),
            fading_db_pp=f.get("fading_db_pp", float, 0.0),
            fading_period_s=f.get("fading_period_s", float, 20.0),
            comment=f.get("comment", str, ""),
            bandwidth_override_hz=f.get("bandwidth_hz", float, None),
        )
        if common["ramp_s"] < 0 or common["fading_period_s"] <= 0:
            raise SourceError(f"{where}: ramp_s must be >= 0 and fading_period_s > 0")
        _check_bounds(where, common, {"bandwidth_override_hz": EMITTER_BOUNDS["bandwidth_override_hz"]})
        try:
            emitter = make_emitter(kind, common, specific)
        except (TypeError, ValueError) as exc:  # pragma: no cover - guarded by the checks above
            raise SourceError(f"{where}: {exc}") from None
        extra = {"transmission_s": emitter.transmission_s} if isinstance(emitter, OOK) else {}
        emitter.schedule = _parse_schedule(f, sub_seed(seed, 0x5C), kind, extra)
        if f.has("power_dbfs"):
            emitter.power_dbfs = f.get("power_dbfs", float)
        else:
            n0 = 10.0 * math.log10(10 ** (noise / 10) + 10 ** (floor / 10))
            emitter.power_dbfs = f.get("snr_db", float) + n0 + 10.0 * math.log10(emitter.bandwidth_hz)
        if not -300.0 <= emitter.power_dbfs <= MAX_EMITTER_DBFS:
            raise SourceError(f"{where}: level {emitter.power_dbfs:.1f} dBFS is out of range (-300 to {MAX_EMITTER_DBFS:g} dBFS)")
        if not emitter.freq_hz > 0:
            raise SourceError(f"{where}: field 'freq_hz' must be > 0")
        return emitter

    # ------------------------------------------------------------------ levels
    def noise_density_dbfs_hz(self, gain_db: float | None = None) -> float:
        """Total noise density (front-end scaled by gain + fixed floor), dBFS/Hz, before quantisation."""
        g2 = 10.0 ** (self._gain_offset_db(gain_db) / 10.0)
        return 10.0 * math.log10(10 ** (self.noise_dbfs_hz / 10) * g2 + 10 ** (self.floor_dbfs_hz / 10))

    def snr_db(self, emitter: Emitter, gain_db: float | None = None) -> float:
        """In-band SNR: emitter power / noise power within ``emitter.bandwidth_hz``."""
        p = emitter.power_dbfs + self._gain_offset_db(gain_db)
        return p - self.noise_density_dbfs_hz(gain_db) - 10.0 * math.log10(emitter.bandwidth_hz)

    def _gain_offset_db(self, gain_db: float | None) -> float:
        return 0.0 if gain_db is None else float(gain_db) - self.reference_gain_db

    def stale_samples(self, sample_rate_hz: float) -> int:
        if self.dongle.stale_samples is not None:
            return self.dongle.stale_samples
        return self.profile.settle_samples(sample_rate_hz)

    # ------------------------------------------------------------------ rendering
    def _noise(self, center_hz: float, rate_hz: float, n0: int, count: int, scale: float) -> np.ndarray:
        """Complex Gaussian noise of power ``scale**2`` for absolute samples n0..n0+count (chunked, keyed by
        seed, centre and rate, so any span is reproducible)."""
        key = sub_seed(self.seed, 0x4E, int(round(center_hz)), int(round(rate_hz)))
        out = np.empty(count, dtype=np.complex64)
        at = n0
        while at < n0 + count:
            c = at // NOISE_CHUNK
            ck = (key, c)
            arr = self._noise_cache.get(ck)
            if arr is None:
                rng = np.random.default_rng([key, c + (1 << 40)])
                arr = rng.standard_normal(2 * NOISE_CHUNK, dtype=np.float32).view(np.complex64)
                arr *= np.float32(math.sqrt(0.5))
                self._noise_cache[ck] = arr
                if len(self._noise_cache) > 4:
                    self._noise_cache.popitem(last=False)
            lo = at - c * NOISE_CHUNK
            k = min(NOISE_CHUNK - lo, n0 + count - at)
            np.multiply(arr[lo: lo + k], np.float32(scale), out=out[at - n0: at - n0 + k])
            at += k
        return out

    def _lo_hz(self, center_hz: float, ppm: float) -> float:
        return center_hz * (1.0 + (self.dongle.ppm_error - ppm) * 1e-6)

    def _active(self, emitter: Emitter, offset_hz: float, rate_hz: float) -> bool:
        return abs(offset_hz) < 0.5 * rate_hz + 0.5 * emitter.bandwidth_hz

    def _add_emitter(self, out: np.ndarray, n_abs: np.ndarray, e: Emitter, offset_hz: float, rate_hz: float,
                     amplitude: float) -> None:
        """Add emitter ``e`` into ``out``, whose samples have absolute indices ``n_abs`` (float64, consecutive)."""
        n0, count = int(n_abs[0]), len(out)
        for a_s, b_s in e.schedule.intervals(n0 / rate_hz, (n0 + count) / rate_hz):
            a = max(first_sample(a_s, rate_hz), n0)
            b = min(first_sample(b_s, rate_hz), n0 + count)
            if b <= a:
                continue
            n = n_abs[a - n0: b - n0]
            cycles = n * (offset_hz / rate_hz)
            mod = e.phase_cycles(n, rate_hz)
            if mod is not None:
                cycles += mod
            cycles -= np.floor(cycles)
            ph = cycles.astype(np.float32)
            ph *= np.float32(2.0 * math.pi)
            sig = np.empty(b - a, dtype=np.complex64)
            np.cos(ph, out=sig.real)
            np.sin(ph, out=sig.imag)
            env = self._envelope(e, n, rate_hz, a_s, b_s)
            if env is not None:
                env *= np.float32(amplitude)
                sig *= env
            else:
                sig *= np.float32(amplitude)
            out[a - n0: b - n0] += sig

    @staticmethod
    def _envelope(e: Emitter, n: np.ndarray, rate_hz: float, a_s: float, b_s: float) -> np.ndarray | None:
        env = None
        if e.ramp_s > 0 and not isinstance(e, OOK):
            ramp_n = e.ramp_s * rate_hz
            lo = int(n[0])
            rise_end = first_sample(a_s + e.ramp_s, rate_hz) if math.isfinite(a_s) else lo
            fall_start = first_sample(b_s - e.ramp_s, rate_hz) if math.isfinite(b_s) else lo + len(n)
            if rise_end > lo or fall_start < lo + len(n):
                env = np.ones(len(n), dtype=np.float32)
                k = min(max(rise_end - lo, 0), len(n))
                if k:
                    x = np.clip((n[:k] - a_s * rate_hz) / ramp_n, 0.0, 1.0)
                    env[:k] = 0.5 - 0.5 * np.cos(np.pi * x)
                k = max(fall_start - lo, 0)
                if k < len(n):
                    x = np.clip((b_s * rate_hz - n[k:]) / ramp_n, 0.0, 1.0)
                    env[k:] *= (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)
        key = e.keying(n, rate_hz, a_s)
        if key is not None:
            env = key if env is None else env * key
        fade = e.fading(n, rate_hz)
        if fade is not None:
            env = fade if env is None else env * fade
        return env

    def render(self, center_hz: float, sample_rate_hz: float, start_sample: int, num_samples: int, *,
               gain_db: float | None = None, ppm: float = 0.0) -> np.ndarray:
        """IQ as the dongle delivers it, with the scene's faults applied (see :meth:`_render_plain`)."""
        if self.faults:
            from .faults import render as render_with_faults

            return render_with_faults(self, center_hz, sample_rate_hz, start_sample, num_samples, gain_db=gain_db, ppm=ppm)
        return self._render_plain(center_hz, sample_rate_hz, start_sample, num_samples, gain_db=gain_db, ppm=ppm)

    def _render_plain(self, center_hz: float, sample_rate_hz: float, start_sample: int, num_samples: int, *,
                      gain_db: float | None = None, ppm: float = 0.0) -> np.ndarray:
        """IQ as the dongle delivers it: complex64 at full scale 1.0 for absolute samples
        ``start_sample .. start_sample + num_samples`` (sample n is at time n / rate).

        Includes noise, every emitter on and in band, edge roll-off, IQ imbalance, DC offset, the ``gain_db``
        offset from the scene's reference gain (None = reference gain, as with AGC) and, when the scene enables
        it, 8-bit quantisation with clipping (a cu8 round trip). ``ppm`` is the correction set on the receiver;
        the residual error is ``dongle.ppm_error - ppm``. Any block split renders the same samples.
        """
        rate = float(sample_rate_hz)
        num = int(num_samples)
        if num <= 0:
            return np.zeros(0, dtype=np.complex64)
        if rate <= 0:
            raise PlanError(f"sample rate must be > 0, not {rate}")
        taps = ROLLOFF_TAPS if self.dongle.rolloff else None
        margin = len(taps) - 1 if taps is not None else 0
        n0 = int(start_sample) - margin
        total = num + margin
        g_db = self._gain_offset_db(gain_db)
        g = 10.0 ** (g_db / 20.0)
        x = self._noise(center_hz, rate, n0, total,
                        math.sqrt(10.0 ** (self.noise_density_dbfs_hz(gain_db) / 10.0) * rate))
        lo_hz = self._lo_hz(center_hz, ppm)
        active = [(e, e.freq_hz - lo_hz) for e in self.emitters if self._active(e, e.freq_hz - lo_hz, rate)]
        # work in sub-blocks so temporaries stay small and cache-resident (no fresh pages per array)
        for s0 in range(0, total, SUB_BLOCK):
            view = x[s0: s0 + SUB_BLOCK]
            n_abs = np.arange(n0 + s0, n0 + s0 + len(view), dtype=np.float64)
            for e, off in active:
                self._add_emitter(view, n_abs, e, off, rate, g * 10.0 ** (e.power_dbfs / 20.0))
        y = np.empty(num, dtype=np.complex64)
        kappa = np.complex64(self.dongle.image_coefficient)
        dc = None
        if self.dongle.dc_offset_dbfs > -300:
            dc = np.complex64(10.0 ** (self.dongle.dc_offset_dbfs / 20.0)
                              * complex(math.cos(math.radians(self.dongle.dc_offset_phase_deg)),
                                        math.sin(math.radians(self.dongle.dc_offset_phase_deg))))
        for s0 in range(0, num, SUB_BLOCK):
            out = y[s0: s0 + SUB_BLOCK]
            if taps is not None:
                _fir_symmetric(x[s0: s0 + len(out) + margin], taps, out)
            else:
                out[:] = x[s0: s0 + len(out)]
            if kappa != 0:
                out += kappa * np.conj(out)
            if dc is not None:
                out += dc
            if self.dongle.quantize:
                quantize_cu8(out)
        return y

    # ------------------------------------------------------------------ ground truth
    def truth(self, center_hz: float, sample_rate_hz: float, start_sample: int, num_samples: int, *,
              ppm: float = 0.0, gain_db: float | None = None, images: bool = True) -> list[dict[str, Any]]:
        """Emitters on and inside the band during the span, as SigMF-annotation-like dicts.

        ``sample_start`` is relative to ``start_sample``; frequencies are where the emitter appears in the IQ
        (true frequency shifted by the residual ppm error). With ``images``, IQ-imbalance images with an
        in-band SNR of at least 3 dB are listed too (label "<label> image", kind "image", never a threat).
        """
        rate = float(sample_rate_hz)
        start, num = int(start_sample), int(num_samples)
        lo_hz = self._lo_hz(center_hz, ppm)
        out: list[dict[str, Any]] = []
        irr = self.dongle.image_rejection_db
        for e in self.emitters:
            off = e.freq_hz - lo_hz
            spans = []
            for a_s, b_s in e.schedule.intervals(start / rate, (start + num) / rate):
                a = max(first_sample(a_s, rate), start)
                b = min(first_sample(b_s, rate), start + num)
                if b > a:
                    spans.append((a - start, b - a))
            if not spans:
                continue
            snr = self.snr_db(e, gain_db)
            bw = e.bandwidth_hz
            entries = []
            if self._active(e, off, rate) and abs(off) - 0.5 * bw < 0.5 * rate:
                entries.append((center_hz + off, e.label, e.kind, e.power_dbfs, snr, e.threat))
            img_snr = snr - irr
            if images and math.isfinite(irr) and img_snr >= 3.0 and abs(off) - 0.5 * bw < 0.5 * rate:
                entries.append((center_hz - off, f"{e.label} image", "image", e.power_dbfs - irr, img_snr, False))
            for f_hz, label, kind, power, s_db, threat in entries:
                comment = (f"{kind} {power:.1f} dBFS, in-band SNR {s_db:.1f} dB in {bw / 1e3:g} kHz "
                           f"({e.bandwidth_rule()}); true freq {e.freq_hz / 1e6:.6f} MHz")
                for rel, cnt in spans:
                    out.append({
                        "sample_start": rel,
                        "sample_count": cnt,
                        "freq_lower_hz": f_hz - 0.5 * bw,
                        "freq_upper_hz": f_hz + 0.5 * bw,
                        "label": label,
                        "comment": comment,
                        "sdrwatch:threat": bool(threat),
                        "sdrwatch:snr_db": round(s_db, 2),
                        "sdrwatch:kind": kind,
                        "sdrwatch:power_dbfs": round(power, 2),
                    })
        out.sort(key=lambda d: (d["sample_start"], d["freq_lower_hz"]))
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seed": self.seed,
                "tuner": self.profile.name, "noise_dbfs_hz": self.noise_dbfs_hz,
                "reference_gain_db": self.reference_gain_db,
                "emitters": [e.describe() for e in self.emitters]}


__all__ = ["Scene", "Dongle", "irr_db", "amplitude_db_for_irr", "ROLLOFF_TAPS", "SdrwatchError"]
