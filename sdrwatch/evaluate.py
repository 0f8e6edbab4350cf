"""Score replay output (emission records) against a SigMF recording's ground-truth annotations.

An emission matches an annotation when its centre lies inside the annotation's frequency edges
(widened by ``FREQ_SLACK_HZ``) and their time spans overlap (widened by ``TIME_SLACK_S``).
Threats are annotations with ``sdrwatch:threat`` true; when no annotation carries that key, all are.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import SdrwatchError
from .radio.file import loads_json

FREQ_SLACK_HZ = 5e3
TIME_SLACK_S = 0.05
NUMERIC_KEYS = ("center_hz", "bandwidth_hz", "start_s", "end_s", "peak_dbfs", "snr_db", "severity")
REQUIRED_KEYS = ("center_hz", "bandwidth_hz", "start_s", "end_s", "peak_dbfs", "snr_db", "label", "severity")


def emissions_from_jsonl(path: str | Path) -> list[dict]:
    out = []
    p = Path(path)
    if not p.exists():
        raise SdrwatchError(f"{p}: no such file")
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = loads_json(line, f"{p}:{n}", SdrwatchError)
        except json.JSONDecodeError:
            raise SdrwatchError(f"{p}:{n}: not a JSON line") from None
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED_KEYS):
            raise SdrwatchError(f"{p}:{n}: not an sdrwatch emission (needs {', '.join(REQUIRED_KEYS)})")
        bad = [k for k in NUMERIC_KEYS if isinstance(rec[k], bool) or not isinstance(rec[k], (int, float)) or not math.isfinite(rec[k])]
        if bad:
            raise SdrwatchError(f"{p}:{n}: {', '.join(bad)} must be finite numbers")
        out.append(rec)
    return out


def _truth(rec) -> list[dict]:
    fs = rec.sample_rate_hz
    anns = []
    for a in rec.annotations:
        if a.freq_lower_hz is None or a.freq_upper_hz is None:
            continue
        start = a.sample_start / fs
        count = a.sample_count if a.sample_count is not None else rec.num_samples - a.sample_start
        end = (a.sample_start + count) / fs
        anns.append({"ann": a, "lo": a.freq_lower_hz, "hi": a.freq_upper_hz, "start_s": start, "end_s": end, "threat": a.extra.get("sdrwatch:threat")})
    marked = any(t["threat"] is not None for t in anns)
    for t in anns:
        t["threat"] = bool(t["threat"]) if marked else True
    return anns


def _overlaps(e: dict, t: dict) -> bool:
    return (t["lo"] - FREQ_SLACK_HZ <= e["center_hz"] <= t["hi"] + FREQ_SLACK_HZ) and (
        e["start_s"] <= t["end_s"] + TIME_SLACK_S and e["end_s"] >= t["start_s"] - TIME_SLACK_S
    )


def score(rec, emissions: list[dict]) -> dict:
    truth = _truth(rec)
    matches = []
    used = set()
    timed = set()  # an emission of several bursts gives its start time to its first threat only
    for t in sorted(truth, key=lambda t: t["start_s"]):
        if not t["threat"]:
            continue
        hits = [i for i, e in enumerate(emissions) if _overlaps(e, t)]
        center = 0.5 * (t["lo"] + t["hi"])
        m = {"label": t["ann"].label or "?", "center_hz": center, "start_s": round(t["start_s"], 6), "found": bool(hits)}
        if hits:
            best = min(hits, key=lambda i: abs(emissions[i]["start_s"] - t["start_s"]))
            used.update(hits)
            m["freq_error_hz"] = round(emissions[best]["center_hz"] - center, 1)
            if best not in timed:
                timed.add(best)
                m["time_error_s"] = round(emissions[best]["start_s"] - t["start_s"], 6)
        matches.append(m)
    benign = 0
    benign_names: list[str] = []
    false_alarms = []
    for i, e in enumerate(emissions):
        if i in used:
            continue
        hit = [t for t in truth if not t["threat"] and _overlaps(e, t)]
        if hit:
            benign += 1
            for t in hit:
                name = t["ann"].label or t["ann"].comment or f"{0.5 * (t['lo'] + t['hi']) / 1e6:.4f} MHz"
                if name not in benign_names:
                    benign_names.append(name)
        elif not any(_overlaps(e, t) for t in truth):
            false_alarms.append(e)
    found = [m for m in matches if m["found"]]
    med = lambda xs: round(float(np.median(np.abs(xs))), 6) if len(xs) else None  # noqa: E731
    return {
        "threats": len(matches),
        "threats_found": len(found),
        "false_alarms": len(false_alarms),
        "benign_flagged": benign,
        "benign_flagged_names": benign_names,
        "freq_error_hz_median": med([m["freq_error_hz"] for m in found]),
        "time_error_s_median": med([m["time_error_s"] for m in found if "time_error_s" in m]),
        "matches": matches,
        "false_alarm_emissions": false_alarms,
    }


def benign_flagged_text(result: dict) -> str:
    """``"0"``, or ``"1 (walkie-talkie-446)"``: how many benign emissions were flagged, and which emitters."""
    names = result.get("benign_flagged_names") or []
    return f"{result['benign_flagged']}" + (f" ({', '.join(names)})" if names else "")
