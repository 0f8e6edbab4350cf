"""The rtl_tcp protocol: a client (``rtl_tcp://HOST:PORT`` source) and a server that serves any source.

Wire protocol (osmocom rtl-sdr ``src/rtl_tcp.c``), all integers big-endian:

* on connect the server sends a 12-byte greeting ``>4sII``: ``b"RTL0"``, tuner type
  (0 unknown, 1 E4000, 2 FC0012, 3 FC0013, 4 FC2580, 5 R820T/R820T2, 6 R828D/Blog V4) and the
  number of entries in the tuner gain table;
* then raw unsigned 8-bit I/Q pairs (``cu8``), unframed, with no timestamps and no marker where a
  retune took effect;
* the client sends 5-byte commands ``>BI`` (code, parameter). There is no reply and no ack.

Because nothing in the stream says where a new frequency starts, :class:`RtlTcpSource` treats every
retune as a resynchronisation: wait ``settle_s``, throw away everything already buffered in the socket,
then throw away ``discard_bytes`` more (a whole USB block) before returning samples again. Samples
taken at the old frequency or while the tuner PLL settled are never returned.

:class:`RtlTcpServer` does the reverse: it serves a :class:`~sdrwatch.radio.base.Source` (in practice
the simulator, see ``sdrwatch simulate``) to one client at a time, so rtl_433, SDR++, GQRX or our own
client can be tested without hardware.
"""
from __future__ import annotations

import errno
import logging
import selectors
import socket
import struct
import threading
import time
from collections import deque
from typing import Any

from ..errors import LinkLost, PlanError, SdrwatchError, SourceError
from . import iq
from .base import Block, Source, SourceInfo

log = logging.getLogger(__name__)

DEFAULT_PORT = 1234
MAGIC = b"RTL0"
GREETING = struct.Struct(">4sII")
COMMAND = struct.Struct(">BI")

SET_FREQUENCY = 0x01
SET_SAMPLE_RATE = 0x02
SET_GAIN_MODE = 0x03
SET_GAIN = 0x04
SET_FREQ_CORRECTION = 0x05
SET_IF_GAIN = 0x06
SET_TEST_MODE = 0x07
SET_AGC_MODE = 0x08
SET_DIRECT_SAMPLING = 0x09
SET_OFFSET_TUNING = 0x0A
SET_RTL_XTAL = 0x0B
SET_TUNER_XTAL = 0x0C
SET_GAIN_BY_INDEX = 0x0D
SET_BIAS_TEE = 0x0E

COMMAND_NAMES = {
    SET_FREQUENCY: "set_freq",
    SET_SAMPLE_RATE: "set_sample_rate",
    SET_GAIN_MODE: "set_gain_mode",
    SET_GAIN: "set_gain",
    SET_FREQ_CORRECTION: "set_freq_correction",
    SET_IF_GAIN: "set_if_gain",
    SET_TEST_MODE: "set_test_mode",
    SET_AGC_MODE: "set_agc_mode",
    SET_DIRECT_SAMPLING: "set_direct_sampling",
    SET_OFFSET_TUNING: "set_offset_tuning",
    SET_RTL_XTAL: "set_rtl_xtal",
    SET_TUNER_XTAL: "set_tuner_xtal",
    SET_GAIN_BY_INDEX: "set_gain_by_index",
    SET_BIAS_TEE: "set_bias_tee",
}

#: ``enum rtlsdr_tuner`` (include/rtl-sdr.h); R820T2 reports 5, the RTL-SDR Blog V4 reports 6
TUNER_NAMES = {0: "unknown", 1: "E4000", 2: "FC0012", 3: "FC0013", 4: "FC2580", 5: "R820T", 6: "R828D"}
_R82XX_GAINS = (0, 9, 14, 27, 37, 77, 87, 125, 144, 157, 166, 197, 207, 229, 254, 280, 297, 328, 338,
                364, 372, 386, 402, 421, 434, 439, 445, 480, 496)
