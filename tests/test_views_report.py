"""Duty report (HTML opened in Chromium, PDF page count) and sealed archives (tamper one byte: verify names it)."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdrwatch.cli import main
from sdrwatch.views import report, seal
from viewsdata import ALERTS, DISPOSITIONS, LOGGED, LOGGED_BY, SESSION, make_collector_db


def make_keys(keys: Path) -> Path:
    """The collector's seal key pair as `sdrwatch keys init` writes it (PEM PKCS#8 / SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keys.mkdir(parents=True, exist_ok=True)
    k = Ed25519PrivateKey.generate()
    (keys / "collector-sign.key").write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (keys / "collector-sign.pub").write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return keys


@pytest.fixture()
def db(tmp_path):
    return make_collector_db(tmp_path / "collector.db", tmp_path / "evidence")


def dump_dom(html: Path) -> str:
    proc = report.run_chromium(["--dump-dom", html.resolve().as_uri()])
    assert proc.returncode == 0, proc.stderr[-500:]
    return proc.stdout.decode()


def test_uptime_counts_heartbeat_coverage():
    assert report.uptime([0, 60, 120], 0, 600) == pytest.approx(150 / 600)
    assert report.uptime(range(0, 601, 60), 0, 600) == 1.0
    assert report.uptime([], 0, 600) == 0.0
    assert report.uptime([0, 60, 120, 480, 540, 600], 0, 600) == pytest.approx(300 / 600)  # a 6-minute outage
    # no heartbeat history: agent runs from start to stop (or last contact)
    assert report.contact_uptime([(0, 200), (300, 600)], 0, 600) == pytest.approx(500 / 600)
    assert report.contact_uptime([(-100, 50), (40, 120)], 0, 600) == pytest.approx(120 / 600)
    assert report.contact_uptime([], 0, 600) == 0.0


