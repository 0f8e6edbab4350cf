"""Every command has a docstring with an example, and the README documents the replay contract."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdrwatch.cli import COMMANDS, main


def _commands():
    import click

    ctx = click.Context(main, info_name="sdrwatch")
    for name in COMMANDS:
        cmd = main.get_command(ctx, name)
        yield name, cmd
        for sub in getattr(cmd, "commands", {}).values():
            yield f"{name} {sub.name}", sub


@pytest.mark.parametrize("name,cmd", list(_commands()))
def test_every_command_has_help_with_an_example(name, cmd):
    assert cmd is not None, f"{name} is registered but does not load"
    res = CliRunner().invoke(main, name.split() + ["--help"])
    assert res.exit_code == 0, res.output
    assert "Example" in res.output, f"sdrwatch {name} --help shows no example"


def test_readme_documents_every_replay_key():
    from sdrwatch.dsp.tracker import Emission

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    keys = Emission(1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1, "new", 0.005, 1.0).as_record()
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"README lacks {missing}"