#: tuner gain tables in tenths of dB (librtlsdr ``rtlsdr_get_tuner_gains``), used when no profile is known
GAIN_TABLES_TENTHS = {
    0: (0,),
    1: (-10, 15, 40, 65, 90, 115, 140, 165, 190, 215, 240, 290, 340, 420),
    2: (-99, -40, 71, 179, 192),
    3: (-99, -73, -65, -63, -60, -58, -54, 58, 61, 63, 65, 67, 68, 70, 71, 179, 181, 182, 184, 186, 188,
        191, 197),
    4: (0,),
    5: _R82XX_GAINS,
    6: _R82XX_GAINS,
}
#: sample rates librtlsdr accepts (``rtlsdr_set_sample_rate``)
VALID_SAMPLE_RATES_HZ = [(225_001.0, 300_000.0), (900_001.0, 3_200_000.0)]


# --------------------------------------------------------------------------------------------- codec
def encode_command(cmd: int, param: int) -> bytes:
    """One 5-byte rtl_tcp command. Negative ``param`` (ppm, IF gain) is sent as two's complement."""
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"rtl_tcp command code {cmd} out of range 0..255")
    if not -(1 << 31) <= param < (1 << 32):
        raise ValueError(f"rtl_tcp parameter {param} does not fit 32 bits")
    return COMMAND.pack(cmd, param & 0xFFFFFFFF)


def signed32(param: int) -> int:
    """Read an unsigned 32-bit command parameter as two's complement (ppm, IF gain)."""
    return param - (1 << 32) if param & 0x80000000 else param


class CommandParser:
    """Incremental decoder of the client->server command stream; TCP may split a command anywhere."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int]]:
        """Add received bytes; return every complete ``(cmd, unsigned param)`` now available."""
        self._buf += data
        whole = len(self._buf) - len(self._buf) % COMMAND.size
        out = [COMMAND.unpack_from(self._buf, off) for off in range(0, whole, COMMAND.size)]
        del self._buf[:whole]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete command still waiting for the rest."""
        return len(self._buf)


def parse_host_port(text: str, default_port: int = DEFAULT_PORT, *, allow_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``[::1]:PORT``, ``rtl_tcp://HOST:PORT``, or a bare ``PORT`` (or
    ``:PORT``), which means 127.0.0.1:PORT -> (host, port)."""
    rest = text.split("://", 1)[1] if "://" in text else text
    rest = rest.strip().rstrip("/")
    if rest.isdigit() or (rest.startswith(":") and rest[1:].isdigit()):
        rest = "127.0.0.1:" + rest.lstrip(":")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        host, port_text = rest, ""
    if not host:
        raise SourceError(f"bad rtl_tcp address {text!r}: expected HOST:PORT, e.g. rtl_tcp://127.0.0.1:1234")
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise SourceError(f"bad rtl_tcp address {text!r}: port {port_text!r} is not a number") from None
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise SourceError(f"bad rtl_tcp address {text!r}: port {port} out of range")
    return host, port


def tuner_name(tuner_id: int) -> str:
    profile = _profile_for(tuner_id)
    if profile is not None:
        return profile.name
    return TUNER_NAMES.get(tuner_id, f"tuner type {tuner_id}")


def tuner_id_for(name: str) -> int:
    """Tuner name as sources describe it (``R820T2``, ``R828D``, ``E4000``...) -> rtl_tcp type id."""
    upper = (name or "").upper()
    for tid in (6, 5, 3, 2, 4, 1):  # R828D before R820T; FC0013 before FC0012 is irrelevant (exact prefix)
        if upper.startswith(TUNER_NAMES[tid].upper()) or (tid == 5 and upper.startswith("R820")):
            return tid
    return 0


def _profile_for(tuner_id: int) -> Any:
    """The receiver profile for an rtl_tcp tuner id, or None when profiles are unavailable or unknown."""
    try:
        from .profiles import profile_for_tuner_id
    except ImportError:
        return None
    try:
        return profile_for_tuner_id(tuner_id)
    except (SdrwatchError, LookupError, ValueError):
        return None


def _retune_hygiene(profile: Any, settle_s: float | None, discard_bytes: int | None) -> tuple[float, int]:
    """(settle seconds, bytes to discard) after a retune: explicit values, else the profile's, else defaults."""
    if settle_s is None:
        settle_s = float(getattr(profile, "settle_max_s", 0.0) or getattr(profile, "settle_s", 0.0) or 0.017)
    if discard_bytes is None:
        discard_bytes = 2 * int(getattr(profile, "discard_samples", 0) or 16384)
    discard_bytes = max(0, int(discard_bytes))
    return float(settle_s), discard_bytes + discard_bytes % 2


