"""``sdrwatch replay``, ``sdrwatch baseline build|show`` and ``sdrwatch evaluate``: the analyst's commands."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from ..errors import SdrwatchError

FORMATS = click.Choice(["table", "jsonl"])


def recording_options(f):
    """--rate/--freq/--format for raw files whose names do not say them."""
    f = click.option("--sample-format", "sample_format", type=click.Choice(["cu8", "cs8", "cs16", "cf32"]), help="Sample format of a raw file (default: from its extension).")(f)
    f = click.option("--freq", "freq", metavar="HZ", help="Centre frequency of a raw file (e.g. 433.92M).")(f)
    f = click.option("--rate", "rate", metavar="HZ", help="Sample rate of a raw file (e.g. 250k, 2.4M).")(f)
    return f


def detector_options(f):
    f = click.option("--fft-size", type=int, default=None, help="FFT points per segment (default: bins of about 2 kHz, e.g. 1024 at 2.4 MS/s).")(f)
    f = click.option("--pfa", type=float, default=None, help="False-alarm probability per bin and test (default 1e-9).")(f)
    f = click.option("--margin-db", type=float, default=None, help="Margin over the baseline's max-hold for 'changed' (default 6).")(f)
    return f


def _open(path: str, rate: str | None, freq: str | None, sample_format: str | None):
    from ..radio.file import open_recording, parse_hz, parse_tuning_hz

    return open_recording(
        path,
        sample_rate_hz=parse_hz(rate, what="sample rate") if rate else None,
        center_hz=parse_tuning_hz(freq) if freq else None,
        fmt=sample_format,
    )


def _settings(fft_size=None, pfa=None, margin_db=None):
    from dataclasses import replace

    from ..replay import Settings

    s = Settings()
    if fft_size is not None:
        if fft_size < 16 or fft_size & (fft_size - 1):
            raise SdrwatchError(f"--fft-size {fft_size}: use a power of two of at least 16")
        s = replace(s, spectrum=replace(s.spectrum, fft_size=fft_size))
    if pfa is not None:
        if not 0 < pfa < 0.5:
            raise SdrwatchError(f"--pfa {pfa}: must be between 0 and 0.5")
        s = replace(s, detector=replace(s.detector, pfa=pfa))
    if margin_db is not None:
        if not 0 <= margin_db < 100:  # also refuses nan and inf
            raise SdrwatchError(f"--margin-db {margin_db}: must be between 0 and 100 dB")
        s = replace(s, detector=replace(s.detector, margin_db=margin_db))
    return s


@contextmanager
def progress_bar(label: str, total_samples: int):
    """A progress bar on stderr (only when stderr is a terminal); yields a callback(samples)."""
    if not sys.stderr.isatty() or total_samples <= 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(label, total=total_samples)
        yield lambda n: prog.advance(task, n)


def stdout_console():
    """A rich console on stdout; wide enough for the emission table when output is not a terminal."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=150)


