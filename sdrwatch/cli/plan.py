"""``sdrwatch plan``: the sweep plan of a site config: hops, revisit of each band, intercept odds."""
from __future__ import annotations

import json
import sys

import click


def _runs(hops) -> list[tuple[float, float, int]]:
    """Contiguous background hops as (start_hz, stop_hz, count)."""
    out: list[list] = []
    for h in sorted(hops, key=lambda h: h.center_hz):
        if out and abs(h.start_hz - out[-1][1]) < 1.0:
            out[-1][1] = h.stop_hz
            out[-1][2] += 1
        else:
            out.append([h.start_hz, h.stop_hz, 1])
    return [tuple(r) for r in out]


def print_plan(plan, config) -> None:
    from rich.table import Table

    from ..sweep.plan import POI_BURSTS_S, REPEAT_EVERY_S, REPEAT_WINDOW_S
    from .replay import stdout_console

    con = stdout_console()
    rx = Table(title=f"sweep plan for site {config.site_id}: hops of {plan.step_hz / 1e6:g} MHz, "
                     f"priority revisit target {plan.priority_revisit_s:g} s, background: {plan.background}",
               title_justify="left")
    for col in ("receiver", "tuner", "MS/s", "crop", "retune ms", "priority hops", "background hops", "background per pass", "pass s"):
        rx.add_column(col, justify="left" if col in ("receiver", "tuner") else "right")
    for r in plan.receivers:
        rx.add_row(r.receiver, r.tuner, f"{r.sample_rate_hz / 1e6:g}", f"{r.crop:.3f}", f"{r.retune_s * 1e3:.1f}", str(len(r.priority)),
                   str(len(r.background)), str(r.background_per_pass), f"{r.pass_s:.3f}")
    con.print(rx)
    hops = Table(title="hops (background hops as contiguous runs; --json lists every hop)", title_justify="left")
    for col, just in (("receiver", "left"), ("tier", "left"), ("centre MHz", "right"), ("span MHz", "right"), ("hops", "right"),
                      ("dwell s", "right"), ("revisit s", "right"), ("bands", "left")):
        hops.add_column(col, justify=just)
    for r in plan.receivers:
        for h in r.priority:
            hops.add_row(r.receiver, "priority", f"{h.center_hz / 1e6:.4f}", f"{h.start_hz / 1e6:.3f}-{h.stop_hz / 1e6:.3f}", "1",
                         f"{h.dwell_s:g}", f"{r.revisit_s(h):.2f}", ", ".join(h.bands))
        if r.background:
            rev = r.revisit_s(r.background[0])
            for lo, hi, n in _runs(r.background):
                names = sorted({b for h in r.background if lo <= h.center_hz <= hi for b in h.bands})
                hops.add_row(r.receiver, "background", "", f"{lo / 1e6:.3f}-{hi / 1e6:.3f}", str(n), f"{r.background[0].dwell_s:g}",
                             f"{rev:.1f}", ", ".join(names) or "(rest of range)")
    con.print(hops)
    n_rep = int(REPEAT_WINDOW_S // REPEAT_EVERY_S)
    poi = Table(title=f"probability of intercepting a burst of L seconds: once / repeated every {REPEAT_EVERY_S:g} s "
                      f"({n_rep} times in {REPEAT_WINDOW_S:g} s); overlap >= {plan.min_overlap_s * 1e3:g} ms",
                title_justify="left")
    poi.add_column("band", justify="left")
    poi.add_column("MHz", justify="right")
    poi.add_column("revisit s", justify="right")
    for L in POI_BURSTS_S:
        poi.add_column(f"L={L:g} s", justify="right")
    for b in plan.tiers_and_bands():
        mean, worst = plan.band_revisit_s(b)
        rev = f"{mean:.2f}" if abs(worst - mean) < 0.01 else f"{mean:.2f} (max {worst:.2f})"
        cells = [f"{plan.poi(b.start_hz, b.stop_hz, L):.3f} / {plan.poi(b.start_hz, b.stop_hz, L, REPEAT_EVERY_S):.3f}" for L in POI_BURSTS_S]
        poi.add_row(("* " if b.priority else "") + b.name, f"{b.start_hz / 1e6:g}-{b.stop_hz / 1e6:g}", rev, *cells)
    con.print(poi)
    con.print("* priority band. POI: see 'sdrwatch.sweep.plan' (exact for the plan's timing; docs/agent.md).")


@click.command()
@click.option("--config", "config_path", required=True, metavar="FILE", help="Site config (TOML), see docs/agent.md.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: a plan record, every hop, every band with revisit and POI.")
def plan(config_path: str, as_json: bool) -> None:
    """Show the sweep plan of a site config: hops, revisit of each band, and the probability of
    intercepting bursts of 50 ms to 5 s, once and repeated every 10 s. A plan the receivers cannot
    run (a band out of range, a revisit that cannot be met) is refused in one line saying why.

    \b
    Examples:
      sdrwatch plan --config examples/rtl_tcp-site.toml
      sdrwatch plan --config examples/four-dongles.toml --json | head
    """
    from ..agent.config import load_config
    from ..sweep.plan import build_plan

    config = load_config(config_path)
    p = build_plan(config)
    if as_json:
        out = sys.stdout
        for rec in p.records():
            out.write(json.dumps(rec) + "\n")
        out.flush()
        return
    print_plan(p, config)