def _gains_for(tuner_id: int, profile: Any) -> list[float]:
    if profile is not None and getattr(profile, "gains_db", None):
        return [float(g) for g in profile.gains_db]
    return [g / 10 for g in GAIN_TABLES_TENTHS.get(tuner_id, ())]


# -------------------------------------------------------------------------------------------- client
_SILENT = "the link went silent"


class _Dropped(Exception):
    """The connection went away (EOF, reset, timeout); the message says how."""


class RtlTcpSource(Source):
    """A remote dongle (or ``sdrwatch simulate``) over rtl_tcp.

    ``settle_s`` and ``discard_bytes`` set the retune hygiene (see the module docstring); by default they
    come from the tuner's receiver profile (its worst settling time, and ``2 * discard_samples`` bytes),
    or 17 ms and 32 KiB for an unknown tuner;
    ``reconnect_attempts`` and ``reconnect_backoff_s`` bound how hard a dropped link is retried
    (the backoff doubles each attempt, capped at 5 s) before :class:`SourceError` is raised.

    ``stall_s`` is the no-progress deadline (default 10 s): a ``read`` that has not delivered its
    samples ``stall_s`` after they were due (``num_samples / sample_rate_hz``), whatever happened
    meanwhile (reconnects that each stream a little and close, a link trickling a few bytes a second,
    a stalled or reset link), raises :class:`~sdrwatch.errors.LinkLost` saying what happened. Commands
    (tune, gain, ...) get the same deadline beyond their settling time. ``timeout_s`` bounds one
    connect or one silent ``recv`` inside it (a silence that long is a drop, and reconnects).
    After :class:`LinkLost` the source is not connected; the next call reconnects with a fresh
    deadline, so a long-running caller retries forever by catching it (and reporting it as health).
    ``stall_s=None`` turns the deadline off.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = 5.0,
        settle_s: float | None = None,
        discard_bytes: int | None = None,
        drain_max_s: float = 0.5,
        reconnect_attempts: int = 5,
        reconnect_backoff_s: float = 0.25,
        stall_s: float | None = 10.0,
        sample_rate_hz: float | None = None,
        center_hz: float | None = None,
        gain_db: float | None = None,
        ppm: int = 0,
    ) -> None:
        self.host, self.port = host, int(port)
        self.uri = f"rtl_tcp://{host}:{self.port}"
        self.timeout_s = float(timeout_s)
        self._settle_opt, self._discard_opt = settle_s, discard_bytes
        self.settle_s, self.discard_bytes = _retune_hygiene(None, settle_s, discard_bytes)
        self.drain_max_s = float(drain_max_s)
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_backoff_s = float(reconnect_backoff_s)
        if stall_s is not None and not 0 < float(stall_s) < 1e7:
            raise SourceError(f"stall deadline {stall_s!r} s: must be positive seconds")
        self.stall_s = None if stall_s is None else float(stall_s)
        self._deadline: float | None = None  # monotonic time the current operation must finish by
        self._op_start = 0.0
        self._op_bytes = 0  # stream bytes received during the current operation
        self._op_reconnects = 0
        self.links_lost = 0
        self.sample_index = 0
        self.dropped_connections = 0
        self.reconnects = 0
        self.discarded_bytes = 0
        self.tuner_type = 0
        self.gain_count = 0
        self.profile: Any = None
        self._sock: socket.socket | None = None
        self._stream_bytes = 0  # stream bytes consumed on this connection; odd = mid-sample
        if sample_rate_hz is not None:
            self._check_rate(sample_rate_hz)
            self.sample_rate_hz = float(sample_rate_hz)
        if center_hz is not None:
            self.center_hz = float(center_hz)
        self.ppm = int(ppm)
        self._begin(0.0)
        try:
            self._connect()
        except _Dropped as exc:
            raise SourceError(f"rtl_tcp {self.host}:{self.port}: {exc}") from None
        if gain_db is not None:
            self.gain_db = self._round_gain(gain_db)
        self._begin(self._settle_budget_s())
        try:
            self._send_settings()
        except _Dropped as exc:
            self._reconnect(str(exc))

    # -- deadlines ----------------------------------------------------------------------------------
    def _settle_budget_s(self) -> float:
        """What one resynchronisation may legitimately take: settle, drain, discard at the stream rate."""
        return self.settle_s + self.drain_max_s + self.discard_bytes / 2 / max(self.sample_rate_hz, 1.0)

    def _begin(self, expected_s: float) -> None:
        """Start an operation that should take ``expected_s``; it gets ``stall_s`` more before LinkLost."""
        now = time.monotonic()
        self._op_start, self._op_bytes, self._op_reconnects = now, 0, 0
        self._deadline = None if self.stall_s is None else now + expected_s + self.stall_s

    def _remaining_s(self, reason: str) -> float:
        """Seconds left before the deadline (inf without one); raise LinkLost once it has passed."""
        if self._deadline is None:
            return float("inf")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._lost(reason)
        return left

    def _lost(self, reason: str) -> LinkLost:
        self._close_socket()
        self.links_lost += 1
        waited = time.monotonic() - self._op_start
        if reason == _SILENT and self._op_bytes:
            reason = f"only {self._op_bytes} bytes arrived (a stalled or far too slow link)"
        again = f", {self._op_reconnects} reconnect(s) delivered too little" if self._op_reconnects else ""
        log.info("rtl_tcp %s:%d lost: %s", self.host, self.port, reason)
        return LinkLost(f"rtl_tcp {self.host}:{self.port} lost: {reason}; no samples for {waited:.0f} s{again}",
                        uri=self.uri, reason=reason, waited_s=waited, reconnects=self._op_reconnects)

    # -- connection ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        """Open the socket and read the greeting; raise _Dropped with a short reason on failure."""
        timeout_s = min(self.timeout_s, self._remaining_s("no answer"))
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        except ConnectionRefusedError:
            raise _Dropped("connection refused (is rtl_tcp or 'sdrwatch simulate' running there?)") from None
        except socket.gaierror as exc:
            raise _Dropped(f"unknown host ({exc.strerror})") from None
        except TimeoutError:
            raise _Dropped(f"no answer within {timeout_s:g} s") from None
        except OSError as exc:
            raise _Dropped(exc.strerror or str(exc)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hdr = bytearray()
        deadline = time.monotonic() + timeout_s
        try:
            while len(hdr) < GREETING.size:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(GREETING.size - len(hdr))
                if not chunk:
                    raise _Dropped(f"not an rtl_tcp server (it closed the connection after {len(hdr)} bytes)")
                hdr += chunk
        except TimeoutError:
            sock.close()
            raise _Dropped(f"not an rtl_tcp server, or busy with another client (no RTL0 greeting within "
                           f"{timeout_s:g} s)") from None
        except OSError as exc:
            sock.close()
            raise _Dropped(f"connection failed during the greeting ({exc.strerror or exc})") from None
        except _Dropped:
            sock.close()
            raise
        magic, tuner_type, gain_count = GREETING.unpack(bytes(hdr))
        if magic != MAGIC:
            sock.close()
            raise _Dropped(f"not an rtl_tcp server (greeting starts {bytes(hdr[:4])!r}, expected {MAGIC!r})")
        sock.settimeout(self.timeout_s)
        self._sock = sock
        self._stream_bytes = 0
        self.tuner_type, self.gain_count = tuner_type, gain_count
        self.profile = _profile_for(tuner_type)
        self.settle_s, self.discard_bytes = _retune_hygiene(self.profile, self._settle_opt, self._discard_opt)
        log.info("rtl_tcp connected to %s:%d (tuner %s, %d gains)", self.host, self.port,
                 tuner_name(tuner_type), gain_count)

    def _close_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _reconnect(self, reason: str) -> None:
        """Report the drop, reconnect with backoff and re-send the current settings, or give up."""
        self.dropped_connections += 1
        log.warning("rtl_tcp %s:%d dropped the connection (%s); reconnecting", self.host, self.port, reason)
        self._close_socket()
        last = reason
        for attempt in range(self.reconnect_attempts):
            pause = min(self.reconnect_backoff_s * (2 ** attempt), 5.0)
            if pause >= self._remaining_s(last):  # the next attempt would come after the deadline
                raise self._lost(last)
            time.sleep(pause)
            try:
                self._connect()
                self._send_settings()
            except _Dropped as exc:
                last = str(exc)
                self._close_socket()
                log.info("rtl_tcp %s:%d reconnect attempt %d failed: %s", self.host, self.port, attempt + 1, last)
                continue
            self.reconnects += 1
            self._op_reconnects += 1
            log.warning("rtl_tcp %s:%d reconnected", self.host, self.port)
            return
        self._close_socket()
        self.links_lost += 1
        raise LinkLost(f"rtl_tcp {self.host}:{self.port} lost: {reason} "
                       f"(gave up after {self.reconnect_attempts} reconnect attempts; last: {last})",
                       uri=self.uri, reason=last, waited_s=time.monotonic() - self._op_start,
                       reconnects=self._op_reconnects)

    def _send(self, *commands: tuple[int, int]) -> None:
        if self._sock is None:
            raise _Dropped("not connected")
        try:
            self._sock.sendall(b"".join(encode_command(c, p) for c, p in commands))
        except OSError as exc:
            raise _Dropped(f"send failed ({exc.strerror or exc})") from None

    def _command(self, *commands: tuple[int, int]) -> None:
        """Send commands and resynchronise; a drop reconnects, which re-sends every setting anyway."""
        self._begin(self._settle_budget_s())
        if self._sock is None:  # lost earlier (LinkLost): reconnecting re-sends every setting
            self._reconnect("not connected after the link was lost")
            return
        try:
            self._send(*commands)
            self._resync()
        except _Dropped as exc:
            self._reconnect(str(exc))

    def _send_settings(self) -> None:
        """Put the server in our state (after connect and after every reconnect), then resynchronise."""
        cmds = [(SET_SAMPLE_RATE, int(round(self.sample_rate_hz)))]
        if self.gain_db is None:
            cmds.append((SET_GAIN_MODE, 0))
        else:
            cmds += [(SET_GAIN_MODE, 1), (SET_GAIN, int(round(self.gain_db * 10)))]
        cmds.append((SET_FREQ_CORRECTION, int(self.ppm)))
        if self.center_hz > 0:
            cmds.append((SET_FREQUENCY, int(round(self.center_hz))))
        self._send(*cmds)
        self._resync()

    # -- stream -------------------------------------------------------------------------------------
    def _recv_into(self, view: memoryview) -> None:
        """Fill ``view`` from the stream or raise _Dropped."""
        sock = self._sock
        if sock is None:
            raise _Dropped("not connected")
        got = 0
        try:
            while got < len(view):
                wait_s = min(self.timeout_s, self._remaining_s(_SILENT))
                sock.settimeout(wait_s)
                try:
                    n = sock.recv_into(view[got:])
                except TimeoutError:
                    if wait_s < self.timeout_s:  # the operation's deadline, not a silent link
                        self._remaining_s(_SILENT)
                        continue
                    raise _Dropped(f"no samples for {self.timeout_s:g} s") from None
                if n == 0:
                    raise _Dropped("server closed the connection")
                got += n
                self._op_bytes += n
        except (_Dropped, LinkLost):
            raise
        except OSError as exc:
            raise _Dropped(exc.strerror or str(exc)) from None
        finally:
            self._stream_bytes += got

    def _drain(self) -> int:
        """Throw away everything already buffered in the socket (bounded by ``drain_max_s``)."""
        sock = self._sock
        if sock is None:
            raise _Dropped("not connected")
        scratch = bytearray(1 << 18)
        dropped = 0
        deadline = time.monotonic() + self.drain_max_s
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        try:
            sock.setblocking(False)
            while time.monotonic() < deadline:
                try:
                    n = sock.recv_into(scratch)
                except BlockingIOError:
                    # empty right now: wait a moment for bytes still in flight from the server's buffers
                    if not sel.select(0.002):
                        break
                    continue
                except OSError as exc:
                    raise _Dropped(exc.strerror or str(exc)) from None
                if n == 0:
                    raise _Dropped("server closed the connection")
                dropped += n
        finally:
            sel.close()
            if self._sock is not None:
                sock.settimeout(self.timeout_s)
        self._stream_bytes += dropped
        return dropped

    def _resync(self) -> None:
        """After a command: let the tuner settle, drop what is buffered, then drop a whole block more."""
        time.sleep(self.settle_s)
        dropped = self._drain()
        extra = self.discard_bytes + (self._stream_bytes + self.discard_bytes) % 2  # end on a sample boundary
        if extra:
            self._recv_into(memoryview(bytearray(extra)))
        self.discarded_bytes += dropped + extra

    def read(self, num_samples: int) -> Block:
        n = int(num_samples)
        if n < 0:
            raise SourceError(f"cannot read {n} samples")
        self._begin(n / max(self.sample_rate_hz, 1.0))
        buf = bytearray(2 * n)
        while True:
            try:
                self._recv_into(memoryview(buf))
                break
            except _Dropped as exc:  # the block restarts on the new connection so it stays contiguous
                self._reconnect(str(exc))
        samples = iq.to_iq(buf, "cu8")
        block = Block(samples, float(self.center_hz), float(self.sample_rate_hz), self.sample_index,
                      timestamp=time.time() - n / self.sample_rate_hz, gain_db=self.gain_db)
        self.sample_index += n
        return block

    # -- settings -----------------------------------------------------------------------------------
    def _check_rate(self, rate: float) -> None:
        profile = self.profile if hasattr(self, "profile") else None
        if profile is not None and hasattr(profile, "check_sample_rate"):
            profile.check_sample_rate(rate)
            return
        if not any(lo <= rate <= hi for lo, hi in VALID_SAMPLE_RATES_HZ):
            raise PlanError(f"sample rate {rate:g} S/s is not valid for an RTL-SDR "
                            "(225001-300000 or 900001-3200000 S/s)")

    def _round_gain(self, gain_db: float) -> float:
        if self.profile is not None and hasattr(self.profile, "nearest_gain_db"):
            return float(self.profile.nearest_gain_db(gain_db))
        gains = _gains_for(self.tuner_type, None)
        if not gains:
            return float(gain_db)
        return float(min(gains, key=lambda g: abs(g - gain_db)))

    def tune(self, center_hz: float) -> None:
        hz = float(center_hz)
        if self.profile is not None and hasattr(self.profile, "check_frequency"):
            self.profile.check_frequency(hz)
        elif not 0 < hz < 2 ** 32:
            raise PlanError(f"frequency {hz:g} Hz cannot be sent over rtl_tcp (1 Hz to 4.29 GHz)")
        self.center_hz = hz
        self._command((SET_FREQUENCY, int(round(hz))))

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        rate = float(sample_rate_hz)
        self._check_rate(rate)
        self.sample_rate_hz = rate
        self._command((SET_SAMPLE_RATE, int(round(rate))))

    def set_gain(self, gain_db: float | None) -> None:
        if gain_db is None:
            self.gain_db = None
            self._command((SET_GAIN_MODE, 0))
        else:
            self.gain_db = self._round_gain(gain_db)
            self._command((SET_GAIN_MODE, 1), (SET_GAIN, int(round(self.gain_db * 10))))

    def set_ppm(self, ppm: int) -> None:
        self.ppm = int(ppm)
        self._command((SET_FREQ_CORRECTION, self.ppm))

    def set_agc(self, enabled: bool) -> None:
        """The RTL2832's digital AGC (separate from the tuner AGC chosen by ``set_gain(None)``)."""
        self._command((SET_AGC_MODE, int(bool(enabled))))

    def set_bias_tee(self, enabled: bool) -> None:
        self._command((SET_BIAS_TEE, int(bool(enabled))))

    def set_direct_sampling(self, mode: int) -> None:
        """0 off, 1 I branch, 2 Q branch (RTL-SDR Blog V3 HF)."""
        self._command((SET_DIRECT_SAMPLING, int(mode)))

    def describe(self) -> SourceInfo:
        return SourceInfo(
            driver="rtl_tcp",
            tuner=tuner_name(self.tuner_type),
            gains_db=_gains_for(self.tuner_type, self.profile),
            sample_rates_hz=[tuple(r) for r in getattr(self.profile, "sample_rate_ranges_hz", VALID_SAMPLE_RATES_HZ)],
            serial=None,
            description=f"rtl_tcp server at {self.host}:{self.port}",
            extra={
                "host": self.host,
                "port": self.port,
                "tuner_type": self.tuner_type,
                "gain_count": self.gain_count,
                "dropped_connections": self.dropped_connections,
                "reconnects": self.reconnects,
                "links_lost": self.links_lost,
                "discarded_bytes": self.discarded_bytes,
                "settle_s": self.settle_s,
                "discard_bytes": self.discard_bytes,
            },
        )

    def close(self) -> None:
        self._close_socket()