def _print_table(emissions, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col, just in (("start s", "right"), ("end s", "right"), ("MHz", "right"), ("bw kHz", "right"), ("peak dBFS", "right"), ("SNR dB", "right"), ("duty", "right"), ("bursts", "right"), ("novelty", "left"), ("label", "left"), ("sev", "right")):
        table.add_column(col, justify=just)
    for e in emissions:
        table.add_row(
            f"{e.start_s:.3f}", f"{e.end_s:.3f}", f"{e.center_hz / 1e6:.5f}", f"{e.bandwidth_hz / 1e3:.1f}", f"{e.peak_dbfs:.1f}",
            f"{e.snr_db:.1f}", f"{e.duty:.0%}", str(e.bursts), e.novelty, e.label, f"{e.severity:.2f}",
        )
    stdout_console().print(table)


def _check_long_enough(rec, settings) -> None:
    """A recording shorter than one frame has nothing to analyse: say so rather than report nothing
    (the same refusal as ``baseline build``)."""
    spec = settings.resolved(rec).spectrum
    fft = spec.fft_size
    if rec.num_samples < fft:
        raise SdrwatchError(f"{rec.path}: {rec.num_samples} samples is shorter than one {fft}-point FFT; nothing to analyse")
    need = (spec.ffts_per_frame(rec.sample_rate_hz) - 1) * spec.hop_samples() + fft
    if rec.num_samples < need:
        raise SdrwatchError(f"{rec.path}: too short to analyse: {rec.num_samples} samples at {rec.sample_rate_hz:g} S/s, "
                            f"need at least one {spec.frame_s * 1e3:g} ms frame ({need} samples)")


def _reference(path: str, settings):
    """--baseline: a baseline file, or a recording to learn one from (with a progress bar)."""
    from ..baseline import Baseline
    from ..replay import load_reference

    total = 0 if Baseline.is_baseline_file(path) else _open(path, None, None, None).num_samples
    with progress_bar(f"learning baseline from {Path(path).name}", total) as cb:
        return load_reference(path, settings, cb)


RECEIVER_SCHEMES = ("sim", "rtl_tcp", "rtlsdr")


def _is_receiver(target: str) -> bool:
    from ..radio.base import scheme_of

    return scheme_of(target) in RECEIVER_SCHEMES


def _receiver_blocks(src, duration_s: float | None, block_samples: int):
    """Blocks from a live source until ``duration_s`` of samples (forever when None)."""
    total = None if duration_s is None else int(round(duration_s * src.sample_rate_hz))
    got = 0
    while total is None or got < total:
        block = src.read(block_samples if total is None else min(block_samples, total - got))
        got += block.num_samples
        yield block


def _two_cores() -> None:
    """A replay or a baseline build is one job: the spectrum engine runs its pieces on two threads
    where the process may use two cores (``$SDRWATCH_THREADS`` = 1 or 2 overrides)."""
    import os

    from ..dsp import spectrum

    if os.environ.get("SDRWATCH_THREADS"):
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    spectrum.set_default_workers(min(2, cores))


def _write_line(out, record: dict) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


@click.command()
@click.argument("recording", metavar="RECORDING|RECEIVER")
@click.option("--baseline", "baseline_path", metavar="FILE|RECORDING", help="A baseline file (.npz) or a recording to learn one from.")
@click.option("--format", "out_format", type=FORMATS, default="table", show_default=True, help="table for people, jsonl for tools (one emission per line, printed as each one ends).")
@click.option("--duration", "duration_s", type=float, default=None, metavar="S", help="Receiver: seconds of samples to watch (default: until Ctrl-C).")
@recording_options
@detector_options
def replay(recording, baseline_path, out_format, duration_s, rate, freq, sample_format, fft_size, pfa, margin_db):
    """List the emissions in a recording or from a receiver, against a baseline or the noise floor.

    RECORDING is a SigMF recording (stem, .sigmf-meta or .sigmf-data) or a raw file named the
    rtl_433 way (NAME_433.92M_250k.cu8). RECEIVER is a receiver URI (sim:SCENE, rtl_tcp://HOST:PORT,
    rtlsdr://N), watched at --freq (default: the receiver's) and --rate (default 2.4M, or the
    baseline's) for --duration seconds. Without --baseline every emission above the noise floor is
    reported; with it, only what is new or stands well above what the baseline showed. JSON lines are
    printed as emissions end, so Ctrl-C keeps what was found (emissions still on are closed and
    printed as open_ended) and `| head` works.

    \b
    Examples:
      sdrwatch replay recordings/fm-voice-appears
      sdrwatch replay recordings/weak-fm-ladder --baseline recordings/weak-fm-ladder-baseline
      sdrwatch replay capture_433.92M_250k.cu8 --format jsonl
      sdrwatch replay sim:recordings/scenes/demo.toml --duration 30 --format jsonl
    """
    import math

    from ..replay import BLOCK_SAMPLES, make_chain

    settings = _settings(fft_size, pfa, margin_db)
    if not _is_receiver(recording):
        _two_cores()
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise SdrwatchError(f"--duration {duration_s}: must be a positive number of seconds")
    live = _is_receiver(recording)
    if not live and duration_s is not None:
        raise SdrwatchError("--duration is for a receiver (sim:SCENE, rtl_tcp://HOST:PORT, rtlsdr://N); a recording is replayed whole")
    if not live:
        rec = _open(recording, rate, freq, sample_format)
        _check_long_enough(rec, settings)
    base = _reference(baseline_path, settings) if baseline_path else None
    if live:
        from ..radio.base import open_source
        from ..radio.file import parse_hz, parse_tuning_hz

        rate_hz = parse_hz(rate, what="sample rate") if rate else (base.meta["sample_rate_hz"] if base else 2.4e6)
        options = {"sample_rate_hz": rate_hz}
        if freq:
            options["center_hz"] = parse_tuning_hz(freq)
        src = open_source(recording, **options)
        rate_hz = src.sample_rate_hz
        if base is None:
            settings = settings.resolved_for(rate_hz, [src.center_hz])
        blocks = _receiver_blocks(src, duration_s, BLOCK_SAMPLES)
        total = int(round(duration_s * rate_hz)) if duration_s else 0
        label = f"watching {recording}"
    else:
        src, rate_hz = None, rec.sample_rate_hz
        if base is None:
            settings = settings.resolved(rec)
        blocks = None
        total = rec.num_samples
        label = f"replaying {Path(recording).name}"
    chain = make_chain(rate_hz, base, settings)
    if blocks is None:  # a recording: its spectrum computed in the read-ahead thread, for the chain's engine
        from ..replay import read_ahead_blocks

        blocks = read_ahead_blocks(rec, chain.settings.spectrum)
    found = []
    seen_samples = 0

    def take(events) -> None:
        for ev in events:
            if ev.event == "close" and ev.merged_into is None:
                found.append(ev.emission)
                if out_format == "jsonl":
                    _write_line(sys.stdout, ev.emission.as_record())

    interrupted = False
    try:
        with progress_bar(label, total) as cb:
            for block in blocks:
                take(chain.push(block))
                seen_samples += block.num_samples
                if cb:
                    cb(block.num_samples)
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(0)
    finally:
        if src is not None:
            src.close()
    try:
        take(chain.close_all())
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(0)
    if out_format == "table":
        found.sort(key=lambda e: (e.start_s, e.center_hz))
        mode = f"against baseline {baseline_path}" if baseline_path else "against the noise floor"
        _print_table(found, f"{len(found)} emission(s) in {recording} ({seen_samples / rate_hz:.2f} s, {mode})")
    if interrupted:
        click.echo(f"error: interrupted after {seen_samples / rate_hz:.2f} s; the {len(found)} emission(s) found so far were printed", err=True)
        sys.exit(130)


def _quiet_stdout() -> None:
    """The reader went away (`| head`): send what is still buffered nowhere, quietly."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _check_output(out: Path, inputs: list[Path], overwrite: bool, what: str) -> None:
    """Never write over an input; replace an existing file only with --overwrite, and never a read-only one."""
    import os

    for p in inputs:
        if (out.exists() and p.exists() and os.path.samefile(out, p)) or out.resolve() == p.resolve():
            raise SdrwatchError(f"-o {out} is the input {p}: choose another output file")
    if out.exists():
        if not overwrite:
            raise SdrwatchError(f"{out} exists: give --overwrite to replace it, or another -o")
        if out.is_dir() or not out.stat().st_mode & 0o222:  # mode bits: root may write anything
            raise SdrwatchError(f"{out} is read-only (or not a file): not replaced")


@click.group()
def baseline():
    """Learn a site's spectrum before the exam, and look at it.

    \b
    Examples:
      sdrwatch baseline build recordings/benign-baseline -o site.npz
      sdrwatch baseline show site.npz -o site.png
    """


@baseline.command("build")
@click.argument("recording")
@click.option("-o", "--output", required=True, metavar="FILE", help="Baseline file to write (.npz).")
@recording_options
@click.option("--fft-size", type=int, default=None, help="FFT points per segment (default: bins of about 2 kHz, e.g. 1024 at 2.4 MS/s).")
@click.option("--overwrite", is_flag=True, help="Replace an existing baseline file.")
def baseline_build(recording, output, rate, freq, sample_format, fft_size, overwrite):
    """Learn a baseline from RECORDING and write it to FILE.

    \b
    Example:
      sdrwatch baseline build recordings/benign-baseline -o site.npz
    """
    from ..replay import learn_baseline

    out = Path(output) if output.endswith(".npz") else Path(output + ".npz")
    rec = _open(recording, rate, freq, sample_format)
    _check_output(out, [Path(recording), *(Path(p) for p in (rec.path, rec.meta_path) if p)],
                  overwrite, "baseline")
    _two_cores()
    with progress_bar("learning baseline", rec.num_samples) as cb:
        base = learn_baseline(rec, _settings(fft_size), cb)
    path = base.save(out)
    bins = sum(len(h.freq_hz) for h in base.hops)
    click.echo(f"{path}: {len(base.hops)} hop(s), {bins} bins, {rec.duration_s:.2f} s of {recording}")


@baseline.command("show")
@click.argument("baseline_file")
@click.option("-o", "--output", metavar="PNG", help="Image to write (default: next to the baseline, .png).")
@click.option("--overwrite", is_flag=True, help="Replace an existing image.")
def baseline_show(baseline_file, output, overwrite):
    """Plot a baseline (noise floor, median, 99th percentile, max-hold, duty) to a PNG.

    \b
    Example:
      sdrwatch baseline show site.npz -o site.png
    """
    from ..baseline import Baseline, plot_baseline

    out = Path(output) if output else Path(baseline_file).with_suffix(".png")
    _check_output(out, [Path(baseline_file)], overwrite, "image")
    base = Baseline.load(baseline_file)
    plot_baseline(base, out)
    click.echo(str(out))


@click.command()
@click.argument("recording")
@click.option("--baseline", "baseline_path", metavar="FILE|RECORDING", help="Baseline to replay against.")
@click.option("--emissions", "emissions_path", type=click.Path(dir_okay=False), help="Score this replay output (JSON lines) instead of replaying.")
@click.option("--json", "as_json", is_flag=True, help="Print the score as one JSON object.")
@detector_options
def evaluate(recording, baseline_path, emissions_path, as_json, fft_size, pfa, margin_db):
    """Score replay output against the ground-truth annotations of a SigMF recording.

    Annotations marked "sdrwatch:threat": true (or, when none is marked, all annotations) are the
    threats to find. Reports threats found, false alarms (emissions matching no annotation), benign
    emitters flagged, and the frequency and time errors of each match.

    \b
    Examples:
      sdrwatch evaluate recordings/gfsk-bursts --baseline recordings/gfsk-bursts-baseline
      sdrwatch replay recordings/sweep --format jsonl > out.jsonl
      sdrwatch evaluate recordings/sweep --emissions out.jsonl --json
    """
    from ..evaluate import benign_flagged_text, emissions_from_jsonl, score
    from ..replay import detect

    rec = _open(recording, None, None, None)
    if emissions_path and baseline_path:
        raise SdrwatchError("give --emissions (score a replay you ran) or --baseline (replay now), not both")
    if not rec.annotations:
        raise SdrwatchError(f"{recording}: has no annotations to score against")
    if emissions_path:
        records = emissions_from_jsonl(emissions_path)
    else:
        settings = _settings(fft_size, pfa, margin_db)
        _check_long_enough(rec, settings)
        base = _reference(baseline_path, settings) if baseline_path else None
        with progress_bar(f"replaying {Path(recording).name}", rec.num_samples) as cb:
            records = [e.as_record() for e in detect(rec, base, settings, cb)]
    result = score(rec, records)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"threats found {result['threats_found']}/{result['threats']}, false alarms {result['false_alarms']}, "
        f"benign flagged {benign_flagged_text(result)}, median |freq error| {result['freq_error_hz_median']} Hz, "
        f"median |time error| {result['time_error_s_median']} s"
    )
    for m in result["matches"]:
        status = "found " if m["found"] else "MISSED"
        extra = f"  df {m['freq_error_hz']:+.0f} Hz" + (f"  dt {m['time_error_s']:+.3f} s" if "time_error_s" in m else "") if m["found"] else ""
        click.echo(f"  {status} {m['label']:<24} {m['center_hz'] / 1e6:.5f} MHz @ {m['start_s']:.3f} s{extra}")


from .baseline_live import baseline_capture, baseline_diff  # noqa: E402 - live-sweep layers (sdrwatch agent)
baseline.add_command(baseline_capture), baseline.add_command(baseline_diff)
