"""Plots of sdrwatch data, drawn with matplotlib's Agg backend into PNG or SVG files.

Every plot function takes plain data (arrays, records) and an output path, and returns a
:class:`PlotResult`: the image's size in pixels and, for each panel, where it sits in the image and
which data range it shows, so a test (or a report) can find the pixel column of a frequency.
Loaders beside them turn files into that data: :func:`recording_spectrum` (a recording, optionally
against a baseline), :func:`read_spectrum_log` (the agent's rtl_power-compatible CSV),
:func:`timeline_from_db` (the collector's database).

Frequencies are shown in MHz and powers in dB. Spectrum that nobody watched is never drawn: hops
are grouped into bands (one panel each), and inside a band a gap between hops stays blank.
matplotlib is imported only when a plot is drawn.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import SdrwatchError

#: (lowest severity, name, colour) from high to low; shared by the console and the report
SEVERITY_LEVELS = ((0.7, "high", "#d62728"), (0.4, "medium", "#ff7f0e"), (0.0, "low", "#8c8c00"))
#: colour of health faults (receiver lost, noise floor out of range) on the timeline
HEALTH_COLOUR = "#7f3fbf"
#: colour of logged emissions (covered by the band plan or a declared emitter: not alerts) on the timeline
LOGGED_COLOUR = "#a0a0a0"
#: a site's offline spell on the timeline (face, hatch), and a spell while the collector was not running
OFFLINE_STYLE = ("#ececec", "#9a9a9a", "////")
COLLECTOR_DOWN_STYLE = ("#d9d9d9", "#6e6e6e", "xxxx")
DPI = 100
FORMATS = (".png", ".svg")


def severity_level(severity: float | None) -> str:
    s = float(severity or 0.0)
    for lo, name, _ in SEVERITY_LEVELS:
        if s >= lo:
            return name
    return "low"


def severity_colour(severity: float | None) -> str:
    s = float(severity or 0.0)
    for lo, _, colour in SEVERITY_LEVELS:
        if s >= lo:
            return colour
    return SEVERITY_LEVELS[-1][2]


def covered_by(alert: dict) -> str | None:
    """The band-plan or ``[[declare]]`` entry that covers an emission, which is then logged, not
    alerted: the record's ``covered_by``, or for a row of the collector's ``alerts`` table, that of
    its latest event (its ``record`` JSON). None for an alert."""
    entry = alert.get("covered_by")
    if not entry and isinstance(alert.get("record"), str):
        try:
            rec = json.loads(alert["record"])
        except ValueError:
            rec = None
        entry = rec.get("covered_by") if isinstance(rec, dict) else None
    return str(entry) if entry else None


# --------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Panel:
    """Where one panel (axes) sits in the image: pixel edges (origin top left) and its data limits."""

    name: str
    left: float
    top: float
    right: float
    bottom: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def column(self, x: float) -> int:
        """Image column (pixels) of data value ``x`` on this panel's x axis."""
        x0, x1 = self.xlim
        return int(round(self.left + (x - x0) / (x1 - x0) * (self.right - self.left)))

    def row(self, y: float) -> int:
        """Image row (pixels) of data value ``y`` on this panel's y axis."""
        y0, y1 = self.ylim
        return int(round(self.bottom - (y - y0) / (y1 - y0) * (self.bottom - self.top)))


@dataclass(frozen=True)
class PlotResult:
    path: Path
    width_px: int
    height_px: int
    panels: list[Panel] = field(default_factory=list)

    def panel(self, name: str) -> Panel:
        for p in self.panels:
            if p.name == name:
                return p
        raise KeyError(name)


# --------------------------------------------------------------------------------------------------
# figure plumbing


def _check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise SdrwatchError(f"{out}: plots are written as .png or .svg (got '{out.suffix or 'no extension'}')")
    if not out.parent.is_dir():
        raise SdrwatchError(f"cannot write {out}: no such directory {out.parent}")
    return out


def _figure(size_px: tuple[int, int]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, h = size_px
    if not (200 <= w <= 10000 and 150 <= h <= 10000):
        raise SdrwatchError(f"image size {w}x{h} pixels: use 200..10000 x 150..10000")
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out: Path, named_axes: Iterable[tuple[str, Any]]) -> PlotResult:
    """Lay out, measure the panels, write PNG/SVG atomically (nothing partial on failure)."""
    fig.canvas.draw()
    w, h = (int(round(v)) for v in fig.get_size_inches() * DPI)
    panels = []
    for name, ax in named_axes:
        bb = ax.get_window_extent()
        panels.append(Panel(name, bb.x0, h - bb.y1, bb.x1, h - bb.y0, tuple(map(float, ax.get_xlim())), tuple(map(float, ax.get_ylim()))))
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lower()[1:], dpi=DPI, metadata={"Software": "sdrwatch"} if out.suffix.lower() == ".png" else None)
    write_atomically(out, buf.getvalue())
    return PlotResult(out, w, h, panels)


def write_atomically(path: Path, data: bytes) -> None:
    """Temporary file beside ``path``, then rename: a full disk leaves nothing behind."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SdrwatchError(f"cannot write {path}: {exc.strerror or exc}") from None


def _title(what: str, site: str | None = None, receiver: str | None = None, time: str | None = None) -> str:
    parts = [what]
    if site:
        parts.append(f"site {site}")
    if receiver:
        parts.append(f"receiver {receiver}")
    if time:
        parts.append(str(time))
    return "  ·  ".join(parts)


def group_spans(spans_hz: Sequence[tuple[float, float]], gap_hz: float) -> list[list[int]]:
    """Indices of spans grouped into bands: spans (sorted by start) whose gap to the band so far is at
    most ``gap_hz`` share a band."""
    order = sorted(range(len(spans_hz)), key=lambda i: spans_hz[i][0])
    bands: list[list[int]] = []
    hi = -math.inf
    for i in order:
        lo_i, hi_i = spans_hz[i]
        if bands and lo_i - hi <= gap_hz:
            bands[-1].append(i)
            hi = max(hi, hi_i)
        else:
            bands.append([i])
            hi = hi_i
    return bands


def _hop_bands(freqs_hz: Sequence[np.ndarray]) -> list[list[int]]:
    spans = [(float(f[0]), float(f[-1])) for f in freqs_hz]
    widest = max((b - a for a, b in spans), default=0.0)
    return group_spans(spans, 0.5 * widest)


def _join_with_gaps(freqs_hz: list[np.ndarray], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One band's hops on one axis (overlaps resolved as in :func:`stitch`), NaN where unwatched."""
    from ..dsp.spectrum import stitch

    f, v = stitch([np.asarray(x, float) for x in freqs_hz], [np.asarray(x, float) for x in values])
    if len(f) < 2:
        return f, v
    step = float(np.median(np.diff(f)))
    gaps = np.flatnonzero(np.diff(f) > 1.5 * step)
    if len(gaps):
        f = np.insert(f, gaps + 1, 0.5 * (f[gaps] + f[gaps + 1]))
        v = np.insert(v.astype(float), gaps + 1, np.nan, axis=-1)
    return f, v


