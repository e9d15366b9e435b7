from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers import skips
from consumers.sinks import views
from consumers.sinks.views import Held, RawRecord, TargetView
from schemas.targets import encode
from schemas.topics import TargetKey
from tests.unit.consumers.sinks.builders import group, key, record

WEB = group("web", "east", "web-0", "10.0.0.1:80")
WEB_MOVED = group("web", "east", "web-0", "10.0.0.2:80")
API = group("api", "west", "api-0", "10.0.1.1:8080", "10.0.1.1:9090")


def _value(**changes: object) -> bytes:
    return orjson.dumps({**WEB.model_dump(mode="json"), **changes})


def test_a_record_decodes_to_its_key_and_group() -> None:
    assert views.decode(*record(WEB)) == (key(WEB), WEB)


def test_a_tombstone_decodes_to_none() -> None:
    assert views.decode(b"web/east/pod/default/web-0", None) == ("web/east/pod/default/web-0", None)


@pytest.mark.parametrize(
    ("key_", "value", "reason"),
    [
        (None, encode(WEB), skips.NO_KEY),
        (b"\xff", encode(WEB), skips.BAD_KEY),
        (b"web/east/pod/default/web-0", b"{not json", skips.INVALID_JSON),
        (b"web/east/pod/default/web-0", _value(schema_version=2), skips.UNKNOWN_SCHEMA_VERSION),
        (b"web/east/pod/default/web-0", _value(schema_version=0), skips.UNKNOWN_SCHEMA_VERSION),
        (b"web/east/pod/default/web-0", _value(targets="10.0.0.1:80"), skips.INVALID_GROUP),
        (b"web/east/pod/default/web-0", _value(extra=1), skips.INVALID_GROUP),
        (b"web/east/pod/default/web-0", b"[1, 2]", skips.INVALID_GROUP),
        (b"web/west/pod/default/web-0", encode(WEB), skips.KEY_MISMATCH),
    ],
)
def test_bad_records_say_why(key_: bytes | None, value: bytes, reason: str) -> None:
    with pytest.raises(skips.BadRecord) as caught:
        views.decode(key_, value)
    assert caught.value.reason == reason


def test_apply_reports_the_changed_job_once() -> None:
    view = TargetView()
    assert view.apply(key(WEB), WEB) == {"web"}
    assert view.apply(key(WEB), WEB) == frozenset()
    assert view.apply(key(WEB), WEB_MOVED) == {"web"}
    assert view.held("web") == [Held.of(WEB_MOVED)]


def test_a_tombstone_deletes_and_the_job_stays_known() -> None:
    view = TargetView()
    view.apply(key(WEB), WEB)
    assert view.apply(key(WEB), None) == {"web"}
    assert view.apply(key(WEB), None) == frozenset()
    assert (view.jobs(), view.held("web"), len(view)) == (["web"], [], 0)


def test_a_tombstone_of_an_unseen_key_changes_nothing() -> None:
    view = TargetView()
    assert view.apply(key(WEB), None) == frozenset()
    assert view.jobs() == []


def test_configured_jobs_are_known_without_groups() -> None:
    view = TargetView(configured=frozenset({"idle"}))
    assert view.known("idle")
    assert not view.known("web")
    assert view.held("idle") == []


def test_groups_are_sorted_by_key_and_filtered_by_cluster() -> None:
    west = group("web", "west", "web-0", "10.9.0.1:80")
    other = group("web", "east", "a-0", "10.0.0.9:80")
    view = TargetView()
    for g in (west, WEB, other):
        view.apply(key(g), g)
    assert view.held("web") == [Held.of(other), Held.of(WEB), Held.of(west)]
    assert view.held("web", clusters=["west"]) == [Held.of(west)]
    assert view.counts("web") == (3, 3)


def test_apply_records_skips_bad_records_and_applies_the_rest() -> None:
    view = TargetView()
    good = RawRecord(*record(API), topic="t", partition=1, offset=7)
    bad = RawRecord(b"x", b"{", topic="t", partition=1, offset=8)
    tomb = RawRecord(key(API).encode(), None, topic="t", partition=1, offset=9)

    first = view.apply_records([good, bad])
    second = view.apply_records([tomb])

    assert (first.changed, first.applied) == (frozenset({"api"}), 1)
    assert [(s.record.offset, s.reason) for s in first.skipped] == [(8, skips.INVALID_JSON)]
    assert (second.changed, second.applied, second.skipped) == (frozenset({"api"}), 1, ())
    assert view.snapshot() == {}


