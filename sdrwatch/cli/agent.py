"""``sdrwatch agent``: the live site agent (see ``docs/agent.md``)."""
from __future__ import annotations

import json
import math
import signal
import sys

import click

from ..errors import SdrwatchError


def _table_line(rec: dict) -> str:
    """One line per record for people watching a terminal."""
    t = rec.get("time", "")[11:19]
    if rec["type"] == "alert":
        return (f"{t}  {rec['event'].upper():<6} {rec['center_hz'] / 1e6:10.4f} MHz {rec['bandwidth_hz'] / 1e3:6.1f} kHz "
                f"{rec['peak_dbfs']:7.1f} dBFS  {rec['label']:<14} {rec['novelty']:<8} sev {rec['severity']:.2f}  "
                f"session {rec['session'] or '-':<10} {rec['receiver']}  {rec['duration_s']:.1f} s {rec['bursts']} burst(s)")
    return f"{t}  {rec['kind']:<17} {rec['message']}"


def _writer(fmt: str):
    out = sys.stdout

    def write(rec: dict) -> None:
        if fmt == "jsonl":
            out.write(json.dumps(rec) + "\n")
        else:
            out.write(_table_line(rec) + "\n")
        out.flush()

    return write


@click.command()
@click.option("--config", "config_path", required=True, metavar="FILE", help="Site config (TOML), see docs/agent.md.")
@click.option("--baseline", "baseline_spec", metavar="LAYER|FILE",
              help="Baseline layer name (STATE_DIR/baselines/), layer directory or .npz file (default: the latest layer).")
@click.option("--duration", "duration_s", type=float, default=None, metavar="S", help="Stop after S seconds (default: until Ctrl-C).")
@click.option("--format", "out_format", type=click.Choice(["table", "jsonl"]), default="table", show_default=True,
              help="table: one line per record for people; jsonl: every record as a JSON line, flushed as it happens.")
@click.option("--spectrum-log", "spectrum_log", metavar="FILE.csv", help="Write every sweep as rtl_power-compatible CSV.")
def agent(config_path, baseline_spec, duration_s, out_format, spectrum_log):
    """Run the site agent: sweep every receiver's share of the plan, raise alerts on what is new
    against the baseline, and write every record to the outbox (STATE_DIR/outbox.db) and stdout.
    Ctrl-C or SIGTERM stops it cleanly: open emissions close as open_ended, nothing is lost.

    \b
    Examples:
      sdrwatch agent --config examples/sim-site.toml --duration 60
      sdrwatch agent --config site.toml --baseline day-before --format jsonl --spectrum-log sweep.csv
    """
    from ..agent.config import load_config
    from ..agent.layers import latest_layer_name, load_layer
    from ..agent.loop import Agent

    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise SdrwatchError(f"--duration {duration_s}: must be a positive number of seconds")
    config = load_config(config_path)
    spec = baseline_spec or latest_layer_name(config.state_dir)
    baselines, note = {}, "no baseline layer: every emission above the noise floor is reported"
    if spec:
        layer = load_layer(spec, config.state_dir)
        baselines = {rc.name: layer.for_receiver(rc.name) for rc in config.receivers if layer.for_receiver(rc.name) is not None}
        missing = [rc.name for rc in config.receivers if rc.name not in baselines]
        note = f"baseline {layer.name}" + (f" (none for {', '.join(missing)}: noise-floor mode there)" if missing else "")
    hooks = []
    slog = None
    if spectrum_log:
        from ..agent.spectrum_log import SpectrumLog

        slog = SpectrumLog(spectrum_log)
        hooks.append(slog.hook)
    runner = Agent(config, baselines=baselines, out=_writer(out_format), hooks=hooks, source_options={"realtime": True},
                   baseline_note=note)

    def _stop(signum, frame):
        runner.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = runner.run(duration_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if slog is not None:
            slog.close()
    click.echo(f"stopped ({summary.stopped_by}): {summary.alerts} alert(s), {summary.records} record(s) in {config.outbox_path}", err=True)