def _band_grid(fig, n_bands: int, height_ratios: Sequence[float], max_cols: int = 4, top_margin_px: int = 40, right: float = 0.985):
    """Axes for ``n_bands`` bands, up to ``max_cols`` per row; each band gets one axes per ratio
    (stacked, sharing x). Returns a list (per band) of lists of axes."""
    cols = min(max_cols, max(1, n_bands))
    rows = math.ceil(n_bands / cols)
    h_in = fig.get_size_inches()[1]
    gs = fig.add_gridspec(rows * len(height_ratios), cols, height_ratios=list(height_ratios) * rows,
                          left=0.07 if cols == 1 else 0.06, right=right, bottom=0.09, top=1 - top_margin_px / (h_in * DPI),
                          hspace=0.12 if len(height_ratios) > 1 else 0.35, wspace=0.18)
    out = []
    for b in range(n_bands):
        r, c = divmod(b, cols)
        first = fig.add_subplot(gs[r * len(height_ratios), c])
        axes = [first] + [fig.add_subplot(gs[r * len(height_ratios) + k, c], sharex=first) for k in range(1, len(height_ratios))]
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        out.append(axes)
    return out


def _mhz_axis(ax, lo_hz: float, hi_hz: float) -> None:
    from matplotlib.ticker import MaxNLocator

    pad = 0.01 * (hi_hz - lo_hz) or 1e3
    ax.set_xlim((lo_hz - pad) / 1e6, (hi_hz + pad) / 1e6)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.grid(alpha=0.3)


def db10(power: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.maximum(np.asarray(power, dtype=float), 1e-20))


# --------------------------------------------------------------------------------------------------
# spectrum against baseline and threshold


@dataclass
class SpectrumHop:
    """One hop's spectrum (dB per bin) with what it is compared against (all optional but the power)."""

    freq_hz: np.ndarray
    power_db: np.ndarray  # mean over the time shown
    maxhold_db: np.ndarray | None = None  # max over the time shown
    baseline_db: np.ndarray | None = None  # baseline noise floor
    envelope_db: np.ndarray | None = None  # the baseline's max-hold (what known users reached)
    threshold_db: np.ndarray | None = None  # detector's upper threshold for one frame


def _detection_marks(ax, detections: Sequence[dict], lo_hz: float, hi_hz: float) -> None:
    y_top = ax.get_ylim()[1]
    for d in detections:
        c = float(d.get("center_hz") or 0.0)
        if not lo_hz <= c <= hi_hz:
            continue
        bw = float(d.get("bandwidth_hz") or 0.0)
        colour = severity_colour(d.get("severity"))
        ax.axvspan((c - bw / 2) / 1e6, (c + bw / 2) / 1e6, color=colour, alpha=0.15, lw=0)
        ax.axvline(c / 1e6, color=colour, lw=1.6)
        snr = d.get("snr_db")
        text = f"{d.get('label') or 'emission'}" + (f"  {snr:.0f} dB" if isinstance(snr, (int, float)) else "")
        right = c > lo_hz + 0.7 * (hi_hz - lo_hz)  # near the right edge: write the label to the left
        ax.annotate(text, (c / 1e6, y_top), xytext=(-3 if right else 3, -12), textcoords="offset points", fontsize=8, color=colour,
                    va="top", ha="right" if right else "left", clip_on=True)


def plot_spectrum(hops: Sequence[SpectrumHop], out: str | Path, *, detections: Sequence[dict] = (), site: str | None = None,
                  receiver: str | None = None, time: str | None = None, what: str = "spectrum",
                  size_px: tuple[int, int] = (1200, 560)) -> PlotResult:
    """Power per bin (mean, max-hold) against the baseline's floor, its max-hold and the detector's
    threshold, one panel per band; each detection is a line at its centre and a band over its width
    in its severity colour. Panels are named ``band0``, ``band1``... from low to high frequency."""
    out = _check_output(out)
    if not hops:
        raise SdrwatchError("nothing to plot: no spectrum")
    fig = _figure(size_px)
    bands = _hop_bands([h.freq_hz for h in hops])
    grid = _band_grid(fig, len(bands), (1,), top_margin_px=44)
    named = []
    styles = (
        ("maxhold_db", "max-hold", dict(color="#9ecae1", lw=0.7)),
        ("power_db", "mean", dict(color="#1f77b4", lw=0.9)),
        ("envelope_db", "baseline max-hold", dict(color="#7f7f7f", lw=0.7)),
        ("baseline_db", "baseline noise floor", dict(color="black", lw=1.0)),
        ("threshold_db", "threshold (one frame)", dict(color="#e7298a", lw=0.9, ls="--")),
    )
    for bi, (idx, (ax,)) in enumerate(zip(bands, grid)):
        members = sorted((hops[i] for i in idx), key=lambda h: float(h.freq_hz[0]))
        lo, hi = float(members[0].freq_hz[0]), float(max(h.freq_hz[-1] for h in members))
        ymin, ymax = math.inf, -math.inf
        for attr, label, style in styles:
            have = [h for h in members if getattr(h, attr) is not None]
            if not have:
                continue
            f, v = _join_with_gaps([h.freq_hz for h in have], [getattr(h, attr) for h in have])
            ax.plot(f / 1e6, v, label=label, **style)
            finite = v[np.isfinite(v)]
            if len(finite):
                ymin, ymax = min(ymin, float(np.percentile(finite, 1))), max(ymax, float(finite.max()))
        if math.isfinite(ymin):
            ax.set_ylim(ymin - 5, ymax + 8)
        _mhz_axis(ax, lo, hi)
        _detection_marks(ax, detections, lo - 0.01 * (hi - lo), hi + 0.01 * (hi - lo))
        ax.set_xlabel("frequency (MHz)")
        if bi % 4 == 0:
            ax.set_ylabel("power per bin (dBFS)")
        if bi == 0:
            ax.legend(loc="lower right", fontsize=7, framealpha=0.8)
        named.append((f"band{bi}", ax))
    fig.suptitle(_title(what, site, receiver, time), fontsize=11)
    return _save(fig, out, named)


