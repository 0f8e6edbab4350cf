"""The wire schema: every record type round-trips; anything malformed, oversized or of another
version is refused with one SchemaError line (hypothesis-fuzzed)."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdrwatch.errors import SdrwatchError
from sdrwatch.net import schema
from sdrwatch.net.schema import SchemaError

T = "2026-06-01T08:00:00.250Z"
SHA = "ab" * 64


def alert(**kw):
    rec = {
        "type": "alert", "alert_id": "school-12-rx0-0123456789ab", "event": "open", "site": "school-12",
        "receiver": "rx0", "time": T, "session": "maths-am", "center_hz": 433.92e6, "bandwidth_hz": 12500.0,
        "start_s": 1.5, "end_s": 2.5, "duration_s": 1.0, "peak_dbfs": -40.5, "snr_db": 18.2, "duty": 0.8,
        "bursts": 3, "open_ended": False, "novelty": "new", "label": "nbfm_voice", "severity": 0.9,
        "reasons": ["in_threat_band"], "scale_s": 0.02, "hop_center_hz": 433.5e6,
        "evidence": {"path": "evidence/x.sigmf-data", "sha512": SHA, "bytes": 1024},
    }
    rec.update(kw)
    return rec


def health(**kw):
    rec = {"type": "health", "kind": "heartbeat", "site": "school-12", "receiver": "rx0", "time": T,
           "severity": 0.0, "message": "ok", "revisit_s": 2.0, "planned_revisit_s": 2.0, "noise_floor_db": -95.0}
    rec.update(kw)
    return rec


EXAMPLES = [
    alert(),
    alert(event="close", peak_dbfs=None, session=None),
    health(),
    health(kind="start", receiver=None, sessions=[{"name": "maths", "start": T, "end": T}],
           bands=[{"name": "pmr446", "start_hz": 446.0e6, "stop_hz": 446.2e6, "priority": 1}], receivers=["rx0", "rx1"]),
    {"type": "evidence", "alert_id": "a1", "path": "ev/a1.sigmf-data", "sha512": SHA, "bytes": 5, "site": "s", "time": T},
    schema.spectrum_record("s", "rx0", T, 430e6, 1000.0, np.linspace(-100, -20, 2048)),
    {"type": "disposition", "alert_id": "a1", "operator": "J. Chen", "disposition": "false_alarm", "note": "", "time": T},
]


@pytest.mark.parametrize("rec", EXAMPLES, ids=lambda r: r["type"])
def test_every_type_round_trips(rec):
    frame = schema.encode(rec)
    assert json.loads(frame)["v"] == schema.VERSION
    assert schema.decode(frame) == rec
    assert len(frame) <= schema.MAX_FRAME_BYTES


def test_spectrum_is_compact_and_within_half_a_db():
    p = np.random.default_rng(1).uniform(-110, -10, 4096)
    rec = schema.spectrum_record("s", "rx0", T, 430e6, 500.0, p)
    assert len(schema.encode(rec)) < schema.MAX_SPECTRUM_BYTES
    assert np.max(np.abs(schema.spectrum_power_db(rec) - p)) <= 0.25 + 1e-6


BAD = [
    (alert(type="alarm"), "record type 'alarm'"),
    ({k: v for k, v in alert().items() if k != "alert_id"}, "'alert_id' is missing"),
    (alert(event="opened"), "'event' must be one of"),
    (alert(center_hz=float("nan")), "'center_hz'"),
    (alert(center_hz=True), "'center_hz'"),
    (alert(center_hz="433e6"), "'center_hz'"),
    (alert(time="2026-06-01 08:00:00"), "'time' must be UTC"),
    (alert(time="2026-13-01T08:00:00Z"), "'time' is not a valid"),
    (alert(severity=1.5), "'severity'"),
    (alert(site="../etc"), "'site'"),
    (alert(reasons="x"), "'reasons' must be a list"),
    (alert(extra=[[[[[[[[1]]]]]]]]), "nested deeper"),
    (alert(extra="x" * 5000), "longer than"),
    (alert(v=2), "'v' is reserved"),
    (alert(evidence={"sha512": "zz", "bytes": 1}), "'evidence'"),
    (health(message="two\nlines"), "one line"),
    (health(kind="Heart Beat"), "'kind'"),
    ({"type": "disposition", "alert_id": "a", "operator": "x", "disposition": "guilty", "note": "", "time": T}, "'disposition'"),
    ({"type": "disposition", "alert_id": "a", "operator": "  ", "disposition": "other", "note": "", "time": T}, "'operator'"),
    (dict(EXAMPLES[5], power_db="!!notbase64"), "not base64"),
    (dict(EXAMPLES[5], bins=7), "'bins' says 7"),
    ([1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize("rec,needle", BAD, ids=[n for _, n in BAD])
def test_bad_records_are_refused_in_one_line(rec, needle):
    with pytest.raises(SchemaError) as ei:
        schema.validate(rec)
    assert needle in str(ei.value)
    assert "\n" not in str(ei.value)
    assert isinstance(ei.value, SdrwatchError)


BAD_FRAMES = [
    (b"", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1]", "not a JSON object"),
    (b'{"type":"alert"}', "version missing"),
    (json.dumps({"v": 2, **alert()}).encode(), "version 2 is not supported"),
    (json.dumps({"v": "1", **alert()}).encode(), "version str"),
    (b'{"v":1,"type":"health","kind":"x","site":"s","receiver":null,"time":"' + T.encode() + b'","severity":NaN,"message":""}', "not JSON"),
    (b"[" * 100000, "limit"),
    (b"[" * 50000 + b"]" * 50000, "limit"),
    ((json.dumps({"v": 1, **alert()})[:-1] + ',"x":' + "[" * 20000 + "]" * 20000 + "}").encode(), "nested"),
    (json.dumps({"v": 1, **alert(note="x" * 4000, n2="y" * 4000, n3="z" * 4000, n4="q" * 4000,
                                 n5="x" * 4000, n6="x" * 4000, n7="x" * 4000, n8="x" * 4000, n9="x" * 4000,
                                 n10="x" * 4000, n11="x" * 4000, n12="x" * 4000, n13="x" * 4000, n14="x" * 4000,
                                 n15="x" * 4000, n16="x" * 4000, n17="x" * 4000)}).encode(), "limit"),
]


@pytest.mark.parametrize("frame,needle", BAD_FRAMES, ids=[n for _, n in BAD_FRAMES])
def test_bad_frames_are_refused_in_one_line(frame, needle):
    with pytest.raises(SchemaError) as ei:
        schema.decode(frame)
    assert needle in str(ei.value)
    assert "\n" not in str(ei.value)


def test_oversized_record_cannot_be_encoded():
    big = alert(**{f"n{i}": "x" * 4000 for i in range(17)})
    with pytest.raises(SchemaError, match="more than the limit"):
        schema.encode(big)
    spec = schema.spectrum_record("s", "rx0", T, 0.0, 1.0, np.zeros(20000))
    with pytest.raises(SchemaError, match="spectrum frame"):
        schema.encode(spec)


# --- hypothesis -----------------------------------------------------------------------------------------

names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
times = st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z")
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
lines = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=60)
json_scalars = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | finite | lines

alerts = st.fixed_dictionaries(
    {"type": st.just("alert"), "alert_id": names, "event": st.sampled_from(schema.ALERT_EVENTS), "site": names,
     "receiver": names, "time": times, "center_hz": st.floats(0, 1e11), "bandwidth_hz": st.floats(0, 1e8)},
    optional={"session": st.none() | lines, "snr_db": st.none() | finite, "bursts": st.integers(0, 10**9),
              "open_ended": st.booleans(), "label": lines, "severity": st.floats(0, 1),
              "reasons": st.lists(lines, max_size=5), "extra": st.dictionaries(lines, json_scalars, max_size=4)},
)
healths = st.fixed_dictionaries(
    {"type": st.just("health"), "kind": st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z"), "site": names,
     "receiver": st.none() | names, "time": times, "severity": st.floats(0, 1), "message": lines},
    optional={"noise_floor_db": st.none() | finite, "count": st.integers(0, 2**40)},
)
dispositions = st.fixed_dictionaries(
    {"type": st.just("disposition"), "alert_id": names, "operator": names, "disposition": st.sampled_from(schema.DISPOSITIONS),
     "note": lines, "time": times})
evidences = st.fixed_dictionaries(
    {"type": st.just("evidence"), "alert_id": names, "path": lines, "sha512": st.from_regex(r"\A[0-9a-f]{128}\Z"),
     "bytes": st.integers(0, 2**50), "site": names, "time": times})
spectra = st.builds(lambda s, r, t, f, b, p: schema.spectrum_record(s, r, t, f, b, p), names, names, times,
                    st.floats(0, 1e9), st.floats(1, 1e6),
                    st.lists(st.floats(-150, 20), min_size=1, max_size=200))
records = alerts | healths | dispositions | evidences | spectra


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_valid_records_round_trip(rec):
    assert schema.decode(schema.encode(rec)) == rec


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_decode(frame):
    try:
        rec = schema.decode(frame)
    except SchemaError as exc:
        assert "\n" not in str(exc)
    else:
        assert rec["type"] in schema.TYPES


json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(lines, c, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.sampled_from(["type", "site", "time", "alert_id", "event", "severity", "kind", "v", "message"]), json_values)
def test_mutated_records_are_refused_or_valid(rec, key, value):
    """Setting any field to any JSON value yields either a valid record or one SchemaError line."""
    mutated = dict(rec, **{key: value})
    frame = json.dumps({"v": 1, **mutated}).encode() if key != "v" else json.dumps(mutated).encode()
    try:
        out = schema.decode(frame)
    except SchemaError as exc:
        assert "\n" not in str(exc)
    else:
        assert schema.validate(out) is out


tricky_values = (st.floats() | st.integers() | st.booleans() | st.none() | st.text(max_size=12) | json_values
                 | st.sampled_from(["a\nb", "x" * 4097, "open", "close", T, "2026-13-01T08:00:00Z", 1e11, 1e12, -0.0, 2**53, 2**64]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records | st.sampled_from(EXAMPLES), st.data())
def test_the_fast_check_never_passes_what_validate_refuses(rec, data):
    """The per-type fast checks the collector uses answer True only for records validate() accepts, and
    check_fast() gives the same verdict and the same error line as validate()."""
    req, opt = schema.SPECS[rec["type"]]
    names = st.sampled_from(sorted({*req, *opt, "type", "v", "extra_field"}))
    mutated = dict(rec)
    for key, value in data.draw(st.lists(st.tuples(names, tricky_values), min_size=1, max_size=3)):
        mutated[key] = value
    for key in data.draw(st.lists(names, max_size=1)):
        mutated.pop(key, None)
    try:
        schema.validate(dict(mutated))
        ok, err = True, None
    except SchemaError as exc:
        ok, err = False, str(exc)
    t = mutated.get("type")
    fast = schema.FAST_CHECKS.get(t) if isinstance(t, str) else None
    if fast is not None and fast(mutated):
        assert ok, f"fast check passed a record validate() refuses: {err}"
    try:
        schema.check_fast(mutated)
        assert ok
    except SchemaError as exc:
        assert not ok and str(exc) == err


TRICKY = [None, True, False, 0, -1, 1, 2, 2**53, 2**64, 0.0, -0.0, 0.5, 1.0, 1.5, -3.5, 1e11, 1e12, float("nan"),
          float("inf"), "", "x", "a\nb", "a\rb", "x" * 4097, "x" * 70, "open", "close", "ack", "heartbeat", "Bad Kind",
          T, "2026-13-01T08:00:00Z", "2026-06-01T08:00:00", "ab" * 64, [], ["in_band"], ["a\nb"], [1], {}, {"sha512": SHA, "bytes": 1},
          {"receiver": "rx0"}, [{"receiver": "rx0", "revisit_s": 1.0}], [{"name": "m", "start": T}]]


@pytest.mark.parametrize("rtype", sorted(schema.FAST_CHECKS))
def test_the_fast_check_agrees_with_validate_field_by_field(rtype):
    """Every field of every fast-checked type set to each tricky value (and removed): the fast check
    never passes a record validate() refuses."""
    base = next(r for r in EXAMPLES if r["type"] == rtype)
    req, opt = schema.SPECS[rtype]
    for field in sorted({*req, *opt, "type", "v", "extra_field", "y" * 65}):
        for value in [*TRICKY, "missing"]:
            rec = dict(base)
            if value == "missing":
                rec.pop(field, None)
            else:
                rec[field] = value
            try:
                schema.validate(dict(rec))
                ok = True
            except SchemaError:
                ok = False
            assert ok or not schema.FAST_CHECKS[rtype](rec), (field, value)


def test_the_fast_check_takes_the_common_records():
    for rec in EXAMPLES:
        if rec["type"] in schema.FAST_CHECKS:
            assert schema.FAST_CHECKS[rec["type"]](rec), rec["type"]
