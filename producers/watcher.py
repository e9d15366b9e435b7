"""List -> watch -> (410) -> list, for one resource in one scope, forever.

A watch that ends (server timeout) or breaks (connection) is resumed from the
last resourceVersion seen, bookmarks included; only 410 Gone, or Kafka failing
to take a record, needs a new LIST, and every LIST is reconciled against the
topic, so nothing that happened meanwhile is lost. A LIST streams: each page
goes to the sink as it arrives, and the listing is finished (vanished keys
tombstoned) only after its last page; one that fails midway is just dropped.
Errors back off exponentially; a 403 names the missing verb and resource and is
retried slowly, while the other resources go on. Every failure is counted in
`WatchHealth` until the watch works again, so a watch that keeps failing (a 400
for a selector the server rejects, say) shows on /readyz and a gauge, and is
logged once per backoff period rather than at every try.

An optional resource (a CRD such as ServiceMonitor, `Row.optional`) that the API server
does not serve (404) is no failure: the watch says so once, counts as listed (the
producer is ready without it) and asks again every `absent_recheck_s`, so a CRD
installed later is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from lifecycle.backoff import Backoff
from producers.emit import PublishFailed
from producers.health import WatchHealth
from producers.kubeapi import errors
from producers.kubeapi.api import Page, Scope, WatchEvent
from producers.producer_metrics import ProducerMetrics
from schemas import resources
from schemas.objects import KubeObject
from schemas.topics import Resource

logger = logging.getLogger(__name__)

CHANGES = frozenset({"ADDED", "MODIFIED", "DELETED"})


class ObjectSource(Protocol):
    def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]: ...

    def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]: ...


class ListingSink(Protocol):
    """One listing in progress: pages as they arrive, then `finish` after the last one."""

    async def page(self, items: list[KubeObject]) -> None: ...

    async def finish(self, resource_version: str) -> None: ...


class Sink(Protocol):
    async def listing(self, resource: Resource, scope: Scope) -> ListingSink: ...

    async def event(self, resource: Resource, event: WatchEvent) -> None: ...

    def resync(self, resource: Resource) -> None: ...


@dataclass(frozen=True)
class Watch:
    resource: Resource
    scope: Scope
    timeout_s: int = 300


Sleep = Callable[[float], Awaitable[None]]


class Watcher:
    def __init__(
        self,
        source: ObjectSource,
        sink: Sink,
        *,
        metrics: ProducerMetrics,
        on_listed: Callable[[Watch], None] = lambda _: None,
        health: WatchHealth | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._source = source
        self._sink = sink
        self._metrics = metrics
        self._on_listed = on_listed
        self._health = health or WatchHealth(metrics)
        self._sleep = sleep
        self.absent_recheck_s = 60.0  # how often to ask again for an absent optional resource

    async def run(self, watch: Watch) -> None:
        """Never returns; cancel it to stop."""
        backoff = Backoff()
        relist_reason: str | None = None
        absent = False
        while True:
            try:
                since = await self._list(watch, relist_reason)
                backoff.reset()
                absent = self._present(watch, absent=absent)
                await self._follow(watch, since=since, backoff=backoff)
            except errors.NotFound as exc:
                if not resources.row(watch.resource).optional:
                    relist_reason = "error"
                    self._failed(watch, exc)
                    await self._sleep(backoff.next())
                    continue
                absent = self._absent(watch, absent=absent)
                relist_reason = None
                await self._sleep(self.absent_recheck_s)
            except errors.Expired:
                relist_reason = "expired"
                logger.info(
                    "Watch of %s expired; re-listing.",
                    watch.resource,
                    extra={"resource": watch.resource.value},
                )
            except PublishFailed as exc:
                relist_reason = "publish"
                self._failed(watch, exc)
                await self._sleep(backoff.next())
            except errors.ApiError as exc:
                relist_reason = "error"
                self._failed(watch, exc)
                await self._sleep(backoff.next())
            except Exception as exc:  # noqa: BLE001  # a bug must not stop the other resources
                relist_reason = "error"
                self._failed(watch, exc, unexpected=True)
                await self._sleep(backoff.next())

    async def _list(self, watch: Watch, relist_reason: str | None) -> str:
        """Stream one LIST into the sink; its resourceVersion, to watch from."""
        version = ""
        pages = self._source.pages(watch.resource, watch.scope)  # closed even if listing fails
        try:
            listing = await self._sink.listing(watch.resource, watch.scope)
            async for page in pages:
                await listing.page(page.items)
                version = page.resource_version
        finally:
            if (close := getattr(pages, "aclose", None)) is not None:
                await close()  # now, not at garbage collection: cancels a page read ahead
        self._metrics.lists.labels(watch.resource.value).inc()
        if relist_reason is not None:
            self._metrics.relists.labels(watch.resource.value, relist_reason).inc()
        await listing.finish(version)
        self._worked(watch)
        self._on_listed(watch)
        return version

    async def _follow(self, watch: Watch, *, since: str, backoff: Backoff) -> None:
        """Watch from `since` forever, resuming after timeouts and retriable errors."""
        resource = watch.resource
        while True:
            try:
                stream = self._source.watch(
                    resource, watch.scope, since=since, timeout_s=watch.timeout_s
                )
                async for event in stream:
                    since = await self._handle(resource, event) or since
                    backoff.reset()
                    self._worked(watch)
                reason = "timeout"
                self._worked(watch)
            except errors.Expired:
                self._metrics.watch_restarts.labels(resource.value, "expired").inc()
                raise
            except errors.ApiError as exc:
                if not exc.retriable:
                    raise
                reason = "error"
                self._failed(watch, exc)
                await self._sleep(backoff.next())
            self._metrics.watch_restarts.labels(resource.value, reason).inc()

    async def _handle(self, resource: Resource, event: WatchEvent) -> str | None:
        """Pass a change on; the event's resourceVersion (None if it has none)."""
        kind = str(event.get("type"))
        self._metrics.events.labels(resource.value, kind).inc()
        meta = event["object"].get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if kind in CHANGES:
            await self._sink.event(resource, event)
        elif kind != "BOOKMARK":
            self._metrics.errors.labels(resource.value, "UnknownEventType").inc()
        return str(version) if version else None

    def _absent(self, watch: Watch, *, absent: bool) -> bool:
        """An optional resource the server does not serve: ready without it, said once."""
        if not absent:
            logger.info(
                "%s%s is not served by this API server (its CRD is not installed); going on "
                "without it and checking again every %gs.",
                watch.resource,
                _where(watch),
                self.absent_recheck_s,
                extra={"resource": watch.resource.value},
            )
        self._metrics.errors.labels(watch.resource.value, "NotServed").inc()
        self._worked(watch)
        self._on_listed(watch)
        return True

    def _present(self, watch: Watch, *, absent: bool) -> bool:
        if absent:
            logger.info(
                "%s%s is served now: watching it.",
                watch.resource,
                _where(watch),
                extra={"resource": watch.resource.value},
            )
        return False

    def _worked(self, watch: Watch) -> None:
        failing = self._health.succeeded((watch.resource, watch.scope.namespace))
        if failing is not None:
            logger.info(
                "%s%s works again after %d failures in %.0fs.",
                watch.resource,
                _where(watch),
                failing.count,
                self._health.elapsed(failing),
                extra={"resource": watch.resource.value, "failures": failing.count},
            )

    def _failed(self, watch: Watch, exc: Exception, *, unexpected: bool = False) -> None:
        """Count the failure; log it unless the same error was logged this backoff period."""
        self._metrics.errors.labels(watch.resource.value, type(exc).__name__).inc()
        failing = self._health.failed((watch.resource, watch.scope.namespace), exc)
        if failing is None:
            return
        config = isinstance(exc, errors.Forbidden | errors.Invalid)  # a user must fix it
        logger.log(
            logging.ERROR if config or unexpected else logging.WARNING,
            "%s%s: %s (%d failures in a row over %.0fs; retrying with backoff).",
            watch.resource,
            _where(watch),
            exc,
            failing.count,
            self._health.elapsed(failing),
            exc_info=exc if unexpected else None,
            extra={"resource": watch.resource.value, "error": type(exc).__name__},
        )


def _where(watch: Watch) -> str:
    return f" in {watch.scope.namespace}" if watch.scope.namespace else ""