def recording_spectrum(rec, baseline=None, settings=None) -> list[SpectrumHop]:
    """Mean and max-hold spectrum of each hop of a recording; with a baseline, also its noise floor,
    its max-hold and the detector's one-frame upper threshold (the same maths the detector runs);
    without one, the noise floor and threshold the recording itself gives (noise-floor mode)."""
    from dataclasses import replace

    from ..dsp.baseline import HopStatsBuilder
    from ..dsp.detector import DetectorConfig, HopDetector
    from ..dsp.spectrum import SpectrumConfig, WelchFrames
    from ..replay import Settings, iter_hop_frames

    settings = settings or Settings()
    if baseline is not None:
        spec = SpectrumConfig(**baseline.meta["spectrum"])
        det_cfg = DetectorConfig.from_dict(baseline.meta["detector"])
        settings = replace(settings, spectrum=spec, detector=det_cfg)
        baseline.check_compatible(rec.sample_rate_hz, spec.fft_size)
    else:
        settings = settings.resolved(rec)
    eng = WelchFrames(rec.sample_rate_hz, settings.spectrum)
    acc: dict[int, dict] = {}
    for hf in iter_hop_frames(rec, settings.spectrum):
        if not len(hf.frames):
            continue
        a = acc.setdefault(round(hf.center_hz), {"center_hz": hf.center_hz, "freq": hf.freq_hz, "sum": 0.0, "n": 0,
                                                 "max": np.zeros(len(hf.freq_hz)), "builder": None})
        a["sum"] = a["sum"] + hf.frames.sum(axis=0, dtype=np.float64)
        a["n"] += len(hf.frames)
        a["max"] = np.maximum(a["max"], hf.frames.max(axis=0))
        if baseline is None:
            if a["builder"] is None:
                a["builder"] = HopStatsBuilder(hf.center_hz, hf.freq_hz, eng.k_eff, settings.detector.scales)
            a["builder"].add(hf.frames, int(hf.frame_index[0]))
    out = []
    for a in acc.values():
        hop = baseline.hop_for(a["center_hz"]) if baseline is not None else a["builder"].finish_noise_floor()
        ref = hop.reference() if baseline is not None else hop.noise_only_reference()
        det = HopDetector(ref, eng.k_eff, eng.enbw, settings.detector)
        th = det.thresholds(0, int(settings.detector.scales[0]))
        envelope = db10(hop.maxhold.max(axis=0)) if baseline is not None and len(hop.maxhold) else None
        out.append(SpectrumHop(np.asarray(a["freq"], float), db10(a["sum"] / a["n"]), db10(a["max"]),
                               db10(hop.noise_power), envelope, db10(th.upper)))
    if not out:
        raise SdrwatchError(f"{rec.path}: too short for one spectrum frame")
    return sorted(out, key=lambda h: float(h.freq_hz[0]))


# --------------------------------------------------------------------------------------------------
# baseline: one panel per band, gaps left blank


def plot_baseline(baseline, out: str | Path, *, size_px: tuple[int, int] | None = None) -> PlotResult:
    """A baseline (noise floor, median, 99th percentile, max-hold; duty below), one panel per band.

    Hops closer than half a hop's width share a band; inside a band, spectrum between hops that
    nobody watched is left blank. Panels are ``band{i}`` (power) and ``band{i}-duty``."""
    out = _check_output(out)
    hops = sorted(baseline.hops, key=lambda h: h.center_hz)
    bands = _hop_bands([h.freq_hz for h in hops])
    cols = min(4, len(bands))
    rows = math.ceil(len(bands) / cols)
    fig = _figure(size_px or (max(900, 330 * cols + 120), 170 + 430 * rows))
    grid = _band_grid(fig, len(bands), (3, 1), top_margin_px=64)
    named = []
    for bi, (idx, (ax, ax2)) in enumerate(zip(bands, grid)):
        members = [hops[i] for i in idx]
        fl = [h.freq_hz for h in members]
        lo, hi = float(min(f[0] for f in fl)), float(max(f[-1] for f in fl))
        series = (
            ([h.maxhold[0] if len(h.maxhold) else h.p99_power for h in members], "max-hold (shortest window)", dict(color="tab:red", lw=0.6)),
            ([h.p99_power for h in members], "99th percentile", dict(color="tab:orange", lw=0.6)),
            ([h.p50_power for h in members], "median", dict(color="tab:blue", lw=0.6)),
            ([h.noise_power for h in members], "noise floor", dict(color="black", lw=1.0)),
        )
        for values, label, style in series:
            f, v = _join_with_gaps(fl, values)
            ax.plot(f / 1e6, db10(v) if v.size else v, label=label, **style)
        f, duty = _join_with_gaps(fl, [h.duty for h in members])
        ax2.fill_between(f / 1e6, 100 * np.nan_to_num(duty), where=np.isfinite(duty), step="mid", color="tab:green", lw=0)
        ax2.set_ylim(0, 100)
        _mhz_axis(ax, lo, hi)
        ax2.grid(alpha=0.3)
        ax2.set_xlabel("frequency (MHz)")
        ax.set_title(f"{lo / 1e6:.3f}-{hi / 1e6:.3f} MHz  ({len(members)} hop{'s' if len(members) != 1 else ''})", fontsize=9)
        if bi % cols == 0:
            ax.set_ylabel("power per bin (dBFS)")
            ax2.set_ylabel("duty %")
        if bi == 0:
            ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
        named += [(f"band{bi}", ax), (f"band{bi}-duty", ax2)]
    src = Path(str(baseline.meta.get("source", ""))).name
    fig.suptitle(_title(f"baseline {src}".strip(), time=baseline.meta.get("created")) + f"  ·  {len(hops)} hop{'s' if len(hops) != 1 else ''}, {len(bands)} band{'s' if len(bands) != 1 else ''}", fontsize=11)
    return _save(fig, out, named)


