from __future__ import annotations

import asyncio
import itertools

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from producers import emit, producer_metrics, trim
from producers.kubeapi.api import Page, Scope
from schemas import events
from schemas.objects import KubeObject
from schemas.topics import ObjectKey, Resource
from tests.unit.producers.fakes import FakePublisher, FakeReader, event, obj

NAMING = emit.Naming(
    cluster="c1", prefix="sd", partitions=4, drop_annotations=trim.DropAnnotations()
)
PODS = "sd.c1.pods"


def make(
    seeded: dict[str, dict[ObjectKey, str]] | None = None,
) -> tuple[emit.Emitter, FakePublisher, FakeReader, CollectorRegistry]:
    publisher = FakePublisher()
    reader = FakeReader(publisher, seeded or {})
    registry = CollectorRegistry()
    emitter = emit.Emitter(
        NAMING,
        publisher=publisher,
        reader=reader,
        metrics=producer_metrics.create(registry),
        clock=lambda: 1000.0,
    )
    return emitter, publisher, reader, registry


def summary(publisher: FakePublisher) -> list[tuple[str, str, str]]:
    return [
        (
            r.key,
            dict(r.headers)[events.HEADER_EVENT].decode(),
            "v" if r.value is not None else "tombstone",
        )
        for r in publisher.records
    ]


async def test_a_page_and_its_tombstones_are_each_handed_over_in_one_call() -> None:
    emitter, publisher, _, _ = make(seeded={PODS: {ObjectKey(f"ns/gone-{i}"): "1"
                                                   for i in range(3)}})  # fmt: skip
    run = await emitter.listing(Resource.PODS, Scope())
    await run.page([obj(f"p{i}", "1") for i in range(20)])
    await run.page([obj(f"q{i}", "1") for i in range(5)])
    await run.finish("9")
    assert publisher.calls == [20, 5, 3]  # so the publisher can batch a page's records


async def test_first_listing_publishes_everything() -> None:
    emitter, publisher, _, _ = make()
    await emitter.listed(Resource.PODS, Scope(), Page([obj("a", "1"), obj("b", "2")], "9"))
    assert summary(publisher) == [("ns/a", "ADDED", "v"), ("ns/b", "ADDED", "v")]
    record = publisher.records[0]
    assert record.topic == PODS
    value = events.decode(record.value or b"")
    assert (value.cluster, value.resource_version, value.observed_at) == ("c1", "1", 1000.0)


