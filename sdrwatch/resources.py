"""Where sdrwatch's package data lives: firmware profiles, simulator scenes and the demo recordings.

The data is read through :mod:`importlib.resources`, so an installed wheel works exactly like a
checkout. In the source tree ``sdrwatch/_data/firmware_profiles`` and ``sdrwatch/_data/recordings``
are symlinks to the top-level ``firmware_profiles/`` and ``recordings/`` folders; a wheel carries
copies of them in the same place (see ``[tool.setuptools.package-data]`` in ``pyproject.toml``).

    from sdrwatch import resources
    resources.profiles_dir()             # .../firmware_profiles
    resources.profiles_dir("threats")    # .../firmware_profiles/threats (also receivers, benign, bands, ...)
    resources.recordings_dir()           # .../recordings (the demo and regression recordings)
    resources.scenes_dir()               # .../recordings/scenes

``$SDRWATCH_PROFILES`` replaces the profiles folder (a site's own threat classes and tuner
profiles).
"""
from __future__ import annotations

import os
from importlib import resources as _ir
from pathlib import Path

from .errors import SdrwatchError

PROFILES_ENV = "SDRWATCH_PROFILES"


def _package_data(name: str) -> Path:
    root = _ir.files("sdrwatch") / "_data" / name
    if not isinstance(root, Path):  # a zip import: sdrwatch is installed unpacked (zip-safe = false)
        raise SdrwatchError(f"sdrwatch's package data {name!r} is not on the file system ({root}); install sdrwatch unpacked")
    return root


def profiles_dir(kind: str | None = None) -> Path:
    """The ``firmware_profiles`` folder, or its sub-folder ``kind`` (``"threats"``, ``"receivers"``, ...).

    The folder is not checked for existence here: each registry says what it expected to find.
    """
    env = os.environ.get(PROFILES_ENV)
    root = Path(env).expanduser() if env else _package_data("firmware_profiles")
    return root / kind if kind else root


def recordings_dir() -> Path:
    """The folder of shipped recordings (SigMF pairs), with ``scenes/`` and ``expected/`` inside."""
    return _package_data("recordings")


def scenes_dir() -> Path:
    """The simulator's shipped scenes (``sim:NAME`` looks a bare name up here)."""
    return recordings_dir() / "scenes"