# --------------------------------------------------------------------------------------------------
# spectrum log (rtl_power CSV): waterfall and occupancy


@dataclass
class LogBand:
    """One band of a spectrum log on a regular grid: rows are sweeps, NaN where it was not watched."""

    freq_hz: np.ndarray  # (bins,)
    power_db: np.ndarray  # (sweeps, bins)


@dataclass
class SpectrumLog:
    path: Path
    times: np.ndarray  # unix seconds of each sweep's first row
    bands: list[LogBand]

    @property
    def start_iso(self) -> str:
        return _iso(float(self.times[0])) if len(self.times) else ""


def _iso(unix_s: float) -> str:
    return _dt.datetime.fromtimestamp(unix_s, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_spectrum_row(row: list[str], where: str) -> tuple[float, float, float, float, np.ndarray]:
    """One rtl_power CSV row -> (unix time, Hz low, Hz high, Hz step, dB values)."""
    if len(row) < 7:
        raise SdrwatchError(f"{where}: expected date, time, Hz low, Hz high, Hz step, samples, dB... ({len(row)} fields)")
    try:
        t = _dt.datetime.strptime(f"{row[0].strip()} {row[1].strip()}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise SdrwatchError(f"{where}: date and time '{row[0].strip()} {row[1].strip()}' are not YYYY-MM-DD, HH:MM:SS") from None
    try:
        lo, hi, step = float(row[2]), float(row[3]), float(row[4])
        values = np.array([float(x) if x.strip().lower() not in ("nan", "-nan") else np.nan for x in row[6:]])
    except ValueError as exc:
        raise SdrwatchError(f"{where}: not a number ({exc})") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(step)) or step <= 0 or hi <= lo or lo < 0 or hi > 1e11:
        raise SdrwatchError(f"{where}: Hz low {row[2].strip()}, Hz high {row[3].strip()}, Hz step {row[4].strip()} do not make a frequency range")
    if np.any(np.isinf(values)):
        raise SdrwatchError(f"{where}: infinite power value")
    return t.replace(tzinfo=_dt.timezone.utc).timestamp(), lo, hi, step, values


def read_spectrum_log(path: str | Path, max_sweeps: int = 2000) -> SpectrumLog:
    """Read an rtl_power-compatible CSV (``date, time, Hz low, Hz high, Hz step, samples, dB, dB, ...``).

    A sweep is the run of rows until a row's ``Hz low`` repeats one already seen in it. Bin ``i`` of a
    row is at ``Hz low + i * Hz step``. Rows of one band go on one regular grid (its finest step);
    only the last ``max_sweeps`` sweeps are kept, so memory is bounded whatever the file size."""
    path = Path(path)
    if not path.is_file():
        raise SdrwatchError(f"{path}: no such spectrum log")
    from collections import deque

    sweeps: deque = deque(maxlen=max_sweeps)
    current: list = []
    seen: set = set()
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.reader(fh), 1):
                if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue
                t, lo, hi, step, values = parse_spectrum_row(row, f"{path}:{n}")
                key = round(lo)
                if key in seen:
                    sweeps.append(current)
                    current, seen = [], set()
                seen.add(key)
                current.append((t, lo, hi, step, values))
    except UnicodeDecodeError as exc:
        raise SdrwatchError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise SdrwatchError(f"{path}: not CSV ({exc})") from None
    if current:
        sweeps.append(current)
    if not sweeps:
        raise SdrwatchError(f"{path}: no spectrum rows")
    segs = {}
    for sw in sweeps:
        for _t, lo, hi, step, values in sw:
            segs.setdefault(round(lo), (lo, lo + step * max(len(values) - 1, 0), step))
    seg_list = list(segs.values())
    widest = max(b - a for a, b, _ in seg_list) or max(s for _, _, s in seg_list)
    groups = group_spans([(a, b) for a, b, _ in seg_list], 0.5 * widest)
    bands = []
    band_of = {}
    for gi, idx in enumerate(groups):
        lo = min(seg_list[i][0] for i in idx)
        hi = max(seg_list[i][1] for i in idx)
        step = min(seg_list[i][2] for i in idx)
        nb = int(round((hi - lo) / step)) + 1
        if nb > 200000:
            raise SdrwatchError(f"{path}: band {lo / 1e6:.3f}-{hi / 1e6:.3f} MHz has {nb} bins at {step:g} Hz (more than 200000)")
        bands.append(LogBand(lo + step * np.arange(nb), np.full((len(sweeps), nb), np.nan, dtype=np.float32)))
        for i in idx:
            band_of[round(seg_list[i][0])] = gi
    times = np.zeros(len(sweeps))
    for si, sw in enumerate(sweeps):
        times[si] = sw[0][0]
        for _t, lo, hi, step, values in sw:
            b = bands[band_of[round(lo)]]
            f = lo + step * np.arange(len(values))
            cols = np.clip(np.round((f - b.freq_hz[0]) / (b.freq_hz[1] - b.freq_hz[0] if len(b.freq_hz) > 1 else 1.0)).astype(int), 0, len(b.freq_hz) - 1)
            b.power_db[si, cols] = values
    return SpectrumLog(path, times, bands)


