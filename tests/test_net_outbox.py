"""The outbox: numbered, durable before append returns (checked by SIGKILLing a real writer), bounded on
disk with spectra dropped first, then health, never alerts."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from sdrwatch.net import schema
from sdrwatch.net.outbox import Outbox, OutboxError
from sdrwatch.net.schema import SchemaError

T = "2026-06-01T08:00:00Z"


def alert(i):
    return {"type": "alert", "alert_id": f"s1-rx0-{i:012x}", "event": "open", "site": "s1", "receiver": "rx0",
            "time": T, "center_hz": 446e6 + i, "bandwidth_hz": 12500.0, "session": None}


def health(i):
    return {"type": "health", "kind": "heartbeat", "site": "s1", "receiver": "rx0", "time": T, "severity": 0.0,
            "message": f"beat {i}"}


def spectrum(i):
    return schema.spectrum_record("s1", "rx0", T, 430e6, 1000.0, np.full(1000, -90.0 + (i % 10)))


def test_numbers_grow_and_survive_reopen(tmp_path):
    path = tmp_path / "outbox.db"
    with Outbox(path) as ob:
        seqs = ob.append_many([alert(i) for i in range(5)])
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert ob.stats()["unacked"] == 5
    with Outbox(path) as ob:
        assert [s for s, _ in ob.unsent(100)] == seqs
        assert [r["alert_id"] for r in ob.records("alert")] == [alert(i)["alert_id"] for i in range(5)]
        ob.mark_acked(seqs[:3])
        assert [s for s, _ in ob.unsent(100)] == seqs[3:]
        more = ob.append(health(0))
        assert more > seqs[-1]
        assert [s for s, _ in ob.unsent(1, after=seqs[4])] == [more]
    with Outbox(path) as ob:
        assert ob.unacked_count() == 3  # acks are durable too
        assert len(list(ob.records())) == 6
        # acks in runs, out of order, repeated, with gaps and numbers never given out
        all_seqs = [s for s, _ in ob.unsent(100)] + ob.append_many([alert(i) for i in range(10, 20)])
        ob.mark_acked([all_seqs[-1], all_seqs[0], all_seqs[0], all_seqs[4], all_seqs[5], all_seqs[3], 1, all_seqs[-1] + 10])
        left = [s for s, _ in ob.unsent(100)]
        assert left == [s for i, s in enumerate(all_seqs) if i not in (0, 3, 4, 5, len(all_seqs) - 1)]


def test_a_recreated_outbox_never_reuses_numbers(tmp_path):
    with Outbox(tmp_path / "a.db") as ob:
        old = ob.append_many([alert(i) for i in range(100)])
    os.remove(tmp_path / "a.db")
    time.sleep(0.01)
    with Outbox(tmp_path / "a.db") as ob:
        assert ob.append(alert(0)) > old[-1]


def test_bad_records_are_refused_and_nothing_is_stored(tmp_path):
    with Outbox(tmp_path / "o.db") as ob:
        with pytest.raises(SchemaError, match="'center_hz'"):
            ob.append_many([alert(1), dict(alert(2), center_hz="x")])
        assert ob.stats()["records"] == 0


def test_unusable_file_is_one_line_error(tmp_path):
    bad = tmp_path / "notdb"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError, match="cannot open outbox"):
        Outbox(bad)


WRITER = textwrap.dedent("""
    import sys
    from sdrwatch.net.outbox import Outbox
    ob = Outbox(sys.argv[1])
    i = 0
    while True:
        seq = ob.append({"type": "alert", "alert_id": f"a{i}", "event": "open", "site": "s1", "receiver": "rx0",
                         "time": "2026-06-01T08:00:00Z", "center_hz": 1.0e6, "bandwidth_hz": 1.0})
        print(seq, flush=True)
        i += 1
""")


def test_append_is_durable_before_it_returns(tmp_path):
    """A writer SIGKILLed at a random moment: every number it printed (append returned) is on disk."""
    path = tmp_path / "o.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ})
    printed = []
    deadline = time.monotonic() + 20
    while len(printed) < 40 and time.monotonic() < deadline:
        printed.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    printed += [int(x) for x in proc.stdout.read().split()]
    assert len(printed) >= 40
    with Outbox(path) as ob:
        stored = {s for s, _ in ob.unsent(10_000)}
    assert set(printed) <= stored


def test_full_outbox_drops_spectra_then_health_never_alerts(tmp_path, caplog):
    spec_bytes = len(schema.encode(spectrum(0)))
    with Outbox(tmp_path / "o.db", max_bytes=40 * spec_bytes) as ob:
        alerts = ob.append_many([alert(i) for i in range(20)])
        ob.append_many([health(i) for i in range(20)])
        for i in range(30):
            ob.append(spectrum(i))
        assert ob.stats()["dropped"] == {"spectrum": 0, "health": 0}
        with caplog.at_level("WARNING", logger="sdrwatch.net.outbox"):
            for i in range(30, 60):
                ob.append(spectrum(i))
        st = ob.stats()
        assert st["dropped"]["spectrum"] > 0 and st["dropped"]["health"] == 0
        assert st["bytes"] <= st["max_bytes"]
        assert "dropped the oldest" in caplog.text
        notices = [r for r in ob.records("health") if r["kind"] == "disk"]
        assert len(notices) == 1 and notices[0]["dropped_spectrum"] > 0
        kept = [r for r in ob.records("spectrum")]
        assert kept[-1]["power_offset_db"] == spectrum(59)["power_offset_db"]  # newest kept, oldest gone
        # alerts alone past the bound: every spectrum goes, then health; no alert ever goes
        for i in range(20, 20 + 40 * spec_bytes // len(schema.encode(alert(0)))):
            ob.append(alert(i))
        assert list(ob.records("spectrum")) == []
        assert ob.stats()["dropped"]["health"] > 0
        ids = [r["alert_id"] for r in ob.records("alert")]
        assert ids[:20] == [alert(i)["alert_id"] for i in range(20)]
        assert len(ids) == len(set(ids)) and alerts[0] in {s for s, _ in ob.unsent(100000)}


def test_acked_rows_are_dropped_before_unacked(tmp_path):
    spec_bytes = len(schema.encode(spectrum(0)))
    with Outbox(tmp_path / "o.db", max_bytes=10 * spec_bytes) as ob:
        seqs = ob.append_many([spectrum(i) for i in range(10)])
        ob.mark_acked(seqs[5:])
        ob.append(spectrum(10))
        left = {s for s, _ in ob.unsent(100)}
        assert set(seqs[:5]) <= left  # unacked ones survived; acked ones went


def test_appends_from_threads_while_another_thread_reads(tmp_path):
    with Outbox(tmp_path / "o.db") as ob:
        def write(k):
            for i in range(50):
                ob.append(alert(k * 1000 + i))
        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        acked = 0
        while any(t.is_alive() for t in threads) or ob.unacked_count():
            batch = ob.unsent(25)
            ob.mark_acked([s for s, _ in batch])
            acked += len(batch)
        assert acked == 200
