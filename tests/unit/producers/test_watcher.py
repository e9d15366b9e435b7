from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from producers import health, prefetch, producer_metrics
from producers.emit import PublishFailed
from producers.kubeapi import errors
from producers.kubeapi.api import Page, Scope, WatchEvent
from producers.watcher import Backoff, ObjectSource, Watch, Watcher
from schemas.objects import KubeObject
from schemas.topics import Resource
from tests.unit.producers.fakes import FakeSource, event, expired, obj

WATCH = Watch(Resource.PODS, Scope())


@dataclass
class RecordingListing:
    calls: list[tuple[str, str]]
    pages: bool

    async def page(self, items: list[KubeObject]) -> None:
        if self.pages:
            self.calls.append(("page", ",".join(o["metadata"]["name"] for o in items)))

    async def finish(self, resource_version: str) -> None:
        self.calls.append(("listed", resource_version))


@dataclass
class RecordingSink:
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_events: int = 0
    fail_listings: int = 0  # the topic cannot be read
    pages: bool = False  # record each page, too

    async def listing(self, resource: Resource, scope: Scope) -> RecordingListing:
        if self.fail_listings:
            self.fail_listings -= 1
            raise PublishFailed("reading the topic: denied")
        return RecordingListing(self.calls, self.pages)

    async def event(self, resource: Resource, event: WatchEvent) -> None:
        if self.fail_events:
            self.fail_events -= 1
            raise PublishFailed("kafka away")
        self.calls.append((event["type"], event["object"]["metadata"]["resourceVersion"]))

    def resync(self, resource: Resource) -> None:
        self.calls.append(("resync", ""))


