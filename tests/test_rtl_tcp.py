"""rtl_tcp client and server over real loopback TCP: greeting, commands, tone by FFT, retune hygiene,
dropped connections, wrong servers; plus the command codec under arbitrary TCP splitting."""
from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdrwatch.errors import SourceError
from sdrwatch.radio.base import Block, Source, SourceInfo, open_source
from sdrwatch.radio.rtl_tcp import (
    GREETING,
    SET_FREQ_CORRECTION,
    SET_GAIN_BY_INDEX,
    SET_SAMPLE_RATE,
    CommandParser,
    RtlTcpServer,
    encode_command,
    parse_host_port,
    signed32,
)

RATE = 1_024_000.0
RF_HZ = 100.1e6  # the tone's absolute frequency
STALE = complex(1, 1)  # value the source emits while "settling" after a retune (cu8 255, 255)


class ToneSource(Source):
    """A carrier at ``rf_hz``; after each retune it emits ``stale`` marker samples, like a settling PLL."""

    def __init__(self, rf_hz: float = RF_HZ, amplitude: float = 0.5, stale: int = 4096) -> None:
        self.rf_hz, self.amplitude, self.stale = rf_hz, amplitude, stale
        self.center_hz, self.sample_rate_hz, self.gain_db, self.ppm = 100e6, RATE, None, 0
        self.n = 0
        self.stale_left = 0
        self.calls: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def tune(self, center_hz: float) -> None:
        with self.lock:
            self.calls.append(("tune", center_hz))
            self.center_hz, self.stale_left = center_hz, self.stale

    def set_sample_rate(self, sample_rate_hz: float) -> None:
        with self.lock:
            self.calls.append(("rate", sample_rate_hz))
            self.sample_rate_hz = sample_rate_hz

    def set_gain(self, gain_db: float | None) -> None:
        with self.lock:
            self.calls.append(("gain", gain_db))
            self.gain_db = gain_db

    def set_ppm(self, ppm: int) -> None:
        with self.lock:
            self.calls.append(("ppm", ppm))
            self.ppm = ppm

    def read(self, num_samples: int) -> Block:
        t = (self.n + np.arange(num_samples)) / self.sample_rate_hz
        x = (self.amplitude * np.exp(2j * np.pi * (self.rf_hz - self.center_hz) * t)).astype(np.complex64)
        k = min(self.stale_left, num_samples)
        x[:k] = STALE
        self.stale_left -= k
        block = Block(x, self.center_hz, self.sample_rate_hz, self.n)
        self.n += num_samples
        return block

    def describe(self) -> SourceInfo:
        return SourceInfo(driver="test", tuner="R820T2", gains_db=[0.0, 9.0, 14.0, 27.0, 49.6])

    def names(self) -> list[str]:
        with self.lock:
            return [c[0] for c in self.calls]


@pytest.fixture
def served():
    src = ToneSource()
    server = RtlTcpServer(src, "127.0.0.1", 0).start()
    yield src, server
    server.stop()


def peak_hz(block: Block) -> float:
    spec = np.abs(np.fft.fft(block.iq))
    return float(np.fft.fftfreq(len(block.iq), 1 / block.sample_rate_hz)[np.argmax(spec)])


