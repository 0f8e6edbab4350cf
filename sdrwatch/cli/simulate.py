"""``sdrwatch simulate``: serve a simulated RF scene over rtl_tcp, so rtl_433, SDR++, GQRX or another
sdrwatch (``rtl_tcp://HOST:PORT``) can use it as if it were a remote dongle."""
from __future__ import annotations

import logging
import signal
import sys

import click

from ..radio.rtl_tcp import RtlTcpServer, parse_host_port, tuner_name


@click.command()
@click.argument("scene")
@click.option("--rtl-tcp", "listen", default="127.0.0.1:1234", show_default=True, metavar="HOST:PORT",
              help="Address to serve the scene on as an rtl_tcp server (port 0 picks a free port).")
@click.option("--seed", type=int, default=None, help="Random seed of the scene (same seed, same samples).")
@click.option("--realtime/--fast", default=True, show_default=True,
              help="Stream at the sample rate (like a dongle) or as fast as the client reads.")
@click.option("-v", "--verbose", is_flag=True, help="Log client connections and every command received.")
def simulate(scene: str, listen: str, seed: int | None, realtime: bool, verbose: bool) -> None:
    """Serve the RF scene SCENE (a scene .toml) as an rtl_tcp server until Ctrl-C.

    \b
    Examples:
      sdrwatch simulate recordings/scenes/rtl433-interop.toml --rtl-tcp 127.0.0.1:1234
      rtl_433 -d rtl_tcp://127.0.0.1:1234          # in another terminal
      sdrwatch record rtl_tcp://127.0.0.1:1234 ...  # or any sdrwatch command taking a receiver
    One client at a time, as rtl_tcp; anyone who can reach the port can use it (no authentication),
    so keep it on 127.0.0.1 or a trusted network.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    host, port = parse_host_port(listen, allow_zero=True)
    from ..radio.sim import open_sim

    uri = scene if scene.startswith("sim:") else f"sim:{scene}"
    try:
        source = open_sim(uri, seed=seed, realtime=False, emit_stale=True)  # the server paces; clients discard stale samples
    except KeyboardInterrupt:
        return
    try:
        server = RtlTcpServer(source, host, port, realtime=realtime)
    except BaseException:
        source.close()
        raise

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM, and SIGINT even when started in the background (where a shell leaves SIGINT ignored)
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"serving {uri} as rtl_tcp on {server.address} (tuner {tuner_name(server.tuner_id)}, "
               f"{'real time' if realtime else 'as fast as the client reads'}); "
               f"try: rtl_433 -d rtl_tcp://{server.address}   (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        source.close()
        click.echo("stopped", err=True)
