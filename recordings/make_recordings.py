#!/usr/bin/env python3
"""Regenerate sdrwatch's regression recordings from the scenes in ``recordings/scenes/``.

    python recordings/make_recordings.py            # all of them, byte-identical every time
    python recordings/make_recordings.py sweep      # only the named stems

Every scene with a ``[recording]`` table (and ``make`` not false) becomes ``recordings/STEM.sigmf-meta`` +
``STEM.sigmf-data`` (cu8), one SigMF capture per hop, with a ground-truth annotation for every emitter span:
``core:label``, frequency edges, sample span, a comment with kind, power and in-band SNR, and the extension
keys ``sdrwatch:threat``, ``sdrwatch:snr_db``, ``sdrwatch:kind`` and ``sdrwatch:power_dbfs``.

``[recording]`` fields: ``stem``, ``sample_rate_hz``, ``hops_hz`` (one centre per capture), ``duration_s`` (per
hop), ``start_s`` (scene time of the first sample, default 0), ``auto_start`` (search the earliest start, in
0.25 s steps, at which every emitter in band is on inside every hop), ``hop_gap_s`` (scene time skipped between
hops for settling, default 0), ``datetime`` (ISO time of scene time 0, default 2025-06-07T08:00:00Z), ``make``.
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sdrwatch.errors import SdrwatchError  # noqa: E402
from sdrwatch.radio.file import SigMFWriter  # noqa: E402
from sdrwatch.radio.sim import Scene  # noqa: E402

BLOCK = 1 << 18
DEFAULT_T0 = "2025-06-07T08:00:00Z"
SNR_DEFINITION = ("in-band SNR = emitter power / noise power within the emitter's occupied bandwidth "
                  "(noise density x bandwidth; see docs/scenes.md)")
_PLAN_KEYS = {"stem", "sample_rate_hz", "hops_hz", "duration_s", "start_s", "auto_start", "hop_gap_s",
              "datetime", "make"}


def _iso(t0: str, offset_s: float) -> str:
    base = dt.datetime.fromisoformat(t0.replace("Z", "+00:00"))
    t = base + dt.timedelta(seconds=offset_s)
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Plan:
    def __init__(self, scene: Scene):
        rec = dict(scene.recording or {})
        unknown = set(rec) - _PLAN_KEYS
        if unknown:
            raise SdrwatchError(f"{scene.path}: [recording] has unknown field {sorted(unknown)[0]!r}")
        self.stem = str(rec["stem"])
        self.rate = float(rec["sample_rate_hz"])
        self.hops = [float(f) for f in rec["hops_hz"]]
        self.duration_s = float(rec["duration_s"])
        self.hop_gap_s = float(rec.get("hop_gap_s", 0.0))
        self.t0 = str(rec.get("datetime", DEFAULT_T0))
        self.make = bool(rec.get("make", True))
        self.hop_samples = int(round(self.duration_s * self.rate))
        self.gap_samples = int(round(self.hop_gap_s * self.rate))
        self.start_sample = int(round(float(rec.get("start_s", 0.0)) * self.rate))
        if rec.get("auto_start"):
            self.start_sample = self._find_start(scene)

    def hop_start(self, k: int) -> int:
        """Scene sample index of hop k's first sample."""
        return self.start_sample + k * (self.hop_samples + self.gap_samples)

    def _find_start(self, scene: Scene) -> int:
        for step in range(0, 480):
            start = int(round(step * 0.25 * self.rate))
            ok = True
            for k, centre in enumerate(self.hops):
                s0 = start + k * (self.hop_samples + self.gap_samples)
                in_band = {e.label for e in scene.emitters
                           if abs(e.freq_hz - centre) < 0.5 * self.rate + 0.5 * e.bandwidth_hz}
                seen = {t["label"] for t in scene.truth(centre, self.rate, s0, self.hop_samples, images=False)}
                if seen != in_band:
                    ok = False
                    break
            if ok:
                return start
        raise SdrwatchError(f"{scene.path}: no start within 120 s has every emitter on; lengthen duration_s")


def make(scene_path: Path, out_dir: Path) -> Path | None:
    scene = Scene.from_toml(scene_path)
    if not scene.recording:
        return None
    plan = Plan(scene)
    if not plan.make:
        return None
    rel_scene = scene_path.resolve().relative_to(HERE.parent).as_posix()
    global_extra = {
        "core:description": scene.description or scene.name,
        "core:author": "sdrwatch recordings/make_recordings.py",
        "core:hw": f"sdrwatch simulator ({scene.profile.name} profile)",
        "sdrwatch:scene": rel_scene,
        "sdrwatch:seed": scene.seed,
        "sdrwatch:noise_dbfs_hz": scene.noise_dbfs_hz,
        "sdrwatch:snr_definition": SNR_DEFINITION,
        "sdrwatch:gain_db": scene.reference_gain_db,
    }
    writer = SigMFWriter(out_dir / plan.stem, fmt="cu8", sample_rate_hz=plan.rate, global_extra=global_extra,
                         overwrite=True)
    with writer:
        for k, centre in enumerate(plan.hops):
            s0 = plan.hop_start(k)
            rec_start = writer.samples_written
            writer.start_capture(centre, datetime=_iso(plan.t0, s0 / plan.rate),
                                 extra={"sdrwatch:hop": k, "sdrwatch:scene_sample": s0})
            done = 0
            while done < plan.hop_samples:
                n = min(BLOCK, plan.hop_samples - done)
                writer.write(scene.render(centre, plan.rate, s0 + done, n))
                done += n
            for t in scene.truth(centre, plan.rate, s0, plan.hop_samples):
                extra = {key: value for key, value in t.items() if key.startswith("sdrwatch:")}
                writer.annotate(rec_start + t["sample_start"], t["sample_count"],
                                freq_lower_hz=t["freq_lower_hz"], freq_upper_hz=t["freq_upper_hz"],
                                label=t["label"], comment=t["comment"], extra=extra)
    return writer.meta_path


def main(argv: list[str]) -> int:
    wanted = set(argv)
    total = 0
    for path in sorted((HERE / "scenes").glob("*.toml")):
        scene = Scene.from_toml(path)
        if not scene.recording or (wanted and scene.recording.get("stem") not in wanted):
            continue
        meta = make(path, HERE)
        if meta is None:
            continue
        data = meta.with_suffix(".sigmf-data")
        size = data.stat().st_size
        total += size + meta.stat().st_size
        print(f"{meta.stem:28s} {size / 1e6:6.2f} MB  from {path.name}")
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SdrwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
