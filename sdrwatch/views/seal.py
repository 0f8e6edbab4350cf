"""Sealed records (考后封存): one archive per exam session that nobody can change quietly.

An archive is a tar file (``.tar``, or ``.tar.gz``) with one top folder holding:

=======================  ========================================================================
``collector.db``         a consistent snapshot of the collector's database (SQLite's backup API,
                         safe while the collector keeps writing)
``evidence/...``         the session's IQ evidence files (SigMF ``.sigmf-meta`` + ``.sigmf-data``)
``report.html``          the duty report, made from the snapshot; it prints the records fingerprint
``manifest.json``        SHA-256 and size of every file above, the session, the time of sealing and
                         ``records_fingerprint``: SHA-256 of the canonical JSON of the database and
                         evidence entries (what the report prints)
``manifest.sig``         Ed25519 signature of ``manifest.json`` (base64), by the collector's
                         signing key ``KEYS/collector-sign.key`` (``sdrwatch keys init`` makes it)
``collector-sign.pub``   the public key that signed it (PEM); check it against the one you trust
=======================  ========================================================================

:func:`verify_archive` checks every hash, the signature and the file list, and names each file that
changed, went missing or was added. Evidence the collector could not read when sealing (it stayed
at the site) is listed in ``missing_evidence`` with its SHA-512, so it can be checked later.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import SdrwatchError

FORMAT = "sdrwatch-seal"
VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "collector-sign.pub"
SIGN_KEY = "collector-sign.key"
CONTROL = (MANIFEST, SIGNATURE, PUBLIC_KEY)
DATABASE = "collector.db"
REPORT = "report.html"


class SealError(SdrwatchError):
    """An archive or a signing key that cannot be used."""


@dataclass
class SealResult:
    path: Path
    fingerprint: str
    files: dict
    missing_evidence: list = field(default_factory=list)
    key_fingerprint: str = ""


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def records_fingerprint(files: dict) -> str:
    """SHA-256 of the canonical JSON of the database and evidence entries (everything but the report)."""
    return hashlib.sha256(canonical({k: v for k, v in sorted(files.items()) if k != REPORT})).hexdigest()


def snapshot_db(db_path: str | Path, out: Path) -> Path:
    """A consistent copy of a (possibly live, WAL) SQLite database through the online backup API."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise SealError(f"{db_path}: no such database")
    try:
        src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)
            dst.execute("pragma journal_mode=delete")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
            src.close()
    except sqlite3.DatabaseError as exc:
        raise SealError(f"{db_path}: cannot snapshot the database ({exc})") from None
    return out


def load_signing_key(keys_dir: str | Path):
    """The collector's Ed25519 private key, ``KEYS/collector-sign.key`` (PEM, PKCS#8)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(keys_dir) / SIGN_KEY
    if not path.is_file():
        raise SealError(f"{path}: no signing key (make the keys with: sdrwatch keys init --dir {keys_dir})")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SealError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SealError(f"{path}: not an Ed25519 key")
    return key


def _public_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_fingerprint(public_pem: bytes) -> str:
    """SHA-256 of the raw 32-byte Ed25519 public key, hex."""
    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key(public_pem)
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def seal(db_path: str | Path, session: str, out: str | Path, keys_dir: str | Path, *, evidence_roots: Sequence[Path] = (),
         spectrum_logs: dict | None = None, report_copy: str | Path | None = None) -> SealResult:
    """Seal one session's records into ``out`` (see the module docstring)."""
    from .report import file_digest, load_report_data, write_report

    out = Path(out)
    if not (out.name.endswith(".tar") or out.name.endswith(".tar.gz") or out.name.endswith(".tgz")):
        raise SealError(f"{out}: a seal is a .tar (or .tar.gz) archive")
    if not out.parent.is_dir():
        raise SealError(f"cannot write {out}: no such directory {out.parent}")
    key = load_signing_key(keys_dir)
    pub_pem = _public_pem(key)
    db_path = Path(db_path)
    root = f"{_safe(session)}-seal"
    with tempfile.TemporaryDirectory(prefix="sdrwatch-seal-") as tmp:
        stage = Path(tmp) / root
        (stage / "evidence").mkdir(parents=True)
        snap = snapshot_db(db_path, stage / DATABASE)
        data = load_report_data(snap, session, [db_path.parent, *map(Path, evidence_roots)])
        missing = []
        for ev in data.evidence:
            found = ev.get("file")
            if found is None:
                missing.append({"alert_id": ev["alert_id"], "path": ev["path"], "sha512": ev["sha512"]})
                continue
            for part in (found, found.with_name(found.name.replace(".sigmf-data", ".sigmf-meta"))):
                dst = stage / "evidence" / part.name
                if not dst.exists():
                    shutil.copy2(part, dst)
        files = {}
        for p in sorted(stage.rglob("*")):
            if p.is_file():
                files[p.relative_to(stage).as_posix()] = {"sha256": file_digest(p, "sha256"), "bytes": p.stat().st_size}
        fingerprint = records_fingerprint(files)
        write_report(snap, session, stage / REPORT, fingerprint=fingerprint, evidence_roots=[stage / "evidence"], spectrum_logs=spectrum_logs)
        files[REPORT] = {"sha256": file_digest(stage / REPORT, "sha256"), "bytes": (stage / REPORT).stat().st_size}
        if report_copy is not None:  # the sealed report (with its fingerprint) beside the archive too
            from .plots import write_atomically

            write_atomically(Path(report_copy), (stage / REPORT).read_bytes())
        manifest = {
            "format": FORMAT, "version": VERSION, "session": session,
            "sealed": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "database": str(db_path.resolve()), "records_fingerprint": fingerprint, "files": files,
            "missing_evidence": missing, "signing_key_sha256": key_fingerprint(pub_pem),
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True, indent=1).encode() + b"\n"
        (stage / MANIFEST).write_bytes(manifest_bytes)
        (stage / SIGNATURE).write_bytes(base64.b64encode(key.sign(manifest_bytes)) + b"\n")
        (stage / PUBLIC_KEY).write_bytes(pub_pem)
        tmp_out = out.with_name(f".{out.name}.tmp{os.getpid()}")
        try:
            with tarfile.open(tmp_out, "w:gz" if not out.name.endswith(".tar") else "w", format=tarfile.PAX_FORMAT) as tar:
                for name in (*CONTROL, REPORT, DATABASE):
                    tar.add(stage / name, arcname=f"{root}/{name}")
                for p in sorted((stage / "evidence").iterdir()):
                    tar.add(p, arcname=f"{root}/evidence/{p.name}")
            os.replace(tmp_out, out)
        except OSError as exc:
            tmp_out.unlink(missing_ok=True)
            raise SealError(f"cannot write {out}: {exc.strerror or exc}") from None
    return SealResult(out, fingerprint, files, missing, manifest["signing_key_sha256"])


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return keep or "session"


