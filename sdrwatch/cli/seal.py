"""``sdrwatch seal``: archive a session's records (database snapshot, evidence, report) under a signed manifest."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="The collector's database (may be in use).")
@click.option("--session", required=True, help="Exam session to seal.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="Archive to write (.tar or .tar.gz).")
@click.option("--keys", "keys_dir", default="keys", show_default=True, type=click.Path(file_okay=False), help="Keys folder holding collector-sign.key.")
@click.option("--evidence-root", "roots", multiple=True, type=click.Path(file_okay=False), help="Folder to look for evidence files in (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line (archive, fingerprint, files, missing evidence).")
def seal(db_path, session, output, keys_dir, roots, as_json):
    """Seal a session (考后封存): a consistent snapshot of the database, the session's evidence
    files and its duty report, with a manifest of SHA-256 hashes signed by the collector's Ed25519
    key. `sdrwatch verify ARCHIVE` checks it and names any file that changed.

    \b
    Example:
      sdrwatch seal --db collector.db --session maths-am --keys keys -o maths-am.seal.tar
    """
    import json

    from ..views.seal import seal as do_seal

    res = do_seal(db_path, session, output, keys_dir, evidence_roots=[Path(r) for r in roots])
    if as_json:
        click.echo(json.dumps({"archive": str(res.path), "records_fingerprint": res.fingerprint, "files": len(res.files),
                               "missing_evidence": res.missing_evidence, "signing_key_sha256": res.key_fingerprint}))
        return
    click.echo(f"{res.path}: {len(res.files)} files sealed; records fingerprint {res.fingerprint}")
    for m in res.missing_evidence:
        click.echo(f"warning: evidence of {m['alert_id']} is not at the collector ({m['path']}); its SHA-512 is in the manifest", err=True)
