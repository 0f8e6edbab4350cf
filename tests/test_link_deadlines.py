"""rtl_tcp links that never end, for real over loopback TCP: servers that stream a little and close on every
connection, trickle 2 bytes/s, stall, or reset and vanish. ``record`` ends on its no-progress deadline
(or its overall deadline) with one line saying what happened; a source that lost its link says so with
:class:`LinkLost` and reads again after it (how a long-running agent retries forever)."""
from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdrwatch.cli import main
from sdrwatch.errors import LinkLost, SourceError
from sdrwatch.radio.base import open_source
from sdrwatch.radio.rtl_tcp import GREETING, RtlTcpServer

from test_rtl_tcp import ToneSource

HELLO = GREETING.pack(b"RTL0", 5, 29)  # R820T, 29 gains


class RawServer:
    """A misbehaving rtl_tcp server: ``behave(conn)`` runs for each connection in its own thread."""

    def __init__(self, behave) -> None:
        self.behave = behave
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.behave(self, conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        self.thread.join(2)


def short_stream(server: RawServer, conn: socket.socket) -> None:
    """Greeting, 1 s of samples at 250 kS/s (a little less than one record block), then close: every
    connection. Each reconnect succeeds, so an attempt budget that restarts on success never ends."""
    conn.sendall(HELLO)
    for _ in range(20):
        conn.sendall(bytes([127]) * 25_000)
        time.sleep(0.05)


def trickle(server: RawServer, conn: socket.socket) -> None:
    """Greeting, then 2 bytes a second, forever."""
    conn.sendall(HELLO)
    while not server.stopped.is_set():
        conn.sendall(b"\x7f\x80")
        time.sleep(1.0)


def stall(server: RawServer, conn: socket.socket) -> None:
    """Greeting, 200 kB, then silence with the connection open."""
    conn.sendall(HELLO)
    conn.sendall(bytes([127]) * 200_000)
    server.stopped.wait(60)


def reset_and_vanish(server: RawServer, conn: socket.socket) -> None:
    """Greeting, 200 kB, then a TCP reset; the server is gone afterwards (connections refused)."""
    conn.sendall(HELLO)
    conn.sendall(bytes([127]) * 200_000)
    time.sleep(0.3)
    server.stopped.set()
    server.sock.close()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def slow(server: RawServer, conn: socket.socket) -> None:
    """Greeting, then a steady 125 kB/s: a quarter of what 250 kS/s needs."""
    conn.sendall(HELLO)
    while not server.stopped.is_set():
        conn.sendall(bytes([127]) * 12_500)
        time.sleep(0.1)


def record(tmp_path: Path, port: int, *extra: str):
    stem = tmp_path / "cap"
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["record", f"rtl_tcp://127.0.0.1:{port}", "--freq", "433.92M", "--rate", "250k",
                                    "--duration", "3", "-o", str(stem), *extra])
    elapsed = time.monotonic() - t0
    out = res.output.strip()
    assert res.exit_code == 1 and "Traceback" not in out, out
    assert len(out.splitlines()) == 1 and out.startswith("error: "), out
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())  # nothing partial kept
    return out, elapsed


@pytest.fixture
def raw_server(request):
    servers = []

    def make(behave):
        server = RawServer(behave)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


def test_a_server_that_streams_a_little_and_closes_on_every_connection_ends_at_the_default_deadline(tmp_path, raw_server):
    server = raw_server(short_stream)
    out, elapsed = record(tmp_path, server.port)
    assert 9 <= elapsed < 16, (elapsed, out)  # the ~10 s no-progress deadline, not forever
    assert f"rtl_tcp 127.0.0.1:{server.port} lost: " in out and "no samples for" in out
    assert "reconnect" in out and server.connections >= 2


def test_a_trickling_server_does_not_hang_record(tmp_path, raw_server):
    server = raw_server(trickle)
    out, elapsed = record(tmp_path, server.port, "--stall-timeout", "3")
    assert elapsed < 8, (elapsed, out)
    assert "lost: " in out and "bytes arrived" in out and "stalled or far too slow" in out


def test_a_stalled_link_gives_up_at_the_deadline(tmp_path, raw_server):
    server = raw_server(stall)
    out, elapsed = record(tmp_path, server.port, "--stall-timeout", "3")
    assert elapsed < 8, (elapsed, out)
    assert "lost: the link went silent; no samples for" in out


def test_a_reset_link_that_does_not_come_back_gives_up_at_the_deadline(tmp_path, raw_server):
    server = raw_server(reset_and_vanish)
    out, elapsed = record(tmp_path, server.port, "--stall-timeout", "3")
    assert elapsed < 8, (elapsed, out)
    assert "lost: " in out and ("refused" in out or "reset" in out), out


def test_the_overall_deadline_stops_a_link_too_slow_for_its_rate(tmp_path, raw_server):
    server = raw_server(slow)
    out, elapsed = record(tmp_path, server.port, "--timeout", "2")
    assert elapsed < 10, (elapsed, out)
    assert "did not finish within 2 s (--timeout)" in out and "433.92 MHz" in out


@pytest.mark.parametrize("opt", ["--timeout", "--stall-timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_deadline_options_are_checked(tmp_path, opt, value):
    res = CliRunner().invoke(main, ["record", "sim:demo", "--freq", "169.4M", "--rate", "250k", "--duration", "0.1",
                                    "-o", str(tmp_path / "x"), opt, value])
    assert res.exit_code == 1 and res.output.startswith(f"error: invalid {opt}"), res.output
    assert not list(tmp_path.iterdir())


def test_link_lost_is_raised_and_the_next_read_reconnects():
    """The agent's way to retry forever: catch LinkLost (report it as health), read again."""
    server = RtlTcpServer(ToneSource(), "127.0.0.1", 0).start()
    port = server.port
    client = open_source(f"rtl_tcp://127.0.0.1:{port}", sample_rate_hz=1.024e6, stall_s=1.5, reconnect_backoff_s=0.05)
    try:
        client.read(4096)
        server.stop()
        server.drop_client()
        t0 = time.monotonic()
        with pytest.raises(LinkLost) as err:
            for _ in range(1000):
                client.read(65536)
        assert time.monotonic() - t0 < 5
        assert isinstance(err.value, SourceError) and err.value.uri == f"rtl_tcp://127.0.0.1:{port}"
        assert "\n" not in str(err.value) and err.value.reason
        with pytest.raises(LinkLost):  # still gone: each read is one more bounded try
            client.read(4096)
        server = RtlTcpServer(ToneSource(), "127.0.0.1", port).start()  # the receiver comes back
        block = client.read(8192)
        assert len(block.iq) == 8192
        extra = client.describe().extra
        assert extra["links_lost"] == 2 and extra["reconnects"] >= 1
    finally:
        client.close()
        server.stop()
