"""Test data for the views: a collector database laid out as the collector writes it (docs/network.md,
docs/network.md) and rtl_power-compatible spectrum logs with known content."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

T0 = dt.datetime(2026, 6, 7, 8, 0, 0, tzinfo=dt.timezone.utc)
SESSION = "maths-am"


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def at(seconds: float) -> str:
    return iso(T0 + dt.timedelta(seconds=seconds))


#: (alert_id, site, receiver, t_s, center_hz, bandwidth_hz, snr_db, label, severity, state, duration_s)
ALERTS = (
    ("school-12-rx0-a1b2c3d4e5f6", "school-12", "rx0", 95.0, 433.450e6, 12.5e3, 18.2, "nbfm-voice", 0.92, "closed", 240.0),
    ("school-12-rx0-0f0e0d0c0b0a", "school-12", "rx0", 400.0, 169.0625e6, 6.0e3, 11.0, "pager-fsk", 0.75, "open", 30.0),
    ("school-07-rx0-77aa88bb99cc", "school-07", "rx0", 200.0, 144.330e6, 3.0e3, 7.5, "unknown", 0.3, "closed", 1.5),
)
#: a gate remote the band plan covers (logged, not alerted), pressed twice; added by make_collector_db(logged=True); same fields
LOGGED = (("school-07-rx0-5a5a5a5a5a5a", "school-07", "rx0", 250.0, 433.92e6, 20.0e3, 14.0, "ism-remote", 0.06, "closed", 60.0),
          ("school-07-rx0-6b6b6b6b6b6b", "school-07", "rx0", 480.0, 433.921e6, 10.0e3, 16.5, "ism-remote", 0.06, "closed", 2.0))
LOGGED_BY = "bandplan:srd-315-433"
DISPOSITIONS = (
    ("school-12-rx0-a1b2c3d4e5f6", "li.wei", "cheating", "room 3, seat 14: earpiece and receiver taken", 300.0),
    ("school-07-rx0-77aa88bb99cc", "zhang.min", "false_alarm", "caretaker's handheld", 320.0),
)


def make_collector_db(path: Path, evidence_dir: Path | None = None, *, with_spectra: bool = True, logged: bool = False) -> Path:
    """A collector database with three sites, one session, three alerts (two with dispositions),
    health records (heartbeats and an antenna fault at school-03) and, if ``evidence_dir`` is given,
    SigMF evidence files referenced by the alerts. ``logged``: also the emissions LOGGED, which
    carry ``covered_by`` as the agent sends it."""
    import sqlite_utils

    db = sqlite_utils.Database(path)
    db.enable_wal()
    sites = ("school-03", "school-07", "school-12")
    db["sites"].insert_all([{"site": s, "online": 0 if s == "school-03" else 1, "last_heartbeat": at(590), "agent": s} for s in sites], pk="site")
    db["receivers"].insert_all([
        {"site": s, "receiver": "rx0", "online": 0 if s == "school-03" else 1, "last_heartbeat": at(590),
         "revisit_s": 2.1 if s != "school-07" else 1.4, "noise_floor_db": -98.0 if s != "school-03" else -121.0}
        for s in sites
    ], pk=("site", "receiver"))
    db["sessions"].insert_all([{"name": SESSION, "site": s, "start": at(0), "end": at(600)} for s in sites])
    evidence = {}
    if evidence_dir is not None:
        evidence = make_evidence(evidence_dir)
    rows, events = [], []
    for seq, (aid, site, rx, t, c, bw, snr, label, sev, state, dur) in enumerate(ALERTS + (LOGGED if logged else ()), 1):
        ev = evidence.get(aid)
        record = {"type": "alert", "alert_id": aid, "event": "close" if state == "closed" else "update", "site": site, "receiver": rx,
                  "time": at(t), "session": SESSION, "center_hz": c, "bandwidth_hz": bw, "snr_db": snr, "peak_dbfs": -40.0,
                  "label": label, "severity": sev, "duration_s": dur, "novelty": "new", "reasons": []}
        if aid in {x[0] for x in LOGGED}:
            record["covered_by"] = LOGGED_BY
        if ev:
            record["evidence"] = ev
        rows.append({"alert_id": aid, "site": site, "receiver": rx, "agent_time": at(t), "received_time": at(t + 0.2),
                     "center_hz": c, "bandwidth_hz": bw, "snr_db": snr, "peak_dbfs": -40.0, "label": label, "severity": sev,
                     "session": SESSION, "state": state, "evidence_sha512": ev["sha512"] if ev else None,
                     "evidence_path": ev["path"] if ev else None, "first_event_time": at(t), "last_event": record["event"],
                     "duration_s": dur, "novelty": "new", "record": json.dumps(record)})
        events.append({"agent": site, "seq": seq, "alert_id": aid, "event": "open", "site": site, "time": at(t), "record": json.dumps({**record, "event": "open"})})
        if ev:
            db["evidence"].insert({"sha512": ev["sha512"], "alert_id": aid, "site": site, "path": ev["path"], "bytes": ev["bytes"], "agent_time": at(t + 2)}, pk="sha512")
    db["alerts"].insert_all(rows, pk="alert_id")
    db["alert_events"].insert_all(events)
    health = []
    for s in sites:
        for k, t in enumerate(range(0, 600, 60)):
            if s == "school-03" and t > 120:
                break
            health.append({"agent": s, "seq": 100 + k, "site": s, "receiver": "rx0", "kind": "heartbeat", "severity": 0.0, "message": "ok",
                           "agent_time": at(t), "received_time": at(t + 0.1), "record": "{}"})
    health.append({"agent": "school-03", "seq": 200, "site": "school-03", "receiver": "rx0", "kind": "noise_floor_low", "severity": 0.8,
                   "message": "noise floor 23 dB below its baseline: antenna disconnected?", "agent_time": at(150), "received_time": at(150.1), "record": "{}"})
    db["health"].insert_all(health)
    db["dispositions"].insert_all([
        {"id": i, "alert_id": aid, "operator": op, "disposition": d, "note": note, "time": at(t), "console": "console-1"}
        for i, (aid, op, d, note, t) in enumerate(DISPOSITIONS, 1)
    ], pk="id")
    if with_spectra:
        f = np.arange(1024)
        p = -60 + np.random.default_rng(1).normal(0, 1, 1024)
        p[158:163] = -30  # the nbfm-voice alert at 433.45 MHz = 433.05 MHz + 160 bins
        from sdrwatch.net.schema import spectrum_record

        rec = spectrum_record("school-12", "rx0", at(100), 433.05e6, 2500.0, p)
        db["spectra"].insert({**{k: v for k, v in rec.items() if k != "type"}, "record": json.dumps(rec)})
        del f
    db.conn.close()
    return path


def make_evidence(evidence_dir: Path) -> dict:
    """SigMF evidence for the first alert (an FM carrier at its frequency), as the agent writes it."""
    import hashlib

    from sdrwatch.radio.file import SigMFWriter

    evidence_dir.mkdir(parents=True, exist_ok=True)
    aid, site, rx, t, c, bw = ALERTS[0][:6]
    rate = 250e3
    n = int(0.5 * rate)
    rng = np.random.default_rng(7)
    k = np.arange(n)
    offset_hz = 20e3  # the alert is 20 kHz above the capture's centre
    phase = 2 * np.pi * (offset_hz * k / rate + 2.5e3 / 1e3 * np.sin(2 * np.pi * 1e3 * k / rate) / (2 * np.pi))
    iq = 0.3 * np.exp(1j * phase) + 0.02 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    stem = evidence_dir / aid
    w = SigMFWriter(stem, fmt="cu8", sample_rate_hz=rate, global_extra={"sdrwatch:site": site, "sdrwatch:receiver": rx, "sdrwatch:alert_id": aid})
    w.start_capture(c - offset_hz, datetime=at(t))
    w.write(iq.astype(np.complex64))
    w.close()
    data = Path(f"{stem}.sigmf-data")
    return {aid: {"path": str(Path(f"{stem}.sigmf-meta")), "sha512": hashlib.sha512(data.read_bytes()).hexdigest(), "bytes": data.stat().st_size}}


def write_spectrum_log(path: Path, *, sweeps: int = 60, sweep_s: float = 2.0, on_from: int = 20, signal_hz: float = 433.92e6) -> Path:
    """An rtl_power CSV: two bands (433.05-434.79 MHz in two hops with a gap, 446.0-446.2 MHz); noise at
    -60 dB; a -30 dB carrier 5 kHz wide at ``signal_hz`` from sweep ``on_from`` on."""
    rng = np.random.default_rng(3)
    hops = ((433.05e6, 433.85e6), (433.90e6, 434.79e6), (446.0e6, 446.2e6))
    step = 5e3
    lines = []
    for s in range(sweeps):
        t = T0 + dt.timedelta(seconds=s * sweep_s)
        for lo, hi in hops:
            f = lo + step * np.arange(int(round((hi - lo) / step)) + 1)
            db = -60 + rng.normal(0, 1.0, len(f))
            if s >= on_from:
                db[np.abs(f - signal_hz) <= 2.5e3] = -30.0
            lines.append(", ".join([t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"), f"{lo:.0f}", f"{hi:.0f}", f"{step:.2f}", "64"] + [f"{x:.2f}" for x in db]))
    path.write_text("\n".join(lines) + "\n")
    return path
