"""``sdrwatch console``: the central monitor's live console (Textual), or log lines when not on a terminal."""
from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click


@click.command()
@click.option("--connect", "endpoint", required=True, metavar="ENDPOINT", help="The collector, e.g. tcp://127.0.0.1:5555.")
@click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False), help="Keys folder: collector.key and this console's NAME.key_secret.")
@click.option("--name", "name", default="console", show_default=True, help="This console's key name (sdrwatch keys new NAME --console).")
@click.option("--operator", default=None, help="Whose name dispositions are recorded under (default: the login name).")
@click.option("--plots", "plot_dir", default="plots", show_default=True, type=click.Path(file_okay=False), help="Where 'p' writes an alert's plot.")
@click.option("--evidence-root", "roots", multiple=True, type=click.Path(file_okay=False), help="Folder to look for evidence files in (repeatable).")
@click.option("--log", "force_log", is_flag=True, help="Plain log lines even on a terminal.")
@click.option("--jsonl", "as_json", is_flag=True, help="Log mode: JSON lines instead of text.")
@click.option("--duration", type=click.FloatRange(0, 1e7, min_open=True), default=None, help="Log mode: stop after this many seconds.")
def console(endpoint, keys_dir, name, operator, plot_dir, roots, force_log, as_json, duration):
    """Watch every site and every alert live; acknowledge alerts and record dispositions.

    A console started late shows the history first. Keys: a acknowledge, d disposition (1 cheating,
    2 declared emitter, 3 false alarm, 4 other; then a note and Enter), s severity filter, f site
    filter, p write the selected alert's plot, q quit. When stdout is not a terminal (or with --log)
    it prints one line per alert, fault, disposition and site change instead.

    \b
    Examples:
      sdrwatch console --connect tcp://127.0.0.1:5555 --keys keys --operator li.wei
      sdrwatch console --connect tcp://127.0.0.1:5555 --keys keys --log --duration 60
    """
    from ..views.console import Feed, connect, make_app, run_log

    factory = connect(endpoint, keys_dir, name)
    operator = operator or os.environ.get("SDRWATCH_OPERATOR") or _login()
    if force_log or as_json or not (sys.stdout.isatty() and sys.stdin.isatty()):
        run_log(factory, duration_s=duration, as_json=as_json)
        return
    app = make_app(lambda on_records, on_status, on_sent: Feed(factory, on_records, on_status, on_sent), operator, Path(plot_dir),
                   [Path(r) for r in roots])
    app.run()


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in a bare container
        return "operator"
