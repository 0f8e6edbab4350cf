"""Band presets: named lists of bands to watch, one TOML file each in ``firmware_profiles/bands/``.

A site config refers to one with ``[[band]] preset = "gaokao-cases"`` (a file stem, or a path to a
``.toml`` file relative to the config). A preset file is::

    description = "bands where cheating transmitters were reported"
    [[band]]
    name = "pager-168"
    start_hz = 167.6e6
    stop_hz = 171.2e6
    priority = true
    comment = "Jincheng 2015: data at 168.4, 169.0, 169.5 MHz"

Adding a preset is adding a file; nothing here names one.
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import SdrwatchError

PRESET_KEYS = {"description", "band"}
PRESET_BAND_KEYS = {"name", "start_hz", "stop_hz", "priority", "comment"}
_STEM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def presets_dir() -> Path:
    from ..resources import profiles_dir

    return profiles_dir("bands")


def preset_names() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def _preset_path(name: str, base: Path | None) -> Path:
    if name.endswith(".toml"):
        p = Path(name).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.is_file():
            raise SdrwatchError(f"no band preset file {p}")
        return p
    if not _STEM_RE.match(name):
        raise SdrwatchError(f"band preset {name!r} is not a preset name (lower-case letters, digits, - and _) or a .toml path")
    p = presets_dir() / f"{name}.toml"
    if not p.is_file():
        raise SdrwatchError(f"unknown band preset {name!r} (presets: {', '.join(preset_names()) or 'none'})")
    return p


def load_band_preset(name: str, base: Path | None = None) -> list:
    """The bands of a preset as :class:`~sdrwatch.agent.config.BandConfig` (``preset`` set to its name).
    Raises a one-line :class:`SdrwatchError` naming the file for a bad preset."""
    from ..agent.config import BandConfig

    path = _preset_path(name, base)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SdrwatchError(f"{where}: cannot read band preset ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SdrwatchError(f"{where}: not valid TOML ({exc})") from None
    for key in data:
        if key not in PRESET_KEYS:
            raise SdrwatchError(f"{where}: unknown key {key!r} (expected {', '.join(sorted(PRESET_KEYS))})")
    rows = data.get("band", [])
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise SdrwatchError(f"{where}: needs at least one [[band]] table")
    out = []
    stem = path.stem
    for i, row in enumerate(rows, 1):
        for key in row:
            if key not in PRESET_BAND_KEYS:
                raise SdrwatchError(f"{where}: [[band]] {i}: unknown key {key!r}")
        name_ = row.get("name")
        if not isinstance(name_, str) or not name_:
            raise SdrwatchError(f"{where}: [[band]] {i}: 'name' must be a non-empty string")
        lo, hi = row.get("start_hz"), row.get("stop_hz")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in (lo, hi)):
            raise SdrwatchError(f"{where}: [[band]] {i} ({name_}): start_hz and stop_hz must be positive numbers of Hz")
        if hi <= lo:
            raise SdrwatchError(f"{where}: [[band]] {i} ({name_}): stop_hz must be above start_hz")
        prio = row.get("priority", False)
        if not isinstance(prio, bool):
            raise SdrwatchError(f"{where}: [[band]] {i} ({name_}): 'priority' must be true or false")
        out.append(BandConfig(name_, float(lo), float(hi), prio, stem, str(row.get("comment", ""))))
    return out
