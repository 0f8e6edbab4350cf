"""The USB backend through the real pyrtlsdr + librtlsdr, up to where a dongle would answer.

CI has the ``hw`` extra installed and no dongle, so every path below is the one a user without (or with a
broken) setup walks. The import-failure cases run in a subprocess where the library cannot load.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from sdrwatch.cli import main
from sdrwatch.errors import SourceError
from sdrwatch.radio.base import open_source

REPO = Path(__file__).resolve().parent.parent

try:
    import rtlsdr  # noqa: F401 - the hw extra must import

    from sdrwatch.radio.rtlsdr import device_count

    HAVE_PYRTLSDR = True
    DONGLES = device_count()
except Exception:  # noqa: BLE001 - any load failure means: cannot run the real-library tests here
    HAVE_PYRTLSDR, DONGLES = False, 0

needs_pyrtlsdr = pytest.mark.skipif(not HAVE_PYRTLSDR, reason="pyrtlsdr not loadable: pip install '.[hw]'")
no_dongle = pytest.mark.skipif(DONGLES > 0, reason="an RTL-SDR is attached; these tests expect none")


def run_python(prelude: str, code: str, *, pythonpath: list[str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(pythonpath or []), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", prelude + "\n" + code], capture_output=True, text=True,
                          env=env, timeout=60)


CLI_DEVICES = "import sys; sys.argv = ['sdrwatch', 'devices']\nfrom sdrwatch.cli import main\nmain()"
OPEN_0 = textwrap.dedent("""
    from sdrwatch.errors import SourceError
    from sdrwatch.radio.base import open_source
    try:
        open_source("rtlsdr://0")
    except SourceError as exc:
        print(exc)
