"""``sdrwatch loadgen``: load a collector with N agents and M alerts over the real protocol and keys.

Prints one JSON summary line on stdout; exit 0 only when every alert has been acked.
"""
from __future__ import annotations

import json
import sys

import click


@click.command()
@click.option("--connect", "endpoint", required=True, help="Collector endpoint, e.g. tcp://127.0.0.1:5555.")
@click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="Keys directory of the collector (agent keys loadgen-0.. are created and allowed there if missing).")
@click.option("--agents", default=1, show_default=True, type=click.IntRange(1, 10000), help="Number of agents (one key and socket each).")
@click.option("--alerts", default=10000, show_default=True, type=click.IntRange(0), help="Alerts in total, spread over the agents.")
@click.option("--rate", default=None, type=click.FloatRange(min=0, min_open=True), help="Alerts per second in total (default: as fast as acks allow).")
@click.option("--heartbeat", "heartbeat_s", default=None, type=click.FloatRange(min=0.01), help="Each agent also sends a heartbeat every this many seconds.")
@click.option("--duration", "duration_s", default=None, type=click.FloatRange(min=0), help="Keep heartbeating this many seconds.")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True, type=click.FloatRange(min=0.1), help="Give up (exit 1) after this many seconds.")
@click.option("--window", default=5000, show_default=True, type=click.IntRange(1), help="Records in flight per agent.")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 1000), help="Records per message.")
@click.option("--prefix", default="loadgen-", show_default=True, help="Agent key names are PREFIX0, PREFIX1, ...")
@click.option("--collector-pid", default=None, type=int, help="Also report the CPU cores this collector process used.")
def loadgen(endpoint, keys_dir, agents, alerts, rate, heartbeat_s, duration_s, timeout_s, window, batch, prefix, collector_pid) -> None:
    """Send M alerts from N agents to a collector and report throughput and emit->ack latency.

    Each agent has its own allowlisted CURVE key and socket. The summary has sent, acked, resent,
    seconds, alerts_per_s and latency_ms (p50, p99; from emit to the ack the collector sends after
    commit); with --collector-pid also collector_cpu_cores, collector_cpu_s and
    collector_cpu_us_per_alert. Exit 0 only once every alert is acked; 1 on timeout.

    \b
    Examples:
      sdrwatch loadgen --connect tcp://127.0.0.1:5555 --keys keys --agents 4 --alerts 200000
      sdrwatch loadgen --connect tcp://127.0.0.1:5555 --keys keys --agents 2000 --alerts 0 --heartbeat 1 --duration 30
    """
    from ..net.loadgen import run

    def progress(done, total):
        print(f"loadgen: {done}/{total} alerts acked", file=sys.stderr, flush=True)

    summary = run(endpoint, keys_dir, agents, alerts, rate=rate, heartbeat_s=heartbeat_s, duration_s=duration_s,
                  timeout_s=timeout_s, window=window, batch=batch, prefix=prefix, collector_pid=collector_pid,
                  progress=progress if sys.stderr.isatty() else None)
    click.echo(json.dumps(summary))
    if not summary["complete"]:
        click.echo(f"error: only {summary['acked']} of {alerts} alerts were acked within {timeout_s:g} s", err=True)
        sys.exit(1)