def plot_waterfall(log: SpectrumLog, out: str | Path, *, site: str | None = None, receiver: str | None = None,
                   detections: Sequence[dict] = (), size_px: tuple[int, int] = (1200, 700)) -> PlotResult:
    """Sweeps over time (newest at the bottom), one panel per band; blank where nothing was watched.
    Panels are ``band{i}``; their y axis is seconds since the first sweep."""
    out = _check_output(out)
    fig = _figure(size_px)
    grid = _band_grid(fig, len(log.bands), (1,), top_margin_px=44, right=0.9)
    t_rel = log.times - log.times[0]
    t_end = float(t_rel[-1]) + (float(np.median(np.diff(t_rel))) if len(t_rel) > 1 else 1.0)
    all_db = np.concatenate([b.power_db[np.isfinite(b.power_db)] for b in log.bands]) if log.bands else np.zeros(0)
    # noise dark, anything 25 dB over it at full colour (a percentile alone would stretch noise ripple)
    med = float(np.median(all_db)) if len(all_db) else -100.0
    vmin, vmax = med - 4.0, max(med + 25.0, float(np.percentile(all_db, 99.9)) if len(all_db) else 0.0)
    named = []
    image = None
    for bi, (band, (ax,)) in enumerate(zip(log.bands, grid)):
        f = band.freq_hz
        step = f[1] - f[0] if len(f) > 1 else 1.0
        image = ax.imshow(np.ma.masked_invalid(band.power_db), aspect="auto", origin="upper", interpolation="nearest",
                          extent=((f[0] - step / 2) / 1e6, (f[-1] + step / 2) / 1e6, t_end, 0.0), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_facecolor("white")
        ax.set_xlabel("frequency (MHz)")
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(5))
        if bi % 4 == 0:
            ax.set_ylabel("time since first sweep (s)")
        for d in detections:
            c = float(d.get("center_hz") or 0)
            if f[0] <= c <= f[-1]:
                ax.axvline(c / 1e6, color=severity_colour(d.get("severity")), lw=1.0, ls=":", alpha=0.9)
        named.append((f"band{bi}", ax))
    if image is not None:
        cax = fig.add_axes((0.915, 0.09, 0.015, 1 - 0.09 - 44 / size_px[1]))
        cb = fig.colorbar(image, cax=cax)
        cb.set_label("power (dB)")
    fig.suptitle(_title(f"waterfall, {len(log.times)} sweeps", site, receiver, log.start_iso), fontsize=11)
    return _save(fig, out, named)


@dataclass(frozen=True)
class Band:
    name: str
    start_hz: float
    stop_hz: float


def parse_band(text: str) -> Band:
    """``NAME:LOW:HIGH`` with frequencies like 433.05M (the CLI's ``--band``)."""
    from ..radio.file import parse_hz

    parts = text.split(":")
    if len(parts) != 3 or not parts[0]:
        raise SdrwatchError(f"--band {text!r}: expected NAME:LOW:HIGH, e.g. ism433:433.05M:434.79M")
    lo, hi = parse_hz(parts[1]), parse_hz(parts[2])
    if hi <= lo:
        raise SdrwatchError(f"--band {text!r}: HIGH must be above LOW")
    return Band(parts[0], lo, hi)


def occupancy(log: SpectrumLog, bands: Sequence[Band] | None = None, threshold_db: float = 10.0) -> list[dict]:
    """Share of watched (sweep, bin) cells over the noise floor + ``threshold_db`` per band.

    The noise floor of a bin is the median, across the band, of each bin's 20th percentile over time
    (an order statistic that a user on less than 80 % of the time does not raise). Without ``bands``,
    each contiguous watched span of the log is a band. Returns records with name, start_hz, stop_hz,
    occupancy (0-1), watched_cells, freq_hz and duty (per bin, 0-1; NaN where unwatched)."""
    out = []
    for band in log.bands:
        p = band.power_db
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                floor = float(np.nanmedian(np.nanpercentile(p, 20, axis=0))) if np.isfinite(p).any() else np.nan
            over = p > floor + threshold_db
        watched = np.isfinite(p)
        wanted = bands or [Band(f"{band.freq_hz[0] / 1e6:.3f}-{band.freq_hz[-1] / 1e6:.3f} MHz", float(band.freq_hz[0]), float(band.freq_hz[-1]))]
        for b in wanted:
            sel = (band.freq_hz >= b.start_hz) & (band.freq_hz <= b.stop_hz)
            if not sel.any():
                continue
            cells = int(watched[:, sel].sum())
            with np.errstate(all="ignore"):
                duty = np.where(watched[:, sel].sum(axis=0) > 0, (over[:, sel] & watched[:, sel]).sum(axis=0) / np.maximum(watched[:, sel].sum(axis=0), 1), np.nan)
            out.append({"name": b.name, "start_hz": b.start_hz, "stop_hz": b.stop_hz, "floor_db": floor, "threshold_db": threshold_db,
                        "occupancy": float((over[:, sel] & watched[:, sel]).sum() / cells) if cells else float("nan"),
                        "watched_cells": cells, "freq_hz": band.freq_hz[sel], "duty": duty})
    if bands:
        out.sort(key=lambda r: r["start_hz"])
    return out


