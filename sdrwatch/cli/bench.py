"""``sdrwatch bench``: throughput, replay speed, peak memory and sensitivity on this machine."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click


@contextmanager
def _stages(total: int):
    """A spinner with the current step on stderr (only when stderr is a terminal); yields a callback(text)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task("bench", total=total)
        top = {"n": 0}

        def stage(text: str) -> None:
            if not text.startswith("sensitivity "):  # a top-level step
                if top["n"]:
                    prog.advance(task)
                top["n"] += 1
            prog.update(task, description=text)

        yield stage


def _plain(value):
    """numpy scalars and arrays in a measurement's details, as JSON numbers and lists."""
    item = getattr(value, "tolist", None)
    if item is None:
        raise TypeError(f"not JSON: {type(value).__name__}")
    return item()


def _fmt(m) -> str:
    if m.value is None:
        return "-"
    v = float(m.value)
    return f"{v:+.0f}" if m.unit == "dB" else (f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per measurement and line (JSON lines).")
@click.option("--quick", is_flag=True, help="Smaller sizes and fewer trials (under a minute).")
@click.option("--large-mb", type=click.IntRange(min=16), default=None, metavar="N",
              help="Size of the large file for the peak-memory replay (default 2048, 256 with --quick).")
@click.option("--only", metavar="STAGES", default=None,
              help="Comma-separated stages to run: psd, replay, large, false-alarms, sensitivity, sim, startup, "
                   "process, sweep, chain, agent; modules = chain,agent (default: all).")
def bench(as_json, quick, large_mb, only):
    """Measure the detection chain on this machine (single-threaded: one core).

    \b
    1. PSD throughput from cu8 (Msps): the engine, a vectorised scipy.fft reference computing the
       same frames (target >= 0.95x), scipy.signal.welch, and FFTW (pyFFTW) when installed
    2. replay speed at 2.4 Msps, against a baseline and against the noise floor (target >= 20x real time)
    3. peak memory of `sdrwatch replay` on a large cu8 file, in a child process (target < 400 MB)
    4. weakest in-band SNR found for continuous NBFM (3 s) and 15 ms GFSK bursts, next to the
       energy-detector theory for the same integration
    5. the simulator's render speed, when available
    6. start-up (`--help`, replay of a 0.1 s file) and whole-process replay of a 60 s file; a sweep
       of 25 ms dwells
    7. the chain's crowded-band benchmark and the agent's benchmarks, when present

    Targets are reported, not enforced: the exit status is 0 whatever the figures.

    \b
    Examples:
      sdrwatch bench
      sdrwatch bench --quick --json > bench.jsonl
      sdrwatch bench --large-mb 512
      sdrwatch bench --only psd,startup --json
    """
    from ..bench import run

    stages = tuple(s.strip() for s in only.split(",") if s.strip()) if only else None

    def report(m) -> None:
        if as_json:
            sys.stdout.write(json.dumps(m.as_record(), default=_plain) + "\n")
            sys.stdout.flush()

    with _stages(10) as stage:
        results = run(quick=quick, large_mb=large_mb, report=report, stage=stage, only=stages)
    if as_json:
        return
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=f"sdrwatch bench{' --quick' if quick else ''}", title_justify="left")
    for col, just in (("measurement", "left"), ("value", "right"), ("unit", "left"), ("target", "left"), ("ok", "center"), ("what", "left")):
        table.add_column(col, justify=just, overflow="fold")
    sens = [m for m in results if m.unit == "dB"]
    for m in results:
        if m in sens:
            continue
        ok = "" if m.ok is None else ("yes" if m.ok else "NO")
        table.add_row(m.name, _fmt(m), m.unit, m.target or "", ok, m.summary)
    console.print(table)
    if sens:
        console.print(_sensitivity_table(sens))


def _sensitivity_table(rows):
    """Weakest in-band SNR found, next to the energy-detector figure for the same integration."""
    from rich.table import Table

    d0 = rows[0].details
    table = Table(title=(f"Sensitivity at default settings ({d0.get('sample_rate_hz', 0) / 1e6:g} Msps, pfa {d0.get('pfa')}, "
                         f"found = detected in {d0.get('found_if', '?').lstrip('>= ')} trials, theory at Pd {d0.get('pd')})"),
                  title_justify="left", caption="theory: Pd = ncx2.sf(2K T, 2K, 2K SNR_bin), T = gamma.isf(pfa, K, 1/K); "
                  "in-band = bin - offset, offset = 10 log10(P_peak B / (S ENBW df)) of the noise-free waveform (0 dB if flat over B)",
                  caption_justify="left")
    for col in ("signal", "found at dB", "theory dB", "vs baseline dB", "bin dB", "offset dB", "K_eff", "window", "scan", "false alarms"):
        table.add_column(col, justify="left" if col in ("signal", "scan") else "right", overflow="fold")
    for m in rows:
        d = m.details
        table.add_row(
            f"{d.get('signal', m.name)} (B {d.get('inband_bandwidth_hz', 0) / 1e3:g} kHz, {d.get('capture_s')} s capture, {d.get('baseline_s')} s baseline)",
            "not found" if m.value is None else f"{m.value:+.0f}",
            f"{d.get('theory_inband_snr_db', float('nan')):+.1f}",
            f"{d.get('theory_inband_snr_db_vs_baseline', float('nan')):+.1f}",
            f"{d.get('theory_bin_snr_db', float('nan')):+.1f}",
            f"{d.get('peak_bin_offset_db', float('nan')):+.1f}",
            f"{d.get('k_eff', 0):.0f}",
            f"{d.get('scale_frames')} fr = {d.get('window_s', 0) * 1e3:.0f} ms",
            " ".join(f"{k}:{v}" for k, v in d.get("scan", {}).items()),
            f"{d.get('false_alarms')}/{d.get('captures')}",
        )
    return table
