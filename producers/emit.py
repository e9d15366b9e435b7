"""Turns listings and watch events into records: trim, reconcile, publish.

One `Emitter` serves every resource of a cluster. Per topic it keeps what the
topic holds (`{key: resourceVersion}`), read from Kafka at start and again after
Kafka failed to take a record, and updated as records are handed over. Objects
that cannot be trimmed or serialised are counted, logged with their key, and
skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from producers import reconcile, trim
from producers.known import KnownReader
from producers.kubeapi.api import Listing, Scope, WatchEvent
from producers.metrics import ProducerMetrics
from schemas import events
from schemas.events import EventType, Headers, ObjectEvent
from schemas.objects import KubeObject
from schemas.topics import ObjectKey, Resource, object_topic, partition_for, split_key

logger = logging.getLogger(__name__)


class PublishFailed(Exception):
    """Kafka did not take a record (or could not be read); back off, re-read, re-list."""

    retriable: ClassVar[bool] = True


@dataclass(frozen=True)
class Record:
    topic: str
    key: ObjectKey
    value: bytes | None  # None: tombstone
    headers: Headers
    partition: int
    resource: Resource
    event: EventType
    observed_at: float  # time.time() when the producer saw the change


class Publisher(Protocol):
    failures: int  # grows each time Kafka did not take a record

    async def publish(self, record: Record) -> None: ...

    async def flush(self) -> None: ...


@dataclass
class TopicState:
    known: dict[ObjectKey, str] = field(default_factory=dict)
    loaded_at_failures: int = 0  # publisher.failures when `known` was read


@dataclass(frozen=True)
class Naming:
    cluster: str
    prefix: str
    partitions: int
    drop_annotations: frozenset[str]

    def topic(self, resource: Resource) -> str:
        return object_topic(self.prefix, self.cluster, resource)


class Emitter:
    def __init__(
        self,
        naming: Naming,
        *,
        publisher: Publisher,
        reader: KnownReader,
        metrics: ProducerMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._naming = naming
        self._publisher = publisher
        self._reader = reader
        self._metrics = metrics
        self._clock = clock
        self._topics: dict[Resource, TopicState] = {}
        self._loading: dict[Resource, asyncio.Lock] = {}

    async def listed(self, resource: Resource, scope: Scope, listing: Listing) -> None:
        """Publish what the topic lacks; tombstone what vanished (within `scope`)."""
        state = await self._state(resource)
        observed_at = self._clock()
        objects = self._by_key(resource, listing.items)
        known = {k: v for k, v in state.known.items() if _in_scope(k, resource, scope)}
        plan = reconcile.plan({k: _version(o) for k, o in objects.items()}, known)
        for key in plan.tombstones:
            await self._tombstone(resource, key, version=known[key], observed_at=observed_at)
        for key in plan.upserts:
            kind = EventType.MODIFIED if key in state.known else EventType.ADDED
            await self._upsert(resource, objects[key], kind=kind, observed_at=observed_at)
        self._metrics.reconcile_tombstones.labels(resource.value).inc(len(plan.tombstones))
        self._metrics.reconcile_unchanged.labels(resource.value).inc(plan.unchanged)
        self._check(resource, state)
        logger.info(
            "Listed %s%s at %s: %d objects, %d published, %d tombstoned, %d unchanged.",
            resource,
            f" in {scope.namespace}" if scope.namespace else "",
            listing.resource_version,
            len(objects),
            len(plan.upserts),
            len(plan.tombstones),
            plan.unchanged,
            extra={"resource": resource.value, "namespace": scope.namespace},
        )

    async def event(self, resource: Resource, event: WatchEvent) -> None:
        state = await self._state(resource)
        obj = event["object"]
        try:
            key = trim.key_of(obj)
        except trim.TrimError as exc:
            self._skip(resource, "untrimmable", key="?", reason=str(exc))
            return
        kind = EventType(event["type"])
        if kind is EventType.DELETED:
            await self._tombstone(resource, key, version=_version(obj), observed_at=self._clock())
        elif state.known.get(key) != _version(obj):
            await self._upsert(resource, obj, kind=kind, observed_at=self._clock())
        self._check(resource, state)

    def resync(self, resource: Resource) -> None:
        """Forget what the topic holds; the next listing reads it again."""
        self._topics.pop(resource, None)

    async def _state(self, resource: Resource) -> TopicState:
        state = self._topics.get(resource)
        if state is not None:
            return state
        async with self._loading.setdefault(resource, asyncio.Lock()):  # one read per topic
            return self._topics.get(resource) or await self._load(resource)

    async def _load(self, resource: Resource) -> TopicState:
        await self._publisher.flush()
        failures = self._publisher.failures
        topic = self._naming.topic(resource)
        known = await self._reader.load(topic, partitions=self._naming.partitions)
        state = TopicState(known=known, loaded_at_failures=failures)
        self._topics[resource] = state
        return state

    def _check(self, resource: Resource, state: TopicState) -> None:
        if self._publisher.failures != state.loaded_at_failures:
            self.resync(resource)
            raise PublishFailed("Kafka did not acknowledge a record; re-reading the topic")

    def _by_key(self, resource: Resource, items: list[KubeObject]) -> dict[ObjectKey, KubeObject]:
        objects: dict[ObjectKey, KubeObject] = {}
        for obj in items:
            try:
                objects[trim.key_of(obj)] = obj
            except trim.TrimError as exc:
                self._skip(resource, "untrimmable", key="?", reason=str(exc))
        return objects

    async def _upsert(
        self, resource: Resource, obj: KubeObject, *, kind: EventType, observed_at: float
    ) -> None:
        key = trim.key_of(obj)
        version = _version(obj)
        try:
            value = events.encode(
                ObjectEvent(
                    type=kind,
                    cluster=self._naming.cluster,
                    resource=resource,
                    resource_version=version,
                    observed_at=observed_at,
                    object=trim.trim(resource, obj, drop_annotations=self._naming.drop_annotations),
                )
            )
        except trim.TrimError as exc:
            self._skip(resource, "untrimmable", key=key, reason=str(exc))
            return
        except (ValueError, TypeError) as exc:
            self._skip(resource, "unserialisable", key=key, reason=str(exc))
            return
        await self._send(resource, key, value, kind=kind, version=version, observed_at=observed_at)

    async def _tombstone(
        self, resource: Resource, key: ObjectKey, *, version: str, observed_at: float
    ) -> None:
        kind = EventType.DELETED
        await self._send(resource, key, None, kind=kind, version=version, observed_at=observed_at)

    async def _send(  # one record's parts, all keyword-only
        self,
        resource: Resource,
        key: ObjectKey,
        value: bytes | None,
        *,
        kind: EventType,
        version: str,
        observed_at: float,
    ) -> None:
        naming = self._naming
        record = Record(
            topic=naming.topic(resource),
            key=key,
            value=value,
            headers=events.headers(
                event=kind, cluster=naming.cluster, resource=resource, resource_version=version
            ),
            partition=partition_for(key, naming.partitions),
            resource=resource,
            event=kind,
            observed_at=observed_at,
        )
        await self._publisher.publish(record)
        state = self._topics.get(resource)  # None after a resync: the next read has it
        if state is None:
            return
        if value is None:
            state.known.pop(key, None)
        else:
            state.known[key] = version

    def _skip(self, resource: Resource, why: str, *, key: str, reason: str) -> None:
        self._metrics.skipped.labels(resource.value, why).inc()
        logger.warning(
            "Skipping %s %s: %s (%s).",
            resource,
            key,
            why,
            reason,
            extra={"resource": resource.value, "key": key, "reason": reason},
        )


def _version(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(version) if version is not None else ""


def _in_scope(key: ObjectKey, resource: Resource, scope: Scope) -> bool:
    if scope.namespace is None or resource.cluster_scoped:
        return True
    return split_key(key)[0] == scope.namespace