def plot_occupancy(rows: Sequence[dict], out: str | Path, *, site: str | None = None, receiver: str | None = None,
                   time: str | None = None, size_px: tuple[int, int] = (1100, 650)) -> PlotResult:
    """Top: occupancy per band (bars, %). Below: per-bin duty across each band (one panel per band,
    up to 4 shown; blank where unwatched). Panels: ``bands`` (x: band index) and ``band{i}``."""
    out = _check_output(out)
    if not rows:
        raise SdrwatchError("nothing to plot: no band of the spectrum log was watched")
    fig = _figure(size_px)
    shown = list(rows)[:4]
    gs = fig.add_gridspec(2, len(shown), height_ratios=(1, 1), left=0.07, right=0.985, bottom=0.09, top=1 - 48 / size_px[1], hspace=0.45, wspace=0.2)
    axb = fig.add_subplot(gs[0, :])
    occ = [100 * r["occupancy"] if math.isfinite(r["occupancy"]) else 0.0 for r in rows]
    bars = axb.bar(range(len(rows)), occ, color="#2ca02c", width=0.6)
    for rect, v in zip(bars, occ):
        axb.annotate(f"{v:.1f} %", (rect.get_x() + rect.get_width() / 2, rect.get_height()), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    axb.set_xticks(range(len(rows)), [f"{r['name']}\n{r['start_hz'] / 1e6:.3f}-{r['stop_hz'] / 1e6:.3f} MHz" for r in rows], fontsize=8)
    axb.set_ylabel("occupancy (%)")
    axb.set_ylim(0, max(5.0, max(occ) * 1.2))
    axb.set_xlim(-0.5, len(rows) - 0.5)
    axb.grid(alpha=0.3, axis="y")
    named = [("bands", axb)]
    for i, r in enumerate(shown):
        ax = fig.add_subplot(gs[1, i])
        f = np.asarray(r["freq_hz"], float)
        ax.fill_between(f / 1e6, 100 * np.nan_to_num(r["duty"]), where=np.isfinite(r["duty"]), step="mid", color="#2ca02c", lw=0)
        ax.set_ylim(0, 100)
        _mhz_axis(ax, float(f[0]), float(f[-1]))
        ax.set_title(r["name"], fontsize=9)
        ax.set_xlabel("frequency (MHz)")
        if i == 0:
            ax.set_ylabel("time occupied (%)")
        named.append((f"band{i}", ax))
    thr = rows[0]["threshold_db"]
    fig.suptitle(_title(f"occupancy per band (> floor + {thr:g} dB)", site, receiver, time), fontsize=11)
    return _save(fig, out, named)


# --------------------------------------------------------------------------------------------------
# alert timeline from the collector's database


def _parse_time(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        text = str(value).strip().replace("Z", "+00:00")
        t = _dt.datetime.fromisoformat(text)
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return t.timestamp()
    except ValueError:
        return None


def _number(value: Any, default: float = 0.0) -> float:
    """A number from a database cell, ``default`` for what is not one (a table edited by hand)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def open_db(path: str | Path) -> sqlite3.Connection:
    """The collector's database, read-only (never created, never changed here)."""
    path = Path(path)
    if not path.is_file():
        raise SdrwatchError(f"{path}: no such database")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SdrwatchError(f"{path}: not an SQLite database ({exc})") from None
    return conn


def db_read_error(conn: sqlite3.Connection, exc: sqlite3.Error) -> SdrwatchError:
    """An SQLite error met reading the collector's database (a damaged page, a table not as the
    collector writes it) as one line naming the file."""
    try:
        path = next((r[2] for r in conn.execute("pragma database_list") if r[1] == "main"), "") or "database"
    except sqlite3.Error:
        path = "database"
    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SdrwatchError(f"{path}: cannot read the collector database ({why})")


def has_table(conn: sqlite3.Connection, table: str) -> bool:
    """Whether the database has this table (or view): an older collector's may not."""
    return conn.execute("select 1 from sqlite_master where type in ('table','view') and name=?", (table,)).fetchone() is not None


def table_rows(conn: sqlite3.Connection, table: str, where: str = "", params: Sequence = ()) -> list[dict]:
    """Rows of a table as dicts, or [] if the table does not exist (yet). A database that cannot be
    read raises :class:`SdrwatchError` (one line)."""
    try:
        if not has_table(conn, table):
            return []
        return [dict(r) for r in conn.execute(f"select * from [{table}] {where}", tuple(params))]
    except sqlite3.DatabaseError as exc:
        raise db_read_error(conn, exc) from None


#: health kinds that are faults (drawn on the timeline; listed in the report)
FAULT_KINDS = ("receiver_lost", "noise_floor_low", "noise_floor_high", "clipping", "dropped_samples", "disk", "revisit", "antenna")


def timeline_from_db(db_path: str | Path, session: str | None = None) -> dict:
    """Alerts, sessions and health faults of the collector's database for the timeline (and report).

    Returns {"alerts": [...], "sessions": [...], "faults": [...], "sites": [...]}; times are unix
    seconds in ``t`` / ``t_start`` / ``t_end``; an alert covered by the band plan or a declared
    emitter (logged, not alerted) names its entry in ``covered_by`` (else None). With ``session``, only that session's alerts and the
    faults inside its time span."""
    conn = open_db(db_path)
    try:
        sessions = table_rows(conn, "sessions")
        alerts = table_rows(conn, "alerts")
        health = table_rows(conn, "health")
        sites = [r["site"] for r in table_rows(conn, "sites")]
    finally:
        conn.close()
    for s in sessions:
        s["t_start"], s["t_end"] = _parse_time(s.get("start")), _parse_time(s.get("end"))
    if session is not None:
        names = sorted({str(s.get("name")) for s in sessions} | {str(a.get("session")) for a in alerts if a.get("session")})
        if session not in names:
            raise SdrwatchError(f"{db_path}: no session {session!r} (it has: {', '.join(names) or 'none'})")
        sessions = [s for s in sessions if s.get("name") == session]
        alerts = [a for a in alerts if a.get("session") == session]
    for a in alerts:
        a["covered_by"] = covered_by(a)
        a["t"] = _parse_time(a.get("agent_time")) or _parse_time(a.get("first_event_time")) or _parse_time(a.get("received_time"))
        a["t_end"] = (a["t"] + float(a["duration_s"])) if a.get("t") is not None and isinstance(a.get("duration_s"), (int, float)) else a.get("t")
    alerts = [a for a in alerts if a.get("t") is not None]
    faults = [h for h in health if h.get("kind") in FAULT_KINDS or (h.get("kind") not in ("heartbeat", "start", "receiver_regained") and _number(h.get("severity")) >= 0.5)]
    for h in faults:
        h["t"] = _parse_time(h.get("agent_time")) or _parse_time(h.get("received_time"))
    faults = [h for h in faults if h.get("t") is not None]
    if session is not None and sessions:
        lo = min((s["t_start"] for s in sessions if s["t_start"] is not None), default=-math.inf)
        hi = max((s["t_end"] for s in sessions if s["t_end"] is not None), default=math.inf)
        faults = [h for h in faults if lo - 60 <= h["t"] <= hi + 60]
    names = sorted(set(sites) | {a["site"] for a in alerts if a.get("site")} | {s["site"] for s in sessions if s.get("site")} | {h["site"] for h in faults if h.get("site")})
    return {"alerts": alerts, "sessions": sessions, "faults": faults, "sites": names}


def sessions_span(data: dict) -> tuple[float, float] | None:
    """From the first start to the last end of ``data['sessions']`` (Unix s; :func:`timeline_from_db`),
    or None when a start or an end is not known: the ``span`` that draws a timeline across them."""
    starts = [s["t_start"] for s in data.get("sessions") or () if s.get("t_start") is not None]
    ends = [s["t_end"] for s in data.get("sessions") or () if s.get("t_end") is not None]
    return (min(starts), max(ends)) if starts and ends and max(ends) > min(starts) else None


def plot_timeline(data: dict, out: str | Path, *, title: str | None = None, size_px: tuple[int, int] | None = None,
                  span: tuple[float, float] | None = None) -> PlotResult:
    """One lane per site: sessions shaded, each alert a bar from onset to end in its severity colour
    (a diamond if shorter than a pixel or two), a logged emission (``covered_by`` an entry) a thin
    grey bar under the alerts, health faults as purple crosses, and the site's offline spells
    (``data['offline']``: dicts with ``site``, ``start``, ``end`` Unix s and ``cause``) hatched grey
    across the lane, cross-hatched darker where the collector was not running (cause
    ``collector_down``). x is UTC time: ``span`` (Unix s, e.g. the session) when given, else what
    happened (alerts, faults, spells) with margins, within the sessions.
    The panel is ``lanes``: x in matplotlib date numbers (days), y lane index (site order as in
    ``data['sites']``, first at the top)."""
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    out = _check_output(out)
    sites = list(data.get("sites") or [])
    if not sites:
        raise SdrwatchError("nothing to plot: no sites, alerts or sessions in the database")
    fig = _figure(size_px or (1200, max(260, 160 + 60 * len(sites))))
    h_px = fig.get_size_inches()[1] * DPI
    bottom, top = 75 / h_px, 1 - 45 / h_px  # room for the time axis and the legend below, the title above
    ax = fig.add_axes((0.12, bottom, 0.86, top - bottom))
    lane = {s: i for i, s in enumerate(sites)}
    to_num = lambda t: mdates.date2num(_dt.datetime.fromtimestamp(t, _dt.timezone.utc))  # noqa: E731
    offline = [x for x in data.get("offline") or () if x.get("site") in lane and x.get("start") is not None and x.get("end") is not None]
    happened = ([a["t"] for a in data["alerts"]] + [a["t_end"] for a in data["alerts"] if a.get("t_end")] + [h["t"] for h in data["faults"]]
                + [t for x in offline for t in (x["start"], x["end"]) if math.isfinite(t)])
    times = list(happened)
    for s in data["sessions"]:
        times += [t for t in (s.get("t_start"), s.get("t_end")) if t is not None]
    if span is not None and span[1] > span[0]:
        t0, t1 = float(span[0]), float(span[1])
        margin = 0.01
    elif not times:
        raise SdrwatchError("nothing to plot: no timed alerts, faults or sessions")
    else:
        t0, t1 = min(times), max(times)
        margin = 0.03
        if happened:  # a session planned far beyond (or long before) what happened: show what happened, with margins
            d0, d1 = min(happened), max(happened)
            pad = 0.25 * (d1 - d0) + 60.0
            t0, t1 = max(t0, d0 - pad), min(t1, d1 + pad)
    span = max(t1 - t0, 60.0)
    lo, hi = t0 - margin * span, t0 + span * (1 + margin)
    for s in data["sessions"]:
        if s.get("site") not in lane:
            continue
        a, b = max(s.get("t_start") or lo, lo), min(s.get("t_end") or hi, hi)
        if b <= a:
            continue
        y = lane[s["site"]]
        ax.fill_between([to_num(a), to_num(b)], y - 0.42, y + 0.42, color="#dbe9f6", lw=0, zorder=0)
        ax.text(to_num(max(a, lo)), y + 0.38, f" {s.get('name', '')}", fontsize=7, va="top", color="#3b6ea5", clip_on=True)
    down_drawn = off_drawn = False
    for x in offline:
        a, b = max(x["start"], lo), min(x["end"], hi)
        if b <= a:
            continue
        face, edge, hatch = COLLECTOR_DOWN_STYLE if x.get("cause") == "collector_down" else OFFLINE_STYLE
        down_drawn |= x.get("cause") == "collector_down"
        off_drawn |= x.get("cause") != "collector_down"
        y = lane[x["site"]]
        ax.broken_barh([(to_num(a), to_num(b) - to_num(a))], (y - 0.42, 0.84), facecolor=face, edgecolor=edge, hatch=hatch, lw=0, zorder=1)
    min_bar_days = 2.5 * (span / 86400) / 1000  # about 2.5 px at 1000 px wide
    row, rows = _alert_rows([a for a in data["alerts"] if a.get("site") in lane and not a.get("covered_by")])
    for a in data["alerts"]:
        if a.get("site") not in lane:
            continue
        logged = bool(a.get("covered_by"))
        y, c = lane[a["site"]], LOGGED_COLOUR if logged else severity_colour(a.get("severity"))
        half, z = (0.08, 2) if logged else (0.22, 3)
        if not logged and rows.get(a["site"], 1) > 1:  # alerts that overlap in time share the lane in rows
            n = rows[a["site"]]
            half = 0.22 / n
            y = y - 0.22 + (2 * row[id(a)] + 1) * half
        t_end = a.get("t_end") or a["t"]
        width = to_num(t_end) - to_num(a["t"])
        if width >= min_bar_days:
            gap = 0.25 * half if not logged and rows.get(a["site"], 1) > 1 else 0.0
            ax.broken_barh([(to_num(a["t"]), width)], (y - half + gap, 2 * (half - gap)), color=c, zorder=z)
            if not logged and width >= 0.12 * (to_num(hi) - to_num(lo)):  # room for what it is
                ax.text(to_num(a["t"]), y, f" {a.get('label') or ''} {float(a.get('center_hz') or 0) / 1e6:.4f} MHz",
                        fontsize=7, va="center", ha="left", color="white", zorder=z + 1, clip_on=True)
        else:
            ax.plot([to_num(a["t"])], [y], marker="D", ms=4 if logged else 6, color=c, zorder=z, ls="none")
    for h in data["faults"]:
        if h.get("site") not in lane:
            continue
        ax.plot([to_num(h["t"])], [lane[h["site"]] - 0.32], marker="x", ms=7, mew=2, color=HEALTH_COLOUR, zorder=4, ls="none")
    ax.set_xlim(to_num(lo), to_num(hi))
    ax.set_ylim(len(sites) - 0.5, -0.5)
    ax.set_yticks(range(len(sites)), sites)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=10, tz=_dt.timezone.utc))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if span < 6 * 3600 else "%m-%d %H:%M", tz=_dt.timezone.utc))
    ax.set_xlabel("time (UTC)")
    ax.grid(alpha=0.3, axis="x")
    handles = [Patch(color=c, label=f"alert, {name} severity") for _, name, c in SEVERITY_LEVELS]
    n_logged = sum(1 for a in data["alerts"] if a.get("covered_by"))
    if n_logged:
        handles.append(Patch(color=LOGGED_COLOUR, label="logged (band plan, declared)"))
    handles += [Line2D([], [], marker="x", color=HEALTH_COLOUR, ls="none", mew=2, label="health fault"), Patch(color="#dbe9f6", label="exam session")]
    if off_drawn:
        handles.append(Patch(facecolor=OFFLINE_STYLE[0], edgecolor=OFFLINE_STYLE[1], hatch=OFFLINE_STYLE[2], lw=0, label="site offline"))
    if down_drawn:
        handles.append(Patch(facecolor=COLLECTOR_DOWN_STYLE[0], edgecolor=COLLECTOR_DOWN_STYLE[1], hatch=COLLECTOR_DOWN_STYLE[2], lw=0,
                             label="collector down"))
    tight = {"columnspacing": 1.0, "handlelength": 1.5, "handletextpad": 0.5} if len(handles) > 7 else {}
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0), **tight)
    day = _dt.datetime.fromtimestamp(t0, _dt.timezone.utc).strftime("%Y-%m-%d")
    counts = f"{len(data['alerts']) - n_logged} alerts" + (f", {n_logged} logged" if n_logged else "")
    fig.suptitle(title or _title(f"alert timeline, {counts}, {len(sites)} sites", time=day), fontsize=11)
    return _save(fig, out, [("lanes", ax)])