def is_archive(path: str | Path) -> bool:
    """True if ``path`` is a tar file whose top folder holds a ``manifest.json`` (a seal)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        if not tarfile.is_tarfile(p):
            return False
        with tarfile.open(p) as tar:
            for m in tar:
                parts = m.name.split("/")
                if len(parts) == 2 and parts[1] == MANIFEST:
                    return True
        return False
    except (tarfile.TarError, OSError, EOFError):
        return False


def verify_archive(path: str | Path, trusted_public_key: str | Path | None = None) -> list[str]:
    """Problems with a sealed archive, one line each naming the file; [] if every hash, the
    signature and the file list hold. With ``trusted_public_key`` (a PEM file, or a keys folder
    holding ``collector-sign.pub``) the signer must be that key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    path = Path(path)
    problems: list[str] = []
    members: dict[str, str] = {}  # name in the archive -> sha256
    control: dict[str, bytes] = {}
    root = None
    try:
        with tarfile.open(path) as tar:
            for m in tar:
                parts = m.name.split("/", 1)
                if root is None:
                    root = parts[0]
                if parts[0] != root or len(parts) != 2:
                    problems.append(f"{m.name}: outside the seal's folder {root}/")
                    continue
                name = parts[1]
                if m.isdir():
                    continue
                if not m.isfile():
                    problems.append(f"{name}: not a regular file")
                    continue
                fh = tar.extractfile(m)
                h = hashlib.sha256()
                buf = io.BytesIO() if name in CONTROL else None
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
                    if buf is not None:
                        buf.write(chunk)
                members[name] = h.hexdigest()
                if buf is not None:
                    control[name] = buf.getvalue()
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        return problems + [f"{path.name}: not a readable archive ({type(exc).__name__}: {exc})"]
    for name in CONTROL:
        if name not in control:
            problems.append(f"{name}: missing from the archive")
    if MANIFEST not in control:
        return problems
    try:
        manifest = json.loads(control[MANIFEST])
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
            raise ValueError("not an sdrwatch seal manifest")
    except ValueError as exc:
        return problems + [f"{MANIFEST}: unreadable ({exc})"]
    if PUBLIC_KEY in control and SIGNATURE in control:
        try:
            pub = serialization.load_pem_public_key(control[PUBLIC_KEY])
            pub.verify(base64.b64decode(control[SIGNATURE].strip(), validate=True), control[MANIFEST])
        except InvalidSignature:
            problems.append(f"{MANIFEST}: signature does not match (the manifest or {SIGNATURE} was changed)")
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(f"{SIGNATURE}: unusable signature or key ({exc})")
        if trusted_public_key is not None:
            tp = Path(trusted_public_key)
            tp = tp / PUBLIC_KEY if tp.is_dir() else tp
            try:
                if key_fingerprint(tp.read_bytes()) != key_fingerprint(control[PUBLIC_KEY]):
                    problems.append(f"{PUBLIC_KEY}: signed by a different key than {tp}")
            except (OSError, ValueError) as exc:
                problems.append(f"{tp}: cannot read the trusted key ({exc})")
    files = manifest["files"]
    for name, entry in sorted(files.items()):
        got = members.get(name)
        if got is None:
            problems.append(f"{name}: missing from the archive")
        elif not isinstance(entry, dict) or got != entry.get("sha256"):
            problems.append(f"{name}: changed since sealing (SHA-256 {got[:16]}..., sealed {str((entry or {}).get('sha256'))[:16]}...)")
    for name in sorted(set(members) - set(files) - set(CONTROL)):
        problems.append(f"{name}: not in the manifest (added after sealing)")
    if records_fingerprint(files) != manifest.get("records_fingerprint"):
        problems.append(f"{MANIFEST}: records fingerprint does not match its file list")
    return problems


def describe_archive(path: str | Path) -> dict:
    """Session, time of sealing, fingerprints and file count of an archive (no checking)."""
    with tarfile.open(path) as tar:
        for m in tar:
            parts = m.name.split("/")
            if len(parts) == 2 and parts[1] == MANIFEST:
                manifest = json.loads(tar.extractfile(m).read())
                return {"session": manifest.get("session"), "sealed": manifest.get("sealed"), "records_fingerprint": manifest.get("records_fingerprint"),
                        "signing_key_sha256": manifest.get("signing_key_sha256"), "files": len(manifest.get("files", {})),
                        "missing_evidence": len(manifest.get("missing_evidence", []))}
    raise SealError(f"{path}: no manifest")
