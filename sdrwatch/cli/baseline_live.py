"""``sdrwatch baseline capture`` and ``sdrwatch baseline diff``: baseline layers from live sweeps
(``docs/agent.md``). Attached to the ``baseline`` group of :mod:`sdrwatch.cli.replay`."""
from __future__ import annotations

import json
import math
import sys

import click

from ..errors import SdrwatchError


def _print_diff(records: list[dict], old: str, new: str, as_json: bool) -> None:
    found = [r for r in records if "center_hz" in r]
    notes = [r for r in records if "note" in r]
    if as_json:
        for r in records:
            sys.stdout.write(json.dumps(r) + "\n")
        sys.stdout.flush()
        return
    click.echo(f"{len(found)} emitter(s) in {new} that {old} did not have" + (":" if found else ""))
    for r in found:
        click.echo(f"  {r['receiver']:<8} {r['center_hz'] / 1e6:10.4f} MHz  {r['bandwidth_hz'] / 1e3:6.1f} kHz  "
                   f"peak {r['peak_dbfs']:6.1f} dBFS  {r['snr_db']:5.1f} dB over {old}'s floor  duty {r['duty']:.0%}")
    if notes:
        click.echo(f"  ({len(notes)} hop(s) not compared: {notes[0]['note']}{' ...' if len(notes) > 1 else ''})")


@click.command("capture")
@click.option("--config", "config_path", required=True, metavar="FILE", help="Site config (TOML), see docs/agent.md.")
@click.option("--duration", "duration_s", type=float, required=True, metavar="S", help="Seconds of sweeping to learn from.")
@click.option("--layer", "layer", required=True, metavar="NAME", help="Layer name, e.g. week-before, day-before, pre-session.")
@click.option("--json", "as_json", is_flag=True, help="Print the diff against the previous layer as JSON lines.")
def baseline_capture(config_path, duration_s, layer, as_json):
    """Sweep the site's plan for S seconds and write baseline layer NAME into STATE_DIR/baselines/,
    then list the emitters it has that the previous layer did not (test transmissions the day before
    must be seen, not learned as normal).

    \b
    Examples:
      sdrwatch baseline capture --config examples/sim-site.toml --duration 20 --layer pre-session
      sdrwatch baseline capture --config site.toml --duration 1800 --layer day-before
    """
    from ..agent.config import load_config
    from ..agent.layers import check_layer_name, latest_layer_name, load_layer, write_layer, diff_layers
    from ..agent.loop import capture_baselines
    from ..baseline import now_iso

    if not (math.isfinite(duration_s) and duration_s > 0):
        raise SdrwatchError(f"--duration {duration_s}: must be a positive number of seconds")
    check_layer_name(layer)
    config = load_config(config_path)
    previous = latest_layer_name(config.state_dir)
    if previous == layer:
        from ..agent.layers import layer_dirs

        older = [n for n, _d, _m in layer_dirs(config.state_dir) if n != layer]
        previous = older[-1] if older else None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=True) as prog:
            task = prog.add_task(f"capturing {layer}", total=1.0)
            baselines, plan = capture_baselines(config, duration_s, source_options={"realtime": True},
                                                progress=lambda f: prog.update(task, completed=f))
    else:
        baselines, plan = capture_baselines(config, duration_s, source_options={"realtime": True})
    path = write_layer(config.state_dir, layer, baselines, {"site": config.site_id, "created": now_iso(), "duration_s": duration_s,
                                                            "config": str(config.path)})
    hops = sum(len(b.hops) for b in baselines.values())
    click.echo(f"{path}: layer {layer}, {len(baselines)} receiver(s), {hops} hop(s), {duration_s:g} s", err=as_json)
    if previous:
        _print_diff(diff_layers(load_layer(previous, config.state_dir), load_layer(layer, config.state_dir)), previous, layer, as_json)
    else:
        click.echo("(no earlier layer to compare with)", err=as_json)


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--config", "config_path", metavar="FILE", help="Site config whose state directory holds the layers (for layer names).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per emitter.")
def baseline_diff(old, new, config_path, as_json):
    """List the emitters in baseline NEW that baseline OLD did not have. OLD and NEW are layer names
    (with --config), layer directories, or .npz baseline files.

    \b
    Examples:
      sdrwatch baseline diff --config site.toml week-before day-before
      sdrwatch baseline diff state/baselines/week-before state/baselines/day-before --json
    """
    from pathlib import Path

    from ..agent.layers import diff_layers, load_layer

    state = Path(".")
    if config_path:
        from ..agent.config import load_config

        state = load_config(config_path).state_dir
    a, b = load_layer(old, state), load_layer(new, state)
    _print_diff(diff_layers(a, b), a.name, b.name, as_json)