def _alert_rows(alerts: list[dict]) -> tuple[dict[int, int], dict[str, int]]:
    """Rows within a site's lane, so that alerts overlapping in time are drawn one above the other
    rather than one over the other: each alert takes the first row free at its onset. Returns the
    row of each alert (by ``id``) and the number of rows per site."""
    row: dict[int, int] = {}
    rows: dict[str, int] = {}
    ends: dict[str, list[float]] = {}
    for a in sorted(alerts, key=lambda a: a["t"]):
        site_ends = ends.setdefault(a["site"], [])
        t_end = a.get("t_end") or a["t"]
        free = next((r for r, e in enumerate(site_ends) if e < a["t"]), None)
        if free is None:
            free = len(site_ends)
            site_ends.append(t_end)
        else:
            site_ends[free] = t_end
        row[id(a)] = free
        rows[a["site"]] = len(site_ends)
    return row, rows


# --------------------------------------------------------------------------------------------------
# spectrogram of IQ evidence


def spectrogram(iq: np.ndarray, sample_rate_hz: float, fft_size: int = 512, max_rows: int = 800) -> tuple[np.ndarray, float]:
    """Power (dB, fftshifted) of consecutive Hann-windowed FFTs; groups of rows are averaged so at
    most ``max_rows`` remain. Returns (rows x fft_size array, seconds per row)."""
    n = len(iq) // fft_size
    if n == 0:
        raise SdrwatchError(f"evidence too short for one {fft_size}-point FFT ({len(iq)} samples)")
    x = np.asarray(iq[: n * fft_size], dtype=np.complex64).reshape(n, fft_size) * np.hanning(fft_size).astype(np.float32)
    p = np.abs(np.fft.fftshift(np.fft.fft(x, axis=1), axes=1)) ** 2
    group = max(1, math.ceil(n / max_rows))
    rows = n // group
    p = p[: rows * group].reshape(rows, group, fft_size).mean(axis=1)
    scale = 1.0 / float(np.sum(np.hanning(fft_size)) ** 2)
    return db10(p * scale), group * fft_size / sample_rate_hz


