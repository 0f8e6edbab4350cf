"""Benchmarks of the streaming chain: replay speed in a crowded band, and how it scales with emitters.

:func:`crowded_scene` builds a simulator scene of N emitters packed into one 2.4 MHz hop (voice links,
carriers, pager-like data, all on 12.5 kHz channels), optionally with one new transmitter in a free
channel from ``new_from_s``. :func:`bench_crowded` renders it once to a cu8 recording and replays it
through :func:`sdrwatch.replay.detect`, in noise-floor mode (every emitter tracked) and against a
baseline learned from the same scene without the new one (nothing tracked but the new one), for
several emitter counts, and reports the multiple of real time of each, plus the cost per emitter.

    from sdrwatch.bench_chain import bench_crowded
    bench_crowded(duration_s=10.0, counts=(0, 50, 150))

    python -m sdrwatch.bench_chain [WORKDIR]      # WORKDIR keeps the rendered captures for the next run
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

CENTER_HZ = 162.0e6
RATE_HZ = 2.4e6
CHANNEL_HZ = 12.5e3
#: the channel of the new transmitter (offset from the centre, in channels); kept free of benign users
NEW_CHANNEL = 37
NEW_LABEL = "new-transmitter"


def crowded_scene(n_emitters: int = 150, *, seed: int = 7, new_from_s: float | None = None, new_snr_db: float = 15.0,
                  kinds: tuple[str, ...] = ("nbfm", "cw", "fsk")):
    """A :class:`~sdrwatch.radio.sim.Scene` with ``n_emitters`` benign emitters in the band around
    CENTER_HZ (always on, cycling through ``kinds``: NBFM voice links, carriers and 2-FSK data at
    10-25 dB in-band SNR), and, when ``new_from_s`` is given, one new NBFM transmitter in channel
    NEW_CHANNEL from then on."""
    from .radio.sim import Scene

    rng = np.random.default_rng(seed)
    # channels within the flat part of the band (roll-off and DC stay clear), the new one's and its
    # neighbours left free
    chans = [k for k in range(-84, 85) if abs(k) > 1 and abs(k - NEW_CHANNEL) > 1]
    if n_emitters > len(chans):
        raise ValueError(f"at most {len(chans)} emitters fit one hop")
    picked = sorted(rng.choice(chans, size=n_emitters, replace=False).tolist()) if n_emitters else []
    emitters = []
    for i, k in enumerate(picked):
        kind = kinds[i % len(kinds)]
        e = {"kind": kind, "label": f"benign-{i}", "freq_hz": CENTER_HZ + k * CHANNEL_HZ, "snr_db": float(rng.uniform(10, 25))}
        if kind == "fsk":
            e["deviation_hz"] = 2500.0
        if kind == "nbfm":
            e["audio"] = "noise"
        emitters.append(e)
    if new_from_s is not None:
        emitters.append({"kind": "nbfm", "label": NEW_LABEL, "freq_hz": CENTER_HZ + NEW_CHANNEL * CHANNEL_HZ, "snr_db": new_snr_db,
                         "audio": "noise", "threat": True, "start_s": float(new_from_s)})
    data = {
        "scene": {"name": f"crowded-{n_emitters}", "seed": seed, "tuner": "r820t", "noise_dbfs_hz": -100.0},
        "dongle": {"ppm_error": 0.0},
        "emitter": emitters,
    }
    return Scene.from_dict(data, where=f"crowded-{n_emitters}")


def render_recording(scene, stem: Path, duration_s: float, start_s: float = 0.0, block_samples: int = 1 << 18) -> Path:
    """Render ``duration_s`` of ``scene`` at CENTER_HZ into a cu8 SigMF recording ``stem``."""
    from .radio.file import SigMFWriter

    total = int(round(duration_s * RATE_HZ))
    first = int(round(start_s * RATE_HZ))
    with SigMFWriter(stem, fmt="cu8", sample_rate_hz=RATE_HZ) as w:
        w.start_capture(CENTER_HZ)
        for pos in range(0, total, block_samples):
            w.write(scene.render(CENTER_HZ, RATE_HZ, first + pos, min(block_samples, total - pos)))
    return Path(stem)


def bench_crowded(duration_s: float = 10.0, counts=(0, 50, 100, 150), repeats: int = 3, workdir: str | Path | None = None) -> dict:
    """Replay speed of a ``duration_s`` capture of each emitter count, in noise-floor mode and against a
    baseline (learned from 5 s of the same scene without the new transmitter): the multiple of real
    time in CPU time of this process (best of ``repeats``; the fair figure on a shared machine) and in
    wall time, the emissions found, and the CPU ms per emitter per second of signal (the slope of a
    line fitted through the counts, with its largest residual: linear means a small residual).
    Captures are rendered once into ``workdir`` (kept, and reused when there) or a temporary folder."""
    from .radio.file import open_recording
    from .replay import Settings, detect, learn_baseline

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in counts:
            exam = folder / f"crowded-{n}-exam-{duration_s:g}s"
            base_stem = folder / f"crowded-{n}-base-5s"
            if not Path(f"{exam}.sigmf-meta").exists():
                render_recording(crowded_scene(n, new_from_s=duration_s / 2), exam, duration_s)
            if not Path(f"{base_stem}.sigmf-meta").exists():
                render_recording(crowded_scene(n), base_stem, 5.0, start_s=1000.0)
            rec = open_recording(exam)
            base = learn_baseline(open_recording(base_stem), Settings())
            row = {"emitters": n}
            for mode, b in (("noise_floor", None), ("baseline", base)):
                cpu = wall = np.inf
                for _ in range(repeats):
                    t, w = time.process_time(), time.perf_counter()
                    found = detect(rec, b)
                    cpu, wall = min(cpu, time.process_time() - t), min(wall, time.perf_counter() - w)
                row[f"{mode}_x_realtime_cpu"] = round(duration_s / cpu, 1)
                row[f"{mode}_x_realtime_wall"] = round(duration_s / wall, 1)
                row[f"{mode}_cpu_s"] = round(cpu, 3)
                row[f"{mode}_emissions"] = len(found)
            rows.append(row)
    out = {"duration_s": duration_s, "sample_rate_hz": RATE_HZ, "rows": rows}
    if len(rows) > 1:
        n = np.array([r["emitters"] for r in rows], float)
        for mode in ("noise_floor", "baseline"):
            t = np.array([r[f"{mode}_cpu_s"] for r in rows])
            slope, icept = np.polyfit(n, t, 1)
            out[f"{mode}_cpu_ms_per_emitter_per_signal_s"] = round(1e3 * slope / duration_s, 3)
            out[f"{mode}_linear_fit_max_residual_s"] = round(float(np.max(np.abs(t - (slope * n + icept)))), 3)
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench_crowded(workdir=sys.argv[1] if len(sys.argv) > 1 else None), indent=1))