def power_at(block: Block, hz: float) -> float:
    t = np.arange(len(block.iq)) / block.sample_rate_hz
    return float(np.abs(np.mean(block.iq * np.exp(-2j * np.pi * hz * t))) ** 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "server closed the connection"
        buf += chunk
    return buf


# ---------------------------------------------------------------------------------------- codec
commands = st.lists(st.tuples(st.integers(0, 255), st.integers(-(2 ** 31), 2 ** 32 - 1)), max_size=30)


@given(commands, st.lists(st.integers(1, 17), min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_command_codec_round_trips_under_any_tcp_split(cmds, cuts):
    wire = b"".join(encode_command(c, p) for c, p in cmds)
    parser, out, pos, i = CommandParser(), [], 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        out += parser.feed(wire[pos:pos + step])
        pos, i = pos + step, i + 1
    assert parser.pending == 0
    assert [(c, p & 0xFFFFFFFF) for c, p in cmds] == out
    for (c, p), (_, q) in zip(cmds, out):
        if p < 2 ** 31:  # anything sent as a signed value reads back as itself
            assert signed32(q) == p


def test_encode_matches_the_c_struct():
    assert encode_command(0x05, -3) == b"\x05\xff\xff\xff\xfd"
    assert encode_command(0x01, 433_920_000) == b"\x01" + struct.pack(">I", 433_920_000)
    with pytest.raises(ValueError):
        encode_command(0x01, 2 ** 32)


def test_parse_host_port():
    assert parse_host_port("rtl_tcp://10.0.0.5") == ("10.0.0.5", 1234)
    assert parse_host_port("rtl_tcp://host:1235/") == ("host", 1235)
    assert parse_host_port("[::1]:7000") == ("::1", 7000)
    with pytest.raises(SourceError, match="port"):
        parse_host_port("rtl_tcp://host:http")


# ------------------------------------------------------------------------------- client/server
def test_greeting_commands_and_tone(served):
    src, server = served
    with open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=RATE, center_hz=100e6,
                     gain_db=27.3, ppm=-7) as client:
        info = client.describe()
        assert info.driver == "rtl_tcp" and info.tuner == "R820T"
        assert client.gain_count == 5 and client.tuner_type == 5
        assert ("rate", RATE) in src.calls and ("ppm", -7) in src.calls and ("tune", 100e6) in src.calls
        assert ("gain", 28.0) in src.calls  # rounded to the R820T gain table (27.3 -> 28.0) before sending
        assert client.gain_db == 28.0
        block = client.read(16384)
        assert block.iq.dtype == np.complex64 and len(block.iq) == 16384
        assert block.center_hz == 100e6 and block.sample_rate_hz == RATE
        assert abs(peak_hz(block) - (RF_HZ - 100e6)) < 2 * RATE / 16384
        assert 0.2 < np.mean(np.abs(block.iq) ** 2) < 0.3  # 0.5 amplitude -> power 0.25 (cu8 quantised)
        second = client.read(1000)
        assert second.sample_index == 16384
        client.set_gain(None)
        assert src.calls[-1] == ("gain", None)


def test_gain_by_index_ppm_and_unknown_commands_over_raw_socket(served):
    src, server = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        magic, tuner, gains = GREETING.unpack(recv_exact(s, 12))
        assert (magic, tuner, gains) == (b"RTL0", 5, 5)
        wire = (encode_command(SET_GAIN_BY_INDEX, 3) + encode_command(0x7F, 12345)
                + encode_command(SET_FREQ_CORRECTION, -42) + encode_command(SET_SAMPLE_RATE, 250_000))
        for byte in wire:  # one byte per segment: the parser must reassemble
            s.sendall(bytes([byte]))
            time.sleep(0.001)
        deadline = time.monotonic() + 5
        while ("rate", 250_000.0) not in src.calls and time.monotonic() < deadline:
            s.recv(65536)
        assert ("gain", 27.0) in src.calls and ("ppm", -42) in src.calls and ("rate", 250_000.0) in src.calls
        assert (0x7F, 12345) in server.commands


def test_retune_never_returns_stale_samples():
    # 40000 settling samples (39 ms) outlast the 17 ms settle wait: the discarded bytes must cover the rest
    src = ToneSource(stale=40000)
    with RtlTcpServer(src, "127.0.0.1", 0) as server, \
            open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=RATE, center_hz=100e6,
                        discard_bytes=2 * 32768) as client:
        client.read(4096)
        old = 100e6
        for center, idle in [(100.05e6, 0.3), (100.2e6, 0.05), (99.95e6, 0.15), (100.0e6, 0.0)]:
            time.sleep(idle)  # the server keeps streaming the old frequency into the socket meanwhile
            client.tune(center)
            block = client.read(8192)
            assert block.center_hz == center
            stale = np.sum((block.iq.real > 0.99) & (block.iq.imag > 0.99))
            assert stale == 0, f"{stale} settling samples returned after tuning to {center}"
            new_hz, old_hz = RF_HZ - center, RF_HZ - old
            assert abs(peak_hz(block) - new_hz) < 2 * RATE / 8192
            assert power_at(block, new_hz) > 0.2 and power_at(block, old_hz) < 1e-3
            old = center
        assert client.describe().extra["discarded_bytes"] > 5 * 2 * 16384


def test_retune_against_a_fast_server():
    """A server that is not paced (``--fast``) keeps the socket full of the old frequency, and rtl_tcp
    has no marker for the retune, so the client cannot know where the old data ends (on a busy machine
    the server may even apply the retune after the client's drain): the new frequency must still
    arrive within a few blocks, and stay. With a real-time server, as rtl_tcp is, it is the very
    first block (test_retune_never_returns_stale_samples)."""
    src = ToneSource(stale=0)
    with RtlTcpServer(src, "127.0.0.1", 0, realtime=False) as server:
        with open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=RATE, center_hz=100e6,
                         drain_max_s=1.0) as client:
            client.read(1 << 18)
            time.sleep(0.2)  # kernel buffers fill up with the old frequency
            client.tune(100.3e6)
            for _ in range(256):  # at most 2 s of samples
                if abs(peak_hz(client.read(8192)) - (RF_HZ - 100.3e6)) < 2 * RATE / 8192:
                    break
            else:
                pytest.fail("the new frequency never arrived")
            for _ in range(4):
                assert abs(peak_hz(client.read(8192)) - (RF_HZ - 100.3e6)) < 2 * RATE / 8192


