"""IQ snippets of emissions found in a recording, for the modulation features of :mod:`sdrwatch.dsp.features`.

A replay finds emissions from spectra alone; the recording still holds their samples. ``snippet``
reads an emission's span (at most ``max_s`` of it, from its start, within one capture) and
``classify_emissions`` re-labels a replay's emissions with features from their IQ.
"""
from __future__ import annotations

import numpy as np

from ..dsp.features import Features, extract
from ..dsp.tracker import Emission
from . import classify

#: longest part of an emission read for its features (s)
SNIPPET_MAX_S = 1.0


def snippet(rec, e: Emission, max_s: float = SNIPPET_MAX_S) -> tuple[np.ndarray, float]:
    """(IQ of ``e``'s span from recording ``rec``, centre frequency of the capture it is in)."""
    fs = rec.sample_rate_hz
    a = min(max(0, int(e.start_s * fs)), max(rec.num_samples - 1, 0))
    cap = rec.captures[rec.capture_index(a)]
    b = min(int(np.ceil(e.end_s * fs)) + 1, cap.sample_start + cap.sample_count, a + int(max_s * fs))
    return rec.read(a, max(0, b - a)), cap.center_hz


def features_in(rec, e: Emission) -> Features:
    iq, center_hz = snippet(rec, e)
    return extract(iq, rec.sample_rate_hz, offset_hz=e.center_hz - center_hz, bandwidth_hz=e.bandwidth_hz)


def classify_emissions(rec, emissions: list[Emission]) -> list[tuple[Emission, Features]]:
    """Re-classify each emission of ``rec`` with the features of its IQ; returns (emission, features)."""
    out = []
    for e in emissions:
        f = features_in(rec, e)
        out.append((classify(e, features=f), f))
    return out