def plot_evidence(path: str | Path, out: str | Path, *, alert: dict | None = None, max_samples: int = 1 << 23,
                  size_px: tuple[int, int] = (1000, 650)) -> PlotResult:
    """Spectrogram of a SigMF IQ recording (an alert's evidence): MHz across, seconds down, dB in
    colour; the alert's centre and bandwidth are dashed lines. Panel ``spectrogram``."""
    from ..radio.file import open_recording

    out = _check_output(out)
    rec = open_recording(path)
    num = min(rec.num_samples, max_samples)
    iq = rec.read(0, num)
    fft_size = int(min(1024, max(64, 2 ** round(math.log2(max(rec.sample_rate_hz / 2000, 64))))))
    power, row_s = spectrogram(iq, rec.sample_rate_hz, fft_size)
    center = rec.captures[0].center_hz if rec.captures else 0.0
    f_lo = (center - rec.sample_rate_hz / 2) / 1e6
    f_hi = (center + rec.sample_rate_hz / 2) / 1e6
    fig = _figure(size_px)
    ax = fig.add_axes((0.09, 0.1, 0.8, 0.8))
    cax = fig.add_axes((0.905, 0.1, 0.02, 0.8))
    vmin, vmax = np.percentile(power, [5, 99.9])
    im = ax.imshow(power, aspect="auto", origin="upper", extent=(f_lo, f_hi, power.shape[0] * row_s, 0), cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("power per bin (dBFS)")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel("time since start of evidence (s)")
    meta = rec.global_meta
    alert = alert or {}
    site = alert.get("site") or meta.get("sdrwatch:site")
    receiver = alert.get("receiver") or meta.get("sdrwatch:receiver")
    when = alert.get("time") or (rec.captures[0].datetime if rec.captures else None)
    c_hz = alert.get("center_hz") or meta.get("sdrwatch:center_hz")
    if isinstance(c_hz, (int, float)):
        bw = float(alert.get("bandwidth_hz") or meta.get("sdrwatch:bandwidth_hz") or 0.0)
        colour = "#00e5ff"
        for edge in ((c_hz - bw / 2, c_hz + bw / 2) if bw > 0 else (c_hz,)):
            ax.axvline(edge / 1e6, color=colour, lw=1.0, ls="--")
    what = "evidence " + Path(str(rec.path)).name.replace(".sigmf-data", "")
    if alert.get("label"):
        what += f" ({alert['label']})"
    extra = f"  ·  {num / rec.sample_rate_hz:.2f} s" + (f" of {rec.duration_s:.2f} s" if num < rec.num_samples else "")
    fig.suptitle(_title(what, site, receiver, when) + extra, fontsize=11)
    return _save(fig, out, [("spectrogram", ax)])


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSON-lines file (replay output, an agent's stdout); bad lines are one error."""
    path = Path(path)
    if not path.is_file():
        raise SdrwatchError(f"{path}: no such file")
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SdrwatchError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise SdrwatchError(f"{path}:{n}: not a JSON object")
            out.append(rec)
    return out
