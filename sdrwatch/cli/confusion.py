"""``sdrwatch confusion``: the label each real capture and each simulated emitter kind gets."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.option("--markdown", is_flag=True, help="Print a markdown table (for the README).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True, help="table, or one JSON record per case.")
@click.option("--realdata", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder of real captures (default: the nearest shared/realdata; skipped when absent).")
@click.option("--scene", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Scene whose emitters are the simulator cases (default: recordings/scenes/demo.toml).")
@click.option("--no-sim", is_flag=True, help="Real captures only.")
@click.option("--only", multiple=True, help="Only this simulated emitter (its label in the scene); repeatable.")
def confusion(markdown, fmt, realdata, scene, no_sim, only):
    """Replay every real capture and every simulated emitter kind and tabulate truth against label.

    Each case is replayed in noise-floor mode, its emissions are labelled with the features of their
    IQ, and the strongest emission's label is compared with the class of the device. The last line
    counts labels right and real (benign) captures holding a threat label of severity >= 0.5.

    \b
    Example:
      sdrwatch confusion --markdown
    """
    from ..classify.confusion import find_realdata, real_rows, sim_rows, table
    from .demo import recordings_dir

    realdata = realdata or find_realdata()
    rows = real_rows(realdata) if realdata else []
    if not no_sim:
        scene = scene or recordings_dir() / "scenes" / "demo.toml"
        from ..classify.confusion import SIM_CASES, read_scene

        read_scene(scene)  # a bad scene is one line before anything is shown

        with click.progressbar(length=len(only or SIM_CASES), label="simulating", file=sys.stderr) as bar:
            rows += sim_rows(scene, progress=lambda _label: bar.update(1), only=tuple(only) or None)
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r.as_record()))
        return
    click.echo(table(rows, markdown=markdown))
