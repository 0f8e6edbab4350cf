"""The central monitor's live console: every site's state and every alert as it arrives.

Three parts:

- :class:`ConsoleState`: what the console knows, built from the collector's history and live
  records (alerts by ``alert_id`` with their latest event, sites and receivers, health faults,
  dispositions, spectrum snapshots). Pure Python, no I/O.
- :class:`Feed`: one thread that owns a :class:`sdrwatch.net.client.ConsoleClient` (ZeroMQ sockets
  are used from that thread only): history first, then the live feed; dispositions queued by the
  operator are sent from the same thread. If the collector goes away it reconnects forever, with
  backoff, and says so in its status.
- :class:`ConsoleApp`: the Textual app (keys: ``a`` acknowledge, ``d`` disposition, ``s`` severity
  filter, ``f`` site filter, ``p`` spectrum plot of the selected alert, ``q`` quit), and
  :func:`run_log`: the same feed as plain log lines, for when stdout is not a terminal.
"""
from __future__ import annotations

import datetime as _dt
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import SdrwatchError
from .plots import severity_colour, severity_level

DISPOSITIONS = (("cheating", "cheating"), ("declared", "declared emitter"), ("false_alarm", "false alarm"), ("other", "other"))
SEVERITY_FILTERS = (("all", 0.0), ("medium+", 0.4), ("high", 0.7))
#: health kinds shown in the alert feed (faults an operator must see)
FAULTS = ("receiver_lost", "noise_floor_low", "noise_floor_high", "clipping", "dropped_samples", "disk", "revisit")
MAX_ROWS = 500


def _t(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        t = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)).timestamp()
    except ValueError:
        return None


def _hms(value) -> str:
    t = _t(value)
    return "" if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%H:%M:%S")


# --------------------------------------------------------------------------------------------------
# state


@dataclass
class SiteState:
    site: str
    online: bool | None = None
    last_heartbeat: str | None = None
    receivers: dict = field(default_factory=dict)  # name -> {online, revisit_s, planned_revisit_s, noise_floor_db, fault}
    sessions: set = field(default_factory=set)


