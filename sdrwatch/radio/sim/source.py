"""``SimSource``: a :class:`~sdrwatch.radio.base.Source` that reads a simulated RF scene.

``open_sim("sim:recordings/scenes/demo.toml")`` (or ``sim:demo``: a bare name is looked up in
``recordings/scenes/``). The clock is the sample counter: the scene time of the next sample is
``scene_sample / sample_rate`` and only moves when samples are read (``realtime=True`` additionally paces
reads to the wall clock). Like a real dongle, the first ``stale`` samples read after :meth:`SimSource.tune`
still carry the previous frequency (the scene's ``stale_samples``, by default the profile's ``settle_s``
worth): consumers must discard them.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SourceError
from ..base import Block, Source, SourceInfo
from .scene import Scene


def _repo_scene_dir() -> Path:
    from ...resources import scenes_dir

    return scenes_dir()


def resolve_scene_path(spec: str) -> Path:
    """``path/to/scene.toml``, or a bare name looked up in the repository's ``recordings/scenes/``."""
    p = Path(spec).expanduser()
    if p.is_file():
        return p
    for cand in (_repo_scene_dir() / spec, _repo_scene_dir() / f"{spec}.toml"):
        if cand.is_file():
            return cand
    raise SourceError(f"scene file {spec!r} not found (give a path or a name in recordings/scenes/)")


