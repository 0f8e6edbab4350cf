"""USB RTL-SDR dongles through pyrtlsdr: ``rtlsdr://0`` (by index) or ``rtlsdr://serial=00000001``.

pyrtlsdr is the optional ``hw`` extra (``pip install 'sdrwatch[hw]'``, which brings pyrtlsdrlib and
its bundled librtlsdr) and is imported here only, when a dongle is opened or listed. Every way this can
fail becomes one :class:`SourceError` line that says what to do:

* pyrtlsdr not installed -> install the ``hw`` extra;
* pyrtlsdr installed but the C library does not load -- typically Debian bookworm's librtlsdr 0.6.0,
  which lacks ``rtlsdr_set_dithering`` that pyrtlsdr >= 0.3 binds -> install pyrtlsdrlib;
* no dongle at that index / with that serial;
* the dongle is busy (another program, or the kernel DVB driver ``dvb_usb_rtl28xxu``) or not
  accessible (udev permissions).

Samples are read with ``read_bytes`` and converted by :func:`sdrwatch.radio.iq.to_iq` (our
normalisation, not pyrtlsdr's). After every retune or rate change the source sleeps ``settle_s`` and
reads and drops ``discard_bytes`` (rtl_power drops 4096 bytes; we drop a whole 32 KiB USB block), so
samples taken while the PLL settled are never returned. Both default to the tuner's receiver profile
(worst settling time, ``2 * discard_samples`` bytes), rounded up to whole 512-byte USB transfers.
"""
from __future__ import annotations

import ctypes
import logging
import os
import time
from typing import Any

import numpy as np

from ..errors import PlanError, SourceError
from . import iq
from .base import Block, Source, SourceInfo

log = logging.getLogger(__name__)

HW_HINT = "install the hw extra: pip install 'sdrwatch[hw]'"
#: USB bulk reads are made in multiples of this many bytes (librtlsdr's minimum transfer unit)
USB_CHUNK = 512
TUNER_NAMES = {0: "unknown", 1: "E4000", 2: "FC0012", 3: "FC0013", 4: "FC2580", 5: "R820T", 6: "R828D"}
VALID_SAMPLE_RATES_HZ = [(225_001.0, 300_000.0), (900_001.0, 3_200_000.0)]
_LIBUSB = {
    -1: "LIBUSB_ERROR_IO", -2: "LIBUSB_ERROR_INVALID_PARAM", -3: "LIBUSB_ERROR_ACCESS",
    -4: "LIBUSB_ERROR_NO_DEVICE", -5: "LIBUSB_ERROR_NOT_FOUND", -6: "LIBUSB_ERROR_BUSY",
    -7: "LIBUSB_ERROR_TIMEOUT", -8: "LIBUSB_ERROR_OVERFLOW", -9: "LIBUSB_ERROR_PIPE",
    -12: "LIBUSB_ERROR_NOT_SUPPORTED", -99: "LIBUSB_ERROR_OTHER",
}
BLACKLIST_HINT = ("the kernel DVB driver may have claimed it: "
                  "echo 'blacklist dvb_usb_rtl28xxu' | sudo tee /etc/modprobe.d/blacklist-rtl.conf, "
                  "then 'sudo modprobe -r dvb_usb_rtl28xxu' and replug")


def load_pyrtlsdr() -> Any:
    """Import pyrtlsdr (the ``rtlsdr`` package) or raise a one-line :class:`SourceError` saying why not."""
    try:
        import rtlsdr  # noqa: PLC0415 - optional dependency, imported only when hardware is used
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "rtlsdr":
            raise SourceError(f"pyrtlsdr is not installed: {HW_HINT}") from None
        raise SourceError(f"pyrtlsdr cannot be imported ({exc}): {HW_HINT}") from None
    except AttributeError as exc:
        text = str(exc)
        if "undefined symbol" in text:
            symbol = text.rsplit("undefined symbol:", 1)[-1].strip()
            raise SourceError(
                f"pyrtlsdr cannot use the system librtlsdr (undefined symbol: {symbol}; Debian's librtlsdr "
                "0.6.0 is older than pyrtlsdr expects): pip install pyrtlsdrlib (bundles a newer librtlsdr)"
            ) from None
        raise SourceError(f"pyrtlsdr failed to load librtlsdr ({text}): pip install pyrtlsdrlib") from None
    except (ImportError, OSError) as exc:
        raise SourceError(f"pyrtlsdr found no usable librtlsdr ({exc}): pip install pyrtlsdrlib") from None
    if getattr(rtlsdr, "RtlSdr", None) is None:  # RTLSDR_CLIENT_MODE=true imports only the TCP client
        raise SourceError("pyrtlsdr is in client-only mode (RTLSDR_CLIENT_MODE is set): unset it to use a USB dongle")
    return rtlsdr


