"""``sdrwatch report``: the session duty report (值班报告) as self-contained HTML, and PDF through Chromium."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="The collector's database.")
@click.option("--session", required=True, help="Exam session to report on.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False), default=None, help="Also print it to this PDF (headless Chromium).")
@click.option("--evidence-root", "roots", multiple=True, type=click.Path(file_okay=False), help="Folder to look for evidence files in (repeatable).")
@click.option("--spectrum-log", "logs", multiple=True, metavar="SITE=CSV", help="A site's spectrum log (agent --spectrum-log, UTC) for the top alerts' spectra when the collector has no snapshot (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line with what the report holds (counts, and each site's uptime, its method and offline spells, and its receivers' uptime).")
def report(db_path, session, output, pdf, roots, logs, as_json):
    """Write the duty report of one exam session: sites, their uptime and offline spells, receiver health, every alert
    with its disposition and operator, the timeline, the top alerts' spectra and evidence, and the
    evidence hashes. It prints on A4, one section per page.

    \b
    Example:
      sdrwatch report --db collector.db --session maths-am -o report.html --pdf report.pdf
    """
    import json

    from ..views.report import site_uptime, write_report

    from ..errors import SdrwatchError

    spectrum_logs = {}
    for item in logs:
        site, sep, path = item.partition("=")
        if not sep or not site or not path:
            raise SdrwatchError(f"--spectrum-log {item!r}: expected SITE=CSV, e.g. school-12=state/spectrum.csv")
        spectrum_logs[site] = Path(path)
    data = write_report(db_path, session, output, pdf=pdf, evidence_roots=[Path(r) for r in roots], spectrum_logs=spectrum_logs)
    if as_json:
        click.echo(json.dumps({"html": str(output), "pdf": pdf, "session": session, "sites": len(data.sites), "alerts": len(data.alerts),
                               "without_disposition": sum(1 for a in data.alerts if a.get("disposition") is None), "logged": len(data.logged),
                               "faults": len(data.faults), "evidence": len(data.evidence), "uptime": site_uptime(data)}))
    else:
        click.echo(f"{output}: {len(data.sites)} site(s), {len(data.alerts)} alert(s), {len(data.logged)} logged, {len(data.faults)} health fault(s)" + (f"; {pdf}" if pdf else ""))
