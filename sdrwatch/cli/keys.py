"""``sdrwatch keys``: the collector's keys, and the agent and console keys it allows.

Every command prints JSON lines on stdout (one object per key) and a one-line ``error:`` on bad input.
"""
from __future__ import annotations

import json

import click

from ..net import keys as K


def _dir_option(f):
    return click.option("--dir", "keys_dir", required=True, type=click.Path(file_okay=False),
                        help="Keys directory (KEYS).")(f)


@click.group()
def keys() -> None:
    """Manage CURVE keys: the collector's pair, and the allowlist of agents and consoles.

    Key files are ZeroMQ certificates (zmq.auth.load_certificate reads them). Copy
    KEYS/NAME.key_secret and KEYS/collector.key to the station NAME. Allow and revoke take
    effect on a running collector within a second.

    \b
    Examples:
      sdrwatch keys init --dir keys
      sdrwatch keys new school-12 --site school-12 --dir keys
      sdrwatch keys new desk-1 --console --dir keys
      sdrwatch keys revoke school-12 --dir keys
      sdrwatch keys list --dir keys
    """


@keys.command("init")
@_dir_option
def keys_init(keys_dir: str) -> None:
    """Create the collector's CURVE key pair and its Ed25519 seal signing key pair.

    \b
    Example:
      sdrwatch keys init --dir keys
    """
    click.echo(json.dumps(K.init(keys_dir)))


@keys.command("new")
@click.argument("name")
@click.option("--site", default=None, help="Site the agent's records are stored under (required for agents).")
@click.option("--console", is_flag=True, help="An operator console key (history, live feed, dispositions).")
@_dir_option
def keys_new(name: str, site: str | None, console: bool, keys_dir: str) -> None:
    """Create a key pair for agent NAME (allowed for SITE) or for an operator console, and allow it.

    \b
    Examples:
      sdrwatch keys new school-12 --site school-12 --dir keys
      sdrwatch keys new desk-1 --console --dir keys
    """
    click.echo(json.dumps(K.new(keys_dir, name, site, console=console)))


@keys.command("allow")
@click.argument("name")
@click.option("--site", default=None, help="Site for an agent key (default: the one it had).")
@click.option("--console", is_flag=True, help="Allow it as an operator console key.")
@click.option("--public", "public_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="A public certificate made elsewhere (default: KEYS/revoked/NAME.key or KEYS/NAME.key).")
@_dir_option
def keys_allow(name: str, site: str | None, console: bool, public_file: str | None, keys_dir: str) -> None:
    """Put key NAME (back) on the collector's allowlist.

    \b
    Examples:
      sdrwatch keys allow school-12 --dir keys
      sdrwatch keys allow school-40 --site school-40 --public school-40.key --dir keys
    """
    info = K.allow(keys_dir, name, site=site, console=console, public_file=public_file)
    click.echo(json.dumps(info.as_record()))


@keys.command("revoke")
@click.argument("name")
@_dir_option
def keys_revoke(name: str, keys_dir: str) -> None:
    """Take key NAME off the allowlist; a running collector refuses it from then on.

    \b
    Example:
      sdrwatch keys revoke school-12 --dir keys
    """
    click.echo(json.dumps(K.revoke(keys_dir, name)))


@keys.command("list")
@_dir_option
def keys_list(keys_dir: str) -> None:
    """List allowed and revoked keys (JSON lines: name, site, role, allowed, public_key).

    \b
    Example:
      sdrwatch keys list --dir keys
    """
    for k in K.list_keys(keys_dir):
        click.echo(json.dumps(k.as_record()))
