"""The keys directory: ZeroMQ CURVE certificates for the collector, agents and consoles, the collector's
allowlist, and the collector's Ed25519 key pair for sealing records.

Layout of ``KEYS`` (every certificate is a ZeroMQ certificate file as ``zmq.auth.create_certificates``
writes it and ``zmq.auth.load_certificate`` reads it)::

    collector.key           collector public certificate (give it to every agent and console)
    collector.key_secret    collector secret certificate (stays on the collector, mode 0600)
    collector-sign.key      Ed25519 private key for seals (PEM, PKCS#8, mode 0600)
    collector-sign.pub      Ed25519 public key (PEM)
    NAME.key / NAME.key_secret   an agent's or console's key pair (the secret goes to that station)
    allowed/NAME.key        the allowlist: public certificates with metadata ``name``, ``site``, ``role``
    revoked/NAME.key        revoked keys, kept for the record

The collector trusts only ``allowed/``; it reloads that directory when it changes, so ``allow`` and
``revoke`` take effect without a restart. A station's site is the ``site`` in its allowlist entry.
"""
from __future__ import annotations

import datetime
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import SdrwatchError

ROLES = ("agent", "console")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RESERVED = ("collector", "collector-sign")


class KeysError(SdrwatchError):
    """A key directory or key file that cannot be used."""


@dataclass(frozen=True)
class KeyInfo:
    """One allowlist entry."""

    name: str
    site: str | None
    role: str
    public_key: bytes  # Z85, 40 bytes
    path: Path

    def as_record(self, allowed: bool = True) -> dict:
        return {"name": self.name, "site": self.site, "role": self.role, "allowed": allowed,
                "public_key": self.public_key.decode(), "path": str(self.path)}