class SimSource(Source):
    """Simulated receiver. ``read`` returns :class:`Block` objects exactly like the hardware backends."""

    def __init__(self, scene: Scene, *, uri: str = "", realtime: bool = False, center_hz: float | None = None,
                 sample_rate_hz: float = 2.4e6, gain_db: float | None = None, ppm: int = 0,
                 start_s: float = 0.0, emit_stale: bool = False):
        self.scene = scene
        #: True: deliver the stale samples after a retune, as a dongle does (for ``sdrwatch simulate``,
        #: whose rtl_tcp clients must discard them). False: skip them, as our hardware backends do, so
        #: ``read`` keeps the Source promise that pre-retune samples are never returned.
        self.emit_stale = bool(emit_stale)
        self.profile = scene.profile
        self.uri = uri or f"sim:{scene.path or scene.name}"
        self.realtime = bool(realtime)
        self.sample_rate_hz = self.profile.check_sample_rate(sample_rate_hz)
        first = center_hz if center_hz is not None else self._default_center()
        self.center_hz = self.profile.check_frequency(first)
        self.gain_db = self.profile.check_gain(gain_db)
        self.ppm = int(ppm)
        self.scene_sample = int(round(start_s * self.sample_rate_hz))  # scene time = scene_sample / rate
        self.delivered = 0  # Block.sample_index
        self._stale_left = 0
        self._stale_center_hz = self.center_hz
        self._stale_gain_db = self.gain_db
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self._scene_t0_s = self.scene_sample / self.sample_rate_hz
        self._closed = False
        self._block_log: OrderedDict[int, tuple] = OrderedDict()  # Block.sample_index -> how it was rendered

    def _default_center(self) -> float:
        for e in self.scene.emitters:
            if e.threat and self.profile.tunable(e.freq_hz):
                return e.freq_hz
        for e in self.scene.emitters:
            if self.profile.tunable(e.freq_hz):
                return e.freq_hz
        return 433.92e6

    @property
    def time_s(self) -> float:
        """Scene time of the next sample to be read."""
        return self.scene_sample / self.sample_rate_hz

    # ------------------------------------------------------------------ Source interface
    def tune(self, center_hz: float) -> None:
        f = self.profile.check_frequency(center_hz)
        if f != self.center_hz or self._stale_left:
            if not self._stale_left:
                self._stale_center_hz = self.center_hz
                self._stale_gain_db = self.gain_db
            self._stale_left = self.scene.stale_samples(self.sample_rate_hz)
        self.center_hz = f

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        rate = self.profile.check_sample_rate(sample_rate_hz)
        if rate != self.sample_rate_hz:
            t = self.time_s
            self.sample_rate_hz = rate
            self.scene_sample = int(round(t * rate))
            self._stale_left = 0

    def set_gain(self, gain_db: float | None) -> None:
        self.gain_db = self.profile.check_gain(gain_db)

    def set_ppm(self, ppm: int) -> None:
        self.ppm = int(ppm)

    def _check_stream_stop(self, num: int) -> None:
        from .faults import state_at, stopped_at

        rate = self.sample_rate_hz
        if self.realtime:  # the scene clock keeps running while nothing arrives
            self.scene_sample = max(self.scene_sample, int((time.monotonic() - self._mono0 + self._scene_t0_s) * rate))
        t = stopped_at(self.scene.faults, self.time_s, self.time_s + num / rate)
        if t is None:
            return
        ends = [f.until_s for f in self.scene.faults if f.kind == "stream_stop" and f.active(t)]
        if not self.realtime and all(map(math.isfinite, ends)):
            self.scene_sample = int(math.ceil(max(ends) * rate))  # the next read resumes after the stop
        assert state_at(self.scene.faults, t).stopped
        raise SourceError(f"{self.uri}: the stream stopped at scene time {t:.2f} s (fault injected)")

    def read(self, num_samples: int) -> Block:
        if self._closed:
            raise SourceError(f"{self.uri}: source is closed")
        num = int(num_samples)
        if num <= 0:
            raise SourceError(f"read of {num} samples: the count must be positive")
        if self._stale_left and not self.emit_stale:
            self.scene_sample += self._stale_left  # the settling time passes, unseen
            self._stale_left = 0
        if self.scene.faults:  # a stream_stop fault (sdrwatch.radio.sim.faults)
            self._check_stream_stop(num)
        start = self.scene_sample
        t_start = self.time_s
        stale = min(self._stale_left, num)
        parts = []
        if stale:
            parts.append(self.scene.render(self._stale_center_hz, self.sample_rate_hz, start, stale,
                                           gain_db=self._stale_gain_db, ppm=self.ppm))
            self._stale_left -= stale
        parts.append(self.scene.render(self.center_hz, self.sample_rate_hz, start + stale, num - stale,
                                       gain_db=self.gain_db, ppm=self.ppm))
        iq = parts[0] if len(parts) == 1 else np.concatenate(parts)
        block = Block(iq=iq, center_hz=self.center_hz, sample_rate_hz=self.sample_rate_hz,
                      sample_index=self.delivered, timestamp=self._wall0 + (t_start - self._scene_t0_s),
                      gain_db=self.gain_db)
        self._block_log[self.delivered] = (start, stale, self._stale_center_hz, self.center_hz,
                                           self.sample_rate_hz, num)
        if len(self._block_log) > 256:
            self._block_log.popitem(last=False)
        self.scene_sample += num
        self.delivered += num
        if self.realtime:
            due = self._mono0 + (self.time_s - self._scene_t0_s)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return block

    def describe(self) -> SourceInfo:
        p = self.profile
        return SourceInfo(
            driver="sim",
            tuner=p.name,
            gains_db=p.gains_db,
            sample_rates_hz=[tuple(r) for r in p.sample_rate_ranges_hz],
            serial=f"sim-{self.scene.seed}",
            description=f"simulated {p.name} dongle, scene {self.scene.name!r}"
                        + (f": {self.scene.description}" if self.scene.description else ""),
            extra={"scene": str(self.scene.path) if self.scene.path else self.scene.name,
                   "seed": self.scene.seed, "realtime": self.realtime,
                   "rtl_tcp_tuner_id": p.rtl_tcp_tuner_id,
                   "stale_samples": self.scene.stale_samples(self.sample_rate_hz),
                   "emitters": len(self.scene.emitters)},
        )

    def truth(self, center_hz: float, sample_rate_hz: float, sample_start: int, num_samples: int) -> list[dict]:
        """Ground truth for ``num_samples`` samples from scene sample ``sample_start`` (see :meth:`Scene.truth`)."""
        return self.scene.truth(center_hz, sample_rate_hz, sample_start, num_samples, ppm=self.ppm,
                                gain_db=self.gain_db)

    def truth_for_block(self, block: Block) -> list[dict]:
        """Ground truth for a block this source returned (one of its last 256 reads), with ``sample_start``
        relative to the block and frequencies on the block's axis (``block.center_hz`` + offset). Emitters in the
        stale samples after a retune are listed where they show in the block, marked ``"sdrwatch:stale": True``."""
        entry = self._block_log.get(block.sample_index)
        if entry is None:
            raise SourceError(f"block at sample {block.sample_index} was not among this source's last 256 reads")
        start, stale, old_center, center, rate, num = entry
        out = []
        if stale:
            shift = center - old_center  # where the old tuning's signals show on this block's frequency axis
            for t in self.scene.truth(old_center, rate, start, stale, ppm=self.ppm, gain_db=self.gain_db):
                out.append({**t, "freq_lower_hz": t["freq_lower_hz"] + shift,
                            "freq_upper_hz": t["freq_upper_hz"] + shift, "sdrwatch:stale": True,
                            "comment": t["comment"] + f"; stale samples from the previous tuning "
                                                      f"{old_center / 1e6:.6f} MHz"})
        for t in self.scene.truth(center, rate, start + stale, num - stale, ppm=self.ppm, gain_db=self.gain_db):
            out.append({**t, "sample_start": t["sample_start"] + stale})
        return out

    def close(self) -> None:
        self._closed = True


