"""FirstPages sends each watch's first LIST request at once and hands that listing to the
first caller; later listings, watches and unused early pages behave as without it."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from producers import prefetch
from producers.kubeapi import errors
from producers.kubeapi.api import Page, Scope, WatchEvent
from schemas.topics import Resource

PODS, ALL = Resource.PODS, Scope()


@dataclass
class Source:
    """Pages "pod-<listing>-<n>"; records which pages were fetched and which listings closed."""

    pages_per_list: int = 3
    fail_first: BaseException | None = None
    fetched: list[str] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    listings: int = 0

    async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        self.listings += 1
        n = self.listings
        try:
            if self.fail_first is not None:
                raise self.fail_first
            for i in range(self.pages_per_list):
                self.fetched.append(f"{n}-{i}")
                yield Page([{"metadata": {"name": f"pod-{n}-{i}"}}], "7")
        finally:
            self.closed.append(n)

    async def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        yield {"type": "ADDED", "object": {"metadata": {"name": since}}}


async def names(pages: AsyncIterator[Page]) -> list[str]:
    return [p.items[0]["metadata"]["name"] async for p in pages]


async def test_the_first_page_is_fetched_before_anyone_asks_then_handed_over_once() -> None:
    source = Source()
    early = prefetch.FirstPages(source, [(PODS, ALL)])
    await asyncio.sleep(0)  # the request goes out on its own
    assert source.fetched == ["1-0"]
    assert await names(early.pages(PODS, ALL)) == ["pod-1-0", "pod-1-1", "pod-1-2"]
    assert await names(early.pages(PODS, ALL)) == ["pod-2-0", "pod-2-1", "pod-2-2"]  # a re-list
    assert source.closed == [1, 2]
    await early.close()


async def test_an_unused_early_listing_is_closed_and_its_error_is_not_left_unretrieved() -> None:
    source = Source(fail_first=errors.Expired("too old", status=410))
    early = prefetch.FirstPages(source, [(PODS, ALL), (Resource.NODES, ALL)])
    await asyncio.sleep(0)
    await early.close()
    assert sorted(source.closed) == [1, 2]


async def test_the_first_pages_error_reaches_the_watcher() -> None:
    early = prefetch.FirstPages(
        Source(fail_first=errors.Expired("too old", status=410)), [(PODS, ALL)]
    )
    with pytest.raises(errors.Expired):
        await names(early.pages(PODS, ALL))


async def test_a_listing_stopped_midway_closes_the_source_listing() -> None:
    source = Source()
    early = prefetch.FirstPages(source, [(PODS, ALL)])
    pages = early.pages(PODS, ALL)
    assert isinstance(pages, AsyncIterator)
    await anext(pages)
    await pages.aclose()  # type: ignore[attr-defined]  # an async generator
    assert source.closed == [1]
    assert source.fetched == ["1-0"]


async def test_close_while_the_first_request_is_out_cancels_it() -> None:
    gate = asyncio.Event()

    class Slow(Source):
        async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
            try:
                await gate.wait()
                yield Page([], "1")
            finally:
                self.closed.append(1)

    source = Slow()
    early = prefetch.FirstPages(source, [(PODS, ALL)])
    await asyncio.sleep(0)
    await early.close()
    assert source.closed == [1]
    assert not gate.is_set()


async def test_watches_and_other_scopes_go_straight_to_the_source() -> None:
    source = Source(pages_per_list=1)
    early = prefetch.FirstPages(source, [(PODS, ALL)])
    await asyncio.sleep(0)
    events = [e async for e in early.watch(PODS, ALL, since="9")]
    assert events == [{"type": "ADDED", "object": {"metadata": {"name": "9"}}}]
    assert await names(early.pages(PODS, Scope("ns"))) == ["pod-2-0"]
    await early.close()


async def test_the_first_page_is_not_held_once_the_watcher_moved_on() -> None:
    """A parsed page of 500 pods is ~10 MiB: kept by the done task for the whole listing,
    it raised the producer's peak RSS by as much (bench/README.md, session 9)."""
    early = prefetch.FirstPages(Source(), [(PODS, ALL)])
    pages = early.pages(PODS, ALL)
    first = weakref.ref(await anext(pages))
    await anext(pages)
    await asyncio.sleep(0)  # the loop runs on (the handle that woke us held the task)
    gc.collect()
    assert first() is None
    await early.close()


async def test_a_listing_taken_and_closed_before_it_ran_drops_its_early_page() -> None:
    """The watcher takes the pages, then its listing fails (the topic cannot be read) and
    it closes them unread: the early page and its listing go then, not at collection."""
    source = Source()
    early = prefetch.FirstPages(source, [(PODS, ALL)])
    await asyncio.sleep(0)
    pages = early.pages(PODS, ALL)
    await pages.aclose()  # type: ignore[attr-defined]
    assert source.closed == [1]