def check_name(name: str, what: str = "key name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeysError(f"{what} {name!r} must be 1-64 letters, digits or ._- (starting with a letter or digit)")
    if name in RESERVED:
        raise KeysError(f"{what} {name!r} is reserved for the collector")
    return name


def _write_cert(path: Path, public_key: bytes, secret_key: bytes | None = None, metadata: dict | None = None) -> None:
    """Write a ZeroMQ certificate file (the zmq.auth/czmq format), atomically; secret ones mode 0600."""
    kind = "**Secret** Certificate" if secret_key else "Public Certificate"
    lines = [f"#   ****  Generated on {datetime.datetime.now()} by sdrwatch  ****", f"#   ZeroMQ CURVE {kind}", "", "metadata"]
    for k, v in (metadata or {}).items():
        if v is not None:
            lines.append(f'    {k} = "{v}"')
    lines += ["curve", f'    public-key = "{public_key.decode()}"']
    if secret_key:
        lines.append(f'    secret-key = "{secret_key.decode()}"')
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret_key else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def read_metadata(path: Path) -> dict[str, str]:
    """The ``metadata`` section of a certificate file."""
    meta: dict[str, str] = {}
    section = None
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            section = raw.strip()
            continue
        if section == "metadata" and "=" in raw:
            k, v = raw.split("=", 1)
            meta[k.strip()] = v.strip().strip("\"'")
    return meta


def load_public(path: str | Path) -> bytes:
    """The Z85 public key of a certificate file; one-line error if it is not one."""
    import zmq.auth

    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise KeysError(f"cannot read certificate {path}: {exc}") from None
    if len(public) != 40:
        raise KeysError(f"certificate {path} does not hold a 40-character Z85 public key")
    return public


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys of a secret certificate file; one-line error if it is not one."""
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise KeysError(f"cannot read certificate {path}: {exc}") from None
    if not secret:
        raise KeysError(f"certificate {path} holds no secret key (use the NAME.key_secret file)")
    if len(public) != 40 or len(secret) != 40:
        raise KeysError(f"certificate {path} does not hold 40-character Z85 keys")
    return public, secret


def _dir(keys_dir: str | Path, must_exist: bool = True) -> Path:
    d = Path(keys_dir)
    if must_exist and not (d / "collector.key").is_file():
        raise KeysError(f"{d} is not a keys directory (no collector.key); run 'sdrwatch keys init --dir {d}' first")
    return d


def init(keys_dir: str | Path) -> dict:
    """Create the collector's CURVE key pair, its Ed25519 seal key pair and the allowlist directories."""
    import zmq
    import zmq.auth
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    d = Path(keys_dir)
    if (d / "collector.key_secret").exists() or (d / "collector-sign.key").exists():
        raise KeysError(f"{d} already holds collector keys; refusing to overwrite them")
    d.mkdir(parents=True, exist_ok=True)
    (d / "allowed").mkdir(exist_ok=True)
    (d / "revoked").mkdir(exist_ok=True)
    pub_file, sec_file = zmq.auth.create_certificates(str(d), "collector", metadata={"role": "collector"})
    os.chmod(sec_file, 0o600)
    sign = Ed25519PrivateKey.generate()
    priv_pem = sign.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub_pem = sign.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(d / "collector-sign.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv_pem)
    (d / "collector-sign.pub").write_bytes(pub_pem)
    return {"collector_key": pub_file, "collector_key_secret": sec_file, "sign_key": str(d / "collector-sign.key"),
            "sign_pub": str(d / "collector-sign.pub"), "public_key": load_public(pub_file).decode()}


def new(keys_dir: str | Path, name: str, site: str | None, console: bool = False, check_duplicates: bool = True) -> dict:
    """Create a key pair for an agent (allowed for ``site``) or an operator console, and allow it."""
    import zmq.auth

    d = _dir(keys_dir)
    check_name(name)
    role = "console" if console else "agent"
    if role == "agent":
        if not site:
            raise KeysError("an agent key needs --site SITE (the site its alerts are recorded under)")
    if site is not None:
        check_name(site, "site")
    if (d / f"{name}.key_secret").exists() or (d / "allowed" / f"{name}.key").exists():
        raise KeysError(f"key {name!r} already exists in {d}; revoke it or choose another name")
    meta = {"name": name, "site": site, "role": role}
    pub_file, sec_file = zmq.auth.create_certificates(str(d), name, metadata={k: v for k, v in meta.items() if v})
    os.chmod(sec_file, 0o600)
    info = allow(d, name, site=site, console=console, public_file=pub_file, check_duplicates=check_duplicates)
    return {**info.as_record(), "key_secret": sec_file, "key": pub_file}


def allow(keys_dir: str | Path, name: str, site: str | None = None, console: bool = False,
          public_file: str | Path | None = None, check_duplicates: bool = True) -> KeyInfo:
    """Put a public key on the allowlist (from ``public_file``, ``revoked/NAME.key`` or ``NAME.key``)."""
    d = _dir(keys_dir)
    check_name(name)
    (d / "allowed").mkdir(exist_ok=True)
    revoked = d / "revoked" / f"{name}.key"
    old_meta: dict[str, str] = {}
    if public_file is None:
        for cand in (revoked, d / f"{name}.key"):
            if cand.is_file():
                public_file = cand
                break
        else:
            raise KeysError(f"no public key for {name!r} in {d}; give its certificate with --public FILE")
        old_meta = read_metadata(public_file)
    role = "console" if console else old_meta.get("role", "agent")
    site = site or old_meta.get("site") or None
    if role == "agent" and not site:
        raise KeysError(f"agent key {name!r} needs --site SITE")
    if site is not None:
        check_name(site, "site")
    public = load_public(public_file)
    for other in list_keys(d) if check_duplicates else ():
        if other.allowed and other.public_key == public.decode() and other.name != name:
            raise KeysError(f"that public key is already allowed as {other.name!r}")
    target = d / "allowed" / f"{name}.key"
    _write_cert(target, public, metadata={"name": name, "site": site, "role": role})
    if revoked.exists():
        revoked.unlink()
    return KeyInfo(name, site, role, public, target)


def revoke(keys_dir: str | Path, name: str) -> dict:
    """Take a key off the allowlist (kept in ``revoked/``); a running collector refuses it within a second."""
    d = _dir(keys_dir)
    check_name(name)
    src = d / "allowed" / f"{name}.key"
    if not src.is_file():
        raise KeysError(f"key {name!r} is not on the allowlist of {d}")
    (d / "revoked").mkdir(exist_ok=True)
    dst = d / "revoked" / f"{name}.key"
    shutil.copyfile(src, dst)
    src.unlink()
    meta = read_metadata(dst)
    return {"name": name, "site": meta.get("site"), "role": meta.get("role", "agent"), "allowed": False}


@dataclass(frozen=True)
class Listed:
    name: str
    site: str | None
    role: str
    public_key: str
    allowed: bool

    def as_record(self) -> dict:
        return {"name": self.name, "site": self.site, "role": self.role, "allowed": self.allowed, "public_key": self.public_key}


def list_keys(keys_dir: str | Path) -> list[Listed]:
    """Every allowed and revoked key, by name."""
    d = _dir(keys_dir)
    out = []
    for sub, allowed in (("allowed", True), ("revoked", False)):
        for path in sorted((d / sub).glob("*.key")):
            try:
                public = load_public(path).decode()
            except KeysError:
                continue
            meta = read_metadata(path)
            out.append(Listed(meta.get("name", path.stem), meta.get("site") or None, meta.get("role", "agent"), public, allowed))
    return out


def load_allowlist(keys_dir: str | Path) -> dict[bytes, KeyInfo]:
    """Public key (Z85) -> :class:`KeyInfo` for every readable entry of ``KEYS/allowed``."""
    out: dict[bytes, KeyInfo] = {}
    for path in sorted((Path(keys_dir) / "allowed").glob("*.key")):
        try:
            public = load_public(path)
        except KeysError:
            continue
        meta = read_metadata(path)
        role = meta.get("role", "agent")
        if role not in ROLES:
            continue
        out[public] = KeyInfo(meta.get("name", path.stem), meta.get("site") or None, role, public, path)
    return out


def allowlist_signature(keys_dir: str | Path, full: bool = True) -> tuple:
    """Changes whenever a file in ``KEYS/allowed`` is added, removed or rewritten. ``full=False`` looks
    at the directory only (a file added, removed or replaced by rename, as sdrwatch writes them)."""
    d = Path(keys_dir) / "allowed"
    try:
        if not full:
            st = os.stat(d)
            return (st.st_mtime_ns, st.st_ino)
        return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(d) if e.name.endswith(".key")))
    except OSError:
        return ()