def _lib(rtlsdr: Any) -> Any:
    """The ctypes handle of librtlsdr (``rtlsdr.librtlsdr`` is the CDLL, not the submodule)."""
    return rtlsdr.librtlsdr


def library_path(rtlsdr: Any) -> str:
    return str(getattr(_lib(rtlsdr), "_name", "?"))


def device_count(rtlsdr: Any | None = None) -> int:
    rtlsdr = rtlsdr or load_pyrtlsdr()
    return int(_lib(rtlsdr).rtlsdr_get_device_count())


def _usb_strings(rtlsdr: Any, index: int) -> dict[str, str | None]:
    bufs = [(ctypes.c_ubyte * 256)() for _ in range(3)]
    r = _lib(rtlsdr).rtlsdr_get_device_usb_strings(index, *bufs)
    if r != 0:
        return {"manufacturer": None, "product": None, "serial": None}
    text = [bytes(b).split(b"\0", 1)[0].decode("latin-1") for b in bufs]
    return dict(zip(("manufacturer", "product", "serial"), text))


def _device_name(rtlsdr: Any, index: int) -> str | None:
    name = _lib(rtlsdr).rtlsdr_get_device_name(index)
    return name.decode("latin-1") if name else None


def _kernel_driver_loaded() -> bool:
    return os.path.isdir("/sys/module/dvb_usb_rtl28xxu")


def _open_error(exc: OSError, where: str) -> SourceError:
    """Map a pyrtlsdr ``LibUSBError`` from opening a dongle to a one-line, actionable error."""
    code = getattr(exc, "errno", None)
    name = _LIBUSB.get(code, f"error {code}") if isinstance(code, int) else "error"
    if code == -3:
        return SourceError(f"RTL-SDR {where}: permission denied ({name}): install the udev rules "
                           "(apt install rtl-sdr) and replug, or add yourself to the plugdev group")
    if code == -6:
        return SourceError(f"RTL-SDR {where} is busy ({name}): another program (rtl_tcp, rtl_433, SDR++) "
                           f"is using it, or {BLACKLIST_HINT}")
    if code == -4:
        return SourceError(f"RTL-SDR {where} disappeared ({name}): check the USB cable and power")
    # -1 is what librtlsdr returns both for "no such index" and for "claiming failed"
    hint = BLACKLIST_HINT if _kernel_driver_loaded() else "another program may be using it"
    return SourceError(f"RTL-SDR {where} could not be opened ({name}): {hint}")


def _parse_uri(uri: str) -> tuple[int | None, str | None]:
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    rest = rest.strip().rstrip("/") or "0"
    if rest.startswith("serial="):
        serial = rest[len("serial="):]
        if not serial:
            raise SourceError(f"bad receiver {uri!r}: empty serial (expected rtlsdr://serial=00000001)")
        return None, serial
    try:
        index = int(rest)
    except ValueError:
        raise SourceError(f"bad receiver {uri!r}: expected rtlsdr://N or rtlsdr://serial=SERIAL") from None
    if index < 0:
        raise SourceError(f"bad receiver {uri!r}: device index must be >= 0")
    return index, None


