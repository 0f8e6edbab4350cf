"""``sdrwatch demo``: the whole station on simulated sites (``sdrwatch.views.demo``); ``--replay-only``: the
shipped regression recordings replayed and scored."""
from __future__ import annotations

from pathlib import Path

import click

#: (exam recording, baseline recording or None, what it shows)
DEMO_CASES = (
    ("fm-voice-appears", None, "an NBFM voice link switches on mid-capture (noise-floor mode)"),
    ("gfsk-bursts", "gfsk-bursts-baseline", "15 ms pager-like GFSK bursts"),
    ("weak-fm-ladder", "weak-fm-ladder-baseline", "continuous FM from -3 to -12 dB in-band SNR"),
    ("benign-exam", "benign-baseline", "only the site's benign users: nothing should be raised"),
    ("sweep", "sweep-baseline", "a multi-hop sweep with a threat in one hop"),
)


def recordings_dir() -> Path:
    from ..resources import recordings_dir as _recordings_dir

    return _recordings_dir()


@click.command()
@click.option("--duration", "duration_s", type=click.FloatRange(5, 1e6), default=120.0, show_default=True, help="Seconds the station runs (Ctrl-C ends it earlier).")
@click.option("--work", "work", type=click.Path(file_okay=False, path_type=Path), default=Path("sdrwatch-demo"), show_default=True,
              help="Work folder (keys, site configs, collector database, outputs); replaced on the next run.")
@click.option("--replay-only", "replay_only", is_flag=True, help="Only replay and score the shipped recordings (no station).")
@click.option("--recordings", "rec_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="With --replay-only: folder of recordings (default: the shipped ones).")
def demo(duration_s, work, replay_only, rec_dir):
    """The whole station on this machine, no hardware: three simulated exam sites, their agents, the
    ZeroMQ+CURVE link, the collector, the console, then the report and the sealed records.

    One site has a cheater whose pager keys up after about 20 s, one only benign users, one loses its
    antenna partway. On a terminal the console shows it live (q ends it); otherwise it prints log
    lines. At the end it writes the plots, the session's duty report (HTML, and PDF when Chromium is
    installed) and the sealed archive into WORK/out and says where.

    \b
    Examples:
      sdrwatch demo                         # two minutes, console on the terminal
      sdrwatch demo --duration 90 --work /tmp/demo
      sdrwatch demo --replay-only           # replay and score the shipped recordings
    """
    import sys

    if replay_only:
        return replay_demo(rec_dir)
    from ..views.demo import run_demo

    run_demo(work, duration_s, interactive=sys.stdin.isatty() and sys.stdout.isatty())


def replay_demo(rec_dir):
    """Replay the shipped recordings against their baselines and score them against ground truth."""
    from ..errors import SdrwatchError
    from ..evaluate import benign_flagged_text, score
    from ..radio.file import open_recording
    from ..replay import Settings, detect, load_reference
    from .replay import _print_table, stdout_console

    console = stdout_console()
    rec_dir = rec_dir or recordings_dir()
    ran = 0
    for name, base_name, what in DEMO_CASES:
        path = rec_dir / name
        if not Path(f"{path}.sigmf-meta").exists():
            continue
        rec = open_recording(path)
        base = load_reference(rec_dir / base_name, Settings()) if base_name else None
        emissions = detect(rec, base)
        console.rule(f"[bold]{name}[/]: {what}")
        _print_table(emissions, f"{len(emissions)} emission(s) in {rec.duration_s:.2f} s" + (f" against {base_name}" if base_name else ""))
        if rec.annotations:
            s = score(rec, [e.as_record() for e in emissions])
            console.print(
                f"ground truth: threats found {s['threats_found']}/{s['threats']}, false alarms {s['false_alarms']}, "
                f"benign flagged {benign_flagged_text(s)}"
                + (f", median |df| {s['freq_error_hz_median']:.0f} Hz, |dt| {s['time_error_s_median'] * 1e3:.1f} ms" if s["threats_found"] else "")
            )
        ran += 1
    if not ran:
        raise SdrwatchError(f"no demo recordings in {rec_dir} (regenerate them with: python recordings/make_recordings.py)")