class ConsoleState:
    """The console's picture of the station, from history and live records (any order, repeats fine)."""

    def __init__(self) -> None:
        self.alerts: dict[str, dict] = {}
        self.faults: list[dict] = []
        self._fault_keys: set = set()
        self.sites: dict[str, SiteState] = {}
        self.spectra: dict[tuple, dict] = {}
        self.evidence: dict[str, dict] = {}
        self.version = 0  # bumped on every change, so views redraw only when needed

    def site(self, name: str) -> SiteState:
        s = self.sites.get(name)
        if s is None:
            s = self.sites[name] = SiteState(name)
        return s

    def apply(self, records: list[dict]) -> list[dict]:
        """Take in records; return those worth a log line (new or changed alerts, faults, dispositions, site changes)."""
        news = []
        for r in records:
            if not isinstance(r, dict):
                continue
            kind = r.get("type")
            handler = getattr(self, f"_on_{kind}", None)
            if handler is not None and handler(r):
                news.append(r)
        if news or records:
            self.version += 1
        return news

    def _on_alert(self, r: dict) -> bool:
        aid = r.get("alert_id")
        if not aid:
            return False
        old = self.alerts.get(aid)
        new = dict(old or {})
        new.update({k: v for k, v in r.items() if v is not None})
        if "state" not in r:
            new["state"] = "closed" if r.get("event") == "close" else new.get("state", "open")
        if r.get("event") == "close":
            new["state"] = "closed"
        if old is not None and old.get("state") == "closed" and r.get("event") in ("open", "update") and r.get("state") is None:
            new["state"] = "closed"  # a late update never reopens a closed alert
        new.setdefault("dispositions", [])
        if r.get("disposition") and r.get("disposition") != (old or {}).get("disposition") and r.get("operator"):
            # history rows carry the latest disposition inline
            self._add_disposition(new, {"disposition": r["disposition"], "operator": r.get("operator"),
                                        "time": r.get("disposition_time"), "note": r.get("note", "")})
        if r.get("site"):
            self.site(r["site"])
        self.alerts[aid] = new
        changed = old is None or any(old.get(k) != new.get(k) for k in ("state", "label"))
        return changed

    @staticmethod
    def _add_disposition(alert: dict, d: dict) -> None:
        key = (d.get("disposition"), d.get("operator"), d.get("time"))
        if any((x.get("disposition"), x.get("operator"), x.get("time")) == key for x in alert["dispositions"]):
            return
        alert["dispositions"].append(d)
        alert["dispositions"].sort(key=lambda x: _t(x.get("time")) or 0.0)

    def _on_disposition(self, r: dict) -> bool:
        aid = r.get("alert_id")
        if not aid:
            return False
        alert = self.alerts.setdefault(aid, {"alert_id": aid, "dispositions": []})
        before = len(alert["dispositions"])
        self._add_disposition(alert, {k: r.get(k) for k in ("disposition", "operator", "time", "note")})
        return len(alert["dispositions"]) > before

    def _on_health(self, r: dict) -> bool:
        site = r.get("site")
        if not site:
            return False
        s = self.site(site)
        kind = r.get("kind")
        if kind == "heartbeat":
            s.online = True
            s.last_heartbeat = r.get("received_time") or r.get("time")
            entries = [e for e in (r.get("receivers") or []) if isinstance(e, dict)]
            if r.get("receiver"):
                entries.append({k: r.get(k) for k in ("receiver", "revisit_s", "planned_revisit_s", "noise_floor_db")})
            for e in entries:
                rx = s.receivers.setdefault(e.get("receiver") or "?", {})
                rx.update({k: e[k] for k in ("revisit_s", "planned_revisit_s", "noise_floor_db", "online") if e.get(k) is not None})
                rx.setdefault("online", True)
            return False
        if kind == "start":
            for name in r.get("receivers") or []:
                s.receivers.setdefault(str(name), {"online": True})
            for sess in r.get("sessions") or []:
                if isinstance(sess, dict) and sess.get("name"):
                    s.sessions.add(sess["name"])
            s.online = True
            return True
        rxname = r.get("receiver")
        rx = s.receivers.setdefault(rxname, {}) if rxname else None
        if kind == "receiver_lost" and rx is not None:
            rx["online"] = False
        elif kind == "receiver_regained" and rx is not None:
            rx["online"] = True
            rx.pop("fault", None)
        if kind in ("noise_floor_low", "noise_floor_high") and rx is not None:
            rx["fault"] = "LOW" if kind == "noise_floor_low" else "HIGH"
        if kind in FAULTS or float(r.get("severity") or 0.0) >= 0.5:
            key = (r.get("agent") or site, r.get("seq"), kind, r.get("time"))
            if key in self._fault_keys:
                return False
            self._fault_keys.add(key)
            self.faults.append(dict(r))
            self.faults = self.faults[-MAX_ROWS:]
            return True
        return False

    def _on_site(self, r: dict) -> bool:
        name = r.get("site")
        if not name:
            return False
        s = self.site(name)
        before = s.online
        if r.get("online") is not None:
            s.online = bool(r["online"])
        if r.get("last_heartbeat"):
            s.last_heartbeat = r["last_heartbeat"]
        for e in r.get("receivers") or []:
            if isinstance(e, dict) and e.get("receiver"):
                rx = s.receivers.setdefault(e["receiver"], {})
                rx.update({k: v for k, v in e.items() if k != "receiver" and v is not None})
        return before is not None and before != s.online

    def _on_receiver(self, r: dict) -> bool:
        if not r.get("site") or not r.get("receiver"):
            return False
        rx = self.site(r["site"]).receivers.setdefault(r["receiver"], {})
        before = rx.get("online")
        rx["online"] = bool(r.get("online"))
        return before is not None and before != rx["online"]

    def _on_session(self, r: dict) -> bool:
        if r.get("site") and r.get("name"):
            self.site(r["site"]).sessions.add(r["name"])
        return False

    def _on_evidence(self, r: dict) -> bool:
        aid = r.get("alert_id")
        if aid:
            self.evidence[aid] = r
            if aid in self.alerts:
                self.alerts[aid].setdefault("evidence_path", r.get("path"))
        return False

    def _on_spectrum(self, r: dict) -> bool:
        if r.get("site"):
            self.spectra[(r["site"], r.get("receiver"))] = r
        return False

    # -- views ---------------------------------------------------------------------------------------

    def feed(self, site: str | None = None, min_severity: float = 0.0) -> list[dict]:
        """Alerts and health faults, newest first, filtered by site and severity."""
        rows = [a for a in self.alerts.values() if a.get("time") or a.get("agent_time")]
        rows += [{**f, "_fault": True} for f in self.faults]
        if site:
            rows = [r for r in rows if r.get("site") == site]
        rows = [r for r in rows if float(r.get("severity") or 0.0) >= min_severity]
        rows.sort(key=lambda r: _t(r.get("time") or r.get("agent_time")) or 0.0, reverse=True)
        return rows[:MAX_ROWS]

    @staticmethod
    def disposition_of(alert: dict) -> dict | None:
        real = [d for d in alert.get("dispositions", []) if d.get("disposition") != "ack"]
        return real[-1] if real else None

    @staticmethod
    def acked_by(alert: dict) -> dict | None:
        acks = [d for d in alert.get("dispositions", []) if d.get("disposition") == "ack"]
        return acks[-1] if acks else None


