"""``sdrwatch demo``: the replay-first demo on the shipped regression recordings."""
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
@click.option("--recordings", "rec_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder of recordings (default: the shipped ones).")
def demo(rec_dir):
    """Replay the shipped recordings against their baselines and score them against ground truth.

    Each recording is a SigMF capture made by the sdrwatch scene simulator, annotated with the
    emitters it contains; the table shows what sdrwatch raised and the line below it the score.

    \b
    Example:
      sdrwatch demo
    """
    from ..errors import SdrwatchError
    from ..evaluate import score
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
                f"benign flagged {s['benign_flagged']}"
                + (f", median |df| {s['freq_error_hz_median']:.0f} Hz, |dt| {s['time_error_s_median'] * 1e3:.1f} ms" if s["threats_found"] else "")
            )
        ran += 1
    if not ran:
        raise SdrwatchError(f"no demo recordings in {rec_dir} (regenerate them with: python recordings/make_recordings.py)")
