"""Baseline layers: named baselines of a site captured from live sweeps (``week-before``,
``day-before``, ``pre-session``), kept in ``STATE_DIR/baselines/``.

A layer is a directory ``STATE_DIR/baselines/NAME/`` holding one baseline file per receiver
(``RECEIVER.npz``, the format of :mod:`sdrwatch.baseline`) and ``layer.json``::

    {"layer": "day-before", "site": "school-12", "created": "2027-06-06T07:00:00Z",
     "duration_s": 600.0, "receivers": ["rx0"], "config": "/etc/sdrwatch/site.toml"}

The latest layer is the one created last. ``--baseline`` takes a layer name, a layer directory or
one ``.npz`` file (used for every receiver).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import BaselineError, SdrwatchError

LAYER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LAYER_FILE = "layer.json"


@dataclass
class Layer:
    name: str
    path: Path  # the layer directory (or the .npz file)
    meta: dict
    baselines: dict  # receiver name -> Baseline ("*" for a single file used by every receiver)

    def for_receiver(self, name: str):
        return self.baselines.get(name, self.baselines.get("*"))


def check_layer_name(name: str) -> str:
    if not LAYER_RE.match(name or ""):
        raise SdrwatchError(f"layer name {name!r}: use letters, digits and . _ - (at most 64), e.g. day-before")
    return name


def layer_dirs(state_dir: Path) -> list[tuple[str, Path, dict]]:
    """(name, directory, layer.json) of every layer, oldest first."""
    root = Path(state_dir) / "baselines"
    out = []
    if root.is_dir():
        for d in root.iterdir():
            f = d / LAYER_FILE
            if d.is_dir() and f.is_file():
                try:
                    meta = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(meta, dict):
                    out.append((d.name, d, meta))
    out.sort(key=lambda x: (str(x[2].get("created", "")), x[0]))
    return out


def latest_layer_name(state_dir: Path) -> str | None:
    layers = layer_dirs(state_dir)
    return layers[-1][0] if layers else None


def load_layer(spec: str, state_dir: Path) -> Layer:
    """A layer by name (in ``STATE_DIR/baselines``), by directory, or a single ``.npz`` file."""
    from ..baseline import Baseline

    p = Path(spec).expanduser()
    if p.suffix == ".npz" or p.is_file():
        base = Baseline.load(p)
        return Layer(p.stem, p, {"layer": p.stem, "receivers": ["*"]}, {"*": base})
    d = p if (p / LAYER_FILE).is_file() else Path(state_dir) / "baselines" / spec
    f = d / LAYER_FILE
    if not f.is_file():
        names = ", ".join(n for n, _d, _m in layer_dirs(state_dir)) or "none yet"
        raise BaselineError(f"no baseline layer {spec!r} in {Path(state_dir) / 'baselines'} (layers: {names}); "
                            f"capture one with: sdrwatch baseline capture --config SITE --duration 600 --layer {spec}")
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
        receivers = list(meta["receivers"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"{f}: not a readable layer description ({exc})") from None
    bases = {}
    for name in receivers:
        bases[name] = Baseline.load(d / f"{name}.npz")
    return Layer(d.name, d, meta, bases)


def write_layer(state_dir: Path, name: str, baselines: dict, meta: dict) -> Path:
    """Write a layer (replacing one of the same name only once every file is written)."""
    from ..baseline import write_atomically

    check_layer_name(name)
    root = Path(state_dir) / "baselines"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdrwatchError(f"cannot create {root}: {exc.strerror or exc}") from None
    d = root / name
    d.mkdir(exist_ok=True)
    for rx, base in baselines.items():
        base.save(d / f"{rx}.npz")
    write_atomically(d / LAYER_FILE, (json.dumps({**meta, "layer": name, "receivers": sorted(baselines)}, indent=1) + "\n").encode())
    return d