""")


# ---------------------------------------------------------------------------- no dongle attached
@needs_pyrtlsdr
@no_dongle
def test_no_dongle_at_index():
    with pytest.raises(SourceError) as err:
        open_source("rtlsdr://0")
    assert str(err.value).startswith("no RTL-SDR found at index 0 (no RTL-SDR on USB")
    with pytest.raises(SourceError, match="no RTL-SDR found at index 2"):
        open_source("rtlsdr://2")


@needs_pyrtlsdr
@no_dongle
def test_no_dongle_with_serial():
    with pytest.raises(SourceError) as err:
        open_source("rtlsdr://serial=00000001")
    assert str(err.value) == "no RTL-SDR with serial 00000001 (no RTL-SDR on USB)"


@needs_pyrtlsdr
@no_dongle
def test_list_devices_empty():
    from sdrwatch.radio.rtlsdr import list_devices

    assert list_devices() == []


@needs_pyrtlsdr
@no_dongle
def test_devices_command_says_none_found():
    result = CliRunner().invoke(main, ["devices"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no RTL-SDR found on USB (pyrtlsdr ")
    assert len(result.stdout.strip().splitlines()) == 1
    as_json = CliRunner().invoke(main, ["devices", "--json"])
    assert as_json.exit_code == 0
    assert as_json.stdout == ""  # valid (empty) JSON Lines; the explanation goes to stderr
    assert as_json.stderr.startswith("no RTL-SDR found on USB")


def test_bad_uris():
    for uri, msg in [("rtlsdr://abc", "expected rtlsdr://N or rtlsdr://serial=SERIAL"),
                     ("rtlsdr://serial=", "empty serial"), ("rtlsdr://-1", "index must be >= 0")]:
        with pytest.raises(SourceError, match=msg):
            open_source(uri)


@needs_pyrtlsdr
def test_usb_errors_map_to_actionable_lines():
    from rtlsdr.rtlsdr import LibUSBError  # pyrtlsdr's own exception, as its open() raises it

    from sdrwatch.radio.rtlsdr import _open_error

    busy = str(_open_error(LibUSBError(-6, "Could not open SDR (device index = 0)"), "at index 0"))
    assert busy.startswith("RTL-SDR at index 0 is busy (LIBUSB_ERROR_BUSY)") and "dvb_usb_rtl28xxu" in busy
    access = str(_open_error(LibUSBError(-3, ""), "at index 1"))
    assert "permission denied" in access and "udev" in access
    io = str(_open_error(LibUSBError(-1, "Could not open SDR (device index = 0)"), "at index 0"))
    assert io.startswith("RTL-SDR at index 0 could not be opened (LIBUSB_ERROR_IO)")
    for text in (busy, access, io):
        assert "\n" not in text


# ------------------------------------------------------------------------ library cannot be used
def test_pyrtlsdr_is_imported_lazily():
    proc = run_python("", "import sys\nimport sdrwatch.radio, sdrwatch.radio.rtlsdr, sdrwatch.cli.devices\n"
                          "print('rtlsdr' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_library_not_installed():
    prelude = "import sys; sys.modules['rtlsdr'] = None  # as if pyrtlsdr were not installed"
    proc = run_python(prelude, OPEN_0)
    assert proc.stdout.strip() == "pyrtlsdr is not installed: install the hw extra: pip install 'sdrwatch[hw]'"
    cli = run_python(prelude, CLI_DEVICES)
    assert cli.returncode == 1
    assert cli.stderr.strip() == "error: pyrtlsdr is not installed: install the hw extra: pip install 'sdrwatch[hw]'"


BROKEN_LIB_LINE = ("pyrtlsdr cannot use the system librtlsdr (undefined symbol: rtlsdr_set_dithering; Debian's "
                   "librtlsdr 0.6.0 is older than pyrtlsdr expects): pip install pyrtlsdrlib (bundles a newer librtlsdr)")


def test_library_fails_to_load_shim(tmp_path):
    """A stand-in ``rtlsdr`` package that fails exactly as pyrtlsdr does against Debian's librtlsdr."""
    shim = tmp_path / "rtlsdr"
    shim.mkdir()
    (shim / "__init__.py").write_text(
        "raise AttributeError('/usr/lib/x86_64-linux-gnu/librtlsdr.so.0: undefined symbol: rtlsdr_set_dithering')\n")
    proc = run_python("", OPEN_0, pythonpath=[str(tmp_path)])
    assert proc.stdout.strip() == BROKEN_LIB_LINE, proc.stderr
    cli = run_python("", CLI_DEVICES, pythonpath=[str(tmp_path)])
    assert cli.returncode == 1 and cli.stderr.strip() == "error: " + BROKEN_LIB_LINE
    assert "Traceback" not in cli.stderr


def _system_lib_without_dithering() -> bool:
    """True when the system librtlsdr lacks the symbol (checked in a fresh process: this one may already
    hold pyrtlsdrlib's copy under the same soname)."""
    code = ("import ctypes, ctypes.util\n"
            "p = ctypes.util.find_library('rtlsdr')\n"
            "print('yes' if p and not hasattr(ctypes.CDLL(p), 'rtlsdr_set_dithering') else 'no')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() == "yes"


@needs_pyrtlsdr
@pytest.mark.skipif(not _system_lib_without_dithering(),
                    reason="no system librtlsdr lacking rtlsdr_set_dithering (Debian's librtlsdr0 0.6.0)")
def test_real_pyrtlsdr_against_debian_librtlsdr():
    """pyrtlsdr without pyrtlsdrlib falls back to the system library; Debian's 0.6.0 lacks the symbol."""
    prelude = "import sys; sys.modules['pyrtlsdrlib'] = None  # as if only pyrtlsdr were installed"
    proc = run_python(prelude, OPEN_0)
    assert proc.stdout.strip() == BROKEN_LIB_LINE, proc.stderr


@needs_pyrtlsdr
@no_dongle
def test_devices_json_lines_shape_when_listing():
    """``--json`` emits one object per line; with no dongle there are none (the shape is documented)."""
    result = CliRunner().invoke(main, ["devices", "--json"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == []
