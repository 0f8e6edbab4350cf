"""``sdrwatch devices``: the RTL-SDR dongles on USB, their tuners and gain tables.

Exit status: 0 when the USB bus could be searched (also when no dongle is attached: one line says
so); 1 when pyrtlsdr or librtlsdr cannot be loaded (the error line says what to install).
"""
from __future__ import annotations

import json

import click

from ..radio.rtlsdr import library_summary, list_devices


def _gains_text(gains: list[float]) -> str:
    if not gains:
        return "-"
    return f"{len(gains)}: {gains[0]:g}..{gains[-1]:g} dB"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dongle on stdout (JSON Lines).")
def devices(as_json: bool) -> None:
    """List RTL-SDR dongles on USB (index, serial, tuner, gains).

    Open one with its index or serial: rtlsdr://0 or rtlsdr://serial=00000001. Remote dongles
    (rtl_tcp://HOST:PORT) are not listed. Exit 0 when the search ran (even if nothing was found);
    1 when the driver cannot be loaded.

    \b
    Examples:
      sdrwatch devices
      sdrwatch devices --json
    """
    found = list_devices()  # SourceError (driver missing / broken) -> one line, exit 1
    if not found:
        message = f"no RTL-SDR found on USB ({library_summary()}); check the cable and 'lsusb' (0bda:2838)"
        click.echo(message, err=as_json)
        return
    if as_json:
        for dev in found:
            click.echo(json.dumps(dev, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="RTL-SDR dongles")
    for col in ("index", "serial", "name", "manufacturer / product", "tuner", "gains", "status"):
        table.add_column(col)
    for dev in found:
        table.add_row(
            str(dev["index"]),
            dev.get("serial") or "?",
            dev.get("name") or "?",
            " / ".join(s for s in (dev.get("manufacturer"), dev.get("product")) if s) or "?",
            dev.get("tuner") or "?",
            _gains_text(dev.get("gains_db") or []),
            dev.get("status") or "ok",
        )
    Console().print(table)