def _short_id(alert: dict) -> str:
    """The alert id without its ``SITE-RECEIVER-`` prefix (the row already says both)."""
    aid = str(alert.get("alert_id") or "")
    prefix = f"{alert.get('site')}-{alert.get('receiver')}-"
    return aid[len(prefix):] if aid.startswith(prefix) else aid


def log_line(r: dict) -> str:
    """One plain log line for a record worth telling (alert, fault, disposition, site change). An
    emission covered by the band plan or a ``[[declare]]`` entry reads ``LOGGED ... covered by ENTRY``,
    not ``ALERT``."""
    kind = r.get("type")
    when = r.get("time") or r.get("received_time") or ""
    if kind == "alert":
        covered = r.get("covered_by")  # a band-plan or declared emitter: logged with its entry, not alerted
        return (f"{when} {'LOGGED' if covered else 'ALERT'} {r.get('event') or r.get('state') or ''} {r.get('site')}/{r.get('receiver')} "
                f"{(r.get('center_hz') or 0) / 1e6:.4f} MHz {(r.get('bandwidth_hz') or 0) / 1e3:.1f} kHz SNR {r.get('snr_db') or 0:.1f} dB "
                f"{r.get('label')} severity {r.get('severity') or 0:.2f} ({severity_level(r.get('severity'))}) session {r.get('session') or '-'} id {r.get('alert_id')}"
                + (f" covered by {covered}" if covered else ""))
    if kind == "health":
        return f"{when} HEALTH {r.get('kind')} {r.get('site')}/{r.get('receiver') or '-'} severity {r.get('severity') or 0:.2f}: {r.get('message')}"
    if kind == "disposition":
        return f"{when} DISPOSITION {r.get('alert_id')} {r.get('disposition')} by {r.get('operator')}" + (f": {r.get('note')}" if r.get("note") else "")
    if kind == "site":
        return f"{when} SITE {r.get('site')} {'online' if r.get('online') else 'offline'}"
    if kind == "receiver":
        return f"{when} RECEIVER {r.get('site')}/{r.get('receiver')} {'online' if r.get('online') else 'offline'}"
    return f"{when} {kind} {json.dumps(r, sort_keys=True)}"


# --------------------------------------------------------------------------------------------------
# the feed thread


