"""``sdrwatch verify``: check a sealed archive or an IQ evidence file against its recorded hashes."""
from __future__ import annotations

import click


@click.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--key", "trusted_key", type=click.Path(exists=True), default=None, help="The collector's collector-sign.pub (or its keys folder) the seal must be signed with.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line: ok and the problems found.")
def verify(path, trusted_key, as_json):
    """Check a sealed archive (every SHA-256, the Ed25519 signature, the file list) or a SigMF
    evidence file (its SHA-512). Names every file that changed; exits 1 if anything did.

    \b
    Examples:
      sdrwatch verify maths-am.seal.tar --key keys/collector-sign.pub
      sdrwatch verify state/evidence/ALERT.sigmf-meta
    """
    import json

    from ..errors import SdrwatchError
    from ..views.seal import describe_archive, is_archive, verify_archive

    if is_archive(path):
        problems = verify_archive(path, trusted_key)
        what = describe_archive(path) if not problems else {}
    else:
        try:
            from ..agent.evidence import verify_evidence  # type: ignore[import-not-found]
        except ImportError:
            verify_evidence = None
        if verify_evidence is not None:
            problems = list(verify_evidence(path) or [])
        else:
            from ..radio.file import open_recording

            try:
                open_recording(path).verify()
                problems = []
            except SdrwatchError as exc:
                problems = [str(exc)]
        what = {}
    if as_json:
        click.echo(json.dumps({"path": str(path), "ok": not problems, "problems": problems, **what}))
    else:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        if not problems:
            extra = f": session {what['session']}, {what['files']} files, records fingerprint {what['records_fingerprint']}" if what else ""
            click.echo(f"{path}: ok{extra}")
    if problems:
        raise SystemExit(1)
