"""The whole station on one machine, with no hardware: ``sdrwatch demo``.

In a work folder it makes the keys (``sdrwatch keys``), starts a collector (its own process, SQLite),
writes three site configs on simulated receivers, learns each site's baseline from its simulator,
and starts three site agents (their own processes) that send over the real ZeroMQ link with CURVE:

- ``school-12``: a cheater's pager keys up about 20 s in (the ``demo`` scene), a voice link later;
- ``school-07``: only benign users (``demo-benign``);
- ``school-03``: benign users, and its antenna comes off partway (``demo-antenna``, when the
  simulator can inject that fault).

The console follows it live (on a terminal; log lines otherwise). When it ends (``--duration``,
Ctrl-C, or ``q`` in the console) the agents stop cleanly, whatever is still in their outboxes is
delivered, the collector stops, and the plots, the session's duty report and the sealed archive are
written into ``WORK/out/``.
"""
from __future__ import annotations

import datetime as _dt
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..agent.config import SCENE_BANDS, BandConfig, site_config_toml
from ..errors import SdrwatchError

MARKER = ".sdrwatch-demo"
CONSOLE_KEY = "console"
OPERATOR = "demo-operator"
BASELINE_S = 10.0
RATE_HZ = 2.4e6


@dataclass(frozen=True)
class DemoSite:
    site: str
    scene: str  # scene name (recordings/scenes/) with its sim: query
    story: str
    role: str  # "cheater" | "benign" | "antenna"


SITES = (
    DemoSite("school-12", "demo?t0=10", "a cheater's pager keys up after about 20 s, a voice link after about 50 s", "cheater"),
    DemoSite("school-07", "demo-benign?t0=10", "only benign users", "benign"),
    DemoSite("school-03", "demo-antenna?t0=10", "benign users; the antenna comes off after about 40 s", "antenna"),
)

#: each site's bands: the scenes' two priority bands and the ISM band their benign remotes use
BANDS = SCENE_BANDS + (BandConfig("ism-433", 433.0e6, 434.8e6, False),)
SWEEP = {"dwell_s": 0.1, "background_dwell_s": 0.1, "priority_revisit_s": 1.0, "background": "bands"}


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scene_exists(name: str) -> bool:
    try:
        from ..radio.sim import open_sim

        open_sim(f"sim:{name}").close()
        return True
    except SdrwatchError:
        return False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sdrwatch.cli import main; main()", *args]