async def run_until_idle(
    source: FakeSource, sink: RecordingSink, *, through: ObjectSource | None = None
) -> tuple[list[float], CollectorRegistry]:
    """Run a watch over `source` (or `through`, a wrapper of it) until it idles."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    registry = CollectorRegistry()
    metrics = producer_metrics.create(registry)
    watcher = Watcher(through or source, sink, metrics=metrics, sleep=sleep)
    task = asyncio.create_task(watcher.run(WATCH))
    async with asyncio.timeout(5):
        await source.idle.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return slept, registry


async def test_list_then_watch_from_the_listed_version_skipping_bookmarks() -> None:
    source = FakeSource(
        listings=[Page([obj("a", "1")], "10")],
        streams=[[event("ADDED", obj("b", "11")), event("BOOKMARK", obj("", "12"))]],
    )
    sink = RecordingSink()
    await run_until_idle(source, sink)
    assert sink.calls == [("listed", "10"), ("ADDED", "11")]
    assert source.watched_from == ["10", "12"]  # resumed after the server ended the watch


async def test_410_relists_without_backoff() -> None:
    source = FakeSource(
        listings=[Page([], "10"), Page([], "20")],
        streams=[[event("ADDED", obj("a", "11")), expired()]],
    )
    sink = RecordingSink()
    slept, registry = await run_until_idle(source, sink)
    assert sink.calls == [("listed", "10"), ("ADDED", "11"), ("listed", "20")]
    assert source.watched_from == ["10", "20"]
    assert slept == []
    assert (
        registry.get_sample_value(
            "sdstream_producer_relists_total", {"resource": "pods", "reason": "expired"}
        )
        == 1
    )


async def test_a_broken_watch_resumes_from_the_last_version_after_backoff() -> None:
    source = FakeSource(
        listings=[Page([], "10")],
        streams=[[event("ADDED", obj("a", "11")), errors.ConnectionFailed("reset")]],
    )
    sink = RecordingSink()
    slept, _ = await run_until_idle(source, sink)
    assert source.watched_from == ["10", "11"]
    assert len(slept) == 1


async def test_forbidden_backs_off_and_retries_the_list() -> None:
    forbidden = errors.from_status(403, "no", verb="list", resource="pods")
    source = FakeSource(listings=[forbidden, forbidden, Page([], "5")])
    sink = RecordingSink()
    slept, registry = await run_until_idle(source, sink)
    assert sink.calls == [("listed", "5")]
    assert len(slept) == 2
    assert slept[1] >= slept[0] / 2  # exponential, with jitter
    assert (
        registry.get_sample_value(
            "sdstream_producer_errors_total", {"resource": "pods", "kind": "Forbidden"}
        )
        == 2
    )


async def test_a_publish_failure_relists() -> None:
    source = FakeSource(
        listings=[Page([], "10"), Page([], "30")],
        streams=[[event("ADDED", obj("a", "11"))]],
    )
    sink = RecordingSink(fail_events=1)
    slept, registry = await run_until_idle(source, sink)
    assert sink.calls == [("listed", "10"), ("listed", "30")]
    assert len(slept) == 1
    assert (
        registry.get_sample_value(
            "sdstream_producer_relists_total", {"resource": "pods", "reason": "publish"}
        )
        == 1
    )


async def test_a_listing_that_cannot_start_drops_its_early_pages_and_lists_again() -> None:
    """The first LIST page asked for while Kafka started is not held through the
    backoff of a topic that cannot be read: the retry lists anew."""
    source = FakeSource(listings=[Page([], "10"), Page([], "30")])
    early = prefetch.FirstPages(source, [(WATCH.resource, WATCH.scope)])
    sink = RecordingSink(fail_listings=1)
    await run_until_idle(source, sink, through=early)
    assert sink.calls == [("listed", "30")]


async def test_pages_stream_in_and_only_a_complete_listing_is_finished() -> None:
    source = FakeSource(
        listings=[
            [Page([obj("a", "1")], "10"), expired()],  # the continue token expired
            [Page([obj("a", "1")], "20"), Page([obj("b", "2")], "20")],
        ],
    )
    sink = RecordingSink(pages=True)
    _, registry = await run_until_idle(source, sink)
    assert sink.calls == [("page", "a"), ("page", "a"), ("page", "b"), ("listed", "20")]
    assert source.watched_from == ["20"]
    assert registry.get_sample_value("sdstream_producer_lists_total", {"resource": "pods"}) == 1
    assert (
        registry.get_sample_value(
            "sdstream_producer_relists_total", {"resource": "pods", "reason": "expired"}
        )
        == 1
    )


def test_backoff_grows_to_its_maximum_and_resets() -> None:
    backoff = Backoff(initial_s=1, maximum_s=8)
    delays = [backoff.next() for _ in range(6)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert delays[-1] >= 4
    backoff.reset()
    assert backoff.next() <= 1


async def test_a_rejected_selector_is_logged_once_per_period_and_makes_the_watch_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bad = errors.Invalid("list pods: HTTP 400: unable to parse requirement", status=400)
    source = FakeSource(listings=[bad] * 6 + [Page([obj("a", "1")], "10")])
    sink = RecordingSink()
    registry = CollectorRegistry()
    watches = health.WatchHealth(producer_metrics.create(registry))
    seen: list[list[str]] = []

    async def sleep(seconds: float) -> None:
        seen.append(watches.stuck())

    metrics = producer_metrics.create(CollectorRegistry())
    watcher = Watcher(source, sink, metrics=metrics, health=watches, sleep=sleep)
    task = asyncio.create_task(watcher.run(WATCH))
    async with asyncio.timeout(5):
        await source.idle.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [bool(s) for s in seen] == [False, False, True, True, True, True]
    assert "HTTP 400" in seen[-1][0]
    assert watches.stuck() == []  # listed at last
    errors_logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors_logged) == 1  # not one per try
    assert "works again after 6 failures" in caplog.text


async def test_an_absent_crd_is_said_once_counts_as_listed_and_is_picked_up_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A monitor CRD not installed: ready without it, one log line, checked again until
    it appears, then listed and watched like any resource."""
    gone = errors.NotFound("the server could not find the requested resource", status=404)
    source = FakeSource(listings=[gone, gone, Page([obj("m", "1")], "7")])
    sink = RecordingSink()
    slept: list[float] = []
    listed: list[Watch] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    registry = CollectorRegistry()
    watcher = Watcher(
        source,
        sink,
        metrics=producer_metrics.create(registry),
        sleep=sleep,
        on_listed=listed.append,
    )
    watcher.absent_recheck_s = 42.0
    monitors = Watch(Resource.SERVICEMONITORS, Scope())
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(watcher.run(monitors))
    async with asyncio.timeout(5):
        await source.idle.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slept == [42.0, 42.0]
    assert sink.calls == [("listed", "7")]
    assert listed == [monitors, monitors, monitors]
    said = [r.getMessage() for r in caplog.records if "not served" in r.getMessage()]
    assert len(said) == 1
    assert any("served now" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    not_served = {"resource": "servicemonitors", "kind": "NotServed"}
    assert registry.get_sample_value("sdstream_producer_errors_total", not_served) == 2


async def test_a_404_on_a_built_in_resource_is_still_a_failure() -> None:
    gone = errors.NotFound("no", status=404)
    source = FakeSource(listings=[gone, Page([], "3")])
    slept, registry = await run_until_idle(source, RecordingSink())
    assert len(slept) == 1
    assert slept[0] < 1
    errors_total = "sdstream_producer_errors_total"
    assert registry.get_sample_value(errors_total, {"resource": "pods", "kind": "NotFound"}) == 1