def known_options(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The options ``cls`` takes; others (meant for other backends, e.g. ``seed``) are logged and dropped,
    so callers can pass one option set to any receiver URI."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    ignored = sorted(k for k in options if k not in params)
    if ignored:
        log.debug("%s ignores options %s", cls.__name__, ", ".join(ignored))
    return {k: v for k, v in options.items() if k in params}


def open_rtl_tcp(uri: str, **options: Any) -> RtlTcpSource:
    """Open ``rtl_tcp://HOST[:PORT]`` (port 1234 by default); options go to :class:`RtlTcpSource`
    (options it does not take, such as the simulator's ``seed``, are ignored)."""
    host, port = parse_host_port(uri)
    return RtlTcpSource(host, port, **known_options(RtlTcpSource, options))


# -------------------------------------------------------------------------------------------- server
class RtlTcpServer:
    """Serve a :class:`Source` over rtl_tcp to one client at a time, like ``rtl_tcp`` does.

    The socket is bound in the constructor (so a port in use fails at once, and ``port`` is known when
    ``port=0`` picked an ephemeral one). ``serve_forever()`` runs in the calling thread until ``stop()``;
    ``start()`` runs it in a background thread. Samples are paced at the real-time sample rate unless
    ``realtime=False``. A client that disconnects, misbehaves or stalls only ends its own session.
    """

    def __init__(
        self,
        source: Source,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        realtime: bool = True,
        block_s: float = 0.01,
        tuner_id: int | None = None,
        gain_count: int | None = None,
    ) -> None:
        self.source = source
        self.realtime = realtime
        self.block_s = float(block_s)
        info = source.describe()
        profile = getattr(source, "profile", None)
        if tuner_id is None:
            tuner_id = getattr(profile, "rtl_tcp_tuner_id", None)
        if tuner_id is None:
            tuner_id = tuner_id_for(info.tuner)
        self.tuner_id = int(tuner_id)
        self.gains_db = [float(g) for g in info.gains_db] or _gains_for(self.tuner_id, profile)
        self.gain_count = int(gain_count if gain_count is not None else max(1, len(self.gains_db)))
        self.commands: deque[tuple[int, int]] = deque(maxlen=1000)  # most recent commands received
        self.clients_served = 0
        self.agc = False
        self._manual_gain = source.gain_db is not None
        self._stop = threading.Event()
        self._drop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise SourceError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
        family, _, _, _, addr = infos[0]
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(addr)
        except OSError as exc:
            self._listener.close()
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise SourceError(f"cannot listen on {host}:{port}: {why}") from None
        self._listener.listen(1)
        self._listener.setblocking(False)
        self.host = host

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "RtlTcpServer":
        self._thread = threading.Thread(target=self.serve_forever, name=f"rtl_tcp-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            self._thread = None
        try:
            self._listener.close()
        except OSError:
            pass

    def drop_client(self) -> None:
        """Cut the current client off with a TCP reset (operators and tests); the server keeps listening."""
        self._drop.set()

    def __enter__(self) -> "RtlTcpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- main loop ----------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            while not self._stop.is_set():
                try:
                    sel.register(self._listener, selectors.EVENT_READ)
                except (ValueError, OSError):
                    return  # listener closed by stop()
                conn = None
                while conn is None and not self._stop.is_set():
                    if sel.select(0.1):
                        try:
                            conn, peer = self._listener.accept()
                        except (BlockingIOError, InterruptedError):
                            conn = None
                        except OSError:
                            return
                sel.unregister(self._listener)  # like rtl_tcp: others wait in the backlog
                if conn is None:
                    return
                self._drop.clear()
                self.clients_served += 1
                log.info("rtl_tcp client %s:%d connected", peer[0], peer[1])
                try:
                    reason = self._serve_client(conn, sel)
                except Exception:  # a bug or a failing source must not take the server down
                    log.exception("rtl_tcp session with %s:%d failed", peer[0], peer[1])
                    reason = "error"
                finally:
                    try:
                        conn.close()
                    except OSError:
                        pass
                log.info("rtl_tcp client %s:%d left (%s)%s", peer[0], peer[1], reason,
                         "" if self._stop.is_set() else "; listening again")
        finally:
            sel.close()

    def _block_samples(self) -> int:
        rate = float(self.source.sample_rate_hz)
        if not self.realtime:
            return 65536
        return max(512, int(rate * self.block_s) // 256 * 256)

    def _serve_client(self, conn: socket.socket, sel: selectors.BaseSelector) -> str:
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        parser = CommandParser()
        out = memoryview(GREETING.pack(MAGIC, self.tuner_id, self.gain_count))
        t0 = time.monotonic()
        sent = 0  # samples since t0
        rate = float(self.source.sample_rate_hz)
        sel.register(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)
        writing = selectors.EVENT_READ | selectors.EVENT_WRITE
        try:
            while not self._stop.is_set():
                if self._drop.is_set():
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return "dropped by the server"
                now = time.monotonic()
                due = t0 + sent / rate if self.realtime else now
                if len(out):
                    timeout = 0.1
                else:
                    timeout = min(0.1, max(0.0, due - now))
                for _key, events in sel.select(timeout):
                    if events & selectors.EVENT_READ:
                        try:
                            data = conn.recv(4096)
                        except (BlockingIOError, InterruptedError):
                            data = None
                        except OSError as exc:
                            return exc.strerror or str(exc)
                        if data == b"":
                            return "client closed the connection"
                        if data:
                            for cmd, param in parser.feed(data):
                                self._apply(cmd, param)
                            if float(self.source.sample_rate_hz) != rate:  # restart the pacing clock
                                rate = float(self.source.sample_rate_hz)
                                t0, sent = time.monotonic(), 0
                    if events & selectors.EVENT_WRITE and len(out):
                        try:
                            n = conn.send(out)
                        except (BlockingIOError, InterruptedError):
                            n = 0
                        except OSError as exc:
                            return exc.strerror or str(exc)
                        out = out[n:]
                if not len(out):
                    now = time.monotonic()
                    if self.realtime and now - (t0 + sent / rate) > 0.5:
                        log.debug("rtl_tcp client is slow; skipping ahead")  # rtl_tcp would drop buffers
                        t0, sent = now, 0
                    if not self.realtime or now >= t0 + sent / rate:
                        try:
                            block = self.source.read(self._block_samples())
                        except SdrwatchError as exc:
                            log.error("rtl_tcp source failed: %s", exc)
                            return f"source failed: {exc}"
                        out = memoryview(iq.from_iq(block.iq, "cu8"))
                        sent += len(block.iq)
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if len(out) else 0)
                if want != writing:
                    sel.modify(conn, want)
                    writing = want
            return "server stopping"
        finally:
            sel.unregister(conn)

    def _apply(self, cmd: int, param: int) -> None:
        """Apply one client command to the source; a setting the source refuses is logged, not fatal."""
        self.commands.append((cmd, param))
        name = COMMAND_NAMES.get(cmd)
        log.debug("rtl_tcp command %s (0x%02x) %d", name or "unknown", cmd, param)
        src = self.source
        try:
            if cmd == SET_FREQUENCY:
                src.tune(float(param))
            elif cmd == SET_SAMPLE_RATE:
                src.set_sample_rate(float(param))
            elif cmd == SET_GAIN_MODE:
                self._manual_gain = bool(param)
                if not param:
                    src.set_gain(None)
            elif cmd == SET_GAIN:
                self._manual_gain = True
                src.set_gain(signed32(param) / 10)
            elif cmd == SET_FREQ_CORRECTION:
                src.set_ppm(signed32(param))
            elif cmd == SET_AGC_MODE:
                self.agc = bool(param)
                log.info("rtl_tcp: RTL2832 digital AGC %s (not modelled)", "on" if param else "off")
            elif cmd == SET_GAIN_BY_INDEX:
                if param < len(self.gains_db):
                    self._manual_gain = True
                    src.set_gain(self.gains_db[param])
                else:
                    log.warning("rtl_tcp: gain index %d out of range (%d gains)", param, len(self.gains_db))
            elif name is not None:
                log.info("rtl_tcp: %s %d not supported by this source; ignored", name, signed32(param))
            else:
                log.info("rtl_tcp: unknown command 0x%02x (param %d) ignored", cmd, param)
        except (SdrwatchError, ValueError, NotImplementedError) as exc:
            log.warning("rtl_tcp: %s %d refused: %s", name, param, exc)