# --- replay properties -------------------------------------------------------------------

_GROUPS = [
    group(job, cluster, name, *addresses)
    for job in ("web", "api")
    for cluster in ("east", "west")
    for name, addresses in (("p-0", ("10.0.0.1:80",)), ("p-1", ("10.0.0.2:80", "10.0.0.3:81")))
]
_VARIANTS = [g.model_copy(update={"labels": {**g.labels, "v": "2"}}) for g in _GROUPS]
Log = list[tuple[bytes, bytes | None]]


@st.composite
def logs(draw: st.DrawFn) -> Log:
    """Records for a few keys: upserts (two values per key) and tombstones."""
    index = st.integers(0, len(_GROUPS) - 1)
    entries = draw(st.lists(st.tuples(index, st.sampled_from(["a", "b", "gone"])), max_size=30))
    choose = {"a": _GROUPS, "b": _VARIANTS}
    return [
        (key(_GROUPS[i]).encode(), None if what == "gone" else encode(choose[what][i]))
        for i, what in entries
    ]


@st.composite
def interleavings(draw: st.DrawFn, log: Log) -> Log:
    """Any merge of the per-key sub-logs, each in its own order (what partitions give)."""
    queues: dict[bytes, list[tuple[bytes, bytes | None]]] = {}
    for entry in log:
        queues.setdefault(entry[0], []).append(entry)
    merged: Log = []
    while queues:
        k = draw(st.sampled_from(sorted(queues)))
        merged.append(queues[k].pop(0))
        if not queues[k]:
            del queues[k]
    return merged


def _final(log: Log) -> dict[TargetKey, Held]:
    view = TargetView()
    view.apply_records(RawRecord(k, v) for k, v in log)
    return dict(view.snapshot())


def _compacted(log: Log) -> Log:
    latest = dict(log)  # the last record per key, in first-seen key order
    return list(latest.items())


@given(log=logs(), data=st.data())
def test_interleavings_keeping_key_order_agree(log: Log, data: st.DataObject) -> None:
    assert _final(data.draw(interleavings(log))) == _final(log)


@given(log=logs())
def test_the_compacted_log_agrees(log: Log) -> None:
    compacted = _compacted(log)
    assert _final(compacted) == _final(log)
    assert _final([e for e in compacted if e[1] is not None]) == _final(log)


@given(log=logs())
def test_a_repeated_record_changes_nothing(log: Log) -> None:
    view = TargetView()
    for k, v in log:
        view.apply_records([RawRecord(k, v)])
        assert view.apply_records([RawRecord(k, v)]).changed == frozenset()
    assert dict(view.snapshot()) == _final(log)


@given(log=logs())
def test_changed_jobs_cover_every_difference(log: Log) -> None:
    view = TargetView()
    for k, v in log:
        before = {job: view.held(job) for job in view.jobs()}
        changed = view.apply_records([RawRecord(k, v)]).changed
        after = {job: view.held(job) for job in view.jobs()}
        assert {j for j in after if before.get(j) != after[j]} == changed


def test_records_of_unconfigured_jobs_are_skipped_not_served() -> None:
    view = TargetView(configured=frozenset({"web"}))
    records = [RawRecord(*record(API), offset=1), RawRecord(*record(WEB), offset=2)]

    applied = view.apply_records(records)

    assert applied.changed == {"web"}
    assert [(s.reason, s.detail, s.record.offset) for s in applied.skipped] == [
        (skips.UNCONFIGURED_JOB, "api", 1)
    ]
    assert (view.jobs(), view.known("api")) == (["web"], False)
    assert view.apply_records([RawRecord(key(API).encode(), None)]).changed == frozenset()


def test_a_rebuilt_view_replaces_the_old_one_and_names_the_jobs_that_differ() -> None:
    """What the sinks' reader does after a refusal: groups missing from the rebuilt view
    (their tombstones compacted away) are gone; jobs seen before stay known."""
    old = TargetView()
    gone, kept = group("web", "c1", "gone", "10.0.0.1:80"), group("db", "c1", "db", "10.0.0.2:80")
    old.apply(key(gone), gone)
    old.apply(key(kept), kept)
    rebuilt = old.fresh()
    rebuilt.apply(key(kept), kept)
    assert old.take(rebuilt) == {"web"}
    assert (old.jobs(), old.held("web"), old.held("db"), len(old)) == (
        ["db", "web"], [], [Held.of(kept)], 1
    )  # fmt: skip
    assert old.counts("web") == (0, 0)
    assert not old.has_cluster("web", "c1")


