"""The confusion table: what label each real capture and each simulated emitter kind gets.

Two sets of cases:

* **real captures** (``../shared/realdata``, or ``--realdata DIR``): each file is replayed in
  noise-floor mode, its emissions are re-labelled with the features of their IQ, and the strongest
  one is compared with the class the capture's device belongs to. Every emission counts for the
  "benign labelled as a threat" check: none of these captures holds a threat.
* **simulator kinds**: each emitter of the demo scene (``recordings/scenes/demo.toml``) alone, on a
  compressed schedule so its pattern shows within a few seconds, recorded to a temporary SigMF file
  through the dongle model (8 bits, roll-off, DC) and replayed the same way.

``sdrwatch confusion [--markdown] [--format jsonl]`` prints the table; the README's copy comes from it.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from . import class_named

#: real capture file -> the class of the device in it (from ../shared/realdata/README.md)
REAL_CASES: tuple[tuple[str, str], ...] = (
    ("dump1090-adsb_1090M_2000k.cu8", "adsb"),
    ("urh-elektromaten_433.92M_1000k.cs8", "ism-remote"),
    ("urh-enocean_868.3M_1000k.cf32", "enocean"),
    ("urh-fsk_433.92M_1000k.cf32", "ism-sensor"),
    ("urh-homematic_868.3M_1000k.cs16", "ism-sensor"),
    ("urh-multi-rssi_433.92M_1000k.cf32", "ism-remote|ism-sensor"),  # modulation not stated
    ("urh-pwm_433.92M_1000k.cs8", "ism-remote"),
    ("urh-two-participants_433.92M_1000k.cs8", "ism-sensor"),
    ("urh-wsp_433.92M_1000k.cf32", "ism-remote"),
    ("wmbus-issue48_868.625M_2400k.cu8", "wmbus-meter"),
    ("wmbus-samples2_868.95M_1600k.cu8", "wmbus-meter"),
)

#: demo-scene emitter label -> (expected class, schedule override for a SIM_DURATION_S capture)
SIM_CASES: dict[str, tuple[str, dict]] = {
    "fm-broadcast-100.6": ("broadcast-fm", {}),
    "xtal-harmonic-144.0": ("dongle-spur", {}),
    "security-walkie-150.0125": ("nbfm-voice", {"windows": [[1.0, 9.0]]}),
    "public-walkie-409.7625": ("walkie-public", {"windows": [[1.0, 9.0]]}),
    "wireless-mic-203.5": ("nbfm-voice", {"windows": [[1.0, 9.0]]}),
    "utility-data-230.05": ("utility-data", {"bursts": {"period_s": 1.0, "length_s": 0.3, "offset_s": 0.5}}),
    "restaurant-pager-450.25": ("pocsag-paging", {"bursts": {"period_s": 2.0, "length_s": 1.0, "offset_s": 0.5}}),
    "water-meter-470.3": ("lora-meter", {"bursts": {"period_s": 2.0, "length_s": 0.4, "offset_s": 0.5}}),
    "gate-remote-433.92": ("ism-remote", {"bursts": {"period_s": 2.0, "offset_s": 0.5}}),
    "cheat-pager-169.2": ("pager-fsk", {"bursts": {"period_s": 3.0, "length_s": 2.0, "offset_s": 0.5}}),
    "cheat-voice-220.25": ("nbfm-voice", {"windows": [[1.0, 9.0]]}),
}
SIM_DURATION_S = 5.0
SIM_RATE_HZ = 1.024e6
SIM_OFFSET_HZ = 250e3  # the hop is tuned this far above the emitter (away from the DC spike)
_SCHEDULE_KEYS = ("windows", "bursts", "duty", "start_s", "stop_s")


@dataclass
class Row:
    source: str  # "real" or "sim"
    case: str  # file name or emitter label (kind)
    truth: str  # expected class (or classes, separated by |)
    label: str  # label of the strongest emission ("-" when nothing was found)
    severity: float
    modulation: str
    emissions: int
    threat_labels: int  # emissions labelled as a threat class
    worst_threat_severity: float  # highest severity among those
    covered_by: str = "-"  # the band plan entry covering the strongest emission ("-": none, it is alerted)
    alerted: int = 0  # emissions no band plan entry covers

    @property
    def correct(self) -> bool:
        return self.label in self.truth.split("|")

    def as_record(self) -> dict:
        return {**self.__dict__, "correct": self.correct, "severity": round(self.severity, 3),
                "worst_threat_severity": round(self.worst_threat_severity, 3)}


def _row(source: str, case: str, truth: str, rec) -> Row:
    from ..replay import detect
    from .recording import classify_emissions

    from .allowlist import Allowlist, cover, load_bandplan

    plan = Allowlist(load_bandplan())
    labelled = classify_emissions(rec, detect(rec))
    threats = [e for e, _ in labelled if (p := class_named(e.label)) is not None and p.threat]
    if not labelled:
        return Row(source, case, truth, "-", 0.0, "-", 0, 0, 0.0)
    e, f = max(labelled, key=lambda ef: ef[0].peak_dbfs)
    alerted = sum(cover(x, plan) is None for x, _ in labelled)
    return Row(source, case, truth, e.label, e.severity, f.modulation, len(labelled), len(threats),
               max((t.severity for t in threats), default=0.0), cover(e, plan) or "-", alerted)


def real_rows(realdata_dir: Path) -> list[Row]:
    from ..radio.file import open_recording

    rows = []
    for name, truth in REAL_CASES:
        path = realdata_dir / name
        if path.exists():
            rows.append(_row("real", name, truth, open_recording(path)))
    return rows


def read_scene(scene_path: Path) -> dict:
    """The scene file's TOML, or a one-line error."""
    from ..errors import SourceError

    try:
        return tomllib.loads(Path(scene_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"{scene_path}: not a readable scene ({exc})") from None


def sim_rows(scene_path: Path, progress: Callable[[str], None] | None = None, only: tuple[str, ...] | None = None) -> list[Row]:
    """One row per emitter of the scene listed in SIM_CASES (or in ``only``)."""
    from ..radio.file import SigMFWriter, open_recording
    from ..radio.sim.scene import Scene

    data = read_scene(scene_path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sdrwatch-confusion-") as tmp:
        for raw in data.get("emitter", []):
            label = raw.get("label")
            if label not in SIM_CASES or (only is not None and label not in only):
                continue
            truth, schedule = SIM_CASES[label]
            emitter = {k: v for k, v in raw.items() if k not in _SCHEDULE_KEYS}
            emitter.update(schedule)
            scene = Scene.from_dict({"scene": data.get("scene", {}), "dongle": data.get("dongle", {}), "emitter": [emitter]})
            center_hz = float(raw["freq_hz"]) + SIM_OFFSET_HZ
            n = int(SIM_DURATION_S * SIM_RATE_HZ)
            stem = Path(tmp) / label
            with SigMFWriter(stem, fmt="cf32", sample_rate_hz=SIM_RATE_HZ) as w:
                w.start_capture(center_hz)
                step = 1 << 20
                for s0 in range(0, n, step):
                    w.write(scene.render(center_hz, SIM_RATE_HZ, s0, min(step, n - s0)))
            rows.append(_row("sim", f"{label} ({raw['kind']})", truth, open_recording(stem)))
            for suffix in (".sigmf-data", ".sigmf-meta"):
                Path(str(stem) + suffix).unlink(missing_ok=True)
            if progress:
                progress(label)
    return rows


def table(rows: list[Row], markdown: bool = False) -> str:
    head = ["source", "case", "truth", "label", "severity", "modulation", "covered by", "emissions", "alerted", "threat labels (max sev.)"]
    body = [[r.source, r.case, r.truth.replace("|", " or "), r.label + ("" if r.correct else " ✗"), f"{r.severity:.2f}", r.modulation,
             r.covered_by, str(r.emissions), str(r.alerted), f"{r.threat_labels} ({r.worst_threat_severity:.2f})"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body]]
    ok = sum(r.correct for r in rows)
    benign_bad = sum(1 for r in rows if r.source == "real" and r.worst_threat_severity >= 0.5)
    lines.append("")
    lines.append(f"{ok}/{len(rows)} labelled as their class; real captures with a threat label of severity >= 0.5: {benign_bad}")
    return "\n".join(lines)


def matrix(rows: list[Row]) -> dict[str, dict[str, int]]:
    """truth class -> {label: count}."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r.truth, {}).setdefault(r.label, 0)
        out[r.truth][r.label] += 1
    return out



def find_realdata(start: Path | None = None) -> Path | None:
    """The nearest ``shared/realdata`` folder above ``start`` (default: this package), or None."""
    for base in [(start or Path(__file__)).resolve(), Path.cwd().resolve()]:
        for d in [base, *base.parents]:
            if (d / "shared" / "realdata").is_dir():
                return d / "shared" / "realdata"
    return None
