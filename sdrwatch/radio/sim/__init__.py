"""RF scene simulator: the test bench, the demo engine and the source of sdrwatch's regression recordings.

A scene (TOML, ``recordings/scenes/*.toml``, format in ``docs/scenes.md``) lists emitters (NBFM voice,
FSK/GFSK pagers, OOK remotes, LoRa chirps, CW carriers, WFM broadcast) with schedules, a noise density and
RTL-SDR artefacts (DC offset, IQ imbalance image, ppm error, band-edge roll-off, 8-bit quantisation, stale
samples after a retune). Rendering is a pure function of absolute sample index, so any block split gives
the same IQ.

    scene = Scene.from_toml("recordings/scenes/demo.toml")
    iq = scene.render(169.0e6, 1.024e6, start_sample=0, num_samples=1 << 20)
    truth = scene.truth(169.0e6, 1.024e6, 0, 1 << 20)
    with open_sim("sim:demo", sample_rate_hz=2.4e6) as src:
        src.tune(220.0e6)
        block = src.read(262144)
"""
from .emitters import CW, FSK, LoRa, NarrowFM, OOK, WFM, Emitter
from .scene import Dongle, Scene, amplitude_db_for_irr, irr_db
from .schedule import Schedule
from .source import BENCH_SCENE, SimSource, bench_render, open_sim, resolve_scene_path

__all__ = [
    "Scene", "Dongle", "Schedule", "Emitter", "CW", "FSK", "LoRa", "NarrowFM", "OOK", "WFM",
    "SimSource", "open_sim", "bench_render", "BENCH_SCENE", "irr_db", "amplitude_db_for_irr",
    "resolve_scene_path",
]