def test_the_folds_own_writes_are_held_as_their_records_would_be() -> None:
    put, read = TargetView(configured=frozenset({"web"})), TargetView(configured=frozenset({"web"}))
    k, value = record(WEB)

    assert put.put(key(WEB), WEB, value) == {"web"}
    read.apply_records([RawRecord(k, value)])

    assert put.snapshot() == read.snapshot()
    assert put.put(key(WEB), WEB, value) == frozenset()  # held already
    assert put.put(key(API), API, encode(API)) == frozenset()  # not configured here
    assert put.put(key(WEB), None, None) == {"web"}
    assert put.snapshot() == {}


def test_a_record_held_already_is_applied_without_being_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fold of this process gave the view its group first: reading the same record
    back from the topic costs a digest, not a parse and a render."""
    view = TargetView()
    k, value = record(WEB)
    view.put(key(WEB), WEB, value)

    def no_parse(*_: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(views, "decode", no_parse)
    monkeypatch.setattr(views, "take", no_parse)
    applied = view.apply_records([RawRecord(k, value)])

    assert applied == views.Applied(frozenset(), 1, ())
    assert view.held("web") == [Held.of(WEB)]


# --- take: decode without the model, same outcome -----------------------------------------

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_FIELD_NAMES = ["schema_version", "job", "cluster", "source", "labels", "targets", "extra"]


@st.composite
def near_groups(draw: st.DrawFn) -> dict[str, object]:
    """A valid group's JSON with some fields dropped, replaced by any JSON, or added."""
    raw: dict[str, object] = {**API.model_dump(mode="json")}
    if draw(st.booleans()):
        del raw["schema_version"]
    for name in draw(st.lists(st.sampled_from(_FIELD_NAMES), max_size=3)):
        what = draw(st.sampled_from(["drop", "any", "label", "target"]))
        if what == "drop":
            raw.pop(name, None)
        elif what == "any":
            raw[name] = draw(_JSON)
        elif what == "label":  # a label value or name of any JSON type
            raw["labels"] = {**API.labels, draw(st.text(max_size=3)): draw(_JSON)}
        else:
            raw["targets"] = [*API.targets, draw(_JSON)]
    return raw


def _outcome(decoder: object, k: bytes | None, value: bytes | None) -> object:
    try:
        got = decoder(k, value)  # type: ignore[operator]
    except skips.BadRecord as exc:
        return (exc.reason, exc.detail)
    text, found = got
    if found is None:
        return (text, None)
    if isinstance(found, views.Taken):
        g = found.group
        return (text, found.job, found.cluster, g.source, g.labels, g.targets)
    return (text, found.job, found.cluster, found.source, found.labels, found.targets)


@given(raw=near_groups())
def test_take_agrees_with_decode_on_any_record(raw: dict[str, object]) -> None:
    """Hostile or odd values are refused by `take` exactly as by the model (same reason,
    same detail), and what it takes is what the model would have taken."""
    value = orjson.dumps(raw)
    for k in (key(API).encode(), b"api/west/pod/default/other"):
        assert _outcome(views.take, k, value) == _outcome(views.decode, k, value)


@pytest.mark.parametrize(
    "value",
    [
        encode(API),
        _value(schema_version=True),
        _value(schema_version=1.0),
        _value(labels={"a": 1}),
        _value(targets=[{"__address__": 1}]),
        _value(job=None),
        b'{"job": "web"}',
        b"[1, 2]",
        b'"x"',
        b"{not json",
    ],
)
def test_take_agrees_with_decode(value: bytes) -> None:
    k = key(WEB).encode()
    assert _outcome(views.take, k, value) == _outcome(views.decode, k, value)


def test_an_exact_record_is_taken_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*_: object) -> None:
        raise AssertionError("validated")

    monkeypatch.setattr(views, "_validated", no_model)
    view = TargetView()
    view.apply_records([RawRecord(*record(API))])
    assert view.held("api") == [Held.of(API)]