class Feed:
    """Owns the collector connection in one thread: history, then live records; sends dispositions.

    ``on_records(list)`` and ``on_status(text, ok)`` are called from the feed thread."""

    def __init__(self, client_factory: Callable[[], object], on_records: Callable[[list], None],
                 on_status: Callable[[str, bool], None] = lambda text, ok: None, on_sent: Callable[[dict, bool, str], None] = lambda d, ok, msg: None):
        self.client_factory = client_factory
        self.on_records = on_records
        self.on_status = on_status
        self.on_sent = on_sent
        self.outgoing: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sdrwatch-console-feed", daemon=True)
        self.history_done = threading.Event()

    def start(self) -> "Feed":
        self.thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.thread.join(timeout_s)

    def send(self, alert_id: str, disposition: str, note: str, operator: str) -> None:
        self.outgoing.put({"alert_id": alert_id, "disposition": disposition, "note": note, "operator": operator})

    def _run(self) -> None:
        backoff = 0.5
        since = None
        while not self._stop.is_set():
            client = None
            try:
                client = self.client_factory()
                self.on_status("fetching history", True)
                hist = client.history(since)
                self.on_records(hist)
                self.history_done.set()
                self.on_status(f"connected: {len(hist)} records of history", True)
                backoff = 0.5
                while not self._stop.is_set():
                    self._send_pending(client)
                    recs = client.poll(0.2)
                    if recs:
                        self.on_records(recs)
                        since = None
            except SdrwatchError as exc:
                self.on_status(f"{exc}; retrying in {backoff:.0f} s", False)
            except Exception as exc:  # noqa: BLE001 - a console must outlive one bad frame; say what happened
                self.on_status(f"feed error ({type(exc).__name__}: {exc}); retrying in {backoff:.0f} s", False)
            finally:
                if client is not None:
                    try:
                        client.close()
                    except Exception:  # noqa: BLE001
                        pass
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _send_pending(self, client) -> None:
        while True:
            try:
                d = self.outgoing.get_nowait()
            except queue.Empty:
                return
            try:
                ok = client.send_disposition(d["alert_id"], d["disposition"], d["note"], operator=d["operator"])
                self.on_sent(d, bool(ok), "stored by the collector" if ok else "the collector did not confirm it; sent again on reconnect")
                if not ok:
                    self.outgoing.put(d)
                    raise SdrwatchError("collector did not confirm a disposition")
            except SdrwatchError as exc:
                self.on_sent(d, False, str(exc))
                if "refused" not in str(exc):
                    self.outgoing.put(d)
                raise


def connect(endpoint: str, keys_dir: str | Path, name: str) -> Callable[[], object]:
    """A factory of :class:`ConsoleClient` connections (the feed reconnects through it)."""
    from ..net.client import ConsoleClient

    keys_dir = Path(keys_dir)
    if not (keys_dir / "collector.key").is_file():
        raise SdrwatchError(f"{keys_dir}/collector.key: no collector key (sdrwatch keys init --dir {keys_dir})")
    if not (keys_dir / f"{name}.key_secret").is_file():
        raise SdrwatchError(f"{keys_dir}/{name}.key_secret: no console key '{name}' (sdrwatch keys new {name} --console --dir {keys_dir})")
    return lambda: ConsoleClient(endpoint, keys_dir, name)


def run_log(client_factory, out=None, duration_s: float | None = None, as_json: bool = False) -> int:
    """Plain log lines (or JSON lines): history first, then live records, until Ctrl-C or ``duration_s``."""
    out = out or sys.stdout
    state = ConsoleState()
    lines: queue.Queue = queue.Queue()

    def on_records(recs):
        news = state.apply(recs)
        for r in news:
            lines.put(json.dumps(r, sort_keys=True) if as_json else log_line(r))

    def on_status(text, ok):
        lines.put(json.dumps({"type": "console", "status": text, "ok": ok}) if as_json else f"{_now()} CONSOLE {text}")

    feed = Feed(client_factory, on_records, on_status).start()
    end = None if duration_s is None else time.monotonic() + duration_s
    shown = 0
    try:
        while end is None or time.monotonic() < end:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            print(line, file=out, flush=True)
            shown += 1
    finally:
        feed.stop()
    return shown


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------
# the Textual app


