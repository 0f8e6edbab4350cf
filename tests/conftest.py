"""Shared fixtures: a real, tiny filesystem for full-disk tests."""
import os
import subprocess

import pytest


def _mount_tmpfs(path, size: str):
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")


@pytest.fixture()
def tiny_tmpfs(tmp_path):
    """A real 1 MiB filesystem; skipped where mounting is not permitted."""
    mnt = tmp_path / "tiny"
    _mount_tmpfs(mnt, "1m")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.fixture()
def full_tmpfs(tmp_path):
    """A real 16 KiB filesystem, too small for any baseline file."""
    mnt = tmp_path / "full"
    _mount_tmpfs(mnt, "16k")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