def test_reconnects_after_the_server_drops_the_client(served):
    src, server = served
    with open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=RATE, center_hz=100.05e6,
                     gain_db=9, ppm=3, reconnect_backoff_s=0.05) as client:
        client.read(4096)
        calls_before = len(src.calls)
        server.drop_client()  # TCP reset, for real
        time.sleep(0.2)
        block = client.read(16384)
        extra = client.describe().extra
        assert extra["dropped_connections"] == 1 and extra["reconnects"] == 1
        assert server.clients_served == 2
        resent = src.calls[calls_before:]
        assert ("rate", RATE) in resent and ("gain", 8.7) in resent and ("ppm", 3) in resent
        assert ("tune", 100.05e6) in resent
        assert abs(peak_hz(block) - (RF_HZ - 100.05e6)) < 2 * RATE / 16384
        assert np.sum((block.iq.real > 0.99) & (block.iq.imag > 0.99)) == 0


def test_gives_up_with_one_line_after_bounded_reconnects():
    src = ToneSource()
    server = RtlTcpServer(src, "127.0.0.1", 0).start()
    port = server.port
    client = open_source(f"rtl_tcp://127.0.0.1:{port}", reconnect_attempts=3, reconnect_backoff_s=0.02)
    client.read(1024)
    server.stop()
    server.drop_client()
    t0 = time.monotonic()
    with pytest.raises(SourceError) as err:
        for _ in range(1000):
            client.read(65536)
    assert time.monotonic() - t0 < 5
    msg = str(err.value)
    assert msg.startswith(f"rtl_tcp 127.0.0.1:{port} lost: ") and "\n" not in msg
    assert "3 reconnect attempts" in msg
    client.close()


def test_connection_refused_is_one_line():
    port = free_port()
    with pytest.raises(SourceError) as err:
        open_source(f"rtl_tcp://127.0.0.1:{port}")
    assert str(err.value) == (f"rtl_tcp 127.0.0.1:{port}: connection refused "
                              "(is rtl_tcp or 'sdrwatch simulate' running there?)")