def plot_alert(state: ConsoleState, alert: dict, out_dir: Path, evidence_roots=(), spectrum_logs: dict | None = None) -> Path:
    """The picture of an alert: its IQ evidence's spectrogram if the file is here, else the latest
    spectrum snapshot of its receiver with the alert marked."""
    from . import plots
    from .report import resolve_evidence

    out_dir.mkdir(parents=True, exist_ok=True)
    aid = alert["alert_id"]
    ev = (state.evidence.get(aid) or {}).get("path") or alert.get("evidence_path") or (alert.get("evidence") or {}).get("path")
    found = resolve_evidence(ev, [Path(r) for r in evidence_roots]) if ev else None
    if found is not None:
        return plots.plot_evidence(found, out_dir / f"{aid}-evidence.png", alert=alert).path
    snap = state.spectra.get((alert.get("site"), alert.get("receiver")))
    log_path = (spectrum_logs or {}).get(alert.get("site"))
    if snap is None and log_path is not None and Path(log_path).is_file():
        from .report import spectrum_from_log

        t = _t(alert.get("time"))
        got = spectrum_from_log(Path(log_path), {**alert, "t": t, "t_end": (t or 0) + float(alert.get("duration_s") or 0)})
        if got is not None:
            hops, when = got
            return plots.plot_spectrum(hops, out_dir / f"{aid}-spectrum.png", detections=[alert], site=alert.get("site"),
                                       receiver=alert.get("receiver"), time=when).path
    if snap is None:
        raise SdrwatchError(f"no spectrum of {alert.get('site')}/{alert.get('receiver')} received yet")
    from ..net.schema import spectrum_power_db
    import numpy as np

    p = np.asarray(spectrum_power_db(snap), dtype=float)
    f = float(snap["start_hz"]) + float(snap["bin_hz"]) * np.arange(len(p))
    return plots.plot_spectrum([plots.SpectrumHop(f, p)], out_dir / f"{aid}-spectrum.png", detections=[alert], site=alert.get("site"),
                               receiver=alert.get("receiver"), time=snap.get("time")).path


