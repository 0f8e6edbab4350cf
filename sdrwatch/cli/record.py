"""``sdrwatch record``: capture IQ from any receiver into a SigMF recording (one capture per --freq)."""
from __future__ import annotations

import sys
import time

from pathlib import Path

import click

from ..errors import PlanError, SourceError
from ..radio.base import open_source
from ..radio.file import EXTENSION, SigMFWriter, iso_utc, parse_hz, parse_tuning_hz

BLOCK_SAMPLES = 262144


def _parse_gain(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise PlanError(f"invalid gain {text!r}: expected a number of dB or 'auto'") from None


def _merge(pieces: list[dict]) -> list[dict]:
    """Join truth pieces that continue each other across block boundaries (several emitters may be
    on at once, so pieces of different annotations interleave)."""
    out: list[dict] = []
    open_ends: dict[tuple, dict] = {}  # same annotation apart from position -> its latest piece

    def key(p: dict) -> tuple:
        return tuple(sorted((k, repr(v)) for k, v in p.items() if k not in ("sample_start", "sample_count")))

    for p in sorted(pieces, key=lambda p: p["sample_start"]):
        k = key(p)
        prev = open_ends.get(k)
        if prev is not None and prev["sample_start"] + prev["sample_count"] == p["sample_start"]:
            prev["sample_count"] += p["sample_count"]
        else:
            piece = dict(p)
            out.append(piece)
            open_ends[k] = piece
    return out


@click.command("record")
@click.argument("source_uri")
@click.option("--freq", "freqs", multiple=True, required=True, metavar="HZ",
              help="Centre frequency, e.g. 433.92M; repeat for a hop recording (one capture each).")
@click.option("--rate", required=True, metavar="HZ", help="Sample rate, e.g. 2.4M or 250k.")
@click.option("--duration", type=float, required=True, metavar="S", help="Seconds to record at each frequency.")
@click.option("-o", "--output", required=True, metavar="STEM", help="Writes STEM.sigmf-data and STEM.sigmf-meta.")
@click.option("--gain", default="auto", show_default=True, metavar="DB|auto", help="Tuner gain in dB, or auto.")
@click.option("--ppm", type=int, default=0, show_default=True, help="Frequency correction in ppm.")
@click.option("--sample-format", "fmt", type=click.Choice(["cu8", "cs8", "cs16", "cf32"]), default=None,
              help="Sample format of the data file (as replay's --sample-format).  [default: cu8]")
@click.option("--format", "old_fmt", type=click.Choice(["cu8", "cs8", "cs16", "cf32"]), default=None, hidden=True,
              help="Old spelling of --sample-format (replay's --format is the output format).")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording.")
@click.option("--timeout", "timeout_s", type=float, default=None, metavar="S",
              help="Give up if the whole recording is not done after S seconds "
                   "[default: 60 s + twice the recording's length].")
@click.option("--stall-timeout", "stall_s", type=float, default=10.0, show_default=True, metavar="S",
              help="Give up when a network receiver delivers no samples for S seconds (reconnecting meanwhile).")
def record(source_uri: str, freqs: tuple[str, ...], rate: str, duration: float, output: str, gain: str,
           ppm: int, fmt: str | None, old_fmt: str | None, overwrite: bool, timeout_s: float | None,
           stall_s: float) -> None:
    """Record IQ from SOURCE_URI (rtlsdr://0, rtl_tcp://HOST:PORT, sim:SCENE.toml or a recording)
    into a SigMF recording.

    \b
    Examples:
      sdrwatch record rtlsdr://0 --freq 433.92M --rate 2.4M --duration 10 -o site-433
      sdrwatch record rtl_tcp://pi:1234 --freq 169.4M --freq 433.92M --rate 1M --duration 2 -o hops
    """
    if old_fmt is not None:
        if fmt is not None and fmt != old_fmt:
            raise PlanError(f"--sample-format {fmt} and --format {old_fmt} disagree; give --sample-format only")
        click.echo("warning: record --format is now --sample-format (replay's --format is the output format)", err=True)
        fmt = old_fmt
    fmt = fmt or "cu8"
    centers = [parse_tuning_hz(f, what="frequency") for f in freqs]
    rate_hz = parse_hz(rate, what="sample rate")
    if not Path(output).name.strip(". "):
        raise PlanError(f"-o {output!r}: give a file stem, e.g. -o site-433")
    if not 0 < duration < 1e7:  # also refuses nan and inf
        raise PlanError(f"invalid duration {duration!r}: must be positive seconds (less than 1e7)")
    gain_db = _parse_gain(gain)
    per_capture = int(round(duration * rate_hz))
    if per_capture <= 0:
        raise PlanError(f"--duration {duration} at {rate_hz:g} S/s is less than one sample")
    if not 0 < stall_s < 1e7:
        raise PlanError(f"invalid --stall-timeout {stall_s!r}: must be positive seconds")
    if timeout_s is None:
        timeout_s = 60.0 + 2 * duration * len(centers)
    elif not 0 < timeout_s < 1e8:
        raise PlanError(f"invalid --timeout {timeout_s!r}: must be positive seconds")
    deadline = _Deadline(timeout_s)

    with open_source(source_uri, stall_s=stall_s) as src:
        src.set_sample_rate(rate_hz)
        src.set_gain(gain_db)
        if ppm:
            src.set_ppm(ppm)
        info = src.describe()
        actual_rate = float(getattr(src, "sample_rate_hz", rate_hz) or rate_hz)
        hw = info.extra.get("hw") or (f"{info.tuner} tuner ({info.driver}"
                                      + (f", serial {info.serial})" if info.serial else ")"))
        global_extra = {
            "core:hw": hw,
            "core:description": f"sdrwatch record {source_uri}",
            f"{EXTENSION}:source": source_uri,
            f"{EXTENSION}:driver": info.driver,
            f"{EXTENSION}:tuner": info.tuner,
        }
        if info.serial:
            global_extra[f"{EXTENSION}:serial"] = info.serial
        truth = getattr(src, "truth_for_block", None)  # sources that know their ground truth
        show = sys.stderr.isatty()
        with SigMFWriter(output, fmt=fmt, sample_rate_hz=actual_rate, global_extra=global_extra,
                         overwrite=overwrite) as writer:
            with click.progressbar(length=per_capture * len(centers), label="recording", file=sys.stderr,
                                   show_eta=True) if show else _NoBar() as bar:
                for center in centers:
                    src.tune(center)
                    _record_capture(src, writer, center, per_capture, gain_db, ppm, truth, bar, deadline)
            meta_path = writer.close()
    click.echo(str(meta_path))


class _Deadline:
    """The whole recording's deadline, checked after every block (a block itself is bounded by the
    receiver's no-progress deadline)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def check(self, center_hz: float, done: int, total: int, rate_hz: float) -> None:
        if time.monotonic() > self.end:
            raise SourceError(f"recording did not finish within {self.timeout_s:g} s (--timeout): at "
                              f"{center_hz / 1e6:.6g} MHz only {done / rate_hz:.2f} of {total / rate_hz:.2f} s arrived; "
                              "the receiver delivers samples slower than its sample rate; nothing partial was kept")


class _NoBar:
    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int) -> None:
        pass


def _record_capture(src, writer: SigMFWriter, center: float, total: int, gain_db: float | None, ppm: int,
                    truth, bar, deadline: _Deadline) -> None:
    remaining = total
    started = False
    pieces: list[dict] = []
    while remaining > 0:
        block = src.read(min(BLOCK_SAMPLES, remaining))
        n = len(block.iq)
        if n == 0:
            raise SourceError(f"{src.uri or 'receiver'} returned no samples at {center / 1e6:.6g} MHz")
        n = min(n, remaining)
        if not started:
            used_gain = block.gain_db if block.gain_db is not None else getattr(src, "gain_db", gain_db)
            extra = {f"{EXTENSION}:gain_db": used_gain, f"{EXTENSION}:gain_mode": "auto" if gain_db is None else "manual",
                     f"{EXTENSION}:ppm": int(getattr(src, "ppm", ppm) or ppm)}
            writer.start_capture(block.center_hz or center, datetime=iso_utc(block.timestamp), extra=extra)
            started = True
        at = writer.samples_written
        writer.write(block.iq[:n])
        if truth is not None:
            for t in truth(block) or []:
                if int(t["sample_start"]) >= n:
                    continue
                t = {**t, "sample_count": min(int(t["sample_count"]), n - int(t["sample_start"]))}
                pieces.append({**t, "sample_start": at + int(t["sample_start"]), "sample_count": int(t["sample_count"])})
        remaining -= n
        bar.update(n)
        if remaining > 0:
            deadline.check(center, total - remaining, total, float(block.sample_rate_hz or 1.0))
    core = ("sample_start", "sample_count", "freq_lower_hz", "freq_upper_hz", "label", "comment")
    for t in _merge(pieces):
        writer.annotate(t["sample_start"], t["sample_count"], freq_lower_hz=t.get("freq_lower_hz"),
                        freq_upper_hz=t.get("freq_upper_hz"), label=t.get("label"), comment=t.get("comment"),
                        extra={k: v for k, v in t.items() if k not in core})

