"""``sdrwatch plot ...``: PNG or SVG pictures of spectra, baselines, sweeps, occupancy, alerts and evidence."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import SdrwatchError

OUT = click.option("-o", "--output", "output", required=True, metavar="IMAGE", help="Image to write: .png or .svg.")
SIZE = click.option("--size", "size", metavar="WxH", default=None, help="Image size in pixels (e.g. 1600x900).")


def _size(text: str | None):
    if text is None:
        return {}
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SdrwatchError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1600x900") from None
    return {"size_px": (w, h)}


def _done(res) -> None:
    click.echo(f"{res.path}: {res.width_px}x{res.height_px} px")


@click.group()
def plot():
    """Draw sdrwatch data as PNG or SVG images (axes in MHz and dB).

    \b
    Examples:
      sdrwatch plot spectrum recordings/sweep --baseline recordings/sweep-baseline -o sweep.png
      sdrwatch plot baseline site.npz -o site.png
      sdrwatch plot waterfall state/spectrum.csv -o waterfall.png
      sdrwatch plot occupancy state/spectrum.csv --band ism433:433.05M:434.79M -o occ.png
      sdrwatch plot timeline --db collector.db --session maths-am -o timeline.png
      sdrwatch plot evidence state/evidence/ALERT.sigmf-meta -o alert.png
    """


@plot.command("spectrum")
@click.argument("recording")
@click.option("--baseline", "baseline_path", metavar="FILE|RECORDING", help="Baseline (.npz or a recording) to draw against.")
@click.option("--emissions", "emissions_path", type=click.Path(dir_okay=False), help="Mark these detections (replay JSON lines) instead of detecting.")
@click.option("--site", default=None, help="Site named in the title.")
@click.option("--receiver", default=None, help="Receiver named in the title.")
@OUT
@SIZE
def plot_spectrum_cmd(recording, baseline_path, emissions_path, site, receiver, output, size):
    """A recording's spectrum (mean, max-hold) against the baseline, its threshold and detections.

    Without --emissions the recording is replayed (as `sdrwatch replay` does) and what it raises is
    marked in its severity colour. One panel per band; unwatched spectrum stays blank.

    \b
    Example:
      sdrwatch plot spectrum recordings/sweep --baseline recordings/sweep-baseline -o sweep.png
    """
    from ..radio.file import open_recording
    from ..replay import Settings, detect, load_reference
    from ..views.plots import plot_spectrum, read_jsonl, recording_spectrum

    kw = _size(size)
    rec = open_recording(recording)
    base = load_reference(baseline_path, Settings()) if baseline_path else None
    hops = recording_spectrum(rec, base)
    dets = read_jsonl(emissions_path) if emissions_path else [e.as_record() for e in detect(rec, base)]
    when = rec.captures[0].datetime if rec.captures else None
    what = f"spectrum {Path(str(rec.path)).name.replace('.sigmf-data', '')}" + (" vs baseline" if base else " (noise-floor mode)")
    _done(plot_spectrum(hops, output, detections=dets, site=site, receiver=receiver, time=when, what=what, **kw))


@plot.command("baseline")
@click.argument("baseline_file")
@OUT
@SIZE
def plot_baseline_cmd(baseline_file, output, size):
    """A baseline, one panel per band, gaps left where nothing was watched.

    \b
    Example:
      sdrwatch plot baseline site.npz -o site.png
    """
    from ..baseline import Baseline
    from ..views.plots import plot_baseline

    _done(plot_baseline(Baseline.load(baseline_file), output, **_size(size)))


@plot.command("waterfall")
@click.argument("spectrum_log", type=click.Path(dir_okay=False))
@click.option("--site", default=None, help="Site named in the title.")
@click.option("--receiver", default=None, help="Receiver named in the title.")
@click.option("--max-sweeps", default=2000, show_default=True, type=click.IntRange(1, 100000), help="Keep only the last N sweeps.")
@OUT
@SIZE
def plot_waterfall_cmd(spectrum_log, site, receiver, max_sweeps, output, size):
    """Sweeps over time from an rtl_power-compatible CSV (the agent's --spectrum-log).

    \b
    Example:
      sdrwatch plot waterfall state/spectrum.csv -o waterfall.png
    """
    from ..views.plots import plot_waterfall, read_spectrum_log

    _done(plot_waterfall(read_spectrum_log(spectrum_log, max_sweeps), output, site=site, receiver=receiver, **_size(size)))


@plot.command("occupancy")
@click.argument("spectrum_log", type=click.Path(dir_okay=False))
@click.option("--band", "bands", multiple=True, metavar="NAME:LOW:HIGH", help="A band to report (repeatable; default: each watched span).")
@click.option("--threshold-db", default=10.0, show_default=True, type=click.FloatRange(0, 60), help="Occupied: this far over the band's noise floor.")
@click.option("--site", default=None, help="Site named in the title.")
@click.option("--receiver", default=None, help="Receiver named in the title.")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON line per band (name, start_hz, stop_hz, occupancy).")
@OUT
@SIZE
def plot_occupancy_cmd(spectrum_log, bands, threshold_db, site, receiver, as_json, output, size):
    """Occupancy per band (share of time and bins over the noise floor) from a spectrum log.

    \b
    Example:
      sdrwatch plot occupancy state/spectrum.csv --band ism433:433.05M:434.79M -o occ.png
    """
    import json

    from ..views.plots import occupancy, parse_band, plot_occupancy, read_spectrum_log

    wanted = [parse_band(b) for b in bands] or None
    log = read_spectrum_log(spectrum_log)
    rows = occupancy(log, wanted, threshold_db)
    res = plot_occupancy(rows, output, site=site, receiver=receiver, time=log.start_iso, **_size(size))
    if as_json:
        for r in rows:
            click.echo(json.dumps({k: r[k] for k in ("name", "start_hz", "stop_hz", "occupancy", "watched_cells")}))
    else:
        _done(res)


@plot.command("timeline")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="The collector's database.")
@click.option("--session", default=None, help="Only this exam session.")
@OUT
@SIZE
def plot_timeline_cmd(db_path, session, output, size):
    """Alert timeline: one lane per site, sessions shaded, alerts in their severity colour.

    \b
    Example:
      sdrwatch plot timeline --db collector.db --session maths-am -o timeline.png
    """
    from ..views.plots import plot_timeline, timeline_from_db

    _done(plot_timeline(timeline_from_db(db_path, session), output, **_size(size)))


@plot.command("evidence")
@click.argument("evidence")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None, help="Collector database to look the alert up in (title, markers).")
@click.option("--alert", "alert_id", default=None, help="Alert id (default: the one whose evidence this is).")
@OUT
@SIZE
def plot_evidence_cmd(evidence, db_path, alert_id, output, size):
    """Spectrogram of an alert's IQ evidence (a SigMF recording).

    \b
    Example:
      sdrwatch plot evidence state/evidence/ALERT.sigmf-meta -o alert.png
    """
    from ..views.plots import open_db, plot_evidence, table_rows

    alert = None
    if db_path:
        conn = open_db(db_path)
        try:
            if alert_id:
                rows = table_rows(conn, "alerts", "where alert_id = ?", (alert_id,))
            else:
                stem = Path(evidence).name.split(".sigmf")[0]
                rows = [r for r in table_rows(conn, "alerts") if r.get("evidence_path") and Path(str(r["evidence_path"])).name.split(".sigmf")[0] == stem]
        finally:
            conn.close()
        if alert_id and not rows:
            raise SdrwatchError(f"{db_path}: no alert {alert_id}")
        alert = rows[0] if rows else None
    _done(plot_evidence(evidence, output, alert=alert, **_size(size)))
