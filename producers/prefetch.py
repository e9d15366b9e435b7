"""Each watch's first LIST page, asked for while Kafka starts.

A term's start used to run strictly in turn: topics checked (or created), the Kafka
producer started, each topic read back, and only then the first LIST request. The
LIST depends on none of those, so `FirstPages` sends each watch's first page request
as the term begins and hands the page to the watcher when it asks for its first
listing; the records wait for the producer, the reconcile for the topic read.

Nothing about the guarantees changes: the listing is still reconciled against what the
topic holds, read before any record of the term is written, and only this term's
producer writes the topic, so it holds the same whether read before or after the page
was fetched (a delete while the producer was down is still tombstoned). The watch still
starts from the listing's resourceVersion. While Kafka is slow to start, a watch holds
what a running listing holds: its first page parsed and the next one being received
(`KubeApi.pages` reads one page ahead); a continue token that expires meanwhile is a
410, and the watcher lists again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable

from producers.kubeapi.api import Page, Scope, WatchEvent
from producers.watcher import ObjectSource
from schemas.topics import Resource


class FirstPages:
    """An ObjectSource whose first `pages()` per (resource, scope) was started early."""

    def __init__(self, source: ObjectSource, wanted: Iterable[tuple[Resource, Scope]]) -> None:
        self._source = source
        self._early = {where: _Early(source.pages(*where)) for where in wanted}

    def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        early = self._early.pop((resource, scope), None)
        return _Claimed(early) if early is not None else self._source.pages(resource, scope)

    def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        return self._source.watch(resource, scope, since=since, timeout_s=timeout_s)

    async def close(self) -> None:
        """Drop the early pages no watcher took (the term ended before they ran)."""
        early, self._early = list(self._early.values()), {}
        for one in early:
            await one.drop()


class _Early:
    """One listing whose first page is being fetched (or is in) before anyone asked."""

    def __init__(self, pages: AsyncIterator[Page]) -> None:
        self._pages = pages
        self._first: asyncio.Task[Page | None] | None = asyncio.create_task(_next(pages))

    async def pages(self) -> AsyncGenerator[Page, None]:
        try:
            first, self._first = self._first, None  # a done task keeps its result: the page
            page = await first if first is not None else None
            del first
            if page is None:
                return
            yield page
            async for page in self._pages:
                yield page
        finally:
            await self.drop()

    async def drop(self) -> None:
        """Cancel the first page's request if it is still out; close the listing."""
        first, self._first = self._first, None
        if first is not None:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)  # its error, if any, is ours
        if isinstance(self._pages, AsyncGenerator):
            await self._pages.aclose()


class _Claimed:
    """An early listing a watcher took: closing it drops the early page even if the
    watcher never iterated it (its listing failed first), which closing a generator
    that never started would not do: its `finally` never runs."""

    def __init__(self, early: _Early) -> None:
        self._early = early
        self._pages = early.pages()

    def __aiter__(self) -> _Claimed:
        return self

    async def __anext__(self) -> Page:
        return await anext(self._pages)

    async def aclose(self) -> None:
        await self._pages.aclose()
        await self._early.drop()


async def _next(pages: AsyncIterator[Page]) -> Page | None:
    """The first page, or None for a listing without pages."""
    return await anext(pages, None)
