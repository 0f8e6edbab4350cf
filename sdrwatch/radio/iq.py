"""The one IQ normalisation every sdrwatch path uses (files, rtl_tcp, pyrtlsdr, simulator).

Full scale is 1.0 on each of I and Q:

=========  ==================  =====================================
format     SigMF datatype      complex value of a raw pair (i, q)
=========  ==================  =====================================
``cu8``    ``cu8``             ``(i - 127.5)/127.5 + 1j (q - 127.5)/127.5``
``cs8``    ``ci8``             ``i/128 + 1j q/128``
``cs16``   ``ci16_le``         ``i/32768 + 1j q/32768``
``cf32``   ``cf32_le``         ``i + 1j q`` (unchanged)
=========  ==================  =====================================

So a full-scale complex tone has power 1.0 (0 dBFS) in every format. ``to_iq`` converts with one
vectorised cast and scale (measured faster than a lookup table, which misses the cache); ``from_iq``
is its inverse with rounding and clipping, used by writers and by the simulator's 8-bit quantiser.
"""
from __future__ import annotations

import numpy as np

from ..errors import RecordingError

#: bytes per complex sample for each format
BYTES_PER_SAMPLE = {"cu8": 2, "cs8": 2, "cs16": 4, "cf32": 8}
#: SigMF datatype for each format, and back
SIGMF_DATATYPE = {"cu8": "cu8", "cs8": "ci8", "cs16": "ci16_le", "cf32": "cf32_le"}
FORMAT_OF_DATATYPE = {v: k for k, v in SIGMF_DATATYPE.items()}
FORMAT_OF_DATATYPE.update({"ci16": "cs16", "cf32": "cf32", "cu8_le": "cu8", "ci8_le": "cs8"})


#: per format: (numpy dtype of one I or Q value, offset, scale) with value = (raw - offset) * scale
SCALE = {
    "cu8": (np.uint8, 127.5, 1.0 / 127.5),
    "cs8": (np.int8, 0.0, 1.0 / 128.0),
    "cs16": ("<i2", 0.0, 1.0 / 32768.0),
}


def check_format(fmt: str) -> str:
    """Return ``fmt`` if known, else raise a one-line :class:`RecordingError`."""
    if fmt not in BYTES_PER_SAMPLE:
        raise RecordingError(f"unknown sample format {fmt!r} (expected one of {', '.join(BYTES_PER_SAMPLE)})")
    return fmt


def to_iq(raw: bytes | bytearray | memoryview | np.ndarray, fmt: str) -> np.ndarray:
    """Raw interleaved I/Q bytes in ``fmt`` -> complex64 samples at full scale 1.0.

    ``raw`` must hold a whole number of samples; a trailing partial sample is an error
    (a truncated file or stream), never silently dropped.
    """
    check_format(fmt)
    buf = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8).reshape(-1)
    width = BYTES_PER_SAMPLE[fmt]
    if buf.size % width:
        raise RecordingError(f"{buf.size} bytes is not a whole number of {fmt} samples ({width} bytes each)")
    if fmt == "cf32":
        values = buf.view("<f4")
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0]) // 2
            raise RecordingError(f"cf32 sample {bad} of this block is not a finite number (NaN or infinity)")
        return values.view(np.complex64).copy()
    dtype, offset, scale = SCALE[fmt]
    pairs = buf.view(dtype).astype(np.float32)
    if offset:
        pairs -= np.float32(offset)
    pairs *= np.float32(scale)
    return pairs.view(np.complex64)


def from_iq(iq: np.ndarray, fmt: str) -> bytes:
    """complex samples at full scale 1.0 -> raw bytes in ``fmt`` (rounded, clipped to the format's range)."""
    check_format(fmt)
    pairs = np.empty(2 * len(iq), dtype=np.float32)
    pairs[0::2] = iq.real
    pairs[1::2] = iq.imag
    if fmt == "cu8":
        return np.clip(np.rint(pairs * 127.5 + 127.5), 0, 255).astype(np.uint8).tobytes()
    if fmt == "cs8":
        return np.clip(np.rint(pairs * 128.0), -128, 127).astype(np.int8).tobytes()
    if fmt == "cs16":
        return np.clip(np.rint(pairs * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return pairs.astype("<f4").tobytes()