def test_report_opens_in_chromium_with_every_alert_and_prints_one_section_per_page(tmp_path):
    """Also: a gate remote the band plan covers is logged with its entry, not alerted (it needs no
    disposition and is no top alert)."""
    db = make_collector_db(tmp_path / "collector.db", tmp_path / "evidence", logged=True)
    out, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    r = CliRunner().invoke(main, ["report", "--db", str(db), "--session", SESSION, "-o", str(out), "--pdf", str(pdf), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["alerts"] == 3 and summary["without_disposition"] == 1 and summary["faults"] == 1 and summary["evidence"] == 1
    assert summary["logged"] == 2
    text = out.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text  # self-contained
    dom = dump_dom(out)
    for aid, site, *_ in ALERTS:
        assert f'id="alert-{aid}"' in dom
    for aid, operator, disposition, note, _t in DISPOSITIONS:
        row = dom.split(f'id="alert-{aid}"')[1].split("</tr>")[0]
        assert operator in row and note in row
    assert "cheating" in dom and "false alarm" in dom and "no disposition" in dom
    assert "noise_floor_low" in dom and "antenna disconnected" in dom
    assert dom.count('class="page top-alert"') == 3
    assert dom.count("data:image/png;base64,") == 3  # timeline, top alert's spectrum and evidence spectrogram
    sites = dom.split('id="sites"')[1].split("</table>")[0]
    assert "school-12</td><td>08:00:00–08:10:00</td><td class=\"num\">100.0 %" in sites
    ev = dom.split('id="evidence-table"')[1]
    assert "matches" in ev and ALERTS[0][0] in ev
    assert "Not sealed" in dom
    for aid, *_ in LOGGED:
        assert f'id="alert-{aid}"' not in dom and aid not in "".join(dom.split('class="page top-alert"')[1:])
    alert_table = dom.split('id="alert-table"')[1].split("</table>")[0]
    assert "433.92" not in alert_table and "ism-remote" not in alert_table
    logged = dom.split('id="logged-table"')[1].split("</table>")[0]
    assert logged.count('class="logged"') == 1  # the two presses are one row: 2 times, first and last, longest, strongest
    row = logged.split('id="logged-1"')[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells == ["school-07 / rx0", "433.9205", "20.0", "ism-remote", LOGGED_BY, "2", "08:04:10", "08:08:00", "60.0", "16.5"], cells
    school07 = sites.split("<td>school-07</td>")[1].split("</tr>")[0]
    assert school07.endswith('<td class="num">1</td><td class="num">2</td>'), school07  # one alert, two logged
    assert "<b>2</b>logged, not alerted" in dom and "<b>3</b>alerts" in dom
    assert report.pdf_pages(pdf) == 3 + 3  # summary, alerts, three top alerts, evidence

    con = sqlite3.connect(db)  # one alert left: one top-alert page
    con.execute("delete from alerts where alert_id != ?", (ALERTS[0][0],))
    con.commit()
    con.close()
    r = CliRunner().invoke(main, ["report", "--db", str(db), "--session", SESSION, "-o", str(out), "--pdf", str(pdf)])
    assert r.exit_code == 0, r.output
    assert report.pdf_pages(pdf) == 3 + 1


def test_report_notices_changed_evidence(db, tmp_path):
    data = next((tmp_path / "evidence").glob("*.sigmf-data"))
    raw = bytearray(data.read_bytes())
    raw[100] ^= 1
    data.write_bytes(bytes(raw))
    d = report.load_report_data(db, SESSION)
    assert [e["state"] for e in d.evidence] == ["DIFFERS"]
    shutil.move(data, tmp_path / "elsewhere.bin")
    assert [e["state"] for e in report.load_report_data(db, SESSION).evidence] == ["not at the collector"]


def test_report_bad_input_is_one_line(db, tmp_path):
    for args, text in (
        (["--db", str(db), "--session", "nope", "-o", str(tmp_path / "r.html")], "no session 'nope'"),
        (["--db", str(tmp_path / "x.db"), "--session", SESSION, "-o", str(tmp_path / "r.html")], "no such database"),
        (["--db", str(db), "--session", SESSION, "-o", str(tmp_path / "no" / "r.html")], "no such directory"),
    ):
        r = CliRunner().invoke(main, ["report", *args])
        assert r.exit_code == 1 and r.output.startswith("error: ") and text in r.output and r.output.count("\n") == 1, r.output
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    r = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "junk.db"), "--session", SESSION, "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 1 and "not an SQLite database" in r.output and r.output.count("\n") == 1


def _member_offset(archive: Path, suffix: str) -> tuple[str, int, int]:
    with tarfile.open(archive) as tar:
        m = next(m for m in tar if m.name.endswith(suffix))
        return m.name.split("/", 1)[1], m.offset_data, m.size


def _flip(archive: Path, offset: int) -> None:
    raw = bytearray(archive.read_bytes())
    raw[offset] ^= 0x01
    archive.write_bytes(bytes(raw))


def test_seal_verifies_and_names_the_file_one_changed_byte_breaks(db, tmp_path):
    keys = make_keys(tmp_path / "keys")
    arc = tmp_path / "maths-am.seal.tar"
    r = CliRunner().invoke(main, ["seal", "--db", str(db), "--session", SESSION, "--keys", str(keys), "-o", str(arc), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["missing_evidence"] == [] and info["files"] == 4  # db, evidence meta + data, report
    assert seal.is_archive(arc) and not seal.is_archive(db)
    assert seal.verify_archive(arc, keys) == []
    with tarfile.open(arc) as tar:
        names = sorted(m.name.split("/", 1)[1] for m in tar)
        rep = tar.extractfile(next(m for m in tar if m.name.endswith("/report.html"))).read().decode()
        manifest = json.loads(tar.extractfile(next(m for m in tar if m.name.endswith("/manifest.json"))).read())
        snap = tmp_path / "snap.db"
        snap.write_bytes(tar.extractfile(next(m for m in tar if m.name.endswith("/collector.db"))).read())
    aid = ALERTS[0][0]
    assert names == sorted(["manifest.json", "manifest.sig", "collector-sign.pub", "report.html", "collector.db",
                            f"evidence/{aid}.sigmf-data", f"evidence/{aid}.sigmf-meta"])
    assert info["records_fingerprint"] == manifest["records_fingerprint"] and manifest["records_fingerprint"] in rep
    assert sqlite3.connect(snap).execute("select count(*) from alerts").fetchone()[0] == 3
    r = CliRunner().invoke(main, ["verify", str(arc), "--key", str(keys / "collector-sign.pub")])
    assert r.exit_code == 0 and ": ok: session maths-am" in r.output

    for suffix in (f"{aid}.sigmf-data", "collector.db", "report.html"):
        bad = tmp_path / f"bad-{suffix}.tar"
        shutil.copy(arc, bad)
        name, off, size = _member_offset(bad, suffix)
        _flip(bad, off + size // 2)
        problems = seal.verify_archive(bad)
        assert len(problems) == 1 and problems[0].startswith(f"{name}: changed since sealing"), problems
        r = CliRunner().invoke(main, ["verify", str(bad)])
        assert r.exit_code == 1 and f"error: {name}: changed since sealing" in r.output

    bad = tmp_path / "bad-manifest.tar"
    shutil.copy(arc, bad)
    name, off, size = _member_offset(bad, "manifest.json")
    raw = bytearray(bad.read_bytes())
    i = raw.index(b'"bytes": ', off) + len(b'"bytes": ')
    raw[i] = ord("9") if raw[i] != ord("9") else ord("8")  # a size in the manifest, rewritten
    bad.write_bytes(bytes(raw))
    assert any(p.startswith("manifest.json: signature does not match") for p in seal.verify_archive(bad))

    other = make_keys(tmp_path / "other-keys")
    assert seal.verify_archive(arc, other) == [f"collector-sign.pub: signed by a different key than {other / 'collector-sign.pub'}"]

    added = tmp_path / "added.tar"
    shutil.copy(arc, added)
    (tmp_path / "note.txt").write_text("x")
    with tarfile.open(added, "a") as tar:
        tar.add(tmp_path / "note.txt", arcname=f"{manifest['session']}-seal/evidence/note.txt")
    assert seal.verify_archive(added) == ["evidence/note.txt: not in the manifest (added after sealing)"]


WRITER = r"""
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=30)
con.execute("pragma journal_mode=wal")
con.execute("create table if not exists load (n integer, batch integer)")
b = 0
print("ready", flush=True)
while True:
    with con:
        con.executemany("insert into load values (?, ?)", [(i, b) for i in range(10)])
    b += 1
"""


def test_seal_snapshot_is_consistent_while_the_collector_writes(db, tmp_path):
    keys = make_keys(tmp_path / "keys")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        res = seal.seal(db, SESSION, tmp_path / "s.tar.gz", keys)
    finally:
        proc.kill()
        proc.wait()
    assert seal.verify_archive(res.path) == []
    with tarfile.open(res.path) as tar:
        (tmp_path / "snap.db").write_bytes(tar.extractfile(next(m for m in tar if m.name.endswith("/collector.db"))).read())
    con = sqlite3.connect(tmp_path / "snap.db")
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    n = con.execute("select count(*) from load").fetchone()[0]
    assert n % 10 == 0  # whole transactions only
    assert con.execute("select count(*) from alerts").fetchone()[0] == 3


def test_seal_bad_input_is_one_line(db, tmp_path):
    keys = make_keys(tmp_path / "keys")
    for args, text in (
        (["--keys", str(tmp_path / "nokeys"), "-o", str(tmp_path / "a.tar")], "no signing key"),
        (["--keys", str(keys), "-o", str(tmp_path / "a.zip")], ".tar"),
        (["--keys", str(keys), "--session", "nope", "-o", str(tmp_path / "a.tar")], "no session 'nope'"),
    ):
        full = ["seal", "--db", str(db)] + (["--session", SESSION] if "--session" not in args else []) + args
        r = CliRunner().invoke(main, full)
        assert r.exit_code == 1 and r.output.startswith("error: ") and text in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "a.tar").exists()
    (tmp_path / "junk.tar").write_bytes(b"\0" * 100)
    assert not seal.is_archive(tmp_path / "junk.tar")
