"""Plots: each writes an image of the expected size that shows what it claims, checked in the pixels."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from sdrwatch.baseline import Baseline
from sdrwatch.cli import main
from sdrwatch.dsp.baseline import HopStats
from sdrwatch.errors import SdrwatchError
from sdrwatch.radio.file import open_recording
from sdrwatch.replay import Settings, detect, learn_baseline
from sdrwatch.views import plots
from viewsdata import ALERTS, LOGGED, LOGGED_BY, T0, make_collector_db, write_spectrum_log

REC = Path(__file__).resolve().parents[1] / "recordings"


def read_png(path: Path) -> np.ndarray:
    import matplotlib.image

    return (matplotlib.image.imread(str(path))[..., :3] * 255).round().astype(int)


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def colour_rows(img: np.ndarray, col: int, panel: plots.Panel, colour: str, tol: int = 12, halfwidth: int = 1) -> int:
    """How many rows of the panel have ``colour`` within +-halfwidth columns of ``col``."""
    top, bottom = int(panel.top) + 2, int(panel.bottom) - 2
    block = img[top:bottom, col - halfwidth : col + halfwidth + 1]
    hit = (np.abs(block - rgb(colour)) <= tol).all(axis=-1).any(axis=1)
    return int(hit.sum())


def test_spectrum_marks_the_detection_at_its_frequency(tmp_path):
    rec = open_recording(REC / "sweep")
    base = learn_baseline(open_recording(REC / "sweep-baseline"), Settings())
    dets = [e.as_record() for e in detect(rec, base)]
    assert dets, "the sweep recording has a threat in hop 3"
    d = max(dets, key=lambda r: r["severity"])
    res = plots.plot_spectrum(plots.recording_spectrum(rec, base), tmp_path / "s.png", detections=dets, site="school-12", receiver="rx0")
    img = read_png(res.path)
    assert img.shape[:2] == (560, 1200) and (res.width_px, res.height_px) == (1200, 560)
    assert len(res.panels) == 4  # four hops 25-180 MHz apart: four bands, not one 260 MHz axis
    panel = next(p for p in res.panels if p.xlim[0] <= d["center_hz"] / 1e6 <= p.xlim[1])
    assert panel.xlim[1] - panel.xlim[0] < 1.2
    colour = plots.severity_colour(d["severity"])
    height = panel.bottom - panel.top
    assert colour_rows(img, panel.column(d["center_hz"] / 1e6), panel, colour) > 0.8 * height
    away = panel.column(d["center_hz"] / 1e6 - 0.4)
    assert colour_rows(img, away, panel, colour) < 0.1 * height
    for other in res.panels:  # no detection in the other hops: no marker colour down any column
        if other is panel:
            continue
        cols = range(int(other.left) + 3, int(other.right) - 3, 7)
        assert max(colour_rows(img, c, other, colour, halfwidth=0) for c in cols) < 0.3 * (other.bottom - other.top)


def test_spectrum_svg_and_threshold_over_noise(tmp_path):
    rec = open_recording(REC / "fm-voice-appears")
    hops = plots.recording_spectrum(rec)
    for h in hops:  # noise-floor mode: the threshold stands over the floor everywhere
        assert np.all(h.threshold_db > h.baseline_db)
        assert np.median(h.power_db - h.baseline_db) < 1.0
    res = plots.plot_spectrum(hops, tmp_path / "s.svg", detections=[], site="s", receiver="r", size_px=(800, 400))
    root = ET.parse(res.path).getroot()
    assert root.tag.endswith("svg") and root.get("width", "").startswith("576")  # 800 px at 100 dpi = 576 pt


def _hop(center_hz: float, lo_hz: float, hi_hz: float, noise_db: float, step_hz: float = 2e3) -> HopStats:
    f = np.arange(lo_hz, hi_hz, step_hz)
    n = len(f)
    p = np.full(n, 10 ** (noise_db / 10), np.float32)
    return HopStats(center_hz, f, p, np.full(n, 1e4), p, p[None, :] * 1.5, np.array([32.0]), np.array([100]), np.zeros(n, np.float32),
                    p, p * 1.2, 1000)


def test_baseline_one_panel_per_band_and_gaps_left_blank(tmp_path):
    # band A: two hops 433.0-433.8 and 434.0-434.8 (a 0.2 MHz gap nobody watched); band B far away
    hops = [_hop(433.4e6, 433.0e6, 433.8e6, -60), _hop(434.4e6, 434.0e6, 434.8e6, -60), _hop(869.5e6, 869.1e6, 869.9e6, -70)]
    base = Baseline({"source": "site.sigmf-data", "created": "2026-06-07T07:00:00Z"}, hops)
    res = plots.plot_baseline(base, tmp_path / "b.png")
    img = read_png(res.path)
    assert img.shape[:2] == (res.height_px, res.width_px)
    assert [p.name for p in res.panels] == ["band0", "band0-duty", "band1", "band1-duty"]
    a, b = res.panel("band0"), res.panel("band1")
    assert a.xlim[0] < 433.0 < 434.8 < a.xlim[1] and a.xlim[1] - a.xlim[0] < 2.0
    assert b.xlim[0] < 869.1 < 869.9 < b.xlim[1] and b.xlim[1] - b.xlim[0] < 1.0
    floor_row = a.row(-60)
    black = lambda col: bool((np.abs(img[floor_row - 2 : floor_row + 3, col] - 0) < 40).all(axis=-1).any())  # noqa: E731
    assert black(a.column(433.4)) and black(a.column(434.4))
    assert not black(a.column(433.9))  # the gap: no line drawn across it
    b_floor = b.row(-70)
    assert (np.abs(img[b_floor - 2 : b_floor + 3, b.column(869.5)]) < 40).all(axis=-1).any()


def test_baseline_show_uses_the_band_plot(tmp_path):
    out = tmp_path / "sb.png"
    r = CliRunner().invoke(main, ["baseline", "build", str(REC / "sweep-baseline"), "-o", str(tmp_path / "sb.npz")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["plot", "baseline", str(tmp_path / "sb.npz"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert read_png(out).shape[1] == 1440  # four bands side by side


def test_waterfall_shows_the_carrier_from_when_it_starts(tmp_path):
    log = plots.read_spectrum_log(write_spectrum_log(tmp_path / "spec.csv", sweeps=60, sweep_s=2.0, on_from=20))
    assert len(log.times) == 60 and len(log.bands) == 2
    band = log.bands[0]
    gap = (band.freq_hz > 433.86e6) & (band.freq_hz < 433.89e6)
    assert np.isnan(band.power_db[:, gap]).all()  # unwatched between the two hops
    res = plots.plot_waterfall(log, tmp_path / "w.png", site="school-12", receiver="rx0")
    img = read_png(res.path)
    assert img.shape[:2] == (700, 1200)
    p = res.panel("band0")
    col = p.column(433.92)
    before, after = img[p.row(10.0), col - 2 : col + 3], img[p.row(100.0), col - 2 : col + 3]  # viridis: yellow is loud
    assert ((after[:, 0] > 200) & (after[:, 1] > 180)).any() and not (before[:, 0] > 200).any()
    noise = img[p.row(100.0), p.column(433.5)]
    assert noise[0] < 100
    assert (img[p.row(50.0), p.column(433.875)] > 245).all()  # the gap is left white


def test_occupancy_per_band_counts_the_cells_over_the_floor(tmp_path):
    path = write_spectrum_log(tmp_path / "spec.csv", sweeps=50, on_from=10)
    log = plots.read_spectrum_log(path)
    rows = plots.occupancy(log, [plots.Band("ism433", 433.05e6, 434.79e6), plots.Band("pmr446", 446.0e6, 446.2e6)])
    # from the file itself: cells at -30 dB over all watched cells of the band
    vals = [np.array([float(x) for x in line.split(",")[6:]]) for line in path.read_text().splitlines()]
    lows = [float(line.split(",")[2]) for line in path.read_text().splitlines()]
    ism = [v for v, lo in zip(vals, lows) if lo < 440e6]
    expected = sum(int((v > -45).sum()) for v in ism) / sum(len(v) for v in ism)
    assert rows[0]["name"] == "ism433" and rows[0]["occupancy"] == pytest.approx(expected)
    assert rows[1]["occupancy"] == 0.0
    res = plots.plot_occupancy(rows, tmp_path / "o.png", site="school-12")
    img = read_png(res.path)
    assert img.shape[:2] == (650, 1100)
    bars = res.panel("bands")
    top = bars.row(100 * rows[0]["occupancy"])
    green = rgb("#2ca02c")
    col = bars.column(0)
    assert (np.abs(img[top + 3, col] - green) < 15).all() and not (np.abs(img[top - 4, col] - green) < 15).all()
    duty = res.panel("band0")
    dcol = duty.column(433.92)
    assert (np.abs(img[duty.row(50), dcol - 1 : dcol + 2] - green) < 15).all(axis=-1).any()  # 80 % of the time


def test_timeline_lanes_sessions_severity_and_faults(tmp_path):
    db = make_collector_db(tmp_path / "collector.db")
    data = plots.timeline_from_db(db, "maths-am")
    assert data["sites"] == ["school-03", "school-07", "school-12"]
    assert len(data["alerts"]) == 3 and [f["kind"] for f in data["faults"]] == ["noise_floor_low"]
    res = plots.plot_timeline(data, tmp_path / "t.png")
    img = read_png(res.path)
    assert img.shape[:2] == (res.height_px, res.width_px) == (340, 1200)
    import matplotlib.dates as mdates

    lanes = res.panel("lanes")
    num = lambda s: mdates.date2num(T0) + s / 86400  # noqa: E731
    red, purple = plots.severity_colour(0.92), plots.HEALTH_COLOUR
    r12 = lanes.row(2)
    assert (np.abs(img[r12, lanes.column(num(200))] - rgb(red)) < 10).all()  # nbfm-voice 95-335 s
    assert not (np.abs(img[r12, lanes.column(num(360))] - rgb(red)) < 10).all()
    assert (np.abs(img[r12, lanes.column(num(420))] - rgb(plots.severity_colour(0.75))) < 10).all()  # pager 400-430 s
    fault_row, fault_col = lanes.row(0 - 0.32), lanes.column(num(150))
    patch = img[fault_row - 4 : fault_row + 5, fault_col - 4 : fault_col + 5]
    assert (np.abs(patch - rgb(purple)) < 20).all(axis=-1).sum() >= 8  # the antenna fault at school-03
    session_blue = rgb("#dbe9f6")
    assert (np.abs(img[lanes.row(1) + 12, lanes.column(num(500))] - session_blue) < 6).all()  # session shaded


def test_timeline_draws_a_covered_emission_as_logged_not_as_an_alert(tmp_path):
    db = make_collector_db(tmp_path / "collector.db", logged=True)
    data = plots.timeline_from_db(db, "maths-am")
    assert [a["covered_by"] for a in data["alerts"] if a["alert_id"] in {x[0] for x in LOGGED}] == [LOGGED_BY] * 2
    assert sum(1 for a in data["alerts"] if a["covered_by"] is None) == 3
    res = plots.plot_timeline(data, tmp_path / "t.png")
    img = read_png(res.path)
    import matplotlib.dates as mdates

    lanes = res.panel("lanes")
    col = lanes.column(mdates.date2num(T0) + (LOGGED[0][3] + LOGGED[0][10] / 2) / 86400)  # school-07's gate remote, 250-310 s
    grey, low = rgb(plots.LOGGED_COLOUR), rgb(plots.severity_colour(LOGGED[0][8]))
    assert (np.abs(img[lanes.row(1), col] - grey) < 10).all()
    assert not (np.abs(img[lanes.row(1.15), col] - grey) < 10).all()  # thin: not as tall as an alert's bar
    assert not (np.abs(img[lanes.row(1) - 3 : lanes.row(1) + 4, col] - low) < 30).all(axis=-1).any()  # not in a severity colour


def test_evidence_spectrogram_shows_the_carrier(tmp_path):
    db = make_collector_db(tmp_path / "collector.db", tmp_path / "evidence")
    aid, _site, _rx, _t, center_hz, bw_hz = ALERTS[0][:6]
    conn = plots.open_db(db)
    alert = plots.table_rows(conn, "alerts", "where alert_id = ?", (aid,))[0]
    conn.close()
    res = plots.plot_evidence(alert["evidence_path"], tmp_path / "e.png", alert=alert)
    img = read_png(res.path)
    assert img.shape[:2] == (650, 1000)
    p = res.panel("spectrogram")
    mid = int((p.top + p.bottom) / 2)
    lum = lambda mhz: img[int(p.top) + 5 : int(p.bottom) - 5, p.column(mhz)].sum(axis=-1).mean()  # noqa: E731
    assert lum(center_hz / 1e6) > 1.5 * lum(center_hz / 1e6 - 0.06)  # magma: the carrier is bright
    cyan = rgb("#00e5ff")
    edge = p.column((center_hz + bw_hz / 2) / 1e6)
    assert (np.abs(img[int(p.top) + 3 : int(p.bottom) - 3, edge - 1 : edge + 2] - cyan) < 40).all(axis=-1).any(axis=1).sum() > 50
    assert mid > 0
    r = CliRunner().invoke(main, ["plot", "evidence", alert["evidence_path"], "--db", str(db), "-o", str(tmp_path / "e2.png")])
    assert r.exit_code == 0, r.output


def test_timeline_cli_and_bad_input_is_one_line(tmp_path):
    db = make_collector_db(tmp_path / "collector.db")
    run = lambda *a: CliRunner().invoke(main, ["plot", *a])  # noqa: E731
    r = run("timeline", "--db", str(db), "-o", str(tmp_path / "t.png"))
    assert r.exit_code == 0 and "1200x340" in r.output
    for args, text in (
        (("timeline", "--db", str(db), "-o", str(tmp_path / "t.jpg")), ".png or .svg"),
        (("timeline", "--db", str(tmp_path / "none.db"), "-o", str(tmp_path / "t.png")), "no such database"),
        (("timeline", "--db", str(db), "--session", "nope", "-o", str(tmp_path / "t.png")), "no session 'nope' (it has: maths-am)"),
        (("waterfall", str(tmp_path / "none.csv"), "-o", str(tmp_path / "w.png")), "no such spectrum log"),
        (("occupancy", str(db), "-o", str(tmp_path / "w.png")), "not UTF-8"),
        (("occupancy", str(db), "--band", "x:5M", "-o", str(tmp_path / "w.png")), "NAME:LOW:HIGH"),
        (("spectrum", str(REC / "sweep"), "-o", str(tmp_path / "nodir" / "s.png")), "no such directory"),
        (("timeline", "--db", str(db), "--size", "12", "-o", str(tmp_path / "t.png")), "WIDTHxHEIGHT"),
    ):
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert r.output.startswith("error: ") and text in r.output and r.output.count("\n") == 1, r.output
    (tmp_path / "bad.csv").write_text("2026-06-07, 08:00:00, 433000000, 432000000, 1000, 4, -50, -51\n")
    r = run("waterfall", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "w.png"))
    assert r.exit_code == 1 and "bad.csv:1" in r.output and "frequency range" in r.output
    assert not (tmp_path / "w.png").exists()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(str),
                          st.integers(-10**12, 10**12).map(str)), max_size=10))
def test_spectrum_row_parser_never_tracebacks(fields):
    try:
        t, lo, hi, step, values = plots.parse_spectrum_row(["2026-06-07", "08:00:00", *fields], "x")
    except SdrwatchError as exc:
        assert str(exc).startswith("x: ") and "\n" not in str(exc)
        return
    assert 0 <= lo < hi and step > 0 and not np.isinf(values).any()


def test_alerts_overlapping_in_time_get_rows_of_their_own_in_the_site_lane():
    from sdrwatch.views.plots import _alert_rows

    pager = {"site": "school-12", "t": 0.0, "t_end": 98.0}
    voice = {"site": "school-12", "t": 30.0, "t_end": 100.0}
    later = {"site": "school-12", "t": 120.0, "t_end": 130.0}
    other = {"site": "school-07", "t": 40.0, "t_end": 50.0}
    row, rows = _alert_rows([later, voice, other, pager])
    assert (row[id(pager)], row[id(voice)], row[id(later)]) == (0, 1, 0)  # the voice link is not hidden under the pager
    assert rows == {"school-12": 2, "school-07": 1} and row[id(other)] == 0


def damaged_collector_db(tmp_path: Path) -> Path:
    """A collector database written by the collector's own store (sessions, alerts, a health fault),
    closed, then with the root pages of its sessions, alerts and health tables overwritten: it opens,
    those tables cannot be read."""
    import datetime as dt

    from netproc import alert
    from sdrwatch.net.collector import Item
    from sdrwatch.store import Store

    path = tmp_path / "collector.db"
    st = Store(path)
    t = T0.timestamp()
    utc = lambda s: dt.datetime.fromtimestamp(t + s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    start = {"type": "health", "kind": "start", "site": "school-12", "receiver": None, "time": utc(0), "severity": 0.0,
             "message": "start", "sessions": [{"name": "maths", "start": utc(0), "end": utc(1800)}]}
    lost = {**start, "kind": "receiver_lost", "receiver": "rx0", "severity": 1.0, "message": "rx0 lost"}
    del lost["sessions"]
    recs = [start, lost] + [{**alert(i, "school-12"), "time": utc(10 + i)} for i in range(400)]
    st.ingest([Item("school-12", i + 1, "school-12", "agent", t, r) for i, r in enumerate(recs)], now=t)
    st.close()
    import sqlite3

    con = sqlite3.connect(path)
    size = con.execute("pragma page_size").fetchone()[0]
    roots = [r[0] for r in con.execute("select rootpage from sqlite_master where name in ('sessions', 'alerts', 'health')")]
    con.close()
    raw = bytearray(path.read_bytes())
    for page in roots:
        raw[(page - 1) * size: page * size] = b"\xff" * size
    bad = tmp_path / "damaged.db"
    bad.write_bytes(bytes(raw))
    return bad


def test_plots_of_a_damaged_database_are_one_error_line(tmp_path):
    """`sdrwatch plot timeline` (and `plot evidence --db`) on a database whose pages are damaged: one
    line on stderr naming the file, exit 1, no image; the real command in its own process."""
    import subprocess
    from types import SimpleNamespace

    from clierrors import one_line
    from netproc import CLI

    bad = damaged_collector_db(tmp_path)
    (tmp_path / "x.sigmf-meta").write_text("{}")
    for args in (["plot", "timeline", "--db", str(bad), "-o", str(tmp_path / "t.png")],
                 ["plot", "timeline", "--db", str(bad), "--session", "maths", "-o", str(tmp_path / "t.png")],
                 ["plot", "evidence", str(tmp_path / "x.sigmf-meta"), "--db", str(bad), "-o", str(tmp_path / "t.png")]):
        p = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120)
        assert p.stdout == "", p.stdout
        one_line(SimpleNamespace(output=p.stderr, exit_code=p.returncode), str(bad), "cannot read the collector database")
        assert not (tmp_path / "t.png").exists()


def test_a_timeline_spans_its_sessions_when_they_are_known():
    """The demo draws its timeline across the session, as the report does: from the first start to
    the last end; not when either is unknown."""
    from sdrwatch.views.plots import sessions_span

    data = {"sessions": [{"t_start": 100.0, "t_end": 400.0}, {"t_start": 50.0, "t_end": 300.0}]}
    assert sessions_span(data) == (50.0, 400.0)
    assert sessions_span({"sessions": [{"t_start": 100.0, "t_end": None}]}) is None
    assert sessions_span({"sessions": []}) is None