@dataclass
class Demo:
    work: Path
    duration_s: float
    log: Callable[[str], None] = print
    session: str = ""
    endpoint: str = ""
    pub_endpoint: str = ""
    procs: dict = field(default_factory=dict)
    sites: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    scenes: dict = field(default_factory=dict)

    # -- setting up ------------------------------------------------------------------------------

    def prepare(self) -> None:
        w = self.work
        if w.exists() and any(w.iterdir()) and not (w / MARKER).exists():
            raise SdrwatchError(f"{w} exists and is not an sdrwatch demo folder; give another --work folder")
        if w.exists():
            for name in ("keys", "sites", "logs", "out", "collector.db", "collector.db-wal", "collector.db-shm"):
                p = w / name
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        for d in ("keys", "sites", "logs", "out"):
            (w / d).mkdir(parents=True, exist_ok=True)
        (w / MARKER).write_text("made by sdrwatch demo; its contents are replaced on the next run\n")
        now = time.time()
        self.session = "demo-" + _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y%m%d-%H%M")
        from ..net import keys as K

        K.init(w / "keys")
        K.new(w / "keys", CONSOLE_KEY, None, console=True)
        port, pub = free_port(), free_port()
        self.endpoint, self.pub_endpoint = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{pub}"
        for s in SITES:
            scene = s.scene
            name, _, query = scene.partition("?")
            if not scene_exists(name):
                fallback = "demo-benign" + (f"?{query}" if query else "")
                self.notes.append(f"{s.site}: scene {name} is not in this sdrwatch (the simulator cannot inject an antenna fault yet); "
                                  f"it runs demo-benign instead")
                scene = fallback
            K.new(w / "keys", s.site, s.site)
            d = w / "sites" / s.site
            d.mkdir(parents=True)
            self.sites.append((s, d))
            self.scenes[s.site] = scene
            self.write_config(s, d, now, now + self.duration_s)
        self.log(f"demo: work folder {w}, session {self.session}; keys made, {len(self.sites)} sites configured")

    def write_config(self, s: DemoSite, d: Path, start_s: float, end_s: float) -> None:
        """The site's config; the session runs from when the agents start to the planned end."""
        (d / "site.toml").write_text(site_config_toml(
            s.site, f"sim:{self.scenes[s.site]}", BANDS, sample_rate_hz=RATE_HZ, tuner="r820t", sweep=SWEEP,
            sessions=[(self.session, _iso(start_s), _iso(end_s))],
            collector={"endpoint": self.endpoint, "server_key": "../../keys/collector.key",
                       "agent_key": f"../../keys/{s.site}.key_secret"},
            comment=f"sdrwatch demo site {s.site}: {s.story}"))

    def learn_baselines(self) -> None:
        """Each site's pre-session baseline, from its simulator run as fast as it goes."""
        try:
            from ..agent.loop import capture_baselines  # type: ignore[attr-defined]
        except ImportError:
            self.notes.append("baselines: this sdrwatch cannot capture live baselines yet; agents run in noise-floor mode")
            return
        from ..agent.config import load_config
        from ..agent.layers import write_layer
        from ..baseline import now_iso

        t0 = time.monotonic()
        errors: list = []

        def capture(s, d):
            try:
                config = load_config(d / "site.toml")
                baselines, _plan = capture_baselines(config, BASELINE_S, source_options={"realtime": False})
                write_layer(config.state_dir, "pre-session", baselines, {"site": s.site, "created": now_iso(), "duration_s": BASELINE_S,
                                                                         "config": str(config.path)})
            except SdrwatchError as exc:
                errors.append(f"{s.site}: {exc}")

        threads = [threading.Thread(target=capture, args=sd, daemon=True) for sd in self.sites]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SdrwatchError(f"baseline capture failed: {errors[0]}")
        self.log(f"demo: baselines learned ({BASELINE_S:g} s of each site's spectrum, {time.monotonic() - t0:.1f} s)")

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        w = self.work
        db = w / "collector.db"
        log = open(w / "logs" / "collector.log", "wb")
        self.procs["collector"] = subprocess.Popen(
            _cli("collector", "--bind", self.endpoint, "--pub-bind", self.pub_endpoint, "--db", str(db), "--keys", str(w / "keys"),
                 "--offline-after", "8"),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not db.exists():
            if self.procs["collector"].poll() is not None or time.monotonic() > deadline:
                raise SdrwatchError(f"the collector did not start (see {w / 'logs' / 'collector.log'})")
            time.sleep(0.05)
        now = time.time()
        for s, d in self.sites:  # the session: from now to the end, with time for the agents to stop
            self.write_config(s, d, now, now + self.duration_s + 30)
        for s, d in self.sites:
            out = open(w / "logs" / f"{s.site}.jsonl", "wb")
            err = open(w / "logs" / f"{s.site}.log", "wb")
            self.procs[s.site] = subprocess.Popen(
                _cli("agent", "--config", str(d / "site.toml"), "--format", "jsonl", "--spectrum-log", str(d / "spectrum.csv")),
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        self.log(f"demo: collector on {self.endpoint}; agents started: " + "; ".join(f"{s.site} ({s.story})" for s, _ in self.sites))
        for n in self.notes:
            self.log(f"demo: note: {n}")

    def check_alive(self) -> list[str]:
        """Processes that died on their own (with the last line they wrote)."""
        dead = []
        for name, p in self.procs.items():
            if p.poll() is not None:
                logf = self.work / "logs" / f"{name}.log"
                tail = logf.read_text(errors="replace").strip().splitlines()[-1:] if logf.exists() else []
                dead.append(f"{name} exited with {p.returncode}" + (f": {tail[0]}" if tail else ""))
        return dead

    def stop(self) -> None:
        """Agents first (they close open emissions), then what is left in their outboxes is delivered,
        then the collector."""
        agents = [(name, p) for name, p in self.procs.items() if name != "collector"]
        for _name, p in agents:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in agents:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.log(f"demo: {name} did not stop within 20 s and was killed")
        self.flush_outboxes()
        c = self.procs.get("collector")
        if c is not None and c.poll() is None:
            c.send_signal(signal.SIGTERM)
            try:
                c.wait(20)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        self.procs.clear()
        self.log("demo: agents and collector stopped")

    def flush_outboxes(self, timeout_s: float = 20.0) -> None:
        """Deliver records the agents wrote after their link closed (their last closes and 'stop')."""
        from ..net.link import Uplink
        from ..net.outbox import Outbox

        for s, d in self.sites:
            path = d / "state" / "outbox.db"
            if not path.exists():
                continue
            ob = Outbox(path)
            try:
                if not ob.unsent(1):
                    continue
                deadline = time.monotonic() + timeout_s
                while ob.unsent(1) and time.monotonic() < deadline:
                    # a fresh connection each try: the collector may still hold the agent's old one for a moment
                    up = Uplink(ob, self.endpoint, self.work / "keys" / "collector.key", self.work / "keys" / f"{s.site}.key_secret",
                                backoff_initial_s=0.2, backoff_max_s=1.0).start()
                    try_until = min(deadline, time.monotonic() + 4.0)
                    while ob.unsent(1) and time.monotonic() < try_until:
                        time.sleep(0.05)
                    up.stop()
                if ob.unsent(1):
                    self.log(f"demo: {s.site}: records still in its outbox after {timeout_s:g} s ({path})")
            finally:
                ob.close()

    # -- the end ---------------------------------------------------------------------------------

    def finish(self) -> dict:
        """Plots, report and seal from the collector's database; returns what was written."""
        from . import plots
        from .report import chromium_path, print_pdf
        from .seal import seal

        w, out = self.work, self.work / "out"
        db = w / "collector.db"
        made: dict = {"plots": []}
        roots = [d for _s, d in self.sites]
        try:
            data = plots.timeline_from_db(db, self.session)
            made["plots"].append(plots.plot_timeline(data, out / "timeline.png", title=f"alert timeline, session {self.session}",
                                                     span=plots.sessions_span(data)).path)  # the session, as the report draws it
        except SdrwatchError as exc:
            self.log(f"demo: no timeline ({exc})")
        for s, d in self.sites:
            log = d / "spectrum.csv"
            if not log.exists():
                continue
            try:
                sl = plots.read_spectrum_log(log)
                made["plots"].append(plots.plot_waterfall(sl, out / f"waterfall-{s.site}.png", site=s.site, receiver="rx0").path)
                made["plots"].append(plots.plot_occupancy(plots.occupancy(sl), out / f"occupancy-{s.site}.png", site=s.site,
                                                          receiver="rx0", time=sl.start_iso).path)
            except SdrwatchError as exc:
                self.log(f"demo: no spectrum plots for {s.site} ({exc})")
        logs = {s.site: d / "spectrum.csv" for s, d in self.sites}
        res = seal(db, self.session, out / f"{self.session}.seal.tar", w / "keys", evidence_roots=roots, spectrum_logs=logs,
                   report_copy=out / "report.html")
        made["report"] = out / "report.html"
        made["seal"] = res.path
        made["fingerprint"] = res.fingerprint
        try:
            chromium_path()
            made["pdf"] = print_pdf(out / "report.html", out / "report.pdf")
        except SdrwatchError as exc:
            self.log(f"demo: no PDF of the report ({exc})")
        return made


def summarize(db: Path, session: str) -> dict:
    """Counts for the last lines: alerts by site and label, emissions logged (covered by the band
    plan or a declared emitter: not alerts), health faults."""
    from .plots import covered_by, open_db, table_rows

    conn = open_db(db)
    try:
        rows = [a for a in table_rows(conn, "alerts") if a.get("session") == session]
        faults = [h for h in table_rows(conn, "health") if h.get("kind") not in ("heartbeat", "start", "stop")]
    finally:
        conn.close()
    by_site: dict = {}
    logged = [a for a in rows if covered_by(a)]
    alerts = [a for a in rows if not covered_by(a)]
    for a in alerts:
        by_site.setdefault(a["site"], []).append(f"{a.get('label')} {float(a.get('center_hz') or 0) / 1e6:.4f} MHz")
    counts: dict[str, int] = {}
    for h in faults:  # one fault is raised per hop: "school-03: noise_floor_low x6", not six entries
        key = f"{h.get('site')}: {h.get('kind')}"
        counts[key] = counts.get(key, 0) + 1
    return {"alerts": len(alerts), "by_site": by_site, "logged": len(logged),
            "faults": [k if n == 1 else f"{k} x{n}" for k, n in counts.items()]}


def run_demo(work: Path, duration_s: float, *, interactive: bool, out=None) -> dict:
    """Run the demo end to end; returns what was written. Ctrl-C ends the live part early."""
    out = out or sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    demo = Demo(work, duration_s, log=say)
    demo.prepare()
    demo.learn_baselines()
    try:
        demo.start()
        _watch(demo, duration_s, interactive, say)
    except KeyboardInterrupt:
        say("demo: interrupted; stopping and writing the report")
    finally:
        try:
            demo.stop()
        except KeyboardInterrupt:
            demo.stop()
    made = demo.finish()
    s = summarize(work / "collector.db", demo.session)
    say(f"demo: {s['alerts']} alert(s) in session {demo.session}: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(s["by_site"].items()))
        + (f"; {s['logged']} emission(s) logged, covered by the band plan or a declared emitter" if s["logged"] else ""))
    if s["faults"]:
        say("demo: health faults: " + ", ".join(s["faults"]))
    for n in demo.notes:
        say(f"demo: note: {n}")
    say(f"demo: plots      {work / 'out'} ({len(made['plots'])} images)")
    say(f"demo: report     {made['report']}" + (f" and {made['pdf']}" if made.get("pdf") else ""))
    say(f"demo: sealed     {made['seal']} (records fingerprint {made['fingerprint'][:16]}...; check: sdrwatch verify {made['seal']})")
    say(f"demo: database   {work / 'collector.db'}")
    return made


def _watch(demo: Demo, duration_s: float, interactive: bool, say) -> None:
    from .console import Feed, connect, make_app, run_log

    factory = connect(demo.endpoint, demo.work / "keys", CONSOLE_KEY)
    if interactive:
        app = make_app(lambda r, st, sent: Feed(factory, r, st, sent), OPERATOR, demo.work / "out" / "console-plots",
                       [d for _s, d in demo.sites], duration_s=duration_s, title=f"sdrwatch demo — session {demo.session}",
                       spectrum_logs={s.site: d / "spectrum.csv" for s, d in demo.sites})
        app.run()
        return
    watcher_stop = threading.Event()

    def watch_processes():
        reported = set()
        while not watcher_stop.wait(1.0):
            for line in demo.check_alive():
                if line not in reported:
                    reported.add(line)
                    say(f"demo: {line}")

    t = threading.Thread(target=watch_processes, daemon=True)
    t.start()
    try:
        run_log(factory, duration_s=duration_s)
    finally:
        watcher_stop.set()
