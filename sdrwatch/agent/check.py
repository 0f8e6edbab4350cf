"""The pre-exam equipment check: is this site ready? ``sdrwatch check --config FILE``.

Each item is pass, warn or fail (:class:`Item`); the site is ready when nothing fails.

* ``receiver``: every receiver opens (answers) and tunes every hop of its share of the plan; a
  short block is read at each hop.
* ``gain``: the gain is manual (automatic gain makes spectra incomparable: warn) and nothing clips:
  share of samples at the ADC's end stops under 0.1 % passes, under 1 % warns, else fails.
* ``noise_floor``: each hop's floor (median bin, the baseline's FFT size) against the latest
  baseline layer's noise for that hop: within 3 dB passes, 3-6 dB warns, further fails (collapsed:
  antenna off or gain changed; raised: interference). No baseline yet: warn.
* ``reference``: the site's reference emitter (``[check] reference_hz``, a broadcast FM station it
  always hears) stands at least ``[check] reference_snr_db`` (10 dB) over the floor: the antenna test.
* ``clock``: synchronised by NTP where the system says (``timedatectl``); warn when it cannot tell.
* ``disk``: free space under the state directory covers the evidence budget (``[evidence] budget_mb``).
* ``collector``: with ``[collector]``, a CURVE handshake with this site's key succeeds within 5 s.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import SdrwatchError
from .health import CLIP_BAD, CLIP_WARN, clipping_share

CHECK_KEYS = {"reference_hz", "reference_snr_db", "floor_warn_db", "floor_fail_db", "read_s"}
STATUSES = ("pass", "warn", "fail")


@dataclass
class Item:
    item: str  # "receiver", "gain", "noise_floor", "reference", "clock", "disk", "collector"
    status: str  # "pass" | "warn" | "fail"
    detail: str
    receiver: str | None = None
    center_hz: float | None = None

    def as_record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _settings(cfg: dict) -> dict:
    unknown = sorted(set(cfg) - CHECK_KEYS)
    if unknown:
        raise SdrwatchError(f"[check] unknown key {unknown[0]!r} (expected {', '.join(sorted(CHECK_KEYS))})")
    out = {"reference_hz": None, "reference_snr_db": 10.0, "floor_warn_db": 3.0, "floor_fail_db": 6.0, "read_s": 0.05}
    for k, v in cfg.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise SdrwatchError(f"[check] {k} must be a positive number, not {v!r}")
        out[k] = float(v)
    return out


def _floor_db(iq: np.ndarray, rate: float, fft_size: int, crop: float) -> tuple[float, np.ndarray]:
    from ..dsp.spectrum import SpectrumConfig, kept_bins, welch_psd

    p = welch_psd(iq, rate, SpectrumConfig(fft_size=fft_size))
    kept = p[kept_bins(fft_size, crop)]
    return float(10 * np.log10(max(float(np.median(kept)), 1e-20))), p


def _read(src, center_hz: float, n: int) -> np.ndarray:
    src.tune(center_hz)
    return src.read(n).iq


def _baselines(config) -> tuple[dict, str | None]:
    from .layers import latest_layer_name, load_layer

    name = latest_layer_name(config.state_dir)
    if name is None:
        return {}, None
    try:
        return load_layer(name, config.state_dir).baselines, name
    except SdrwatchError:
        return {}, name


def check_receivers(config, settings: dict) -> list[Item]:
    from ..dsp.spectrum import auto_fft_size
    from ..radio.base import open_source
    from ..sweep.plan import build_plan

    items: list[Item] = []
    plan = build_plan(config)
    bases, layer = _baselines(config)
    ref_hz = settings["reference_hz"]
    for rc in config.receivers:
        rp = plan.receiver(rc.name)
        hops = list(rp.priority) + list(rp.background)
        rate = rc.sample_rate_hz
        n = max(4096, int(settings["read_s"] * rate))
        try:
            src = open_source(rc.uri, sample_rate_hz=rate, gain_db=rc.gain_db, ppm=rc.ppm, reconnect_attempts=1, timeout_s=3.0)
        except SdrwatchError as exc:
            items.append(Item("receiver", "fail", f"{rc.name} does not answer: {exc}", rc.name))
            continue
        try:
            src.set_sample_rate(rate)
            src.set_gain(rc.gain_db)
            base = bases.get(rc.name, bases.get("*"))
            fft = int(base.meta["spectrum"]["fft_size"]) if base is not None else auto_fft_size(rate)
            tuned, clip_worst, failed = 0, (0.0, None), []
            for hop in hops:
                try:
                    iq = _read(src, hop.center_hz, n)
                except SdrwatchError as exc:
                    failed.append(f"{hop.center_hz / 1e6:.3f} MHz ({exc})")
                    if src is None or "lost" in str(exc):
                        break
                    continue
                tuned += 1
                share = clipping_share(iq)
                if share >= clip_worst[0]:
                    clip_worst = (share, hop.center_hz)
                floor, _ = _floor_db(iq, rate, fft, rp.crop)
                if base is None:
                    continue
                try:
                    ref = float(10 * np.log10(max(float(np.median(base.hop_for(hop.center_hz).noise_power)), 1e-20)))
                except SdrwatchError as exc:
                    items.append(Item("noise_floor", "warn", f"{rc.name} {hop.center_hz / 1e6:.3f} MHz: floor {floor:.1f} dB; "
                                      f"baseline {layer} does not fit this hop ({exc})", rc.name, hop.center_hz))
                    continue
                d = floor - ref
                st = "pass" if abs(d) < settings["floor_warn_db"] else "warn" if abs(d) < settings["floor_fail_db"] else "fail"
                why = "" if st == "pass" else (": collapsed, antenna off or gain changed?" if d < 0 else ": raised, interference or a jammer?")
                items.append(Item("noise_floor", st, f"{rc.name} {hop.center_hz / 1e6:.3f} MHz: floor {floor:.1f} dB, baseline "
                                  f"{layer} {ref:.1f} dB ({d:+.1f} dB){why}", rc.name, hop.center_hz))
            if failed:
                items.append(Item("receiver", "fail", f"{rc.name} answers but did not tune {len(failed)} of {len(hops)} hops: "
                                  + "; ".join(failed[:3]), rc.name))
            else:
                items.append(Item("receiver", "pass", f"{rc.name} answers ({src.describe().tuner}) and tuned all {len(hops)} hops", rc.name))
            if base is None and tuned:
                items.append(Item("noise_floor", "warn", f"{rc.name}: no baseline layer to compare the noise floor with "
                                  "(sdrwatch baseline capture --config ...)", rc.name))
            share, at = clip_worst
            gain_note = "automatic gain: spectra are not comparable between hops and days; set gain_db" if rc.gain_db is None else ""
            st = "pass" if share < CLIP_WARN else "warn" if share < CLIP_BAD else "fail"
            if gain_note and st == "pass":
                st = "warn"
            where = f" at {at / 1e6:.3f} MHz" if at else ""
            items.append(Item("gain", st, f"{rc.name}: gain {rc.gain_db if rc.gain_db is not None else 'auto'} dB, "
                              f"{share:.2%} of samples clip{where}" + (f"; {gain_note}" if gain_note else "")
                              + ("; lower the gain" if st == "fail" else ""), rc.name))
            if ref_hz is not None:
                items.append(_reference(src, rc, ref_hz, settings, fft))
        finally:
            try:
                src.close()
            except Exception:  # noqa: BLE001 - closing a failed source
                pass
    if ref_hz is None:
        items.append(Item("reference", "warn", "no [check] reference_hz: the antenna is not tested against a known station"))
    return items


def _reference(src, rc, ref_hz: float, settings: dict, fft: int) -> Item:
    rate = rc.sample_rate_hz
    center = ref_hz + 0.25 * rate  # the station off the DC spike
    try:
        iq = _read(src, center, max(8192, int(0.1 * rate)))
    except SdrwatchError as exc:
        return Item("reference", "fail", f"{rc.name}: cannot tune the reference {ref_hz / 1e6:.3f} MHz: {exc}", rc.name, ref_hz)
    floor, p = _floor_db(iq, rate, fft, 0.25)
    freqs = (np.arange(fft) - fft // 2) * rate / fft + center
    band = p[np.abs(freqs - ref_hz) <= 60e3]
    peak = float(10 * np.log10(max(float(np.median(band)) if len(band) else 1e-20, 1e-20)))
    snr = peak - floor
    st = "pass" if snr >= settings["reference_snr_db"] else "fail"
    return Item("reference", st, f"{rc.name}: reference {ref_hz / 1e6:.3f} MHz stands {snr:.1f} dB over the floor"
                + ("" if st == "pass" else f" (need {settings['reference_snr_db']:g} dB): antenna off or not connected?"), rc.name, ref_hz)


def check_clock() -> Item:
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=5)
        value = out.stdout.strip().lower()
    except (OSError, subprocess.SubprocessError):
        value = ""
    if value == "yes":
        return Item("clock", "pass", "clock synchronised (NTP)")
    if value == "no":
        return Item("clock", "fail", "clock not synchronised (timedatectl: NTPSynchronized=no): alert times would be wrong")
    if Path("/run/systemd/timesync/synchronized").exists():
        return Item("clock", "pass", "clock synchronised (systemd-timesyncd)")
    return Item("clock", "warn", f"cannot tell whether the clock is synchronised here; it reads {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")


def check_disk(config) -> Item:
    budget = float((config.evidence or {}).get("budget_mb", 500.0)) * 1e6
    d = Path(config.state_dir)
    probe = d if d.exists() else next((p for p in d.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    st = "pass" if free >= budget else "warn" if free >= budget / 2 else "fail"
    return Item("disk", st, f"{free / 1e6:.0f} MB free under {d} for an evidence budget of {budget / 1e6:.0f} MB")


def check_collector(config, timeout_s: float = 5.0) -> Item:
    c = config.collector
    if c is None:
        return Item("collector", "pass", "no [collector]: alerts stay in the local outbox")
    try:
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        from ..net.link import curve_client_socket, load_link_keys
    except ImportError as exc:
        return Item("collector", "warn", f"cannot test the collector link here ({exc})")
    try:
        server_pub, pub, sec = load_link_keys(c.server_key, c.agent_key)
    except Exception as exc:  # noqa: BLE001 - any key problem is one line
        return Item("collector", "fail", f"this site's keys do not load: {exc}")
    ctx = zmq.Context()
    sock = curve_client_socket(ctx, c.endpoint, server_pub, pub, sec)
    mon = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                  | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if mon.poll(100):
                ev = recv_monitor_message(mon)["event"]
                if ev == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    return Item("collector", "pass", f"collector {c.endpoint} accepts this site's key")
                return Item("collector", "fail", f"collector {c.endpoint} refused this site's key (CURVE handshake failed)")
        return Item("collector", "fail", f"collector {c.endpoint} did not answer within {timeout_s:g} s")
    finally:
        sock.disable_monitor()
        mon.close(0)
        sock.close(0)
        ctx.term()


def run_check(config, *, collector_timeout_s: float = 5.0) -> list[Item]:
    """Every item of the check for a :class:`~sdrwatch.agent.config.SiteConfig`."""
    settings = _settings(dict(config.check or {}))
    items = check_receivers(config, settings)
    items += [check_clock(), check_disk(config), check_collector(config, collector_timeout_s)]
    return items


def ready(items: list[Item]) -> bool:
    return not any(i.status == "fail" for i in items)
