"""Baselines destroyed or weaponised: overwrites, an output that is the input, crafted settings that crash
or blind the detector, and npz archives built to exhaust memory. Each is refused in one line."""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sdrwatch.cli import main
from clierrors import one_line

REC = Path(__file__).resolve().parents[1] / "recordings"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base") / "site.npz"
    res = run("baseline", "build", REC / "gfsk-bursts-baseline", "-o", path)
    assert res.exit_code == 0, res.output
    return path


def crafted(good: Path, tmp_path: Path, change) -> Path:
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    out = tmp_path / "crafted.npz"
    np.savez_compressed(out, **arrays)
    return out


# -------------------------------------------------------------------------------------- overwrites
def test_build_refuses_to_replace_a_baseline_without_overwrite(good, tmp_path):
    target = tmp_path / "site.npz"
    target.write_bytes(good.read_bytes())
    before = target.read_bytes()
    one_line(run("baseline", "build", REC / "benign-baseline", "-o", target), "exists", "--overwrite")
    assert target.read_bytes() == before
    one_line(run("baseline", "build", REC / "benign-baseline", "-o", tmp_path / "site"), "exists")  # .npz added
    assert target.read_bytes() == before
    res = run("baseline", "build", REC / "benign-baseline", "-o", target, "--overwrite")
    assert res.exit_code == 0, res.output
    assert target.read_bytes() != before


def test_a_read_only_baseline_is_not_replaced_even_with_overwrite(good, tmp_path):
    target = tmp_path / "site.npz"
    target.write_bytes(good.read_bytes())
    target.chmod(0o444)
    before = target.read_bytes()
    one_line(run("baseline", "build", REC / "benign-baseline", "-o", target, "--overwrite"), "read-only")
    assert target.read_bytes() == before


def test_show_refuses_to_write_its_image_over_the_baseline(good, tmp_path):
    base = tmp_path / "site.npz"
    base.write_bytes(good.read_bytes())
    before = base.read_bytes()
    for extra in ([], ["--overwrite"]):
        one_line(run("baseline", "show", base, "-o", base, *extra), "is the input")
        assert base.read_bytes() == before
    link = tmp_path / "other-name.png"
    link.symlink_to(base)
    one_line(run("baseline", "show", base, "-o", link, "--overwrite"), "is the input")
    assert base.read_bytes() == before


def test_show_refuses_to_replace_an_image_without_overwrite(good, tmp_path):
    png = tmp_path / "site.png"
    png.write_bytes(b"keep me")
    one_line(run("baseline", "show", good, "-o", png), "exists", "--overwrite")
    assert png.read_bytes() == b"keep me"
    assert run("baseline", "show", good, "-o", png, "--overwrite").exit_code == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_build_refuses_an_output_that_is_its_input(tmp_path):
    src = tmp_path / "x.npz"  # a raw capture that happens to be named like a baseline
    src.write_bytes(bytes(256) * 400)
    one_line(run("baseline", "build", src, "--rate", "250k", "--freq", "169M", "--sample-format", "cu8", "-o", src,
                 "--overwrite"), "is the input")


# -------------------------------------------------------------------------------------- settings
def _set(group, key, value):
    def change(meta):
        meta[group][key] = value
    return change


def _drop(group, key):
    def change(meta):
        del meta[group][key]
    return change


@pytest.mark.parametrize("change,needle", [
    (_set("spectrum", "fft_sz", 1024), "unknown setting 'fft_sz'"),
    (_set("spectrum", "window", "tukey"), "window"),
    (_set("spectrum", "frame_s", "0.005"), "frame_s"),
    (_set("spectrum", "frame_s", 1e9), "frame_s"),
    (_set("spectrum", "overlap", 0.999), "overlap"),
    (_drop("spectrum", "dc_bins"), "missing setting 'dc_bins'"),
    (_set("detector", "channel_hz", "12.5k"), "channel_hz"),
    (_set("detector", "channel_hz", [1e12]), "channel_hz"),
    (_drop("detector", "scales"), "missing setting 'scales'"),
    (_set("detector", "slop_bins", -1), "slop_bins"),
    (_set("detector", "scales", []), "scales"),
    (_set("detector", "scales", [1e12]), "scales"),
    (_set("detector", "scales", [10 ** 12]), "scales"),
    (_set("detector", "scales", [100, 10]), "scales"),
    (_set("detector", "pfa_low", 1e-300), "pfa_low"),
    (_set("detector", "pfa", 1e-300), "pfa"),
    (_set("detector", "pfa", True), "pfa"),
    (_set("detector", "margin_db", 1e6), "margin_db"),
    (_set("detector", "min_bins", 0), "min_bins"),
    (_set("detector", "bogus", 1), "unknown setting 'bogus'"),
    (lambda m: m["hops"][0].update(center_hz=1e30), "not a tuning"),
    (lambda m: m.update(sample_rate_hz=1e15), "sample_rate_hz"),
])
def test_crafted_settings_are_refused_in_one_line(good, tmp_path, change, needle):
    path = crafted(good, tmp_path, change)
    out = one_line(run("replay", REC / "gfsk-bursts", "--baseline", path), needle)
    assert str(path) in out


def test_the_good_baseline_still_works(good):
    res = run("replay", REC / "gfsk-bursts", "--baseline", good, "--format", "jsonl")
    assert res.exit_code == 0 and res.output.strip(), res.output


def test_settings_nested_100000_deep_are_refused(good, tmp_path):
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.array("[" * 100_000 + "]" * 100_000)
    out = tmp_path / "deep.npz"
    np.savez_compressed(out, **arrays)
    one_line(run("replay", REC / "gfsk-bursts", "--baseline", out), str(out))


# -------------------------------------------------------------------------------------- bombs
def _npy_header(shape, dtype="<f4") -> bytes:
    d = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d


def test_a_header_claiming_a_trillion_elements_is_refused_before_inflating(good, tmp_path):
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    out = tmp_path / "huge.npz"
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "h0_noise_power.npy":
                data = _npy_header((10 ** 12,)) + bytes(8192)
            dst.writestr(info.filename, data)
    assert out.stat().st_size < 64 * 1024
    one_line(run("replay", REC / "gfsk-bursts", "--baseline", out), "h0_noise_power.npy", "claims", "refused")


def test_a_zip_bomb_is_refused_from_its_member_headers(good, tmp_path):
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    out = tmp_path / "bomb.npz"
    n = 600 * 2 ** 20 // 4  # 600 MiB of float32 zeros: inflates past the limit, ~0.6 MB on disk
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for k, a in arrays.items():
            if k == "h0_mean_power":
                with dst.open("h0_mean_power.npy", "w", force_zip64=True) as fh:
                    fh.write(_npy_header((n,)))
                    chunk = bytes(2 ** 24)
                    for _ in range(n * 4 // len(chunk)):
                        fh.write(chunk)
            else:
                b = io.BytesIO()
                np.save(b, a)
                dst.writestr(f"{k}.npy", b.getvalue())
    assert out.stat().st_size < 2 * 2 ** 20
    one_line(run("replay", REC / "gfsk-bursts", "--baseline", out), "would inflate to 592 MiB", "refused")


def test_an_object_array_member_is_refused(good, tmp_path):
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    out = tmp_path / "obj.npz"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for k, a in arrays.items():
            b = io.BytesIO()
            np.save(b, np.array([{"x": 1}], dtype=object) if k == "h0_duty" else a, allow_pickle=True)
            dst.writestr(f"{k}.npy", b.getvalue())
    one_line(run("replay", REC / "gfsk-bursts", "--baseline", out), "h0_duty.npy")