@pytest.mark.parametrize("reply, why", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "greeting starts b'HTTP'"),
    (b"hi", "closed the connection after 2 bytes"),
    (None, "no RTL0 greeting within 0.5 s"),
])
def test_not_an_rtl_tcp_server(reply, why):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        if reply is not None:
            conn.sendall(reply)
            conn.close()
        else:
            time.sleep(0.7)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(SourceError) as err:
            open_source(f"rtl_tcp://127.0.0.1:{port}", timeout_s=0.5)
        msg = str(err.value)
        assert msg.startswith(f"rtl_tcp 127.0.0.1:{port}: not an rtl_tcp server") and why in msg
        assert "\n" not in msg
    finally:
        thread.join(2)
        listener.close()


def test_server_survives_clients_that_vanish_mid_stream(served):
    src, server = served
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        recv_exact(s, 12 + 1000)
        s.sendall(b"\x01\x00")  # half a command, then gone
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=RATE, center_hz=100.05e6) as client:
        assert abs(peak_hz(client.read(8192)) - (RF_HZ - 100.05e6)) < 2 * RATE / 8192
    assert server.clients_served == 4


def test_second_client_waits_like_rtl_tcp(served):
    src, server = served
    with open_source(f"rtl_tcp://127.0.0.1:{server.port}") as first:
        first.read(1024)
        with pytest.raises(SourceError, match="busy with another client"):
            open_source(f"rtl_tcp://127.0.0.1:{server.port}", timeout_s=0.3)


def test_port_in_use_is_one_line(served):
    _, server = served
    with pytest.raises(SourceError, match=f"cannot listen on 127.0.0.1:{server.port}: address already in use"):
        RtlTcpServer(ToneSource(), "127.0.0.1", server.port)


def test_realtime_pacing():
    src = ToneSource()
    with RtlTcpServer(src, "127.0.0.1", 0) as server:
        with open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=250_000, center_hz=100e6) as client:
            t0 = time.monotonic()
            client.read(125_000)  # half a second of samples
            elapsed = time.monotonic() - t0
    assert 0.35 < elapsed < 1.0


# ------------------------------------------------------------------------------ the simulator
CARRIER_SCENE = """
[scene]
name = "rtl-tcp-carrier"
seed = 5
tuner = "r820t"
noise_dbfs_hz = -95.0

[[emitter]]
kind = "cw"
label = "carrier"
freq_hz = 434.05e6
power_dbfs = -20.0
"""


def carrier_snr_db(block: Block, hz: float, search_hz: float = 1000.0) -> float:
    """Peak power within ``search_hz`` of ``hz`` over the median bin, in dB (windowed FFT)."""
    spec = np.abs(np.fft.fft(block.iq * np.hanning(len(block.iq)))) ** 2
    freqs = np.fft.fftfreq(len(block.iq), 1 / block.sample_rate_hz)
    near = np.abs(freqs - hz) <= search_hz
    return float(10 * np.log10(spec[near].max() / np.median(spec)))


def test_simulator_over_rtl_tcp_and_its_stale_samples_after_retune(tmp_path):
    from sdrwatch.radio.sim import open_sim

    scene = tmp_path / "carrier.toml"
    scene.write_text(CARRIER_SCENE)
    sim = open_sim(f"sim:{scene}", seed=7, emit_stale=True)
    with RtlTcpServer(sim, "127.0.0.1", 0) as server:
        with open_source(f"rtl_tcp://127.0.0.1:{server.port}", sample_rate_hz=1_024_000, center_hz=434.0e6,
                         gain_db=29.7) as client:
            assert (client.tuner_type, client.gain_count) == (5, 29)  # the sim's R820T profile
            assert client.describe().tuner == "R820T"
            assert (sim.center_hz, sim.sample_rate_hz, sim.gain_db) == (434.0e6, 1_024_000, 29.7)
            assert carrier_snr_db(client.read(8192), 50e3) > 40
            for _ in range(3):
                time.sleep(0.1)
                client.tune(434.3e6)  # carrier moves to -250 kHz; the sim's stale samples still show +50 kHz
                block = client.read(8192)
                assert carrier_snr_db(block, -250e3) > 40
                assert carrier_snr_db(block, 50e3) < 15, "stale samples from before the retune came through"
                client.tune(434.0e6)
                block = client.read(8192)
                assert carrier_snr_db(block, 50e3) > 40 and carrier_snr_db(block, -250e3) < 15