async def test_relisting_the_same_writes_nothing_and_tombstones_the_vanished() -> None:
    emitter, publisher, _, registry = make(
        seeded={PODS: {ObjectKey("ns/a"): "1", ObjectKey("ns/gone"): "5"}}
    )
    await emitter.listed(Resource.PODS, Scope(), Page([obj("a", "1"), obj("b", "2")], "9"))
    assert summary(publisher) == [("ns/b", "ADDED", "v"), ("ns/gone", "DELETED", "tombstone")]
    assert (
        registry.get_sample_value(
            "sdstream_producer_reconcile_tombstones_total", {"resource": "pods"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "sdstream_producer_reconcile_unchanged_total", {"resource": "pods"}
        )
        == 1
    )


async def test_a_namespace_scope_only_tombstones_its_own_keys() -> None:
    emitter, publisher, _, _ = make(seeded={PODS: {ObjectKey("other/x"): "1"}})
    await emitter.listed(Resource.PODS, Scope("ns"), Page([], "9"))
    assert publisher.records == []


async def test_watch_events_update_and_tombstone() -> None:
    emitter, publisher, _, _ = make()
    await emitter.listed(Resource.PODS, Scope(), Page([obj("a", "1")], "1"))
    await emitter.event(Resource.PODS, event("MODIFIED", obj("a", "2")))
    await emitter.event(Resource.PODS, event("MODIFIED", obj("a", "2")))  # repeated: no record
    await emitter.event(Resource.PODS, event("DELETED", obj("a", "3")))
    assert summary(publisher) == [
        ("ns/a", "ADDED", "v"),
        ("ns/a", "MODIFIED", "v"),
        ("ns/a", "DELETED", "tombstone"),
    ]
    assert dict(publisher.records[-1].headers)[events.HEADER_RESOURCE_VERSION] == b"3"


async def test_cluster_scoped_keys_have_no_namespace() -> None:
    emitter, publisher, _, _ = make()
    await emitter.listed(Resource.NODES, Scope(), Page([obj("n1", "1", namespace=None)], "1"))
    assert [r.key for r in publisher.records] == ["n1"]


@pytest.mark.parametrize(
    "bad",
    [
        {"metadata": {"resourceVersion": "1"}},  # no name
        obj("x", "1", spec="not an object"),
        {"metadata": {"name": "y", "labels": {"a": 1}}},
    ],
)
async def test_bad_objects_are_counted_and_skipped(bad: dict[str, object]) -> None:
    emitter, publisher, _, registry = make()
    await emitter.listed(Resource.PODS, Scope(), Page([bad, obj("ok", "1")], "1"))
    await emitter.event(Resource.PODS, event("ADDED", bad))
    assert [r.key for r in publisher.records] == ["ns/ok"]
    assert (
        registry.get_sample_value(
            "sdstream_producer_skipped_objects_total", {"resource": "pods", "reason": "untrimmable"}
        )
        == 2
    )


async def test_a_lost_record_rereads_the_topic_and_fails_the_watch() -> None:
    emitter, publisher, reader, _ = make()
    publisher.lose_next = 1
    with pytest.raises(emit.PublishFailed):
        await emitter.listed(Resource.PODS, Scope(), Page([obj("a", "1"), obj("b", "1")], "1"))
    assert reader.loads == 1
    await emitter.listed(Resource.PODS, Scope(), Page([obj("a", "1"), obj("b", "1")], "2"))
    assert reader.loads == 2
    assert publisher.topic(PODS) == {"ns/a": "1", "ns/b": "1"}


names = st.sampled_from(["a", "b", "c", "d", "e"])
versions = st.sampled_from(["1", "2"])


@st.composite
def pages_of(draw: st.DrawFn, listing: dict[str, str]) -> list[Page]:
    items = [obj(name, version) for name, version in listing.items()]
    cuts = sorted(draw(st.lists(st.integers(0, len(items)), max_size=len(items) + 1)))
    bounds = [0, *cuts, len(items)]
    return [Page(items[a:b], "9") for a, b in itertools.pairwise(bounds)]


def held(seeded: dict[ObjectKey, str], publisher: FakePublisher) -> dict[ObjectKey, str]:
    """What the compacted topic holds: the seed, then every record in order."""
    state = dict(seeded)
    for r in publisher.records:
        if r.value is None:
            state.pop(r.key, None)
        else:
            state[r.key] = dict(r.headers)[events.HEADER_RESOURCE_VERSION].decode()
    return state


async def stream(emitter: emit.Emitter, pages: list[Page], *, finish: bool) -> None:
    run = await emitter.listing(Resource.PODS, Scope())
    for page in pages:
        await run.page(page.items)
    if finish:
        await run.finish(pages[-1].resource_version)


@given(
    known=st.dictionaries(names, versions),
    listing=st.dictionaries(names, versions),
    data=st.data(),
)
def test_a_paged_listing_writes_what_a_whole_one_does_and_an_aborted_one_no_tombstone(
    known: dict[str, str], listing: dict[str, str], data: st.DataObject
) -> None:
    seeded = {PODS: {ObjectKey(f"ns/{k}"): v for k, v in known.items()}}
    pages = data.draw(pages_of(listing))
    read = data.draw(st.integers(0, len(pages) - 1))

    async def scenario() -> None:
        paged, paged_out, _, _ = make(seeded)
        await stream(paged, pages[:read], finish=False)  # the LIST fails before page `read`
        assert all(r.value is not None for r in paged_out.records)
        await stream(paged, pages, finish=True)  # the re-list
        whole, whole_out, _, _ = make(seeded)
        everything = Page([obj(k, v) for k, v in listing.items()], "9")
        await whole.listed(Resource.PODS, Scope(), everything)
        assert held(seeded[PODS], paged_out) == {f"ns/{k}": v for k, v in listing.items()}
        fresh, fresh_out, _, _ = make(seeded)
        await stream(fresh, pages, finish=True)
        assert fresh_out.records == whole_out.records

    asyncio.run(scenario())


def big(name: str, version: str, image_bytes: int) -> KubeObject:
    return obj(name, version, spec={"containers": [{"name": "app", "image": "x" * image_bytes}]})


async def test_a_record_over_max_record_bytes_is_skipped_and_counted_and_the_rest_flows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter, publisher, _, registry = make()
    limit = NAMING.max_record_bytes
    page = Page([obj("a", "1"), big("huge", "2", limit), obj("b", "3")], "9")
    await emitter.listed(Resource.PODS, Scope(), page)
    assert summary(publisher) == [("ns/a", "ADDED", "v"), ("ns/b", "ADDED", "v")]
    skipped = {"resource": "pods", "reason": "too_large"}
    assert registry.get_sample_value("sdstream_producer_skipped_objects_total", skipped) == 1
    assert "Skipping pods ns/huge: too_large (a record of 10" in caplog.text

    await emitter.event(Resource.PODS, event("MODIFIED", big("huge", "4", 100)))  # shrunk
    await emitter.event(Resource.PODS, event("DELETED", obj("b", "5")))
    assert summary(publisher)[2:] == [
        ("ns/huge", "MODIFIED", "v"),
        ("ns/b", "DELETED", "tombstone"),
    ]


async def test_an_object_that_grows_too_large_has_its_earlier_record_tombstoned() -> None:
    emitter, publisher, _, registry = make()
    await emitter.listed(Resource.PODS, Scope(), Page([big("p", "1", 100)], "9"))
    await emitter.event(Resource.PODS, event("MODIFIED", big("p", "2", NAMING.max_record_bytes)))
    await emitter.event(Resource.PODS, event("MODIFIED", big("p", "3", NAMING.max_record_bytes)))
    assert summary(publisher) == [("ns/p", "ADDED", "v"), ("ns/p", "DELETED", "tombstone")]
    assert publisher.topic(PODS) == {}
    skipped = {"resource": "pods", "reason": "too_large"}
    assert registry.get_sample_value("sdstream_producer_skipped_objects_total", skipped) == 2

    await emitter.listed(
        Resource.PODS, Scope(), Page([big("p", "3", NAMING.max_record_bytes)], "9")
    )
    assert len(publisher.records) == 2  # re-listing it writes nothing: no tombstone loop


@pytest.mark.parametrize("value_bytes", [0, 100, 20_000, 1_000_000])
def test_record_size_never_underestimates_what_aiokafka_checks(value_bytes: int) -> None:
    headers = events.headers(
        event=events.EventType.ADDED, cluster="c1", resource=Resource.PODS, resource_version="7"
    )
    key, value = b"namespace/name", b"x" * value_bytes
    theirs = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
    assert theirs <= emit.record_size(key, value, headers) <= theirs + 64


def test_the_record_limit_fits_every_topic() -> None:
    assert emit.fitting(1_000_000, {"a": 1_048_588, "b": 1_048_588}) == (1_000_000, [])
    limit, lowering = emit.fitting(1_000_000, {"a": 1_048_588, "b": 20_000, "c": 50_000})
    assert lowering == ["b"]
    assert limit < 20_000 - 64
