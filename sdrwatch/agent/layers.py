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

import numpy as np

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


# -------------------------------------------------------------------------------------------- diffs
#: false-alarm probability per bin (and window) of the "occupied in NEW" test
DIFF_PFA = 1e-7
#: NEW's max-hold must also stand this far over OLD's (within +-DIFF_SLOP_BINS bins, for ppm drift)
DIFF_MARGIN_DB = 6.0
DIFF_SLOP_BINS = 2
#: contiguous bins (gaps of one bin bridged) that make one emitter; Hann neighbours are correlated
DIFF_MIN_BINS = 2


def _rows_by_k(hop) -> dict[float, int]:
    return {float(k): i for i, k in enumerate(hop.maxhold_k)}


def _match_row(k: float, rows: dict[float, int]) -> int | None:
    best = min(rows, key=lambda x: abs(np.log(x / k)), default=None) if k > 0 else None
    if best is None or abs(np.log(best / k)) > np.log(1.25):
        return None
    return rows[best]


def diff_hops(old, new, *, receiver: str = "", old_name: str = "", new_name: str = "") -> list[dict]:
    """Emitters of baseline hop ``new`` that hop ``old`` (same centre) lacked, as records.

    A bin is new when, at some integration scale both baselines have, NEW's max-hold exceeds
    (a) OLD's noise power by the F-test threshold for NEW's averages and ``DIFF_PFA`` over NEW's
    window count, and (b) OLD's max-hold (the largest within +-2 bins) by ``DIFF_MARGIN_DB``.
    Runs of at least two such bins, gaps of one bin bridged, are one emitter each.
    """
    from ..dsp.detector import ratio_threshold

    nb = len(new.freq_hz)
    if len(old.freq_hz) != nb:
        return [{"type": "baseline_diff", "receiver": receiver, "hop_center_hz": new.center_hz, "note": "different bin grid: not compared"}]
    is_new = np.zeros(nb, dtype=bool)
    ratio_db = np.full(nb, -np.inf)
    rows_old = _rows_by_k(old)
    pad = DIFF_SLOP_BINS
    for j, k_new in enumerate(new.maxhold_k):
        i = _match_row(float(k_new), rows_old)
        if i is None:
            continue
        n_new = max(1, int(new.maxhold_n[j]))
        thr = ratio_threshold(float(k_new), old.noise_dof, DIFF_PFA / n_new)
        hold_old = np.pad(old.maxhold[i], pad, mode="edge")
        hold_old = np.lib.stride_tricks.sliding_window_view(hold_old, 2 * pad + 1).max(axis=1)
        mh = new.maxhold[j]
        occ = (mh > old.noise_power * thr) & (mh > hold_old * 10 ** (DIFF_MARGIN_DB / 10))
        is_new |= occ
        ratio_db = np.maximum(ratio_db, 10 * np.log10(np.maximum(mh, 1e-30) / np.maximum(old.noise_power, 1e-30)))
    # bridge one-bin gaps, then runs of >= DIFF_MIN_BINS
    filled = is_new.copy()
    filled[1:-1] |= is_new[:-2] & is_new[2:]
    out = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], filled.astype(np.int8), [0]])))
    bin_hz = float(np.median(np.diff(new.freq_hz))) if nb > 1 else 0.0
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < DIFF_MIN_BINS:
            continue
        f = new.freq_hz[a:b]
        w = np.maximum(new.maxhold[:, a:b].max(axis=0) - old.noise_power[a:b], 0) if len(new.maxhold) else np.ones(b - a)
        center = float(np.sum(f * w) / np.sum(w)) if np.sum(w) > 0 else float(np.mean(f))
        peak = float(10 * np.log10(max(float(new.maxhold[:, a:b].max()) if len(new.maxhold) else 1e-30, 1e-30)))
        out.append({"type": "baseline_diff", "old": old_name, "new": new_name, "receiver": receiver,
                    "center_hz": round(center, 1), "bandwidth_hz": round((b - a) * bin_hz, 1),
                    "peak_dbfs": round(peak, 2), "snr_db": round(float(ratio_db[a:b].max()), 2),
                    "duty": round(float(new.duty[a:b].max()), 4), "hop_center_hz": new.center_hz})
    return out


def diff_layers(old: Layer, new: Layer) -> list[dict]:
    """Emitters in layer ``new`` that ``old`` lacked, receiver by receiver, hop by hop (matched by
    centre frequency); a hop of NEW that OLD does not have is listed with a note."""
    from ..baseline import HOP_MATCH_HZ

    out: list[dict] = []
    for rx, nb in sorted(new.baselines.items()):
        ob = old.for_receiver(rx) if rx != "*" else next(iter(old.baselines.values()))
        if ob is None:
            out.append({"type": "baseline_diff", "receiver": rx, "note": f"receiver {rx} is not in {old.name}: not compared"})
            continue
        for h in sorted(nb.hops, key=lambda h: h.center_hz):
            match = [o for o in ob.hops if abs(o.center_hz - h.center_hz) <= HOP_MATCH_HZ]
            if not match:
                out.append({"type": "baseline_diff", "receiver": rx, "hop_center_hz": h.center_hz,
                            "note": f"hop {h.center_hz / 1e6:.4f} MHz is not in {old.name}: not compared"})
                continue
            out += diff_hops(match[0], h, receiver=rx, old_name=old.name, new_name=new.name)
    return out