class RtlSdrSource(Source):
    """One USB dongle. Open it with :func:`open_rtlsdr`."""

    def __init__(
        self,
        index: int | None = 0,
        serial: str | None = None,
        *,
        settle_s: float | None = None,
        discard_bytes: int | None = None,
        sample_rate_hz: float | None = None,
        center_hz: float | None = None,
        gain_db: float | None = None,
        ppm: int = 0,
        dithering: bool = True,
    ) -> None:
        rtlsdr = load_pyrtlsdr()
        self._rtlsdr = rtlsdr
        self._settle_opt, self._discard_opt = settle_s, discard_bytes
        self.sample_index = 0
        self._pending = np.empty(0, dtype=np.uint8)  # bytes read past the last block (whole USB chunks)
        if serial is not None:
            self.uri = f"rtlsdr://serial={serial}"
            where = f"with serial {serial}"
            try:  # librtlsdr: -2 no devices at all, -3 none with that serial
                index = int(rtlsdr.RtlSdr.get_device_index_by_serial(serial))
            except OSError:
                serials = [_usb_strings(rtlsdr, i)["serial"] or "?" for i in range(device_count(rtlsdr))]
                found = f"serials present: {', '.join(serials)}" if serials else "no RTL-SDR on USB"
                raise SourceError(f"no RTL-SDR with serial {serial} ({found})") from None
        else:
            index = int(index or 0)
            self.uri = f"rtlsdr://{index}"
            where = f"at index {index}"
        self.index = index
        try:
            self._sdr = rtlsdr.RtlSdr(device_index=index, dithering_enabled=dithering)
        except OSError as exc:
            count = device_count(rtlsdr)
            if getattr(exc, "errno", None) == -1 and index >= count:  # librtlsdr's "no such device"
                found = "no RTL-SDR on USB" if count == 0 else f"{count} found: indexes 0..{count - 1}"
                raise SourceError(f"no RTL-SDR found at index {index} ({found}; check the cable, "
                                  "or see 'sdrwatch devices')") from None
            raise _open_error(exc, where) from None
        strings = _usb_strings(rtlsdr, index)
        self.serial = strings["serial"]
        self.usb = strings
        self.tuner_type = int(self._call(self._sdr.get_tuner_type))
        self.gains_db = [float(g) for g in self._sdr.valid_gains_db]
        self.profile = _profile_for(self.tuner_type)
        from .rtl_tcp import _retune_hygiene

        self.settle_s, discard = _retune_hygiene(self.profile, self._settle_opt, self._discard_opt)
        self.discard_bytes = max(USB_CHUNK, -(-discard // USB_CHUNK) * USB_CHUNK)
        self.ppm = 0
        # pyrtlsdr opened the dongle at its own defaults; put it in ours
        self.set_sample_rate(sample_rate_hz if sample_rate_hz is not None else self.sample_rate_hz)
        self.set_gain(gain_db)
        if ppm:
            self.set_ppm(ppm)
        if center_hz is not None:
            self.tune(center_hz)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            code = getattr(exc, "errno", None)
            if code == -4:
                raise SourceError(f"RTL-SDR {self.uri} disconnected: check the USB cable and power") from None
            raise SourceError(f"RTL-SDR {self.uri}: {exc}") from None

    def _resync(self) -> None:
        """Let the PLL settle, then read and drop a whole USB block of stale samples."""
        time.sleep(self.settle_s)
        self._pending = np.empty(0, dtype=np.uint8)
        self._call(self._sdr.read_bytes, self.discard_bytes)

    def tune(self, center_hz: float) -> None:
        hz = float(center_hz)
        if self.profile is not None and hasattr(self.profile, "check_frequency"):
            self.profile.check_frequency(hz)
        self._call(self._sdr.set_center_freq, int(round(hz)))
        self.center_hz = hz
        self._resync()

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        rate = float(sample_rate_hz)
        if self.profile is not None and hasattr(self.profile, "check_sample_rate"):
            self.profile.check_sample_rate(rate)
        elif not any(lo <= rate <= hi for lo, hi in VALID_SAMPLE_RATES_HZ):
            raise PlanError(f"sample rate {rate:g} S/s is not valid for an RTL-SDR (225001-300000 or 900001-3200000 S/s)")
        self._call(self._sdr.set_sample_rate, int(round(rate)))
        self.requested_sample_rate_hz = rate
        self.sample_rate_hz = float(self._call(self._sdr.get_sample_rate))  # the exact rate the xtal divides to
        self._resync()

    def set_gain(self, gain_db: float | None) -> None:
        if gain_db is None:
            self._call(self._sdr.set_gain, "auto")
            self.gain_db = None
            return
        if not self.gains_db:
            raise PlanError(f"RTL-SDR {self.uri} ({TUNER_NAMES.get(self.tuner_type, '?')}) has no manual gain table")
        nearest = min(self.gains_db, key=lambda g: abs(g - float(gain_db)))
        self._call(self._sdr.set_gain, nearest)
        self.gain_db = nearest

    def set_ppm(self, ppm: int) -> None:
        ppm = int(ppm)
        if ppm != self.ppm:  # librtlsdr returns an error for an unchanged value, and pyrtlsdr then closes
            self._call(self._sdr.set_freq_correction, ppm)
            self.ppm = ppm

    def read(self, num_samples: int) -> Block:
        n = int(num_samples)
        need = 2 * n - len(self._pending)
        if need > 0:
            chunk = -(-need // USB_CHUNK) * USB_CHUNK
            raw = np.frombuffer(self._call(self._sdr.read_bytes, chunk), dtype=np.uint8).copy()
            data = np.concatenate([self._pending, raw]) if len(self._pending) else raw
        else:
            data = self._pending
        self._pending = data[2 * n:]
        samples = iq.to_iq(data[:2 * n], "cu8")
        block = Block(samples, float(self.center_hz), float(self.sample_rate_hz), self.sample_index,
                      timestamp=time.time() - n / self.sample_rate_hz, gain_db=self.gain_db)
        self.sample_index += n
        return block

    def describe(self) -> SourceInfo:
        return SourceInfo(
            driver="rtlsdr",
            tuner=TUNER_NAMES.get(self.tuner_type, f"tuner type {self.tuner_type}")
            if self.profile is None else self.profile.name,
            gains_db=list(self.gains_db),
            sample_rates_hz=[tuple(r) for r in getattr(self.profile, "sample_rate_ranges_hz", VALID_SAMPLE_RATES_HZ)],
            serial=self.serial,
            description=" ".join(s for s in (self.usb.get("manufacturer"), self.usb.get("product")) if s),
            extra={
                "index": self.index,
                "tuner_type": self.tuner_type,
                "library": library_path(self._rtlsdr),
                "pyrtlsdr": getattr(self._rtlsdr, "__version__", "unknown"),
                "settle_s": self.settle_s,
                "discard_bytes": self.discard_bytes,
            },
        )

    def close(self) -> None:
        sdr = getattr(self, "_sdr", None)
        if sdr is not None:
            try:
                sdr.close()
            except OSError:
                pass
            self._sdr = None


def _profile_for(tuner_id: int) -> Any:
    from .rtl_tcp import _profile_for as lookup
    return lookup(tuner_id)


def open_rtlsdr(uri: str, **options: Any) -> RtlSdrSource:
    """Open ``rtlsdr://N`` or ``rtlsdr://serial=SERIAL``; options go to :class:`RtlSdrSource`
    (options it does not take, such as the simulator's ``seed``, are ignored)."""
    from .rtl_tcp import known_options

    index, serial = _parse_uri(uri)
    return RtlSdrSource(index, serial, **known_options(RtlSdrSource, options))


def list_devices() -> list[dict[str, Any]]:
    """Every dongle on USB: index, serial, name, manufacturer, product, tuner, gains, status.

    Each device is opened briefly to read its tuner and gain table; one that is busy or not accessible
    is listed with ``status`` saying so instead of failing the listing. Raises :class:`SourceError` only
    when pyrtlsdr/librtlsdr cannot be loaded.
    """
    rtlsdr = load_pyrtlsdr()
    devices = []
    for index in range(device_count(rtlsdr)):
        entry: dict[str, Any] = {"index": index, **_usb_strings(rtlsdr, index), "name": _device_name(rtlsdr, index),
                                 "tuner": None, "gains_db": [], "status": "ok"}
        try:
            sdr = rtlsdr.RtlSdr(device_index=index)
        except OSError as exc:
            entry["status"] = str(_open_error(exc, f"at index {index}"))
        else:
            try:
                entry["tuner"] = TUNER_NAMES.get(int(sdr.get_tuner_type()), "unknown")
                entry["gains_db"] = [float(g) for g in sdr.valid_gains_db]
            except OSError as exc:
                entry["status"] = f"error reading tuner: {exc}"
            finally:
                try:
                    sdr.close()
                except OSError:
                    pass
        devices.append(entry)
    return devices


def library_summary() -> str:
    """``pyrtlsdr 0.5.1, librtlsdr /path/librtlsdr.so`` (raises SourceError if it cannot load)."""
    rtlsdr = load_pyrtlsdr()
    return f"pyrtlsdr {getattr(rtlsdr, '__version__', '?')}, librtlsdr {library_path(rtlsdr)}"
