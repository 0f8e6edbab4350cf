"""What every refused command must look like to its user: one ``error: ...`` line, the exit code, no
traceback."""
from __future__ import annotations


def one_line(res, *needles, code=1):
    """Assert that the click result ``res`` is one ``error:`` line naming every needle, with exit
    ``code`` and no traceback; returns the line."""
    out = res.output.strip()
    assert res.exit_code == code and "Traceback" not in out, out
    assert len(out.splitlines()) == 1 and out.startswith("error: "), out
    for n in needles:
        assert n in out, (n, out)
    return out
