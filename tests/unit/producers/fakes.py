"""In-memory implementations of the producer's own Protocols."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from producers.emit import Record
from producers.kubeapi import errors
from producers.kubeapi.api import Page, Scope, WatchEvent
from schemas.objects import KubeObject
from schemas.topics import ObjectKey, Resource


@dataclass
class FakePublisher:
    """Keeps records; `topics` holds what a compacted topic would (latest per key)."""

    records: list[Record] = field(default_factory=list)
    failures: int = 0
    lose_next: int = 0  # the next N records are "not acknowledged"
    calls: list[int] = field(default_factory=list)  # records handed over, per call

    async def publish(self, records: Sequence[Record]) -> None:
        self.calls.append(len(records))
        for record in records:
            if self.lose_next:
                self.lose_next -= 1
                self.failures += 1
                continue
            self.records.append(record)

    async def flush(self) -> None:
        return None

    def topic(self, name: str) -> dict[ObjectKey, str]:
        state: dict[ObjectKey, str] = {}
        for r in self.records:
            if r.topic != name:
                continue
            if r.value is None:
                state.pop(r.key, None)
            else:
                state[r.key] = dict(r.headers)["sdstream-resource-version"].decode()
        return state


@dataclass
class FakeReader:
    """Reads "topics" from the fake publisher, plus anything seeded before."""

    publisher: FakePublisher
    seeded: dict[str, dict[ObjectKey, str]] = field(default_factory=dict)
    loads: int = 0

    async def load(self, topic: str, *, partitions: int) -> dict[ObjectKey, str]:
        self.loads += 1
        return {**self.seeded.get(topic, {}), **self.publisher.topic(topic)}


def obj(name: str, version: str, *, namespace: str | None = "ns", **extra: object) -> KubeObject:
    meta: dict[str, object] = {"name": name, "resourceVersion": version}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, **extra}


def event(kind: str, o: KubeObject) -> WatchEvent:
    return {"type": kind, "object": o}


@dataclass
class FakeSource:
    """Scripted listings and watch streams; an exception in a script is raised in turn.

    A listing is one page, or a list of pages (an exception in it fails the LIST
    midway). When the scripts run out, `watch` blocks until cancelled, like an idle watch.
    """

    listings: list[Page | list[Page | Exception] | Exception] = field(default_factory=list)
    streams: list[list[WatchEvent | Exception] | Exception] = field(default_factory=list)
    watched_from: list[str] = field(default_factory=list)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        item = self.listings.pop(0)
        for page in item if isinstance(item, list) else [item]:
            if isinstance(page, Exception):
                raise page
            yield page

    async def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        self.watched_from.append(since)
        if not self.streams:
            self.idle.set()
            await asyncio.Event().wait()
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream
        for item in stream:
            if isinstance(item, Exception):
                raise item
            yield item


def expired() -> errors.Expired:
    return errors.Expired("too old", status=410)
