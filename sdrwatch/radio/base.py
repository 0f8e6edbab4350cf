"""The one ``Source`` interface every receiver backend implements, and ``open_source`` by URI.

A source is something you can tune and read IQ blocks from. Four backends sit behind URIs:

=============================  ==========================================  =======================
URI                            backend                                     module
=============================  ==========================================  =======================
``rtlsdr://0``                 USB dongle by index, through pyrtlsdr       ``sdrwatch.radio.rtlsdr``
``rtlsdr://serial=00000001``   USB dongle by serial number                 ``sdrwatch.radio.rtlsdr``
``rtl_tcp://host:1234``        remote dongle over the rtl_tcp protocol     ``sdrwatch.radio.rtl_tcp``
``sim:scene.toml``             simulated RF scene                          ``sdrwatch.radio.sim``
a file path / ``file:PATH``    SigMF or raw cu8/cs8/cs16/cf32 recording    ``sdrwatch.radio.file``
=============================  ==========================================  =======================

Every block is complex64 at full scale 1.0 (see :mod:`sdrwatch.radio.iq`) and carries the centre
frequency and sample rate it was taken at, so nothing downstream has to remember what was tuned.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SourceError


@dataclass(frozen=True)
class Block:
    """IQ samples taken at one tuning.

    ``sample_index`` counts samples delivered by the source since it was opened (for a recording:
    since its first sample, with hops counted back to back), so ``time_s = sample_index / rate``.
    ``timestamp`` is the wall-clock (unix seconds) of the first sample when the source knows it.
    """

    iq: np.ndarray
    center_hz: float
    sample_rate_hz: float
    sample_index: int
    timestamp: float | None = None
    gain_db: float | None = None

    #: the samples as raw cu8 bytes (interleaved I/Q), where a block keeps them so (a recording's
    #: blocks read ahead for replay: :class:`sdrwatch.radio.file.FramedBlock`); else None
    raw = None

    @property
    def time_s(self) -> float:
        return self.sample_index / self.sample_rate_hz

    @property
    def num_samples(self) -> int:
        return len(self.iq)

    @property
    def samples(self):
        """What the spectrum engine takes: the raw cu8 bytes where the block keeps them, else ``iq``."""
        return self.iq if self.raw is None else self.raw

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz


@dataclass
class SourceInfo:
    """What a source says about itself (``sdrwatch devices``, SigMF ``core:hw``, the agent's health)."""

    driver: str  # "rtlsdr", "rtl_tcp", "file", "sim"
    tuner: str = "unknown"  # e.g. "R820T", "R828D", "E4000"
    gains_db: list[float] = field(default_factory=list)
    sample_rates_hz: list[tuple[float, float]] = field(default_factory=list)  # valid ranges
    serial: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "tuner": self.tuner,
            "gains_db": list(self.gains_db),
            "sample_rates_hz": [list(r) for r in self.sample_rates_hz],
            "serial": self.serial,
            "description": self.description,
            **self.extra,
        }


class Source:
    """Base class for receivers. Subclasses implement the methods that raise ``NotImplementedError``.

    Usage::

        with open_source("sim:recordings/scenes/demo.toml") as src:
            src.set_sample_rate(2.4e6)
            src.tune(169.0e6)
            block = src.read(262144)
    """

    uri: str = ""
    center_hz: float = 0.0
    sample_rate_hz: float = 2.4e6
    gain_db: float | None = None  # None = automatic gain
    ppm: int = 0

    def tune(self, center_hz: float) -> None:
        """Retune. Samples taken before the new frequency settled are never returned by ``read``
        (the simulator can deliver them on purpose, ``emit_stale=True``, to stand in for a dongle
        behind an rtl_tcp server, whose clients must discard them)."""
        raise NotImplementedError

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        raise NotImplementedError

    def set_gain(self, gain_db: float | None) -> None:
        """Manual gain in dB (rounded to the tuner's nearest step), or ``None`` for automatic gain."""
        raise NotImplementedError

    def set_ppm(self, ppm: int) -> None:
        raise NotImplementedError

    def read(self, num_samples: int) -> Block:
        """Read ``num_samples`` complex samples at the current tuning."""
        raise NotImplementedError

    def describe(self) -> SourceInfo:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: URI scheme -> "module:callable" that takes (uri, **options) and returns a Source
BACKENDS = {
    "rtlsdr": "sdrwatch.radio.rtlsdr:open_rtlsdr",
    "rtl_tcp": "sdrwatch.radio.rtl_tcp:open_rtl_tcp",
    "sim": "sdrwatch.radio.sim:open_sim",
    "file": "sdrwatch.radio.file:open_file_source",
}


def scheme_of(uri: str) -> str:
    """``rtlsdr://0`` -> ``rtlsdr``; ``sim:x.toml`` -> ``sim``; a plain path -> ``file``."""
    if "://" in uri:
        return uri.split("://", 1)[0]
    head = uri.split(":", 1)[0]
    if head in ("sim", "file") and ":" in uri:
        return head
    return "file"


def open_source(uri: str, **options: Any) -> Source:
    """Open a receiver by URI. Unknown schemes raise a one-line :class:`SourceError`."""
    scheme = scheme_of(uri)
    target = BACKENDS.get(scheme)
    if target is None:
        raise SourceError(f"unknown receiver {uri!r}: expected rtlsdr://N, rtl_tcp://HOST:PORT, sim:SCENE.toml or a file")
    module_name, func_name = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, func_name)(uri, **options)