#: query keys of a ``sim:`` URI -> (option name, parser); ``sim:demo?t0=30&seed=7&realtime=0``
SIM_QUERY_KEYS = ("t0", "seed", "realtime", "tuner")


def _query_number(uri: str, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SourceError(f"bad receiver {uri!r}: {key}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise SourceError(f"bad receiver {uri!r}: {key}={text!r} must be finite")
    return value


def parse_sim_uri(uri: str) -> tuple[str, dict[str, Any]]:
    """``sim:SCENE[?t0=S&seed=N&realtime=0|1&tuner=NAME]`` -> (scene spec, options for :func:`open_sim`).

    ``t0`` starts the scene at an offset: the first sample read is scene time ``t0`` seconds, so an
    emitter keyed at 30 s shows 30 - t0 seconds into the run (``start_s`` of :class:`SimSource`).
    Unknown keys and bad values raise a one-line :class:`SourceError`.
    """
    spec = uri[4:] if uri.startswith("sim:") else uri
    if spec.startswith("//"):
        spec = spec[2:]
    spec, _, query = spec.partition("?")
    if not spec:
        raise SourceError("sim: needs a scene, e.g. sim:recordings/scenes/demo.toml")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, text = part.partition("=")
        if not eq or not text:
            raise SourceError(f"bad receiver {uri!r}: {part!r} is not KEY=VALUE")
        if key == "t0":
            t0 = _query_number(uri, key, text)
            if not 0.0 <= t0 <= 1e7:
                raise SourceError(f"bad receiver {uri!r}: t0={text} must be between 0 and 1e7 s")
            options["start_s"] = t0
        elif key == "seed":
            try:
                options["seed"] = int(text)
            except ValueError:
                raise SourceError(f"bad receiver {uri!r}: seed={text!r} is not an integer") from None
        elif key == "realtime":
            if text.lower() not in ("0", "1", "true", "false"):
                raise SourceError(f"bad receiver {uri!r}: realtime={text!r} must be 0 or 1")
            options["realtime"] = text.lower() in ("1", "true")
        elif key == "tuner":
            options["tuner"] = text
        else:
            raise SourceError(f"bad receiver {uri!r}: unknown key {key!r} (expected {', '.join(SIM_QUERY_KEYS)})")
    return spec, options


def open_sim(uri: str, **options: Any) -> SimSource:
    """Open ``sim:SCENE`` (a TOML path or a name in ``recordings/scenes/``), optionally with a query
    (``sim:demo?t0=30``, see :func:`parse_sim_uri`) whose values win over ``options``.

    Options: ``seed`` (override the scene seed), ``realtime`` (pace reads to the wall clock), ``tuner``
    (override the scene's tuner profile), ``center_hz``, ``sample_rate_hz``, ``gain_db``, ``ppm``,
    ``start_s`` (scene time of the first sample) and ``emit_stale`` (deliver post-retune stale samples). Other options are ignored, so callers may pass the
    options of every backend.
    """
    spec, query = parse_sim_uri(uri)
    options = {**options, **query}
    scene = Scene.from_toml(resolve_scene_path(spec), seed=options.get("seed"), tuner=options.get("tuner"))
    kwargs = {k: options[k] for k in ("realtime", "center_hz", "sample_rate_hz", "gain_db", "ppm", "start_s", "emit_stale")
              if options.get(k) is not None}
    return SimSource(scene, uri=uri, **kwargs)


BENCH_SCENE: dict[str, Any] = {
    "scene": {"name": "bench", "seed": 7, "tuner": "r820t", "noise_dbfs_hz": -100.0},
    "emitter": [
        {"kind": "wfm", "label": "fm-station", "freq_hz": 100.0e6 + 0.60e6, "power_dbfs": -20.0, "fading_db_pp": 6.0},
        {"kind": "nbfm", "label": "voice-1", "freq_hz": 100.0e6 - 0.30e6, "power_dbfs": -50.0},
        {"kind": "nbfm", "label": "voice-2", "freq_hz": 100.0e6 + 0.20e6, "power_dbfs": -60.0, "channel_hz": 25000.0},
        {"kind": "nbfm", "label": "walkie", "freq_hz": 100.0e6 - 0.75e6, "power_dbfs": -45.0,
         "duty": {"fraction": 0.3, "mean_on_s": 0.5}},
        {"kind": "cw", "label": "carrier", "freq_hz": 100.0e6 + 0.05e6, "power_dbfs": -40.0},
        {"kind": "gfsk", "label": "pager", "freq_hz": 100.0e6 - 0.55e6, "power_dbfs": -50.0,
         "bursts": {"period_s": 0.5, "length_s": 0.25}},
        {"kind": "fsk", "label": "telemetry", "freq_hz": 100.0e6 + 0.40e6, "power_dbfs": -55.0, "bit_rate_bps": 2400.0},
        {"kind": "lora", "label": "meter", "freq_hz": 100.0e6 - 0.90e6, "power_dbfs": -55.0,
         "bursts": {"period_s": 1.0, "length_s": 0.4}},
        {"kind": "ook", "label": "remote", "freq_hz": 100.0e6 + 0.85e6, "power_dbfs": -40.0,
         "bursts": {"period_s": 1.0}},
        {"kind": "nbfm", "label": "voice-3", "freq_hz": 100.0e6 + 0.95e6, "power_dbfs": -65.0, "audio": "noise"},
    ],
}


def bench_render(seconds: float = 2.0, *, sample_rate_hz: float = 2.4e6, block_samples: int = 262144) -> dict:
    """Render ``seconds`` of a 10-emitter scene (6 always on) at ``sample_rate_hz`` in blocks; report speed.

    ``msps`` is by wall clock (what a live demo gets), ``msps_cpu`` by this process's CPU time (what the
    code can do on one core when the machine is busy with other work)."""
    scene = Scene.from_dict(BENCH_SCENE, where="<bench>")
    total = int(seconds * sample_rate_hz)
    scene.render(100.0e6, sample_rate_hz, 0, block_samples)  # warm caches and imports
    t0 = time.perf_counter()
    c0 = time.process_time()
    done = 0
    while done < total:
        n = min(block_samples, total - done)
        scene.render(100.0e6, sample_rate_hz, block_samples + done, n)
        done += n
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    msps = total / wall / 1e6 if wall > 0 else math.inf
    msps_cpu = total / cpu / 1e6 if cpu > 0 else math.inf
    return {"msps": round(msps, 3), "msps_cpu": round(msps_cpu, 3),
            "realtime_factor": round(msps * 1e6 / sample_rate_hz, 3),
            "emitters": len(scene.emitters), "sample_rate_hz": sample_rate_hz, "seconds": seconds,
            "wall_s": round(wall, 3), "block_samples": block_samples}
