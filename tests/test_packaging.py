"""A real install: build sdrwatch's wheel, install it into a fresh venv and use it from outside the checkout.

The wheel is built once per test run (from a clean copy of the tree, so no stale ``build/`` leaks into
it). The venv gets no network: its dependencies come from the running environment through a ``.pth``
file, which adds those folders to ``sys.path`` *after* the venv's own site-packages, without processing
their ``.pth`` files (so an editable sdrwatch there cannot shadow the installed wheel).
"""
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from click.testing import CliRunner

from sdrwatch import resources
from sdrwatch.cli import main

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
                                ".venv", "out")


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=IGNORE)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
          "-w", str(base / "dist"), str(src)])
    (whl,) = (base / "dist").glob("sdrwatch-*.whl")
    return whl


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("venv")
    env_dir = home / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    py = env_dir / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    parent = [p for p in {*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
              if Path(p).is_dir()]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SDRWATCH_PROFILES", "PYTHONHOME")}
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
          "--disable-pip-version-check", str(wheel)], env=env)
    # after the install: pip would otherwise see the running environment's sdrwatch as "already satisfied"
    (purelib / "_sdrwatch_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(parent)))
    work = home / "work"  # away from the checkout: nothing there is importable
    work.mkdir()
    return {"py": py, "sdrwatch": env_dir / "bin" / "sdrwatch", "env": env, "cwd": work, "prefix": env_dir}


def _in_venv(venv, *args, check=True):
    proc = subprocess.run([str(venv["sdrwatch"]), *args], capture_output=True, text=True, timeout=120, env=venv["env"],
                          cwd=venv["cwd"])
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def _tracked_data() -> set[str]:
    """Every profile, scene and recording in the checkout, as a wheel path."""
    out = {f"sdrwatch/_data/firmware_profiles/{p.relative_to(ROOT / 'firmware_profiles')}"
           for p in (ROOT / "firmware_profiles").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    for pattern in ("*.sigmf-meta", "*.sigmf-data", "scenes/*.toml", "expected/*.jsonl"):
        out |= {f"sdrwatch/_data/recordings/{p.relative_to(ROOT / 'recordings')}" for p in (ROOT / "recordings").glob(pattern)}
    return out


def test_the_wheel_carries_every_profile_scene_and_recording(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _tracked_data()
    assert any("/threats/" in n for n in expected) and any("/receivers/" in n for n in expected)
    assert any(n.endswith(".sigmf-data") for n in expected) and any("/scenes/" in n for n in expected)
    assert expected <= names, sorted(expected - names)
    with zipfile.ZipFile(wheel) as zf:  # copies of the files, not links to a checkout
        member = "sdrwatch/_data/firmware_profiles/threats/nbfm-voice.toml"
        assert zf.read(member) == (ROOT / "firmware_profiles" / "threats" / "nbfm-voice.toml").read_bytes()


def test_the_installed_wheel_reads_its_own_package_data(venv):
    proc = subprocess.run([str(venv["py"]), "-c", "import json, sdrwatch, sdrwatch.resources as r; print(json.dumps("
                           "[sdrwatch.__file__, str(r.profiles_dir('threats')), str(r.recordings_dir())]))"],
                          capture_output=True, text=True, env=venv["env"], cwd=venv["cwd"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    module, threats, recordings = json.loads(proc.stdout)
    prefix = str(venv["prefix"])
    assert module.startswith(prefix) and threats.startswith(prefix) and recordings.startswith(prefix)
    assert not str(ROOT) in module
    assert sorted(p.name for p in Path(threats).glob("*.toml")) == sorted(p.name for p in (ROOT / "firmware_profiles" / "threats").glob("*.toml"))


def test_the_installed_wheel_labels_a_replay(venv):
    proc = _in_venv(venv, "replay", "--format", "jsonl", str(_venv_recordings(venv) / "fm-voice-appears"))
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert records and {r["label"] for r in records} == {"nbfm-voice"}, records


def test_the_installed_wheel_runs_the_demo(venv):
    proc = _in_venv(venv, "demo", "--replay-only")
    assert proc.stdout.count("ground truth: threats found") == 5, proc.stdout[-2000:]
    assert "false alarms 0" in proc.stdout and "pager-fsk" in proc.stdout


def test_the_installed_wheel_finds_its_scenes(venv):
    stem = venv["cwd"] / "sim-demo"
    _in_venv(venv, "record", "sim:demo", "--freq", "169.4M", "--rate", "250k", "--duration", "0.05", "-o", str(stem),
             "--overwrite")
    assert Path(f"{stem}.sigmf-data").stat().st_size == int(0.05 * 250e3) * 2


def _venv_recordings(venv) -> Path:
    proc = subprocess.run([str(venv["py"]), "-c", "import sdrwatch.resources as r; print(r.recordings_dir())"],
                          capture_output=True, text=True, env=venv["env"], cwd=venv["cwd"], timeout=60)
    return Path(proc.stdout.strip())


def test_an_empty_threat_registry_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "threats").mkdir()
    shutil.copytree(ROOT / "firmware_profiles" / "receivers", tmp_path / "receivers")
    monkeypatch.setenv("SDRWATCH_PROFILES", str(tmp_path))
    from sdrwatch import classify

    classify.load_threats.cache_clear()
    try:
        res = CliRunner().invoke(main, ["replay", str(ROOT / "recordings" / "fm-voice-appears")])
    finally:
        classify.load_threats.cache_clear()
    out = res.output.strip()
    assert res.exit_code == 1 and len(out.splitlines()) == 1, out
    assert out.startswith("error: no threat profiles in") and "threats" in out


def test_resources_point_at_the_checkout_folders_in_a_checkout():
    assert resources.profiles_dir("threats").resolve() == (ROOT / "firmware_profiles" / "threats").resolve()
    assert resources.scenes_dir().resolve() == (ROOT / "recordings" / "scenes").resolve()