def make_app(feed_factory: Callable, operator: str, plot_dir: Path, evidence_roots=(), duration_s: float | None = None, title: str | None = None,
             spectrum_logs: dict | None = None):
    """Build the Textual app (imported here so plain log mode and tests need no terminal)."""
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.containers import Vertical
    from textual.screen import ModalScreen
    from textual.widgets import DataTable, Footer, Header, Input, OptionList, Static

    class DispositionScreen(ModalScreen):
        """Choose a disposition (1-4 or arrows + Enter), type a note, Enter sends; Esc cancels."""

        BINDINGS = [Binding("escape", "cancel", "cancel")]
        DEFAULT_CSS = """
        DispositionScreen { align: center middle; }
        #box { width: 72; height: auto; border: thick $accent; padding: 1 2; background: $panel; }
        #choices { height: 6; }
        """

        def __init__(self, alert: dict):
            super().__init__()
            self.alert = alert
            self.choice: str | None = None

        def compose(self) -> ComposeResult:
            a = self.alert
            with Vertical(id="box"):
                yield Static(f"[b]Disposition[/b] of {a.get('label')} at {(a.get('center_hz') or 0) / 1e6:.4f} MHz, {a.get('site')}\n"
                             f"[dim]{a['alert_id']}[/dim]\nby operator [b]{operator}[/b]")
                yield OptionList(*[f"{i + 1}  {label}" for i, (_, label) in enumerate(DISPOSITIONS)], id="choices")
                yield Input(placeholder="note (Enter sends)", id="note")

        def on_mount(self) -> None:
            self.query_one("#choices", OptionList).focus()

        def on_key(self, event) -> None:
            if self.choice is None and event.key in ("1", "2", "3", "4"):
                self._choose(int(event.key) - 1)
                event.stop()

        def on_option_list_option_selected(self, event) -> None:
            self._choose(event.option_index)

        def _choose(self, index: int) -> None:
            self.choice = DISPOSITIONS[index][0]
            self.query_one("#choices", OptionList).highlighted = index
            self.query_one("#note", Input).placeholder = f"{DISPOSITIONS[index][1]}: note (Enter sends)"
            self.query_one("#note", Input).focus()

        def on_input_submitted(self, event) -> None:
            if self.choice is None:
                return
            self.dismiss((self.choice, event.value.strip()))

        def action_cancel(self) -> None:
            self.dismiss(None)

    class ConsoleApp(App):
        TITLE = "sdrwatch console"
        CSS = """
        #sites { height: auto; max-height: 12; }
        #alerts { height: 1fr; }
        #status { height: 1; background: $boost; padding: 0 1; }
        """
        BINDINGS = [
            Binding("a", "ack", "acknowledge"),
            Binding("d", "dispose", "disposition"),
            Binding("s", "severity", "severity filter"),
            Binding("f", "site_filter", "site filter"),
            Binding("p", "plot", "plot"),
            Binding("q", "quit", "quit"),
            Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        ]

        def __init__(self):
            super().__init__()
            self.state = ConsoleState()
            self.sub_title = f"operator {operator}"
            if title:
                self.title = title
            self.severity_index = 0
            self.site_filter: str | None = None
            self.status_text = "connecting"
            self._drawn = -1
            self.feed = None
            self.sent: list[tuple[dict, bool, str]] = []

        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable(id="sites", cursor_type="none", zebra_stripes=True)
            yield DataTable(id="alerts", cursor_type="row", zebra_stripes=True)
            yield Static("", id="status")
            yield Footer()

        def on_mount(self) -> None:
            sites = self.query_one("#sites", DataTable)
            sites.add_columns("site", "state", "last heartbeat", "receivers", "revisit (achieved/planned)", "noise floor", "sessions", "open alerts")
            alerts = self.query_one("#alerts", DataTable)
            alerts.add_columns("time", "site/receiver", "session", "MHz", "kHz", "SNR dB", "class", "severity", "state", "disposition", "alert id")
            alerts.focus()
            self.feed = feed_factory(self._records_from_thread, self._status_from_thread, self._sent_from_thread)
            self.feed.start()
            self.set_interval(0.25, self.redraw)
            if duration_s is not None:
                self.set_timer(duration_s, self.exit)

        def on_unmount(self) -> None:
            if self.feed is not None:
                self.feed.stop()

        # thread -> app
        def _records_from_thread(self, recs):
            self.call_from_thread(self.state.apply, recs)

        def _status_from_thread(self, text, ok):
            self.call_from_thread(self._set_status, text, ok)

        def _sent_from_thread(self, d, ok, msg):
            def done():
                self.sent.append((d, ok, msg))
                self._set_status(f"{d['disposition']} for {d['alert_id']}: {msg}", ok)
            self.call_from_thread(done)

        def _set_status(self, text: str, ok: bool = True) -> None:
            self.status_text = text
            self.query_one("#status", Static).update(Text(text, style="" if ok else "bold red"))

        # drawing
        def redraw(self) -> None:
            key = (self.state.version, self.severity_index, self.site_filter, int(time.time()))
            if key == self._drawn:
                return
            self._drawn = key
            self._draw_sites()
            self._draw_alerts()

        def _draw_sites(self) -> None:
            t = self.query_one("#sites", DataTable)
            t.clear()
            now = time.time()
            for name in sorted(self.state.sites):
                s = self.state.sites[name]
                state = Text("online", style="green") if s.online else Text("OFFLINE" if s.online is False else "?", style="bold red")
                hb = _t(s.last_heartbeat)
                age = f"{_hms(s.last_heartbeat)} ({now - hb:.0f} s ago)" if hb else ""
                rxs = s.receivers
                up = sum(1 for r in rxs.values() if r.get("online", True))
                rx_text = Text(f"{up}/{len(rxs)} " + ", ".join(sorted(k for k in rxs if k)), style="" if up == len(rxs) else "bold red")
                rev = " ".join(f"{r.get('revisit_s'):.1f}/{r.get('planned_revisit_s') or 0:.1f} s" for r in rxs.values() if isinstance(r.get("revisit_s"), (int, float)))
                faults = [r.get("fault") for r in rxs.values() if r.get("fault")]
                nf = " ".join(f"{r.get('noise_floor_db'):.1f}" for r in rxs.values() if isinstance(r.get("noise_floor_db"), (int, float)))
                nf_text = Text(f"{nf} dB {'/'.join(faults)}" if faults else (f"{nf} dB ok" if nf else ""), style="bold red" if faults else "green")
                open_alerts = sum(1 for a in self.state.alerts.values()
                                  if a.get("site") == name and a.get("state") != "closed" and not a.get("covered_by"))
                t.add_row(name, state, age, rx_text, rev, nf_text, ", ".join(sorted(s.sessions)), str(open_alerts), key=name)

        def _draw_alerts(self) -> None:
            t = self.query_one("#alerts", DataTable)
            selected = self.selected_key()
            t.clear()
            rows = self.state.feed(self.site_filter, SEVERITY_FILTERS[self.severity_index][1])
            for r in rows:
                colour = severity_colour(r.get("severity"))
                style = f"bold {colour}" if severity_level(r.get("severity")) == "high" else colour
                if r.get("_fault"):
                    key = f"fault:{r.get('agent') or r.get('site')}:{r.get('seq')}:{r.get('kind')}"
                    msg = str(r.get("message") or "")
                    t.add_row(_hms(r.get("time")), f"{r.get('site')}/{r.get('receiver') or '-'}", "", "", "", "",
                              Text(str(r.get("kind")), style="bold magenta"), Text(f"{r.get('severity') or 0:.2f}", style=style),
                              Text("health", style="magenta"), Text(msg if len(msg) <= 34 else msg[:33] + "…", style="magenta"), "", key=key)
                    continue
                d = ConsoleState.disposition_of(r)
                ack = ConsoleState.acked_by(r)
                disp = Text(f"{d['disposition']} ({d.get('operator')})", style="green") if d else (
                    Text(f"acked ({ack.get('operator')})", style="yellow") if ack else Text("—", style="dim"))
                state = r.get("state") or "open"
                if r.get("covered_by"):  # a band-plan or declared emitter: logged with its entry, not alerted
                    state = f"logged ({r['covered_by']})"
                t.add_row(_hms(r.get("time") or r.get("agent_time")), f"{r.get('site')}/{r.get('receiver')}", r.get("session") or "",
                          f"{(r.get('center_hz') or 0) / 1e6:.4f}", f"{(r.get('bandwidth_hz') or 0) / 1e3:.1f}", f"{r.get('snr_db') or 0:.1f}",
                          Text(str(r.get("label") or ""), style=style), Text(f"{r.get('severity') or 0:.2f}", style=style),
                          Text(state, style="bold" if state == "open" else "dim"), disp, _short_id(r), key=r["alert_id"])
            if selected is not None:
                try:
                    t.move_cursor(row=t.get_row_index(selected))
                except Exception:  # noqa: BLE001 - the selected row was filtered away
                    pass
            flt = f"severity {SEVERITY_FILTERS[self.severity_index][0]}, site {self.site_filter or 'all'}"
            t.border_title = f"alerts ({len(rows)}; {flt})"

        def selected_key(self) -> str | None:
            t = self.query_one("#alerts", DataTable)
            if not t.row_count:
                return None
            try:
                return t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
            except Exception:  # noqa: BLE001
                return None

        def selected_alert(self) -> dict | None:
            key = self.selected_key()
            if key is None or key.startswith("fault:"):
                self._set_status("select an alert first (health faults take no disposition)", False)
                return None
            return self.state.alerts.get(key)

        # actions
        def action_ack(self) -> None:
            a = self.selected_alert()
            if a is not None:
                self.feed.send(a["alert_id"], "ack", "", operator)
                self._set_status(f"acknowledging {a['alert_id']}...")

        def action_dispose(self) -> None:
            a = self.selected_alert()
            if a is None:
                return

            def done(result) -> None:
                if result:
                    disposition, note = result
                    self.feed.send(a["alert_id"], disposition, note, operator)
                    self._set_status(f"sending {disposition} for {a['alert_id']}...")

            self.push_screen(DispositionScreen(a), done)

        def action_severity(self) -> None:
            self.severity_index = (self.severity_index + 1) % len(SEVERITY_FILTERS)
            self.redraw()

        def action_site_filter(self) -> None:
            names = [None, *sorted(self.state.sites)]
            i = names.index(self.site_filter) if self.site_filter in names else 0
            self.site_filter = names[(i + 1) % len(names)]
            self.redraw()

        def action_plot(self) -> None:
            a = self.selected_alert()
            if a is None:
                return
            try:
                path = plot_alert(self.state, a, plot_dir, evidence_roots, spectrum_logs)
                self._set_status(f"plot: {path}")
            except SdrwatchError as exc:
                self._set_status(str(exc), False)

    return ConsoleApp()
