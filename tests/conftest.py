"""Shared fixtures: real, tiny filesystems for full-disk tests."""
import os
import subprocess

import pytest


@pytest.fixture()
def make_tmpfs(tmp_path):
    """``make_tmpfs(size, name)`` mounts a real tmpfs of that size; skipped where mounting is not allowed."""
    mounted = []

    def make(size: str, name: str):
        path = tmp_path / name
        path.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.fixture()
def tiny_tmpfs(make_tmpfs):
    """A real 1 MiB filesystem."""
    return make_tmpfs("1m", "tiny")


@pytest.fixture()
def full_tmpfs(make_tmpfs):
    """A real 16 KiB filesystem, too small for any baseline file."""
    return make_tmpfs("16k", "full")
