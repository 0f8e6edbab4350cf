"""Shared fixtures: real, tiny filesystems for full-disk tests; the simulator served over rtl_tcp."""
import os
import subprocess
from pathlib import Path

import pytest

from simserver import SimServer


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


def _sim_servers(directory: Path):
    servers = []

    def start(scene, port: int = 0) -> SimServer:
        if isinstance(scene, str) and "\n" in scene:
            path = directory / f"scene{len(servers)}.toml"
            path.write_text(scene)
            scene = path
        server = SimServer(scene, directory, port)
        servers.append(server)
        return server

    return start, servers


@pytest.fixture()
def sim_server(tmp_path):
    """``sim_server(scene, port=0) -> SimServer``: ``sdrwatch simulate --rtl-tcp`` as a real process,
    serving when it returns (``.port``, ``.uri``, ``.kill()``, ``.start()`` again on the same port).
    ``scene``: a scene's TOML text, or a scene file (with an optional ``?t0=S``). Every server started
    is stopped at the end of the test."""
    start, servers = _sim_servers(tmp_path)
    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def module_sim_server(tmp_path_factory):
    """As ``sim_server``, for servers a whole test module shares (stopped after its last test)."""
    start, servers = _sim_servers(tmp_path_factory.mktemp("sim"))
    yield start
    for server in servers:
        server.stop()