EQUIVALENCE_SCENE = """
[scene]
name = "rtl-tcp-equivalence"
seed = 11
tuner = "r820t"
noise_dbfs_hz = -100.0

[[emitter]]
kind = "cw"
label = "carrier"
freq_hz = 433.72e6
power_dbfs = -50.0

[[emitter]]
kind = "nbfm"
label = "voice"
freq_hz = 434.07e6
power_dbfs = -45.0

[[emitter]]
kind = "fsk"
label = "telemetry"
freq_hz = 434.22e6
power_dbfs = -50.0
bit_rate_bps = 2400.0
"""


def test_recording_through_rtl_tcp_replays_like_an_in_process_recording(tmp_path):
    """``sdrwatch record`` of scene S (seed X) via our rtl_tcp server, and directly from ``sim:S``, replay to the
    same emissions. The scene is stationary, so the unknown start offset of the served stream does not matter."""
    import json

    from click.testing import CliRunner

    from sdrwatch.cli import main
    from sdrwatch.radio.sim import open_sim

    scene = tmp_path / "equivalence.toml"
    scene.write_text(EQUIVALENCE_SCENE)
    args = ["--freq", "433.92M", "--rate", "1.024M", "--duration", "2"]
    runner = CliRunner()
    direct = runner.invoke(main, ["record", f"sim:{scene}", *args, "-o", str(tmp_path / "direct")])
    assert direct.exit_code == 0, direct.output
    sim = open_sim(f"sim:{scene}", seed=11, emit_stale=True)
    with RtlTcpServer(sim, "127.0.0.1", 0, realtime=False) as server:
        served = runner.invoke(main, ["record", f"rtl_tcp://127.0.0.1:{server.port}", *args,
                                      "-o", str(tmp_path / "served")])
    assert served.exit_code == 0, served.output

    def emissions(stem: str) -> list[dict]:
        result = runner.invoke(main, ["replay", str(tmp_path / stem), "--format", "jsonl"])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    # both paths drop the stale samples after the retune: the in-process simulator skips them, the
    # rtl_tcp client discards what the server (a dongle stand-in) sends
    a = emissions("direct")
    b = emissions("served")
    assert len(a) == len(b) == 3, (a, b)
    for x, y in zip(sorted(a, key=lambda e: e["center_hz"]), sorted(b, key=lambda e: e["center_hz"])):
        assert abs(x["center_hz"] - y["center_hz"]) < 500
        assert abs(x["bandwidth_hz"] - y["bandwidth_hz"]) <= 2000
        assert abs(x["peak_dbfs"] - y["peak_dbfs"]) < 1.0
        assert (x["label"], x["novelty"], x["bursts"]) == (y["label"], y["novelty"], y["bursts"])
        assert x["duration_s"] > 1.9 and y["duration_s"] > 1.9


def test_simulate_command_errors_are_one_line(tmp_path):
    from click.testing import CliRunner

    from sdrwatch.cli import main

    runner = CliRunner()
    missing = runner.invoke(main, ["simulate", str(tmp_path / "nope.toml"), "--rtl-tcp", "127.0.0.1:0"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        scene = tmp_path / "carrier.toml"
        scene.write_text(CARRIER_SCENE)
        busy = runner.invoke(main, ["simulate", str(scene), "--rtl-tcp", f"127.0.0.1:{port}"])
    assert busy.exit_code == 1
    assert busy.stderr == f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
