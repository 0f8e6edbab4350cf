"""``sdrwatch collector``: receive alerts from agents over CURVE, store them, ack after commit.

Prints one JSON line when listening and a status line (``type: collector``) every --stats-interval
seconds on stdout; warnings go to stderr.
"""
from __future__ import annotations

import json
import logging
import signal

import click


@click.command()
@click.option("--bind", required=True, help="ROUTER endpoint, e.g. tcp://0.0.0.0:5555 (port 0: any free port).")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="SQLite database file (created if missing).")
@click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False, exists=True), help="Keys directory from 'sdrwatch keys init'.")
@click.option("--pub-bind", default=None, help="Live feed (PUB) endpoint for consoles (default: the --bind port + 1).")
@click.option("--offline-after", "offline_after_s", default=10.0, show_default=True, type=click.FloatRange(min=0.5),
              help="Seconds without a heartbeat before a site or receiver is offline.")
@click.option("--skew-limit", "skew_limit_s", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Agent clock skew (s) above which records are flagged clock_skewed.")
@click.option("--stats-interval", "stats_interval_s", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between status lines.")
def collector(bind, db_path, keys_dir, pub_bind, offline_after_s, skew_limit_s, stats_interval_s) -> None:
    """Run the collector: CURVE ROUTER for agents and consoles, SQLite store, live feed.

    Only keys in KEYS/allowed are let in; 'sdrwatch keys allow|revoke' take effect within a second.
    Each record is stored under the site of the key that sent it. SIGTERM or Ctrl-C stops it cleanly.
    Each run's start and clean stop are kept in the database (collector_runs), so the duty report
    counts the time the collector was not running as not watched.

    \b
    Example:
      sdrwatch keys init --dir keys
      sdrwatch collector --bind tcp://0.0.0.0:5555 --db collector.db --keys keys
    """
    from ..net.collector import Collector
    from ..store import Store

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    store = Store(db_path, skew_limit_s=skew_limit_s, offline_after_s=offline_after_s)
    col = Collector(bind, store, keys_dir, pub_bind=pub_bind, stats_interval_s=stats_interval_s,
                    on_stats=lambda s: click.echo(json.dumps(s)))

    def _stop(signum, frame):
        col.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(json.dumps({"type": "collector", "event": "listening", "bind": col.endpoint, "pub": col.pub_endpoint,
                           "db": str(db_path), "keys": len(col.allow.by_key)}), nl=True)
    import sys

    sys.stdout.flush()
    try:
        col.serve()
    finally:
        click.echo(json.dumps({**col.status(), "event": "stopped"}))
        col.close()
        store.close()
