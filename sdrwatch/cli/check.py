"""``sdrwatch check``: the pre-exam equipment check of a site."""
from __future__ import annotations

import json

import click


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="The site config (TOML).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="A table, or one JSON record per item.")
def check(config_path, fmt):
    """Check a site before the exam: receivers answer and tune every hop, gain and clipping, noise floor
    per hop against the baseline, the reference station (the antenna test), clock, disk for evidence,
    and the collector link with this site's key. Each item passes, warns or fails; exits 1 when any
    item fails (the site is not ready).

    \b
    Examples:
      sdrwatch check --config examples/sim-site.toml
      sdrwatch check --config site.toml --format json | jq 'select(.status != "pass")'
    """
    from ..agent.check import ready, run_check
    from ..agent.config import load_config

    config = load_config(config_path)
    items = run_check(config)
    if fmt == "json":
        for i in items:
            click.echo(json.dumps(i.as_record()))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        colour = {"pass": "green", "warn": "yellow", "fail": "bold red"}
        t = Table(title=f"sdrwatch check: {config.site_id}")
        for col in ("item", "status", "detail"):
            t.add_column(col, overflow="fold")
        for i in items:
            t.add_row(i.item, f"[{colour[i.status]}]{i.status}[/]", escape(i.detail))
        console = Console(width=max(100, Console().width))
        console.print(t)
        n = {s: sum(i.status == s for i in items) for s in ("pass", "warn", "fail")}
        console.print(f"{'READY' if ready(items) else 'NOT READY'}: {n['pass']} pass, {n['warn']} warn, {n['fail']} fail")
    if not ready(items):
        raise SystemExit(1)
