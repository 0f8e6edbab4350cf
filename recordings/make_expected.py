"""Write recordings/expected/<name>.jsonl: what `sdrwatch replay` raises on each shipped recording.

    python recordings/make_expected.py

Run it after a deliberate change to the detector, and review the diff: tests/test_recordings.py
compares every replay with these files (times to 10 ms, frequencies to 1 kHz, labels exactly).
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sdrwatch.cli.demo import DEMO_CASES  # noqa: E402
from sdrwatch.radio.file import open_recording  # noqa: E402
from sdrwatch.replay import Settings, detect, load_reference  # noqa: E402


def expected(name: str, base_name: str | None) -> list[dict]:
    base = load_reference(HERE / base_name, Settings()) if base_name else None
    return [e.as_record() for e in detect(open_recording(HERE / name), base)]


def main() -> int:
    out = HERE / "expected"
    out.mkdir(exist_ok=True)
    for name, base_name, _ in DEMO_CASES:
        records = expected(name, base_name)
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        print(f"{name}: {len(records)} emission(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
