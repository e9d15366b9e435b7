"""Turns listings and watch events into records: trim, reconcile, publish.

One `Emitter` serves every resource of a cluster. A listing streams: each page's
changed objects are trimmed and published as the page arrives, only the listed
keys are kept, and the tombstones for known keys nobody listed are written once
the last page is in (`Listing.finish`), never for a listing abandoned midway.
Per topic it keeps what the topic holds (`{key: resourceVersion}`), read from
Kafka at start and again after Kafka failed to take a record, and updated as
records are handed over. Objects that cannot be trimmed or serialised are
counted, logged with their key, and skipped.

So is an object whose record would exceed `max_record_bytes` (the Kafka
producer's max_request_size): Kafka would refuse it, and a refusal used to read
as a failed publish, re-listing the resource with backoff forever while none of
the cluster's other changes of that resource got through. If the topic holds an
earlier, smaller record of that key, it is tombstoned: the topic says what each
object is now, or nothing, never a stale version that no later event corrects
while the object stays too large (an Endpoints object's old addresses, say). The
object is published again once it shrinks; a delete tombstones it as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from producers import heap, reconcile, trim
from producers.known import KnownReader
from producers.kubeapi.api import Page, Scope, WatchEvent
from producers.producer_metrics import ProducerMetrics
from schemas import events
from schemas.events import EventType, Headers
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
    version: str  # the object's resourceVersion, what the topic then holds for `key`


class Publisher(Protocol):
    failures: int  # grows each time Kafka did not take a record

    async def publish(self, records: Sequence[Record]) -> None:
        """Hand records over in order (a page's at once, so they go out in few batches)."""
        ...

    async def flush(self) -> None: ...


@dataclass
class TopicState:
    known: dict[ObjectKey, str] = field(default_factory=dict)
    loaded_at_failures: int = 0  # publisher.failures when `known` was read


# An upper bound of what Kafka's record format adds to a record's key, value and header
# bytes (aiokafka's estimate_size_in_bytes): the batch header (61), a record's fixed
# overhead (21), and a length varint of at most 5 bytes per key, value, header count,
# and per header name and value.
BATCH_OVERHEAD = 61 + 21 + 3 * 5
HEADER_OVERHEAD = 2 * 5


def record_size(key: bytes, value: bytes | None, headers: Headers) -> int:
    """Bytes the record takes in a batch of its own, uncompressed (never an underestimate)."""
    size = BATCH_OVERHEAD + len(key) + len(value or b"")
    return size + sum(HEADER_OVERHEAD + len(n.encode()) + len(v) for n, v in headers)


def fitting(max_record_bytes: int, topic_limits: Mapping[str, int]) -> tuple[int, list[str]]:
    """The record limit that every topic's max.message.bytes takes, and the topics that
    lowered it. Kafka checks compressed batches; compression can add a little to data
    it cannot shrink, hence the margin."""
    limit, lowering = max_record_bytes, list[str]()
    for topic, topic_limit in sorted(topic_limits.items()):
        fits = topic_limit - 1024 - topic_limit // 256
        if fits < limit:
            limit, lowering = fits, [*lowering, topic]
    return max(limit, 0), lowering


@dataclass(frozen=True)
class Naming:
    cluster: str
    prefix: str
    partitions: int
    drop_annotations: trim.DropAnnotations
    max_record_bytes: int = 1_000_000  # ProducerSettings.max_record_bytes

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

    async def listing(self, resource: Resource, scope: Scope) -> Listing:
        """Begin a listing of `resource` in `scope`: feed it pages, then finish it."""
        state = await self._state(resource)
        known = {k: v for k, v in state.known.items() if _in_scope(k, resource, scope)}
        return Listing(self, resource, scope, state=state, known=known)

    async def listed(self, resource: Resource, scope: Scope, page: Page) -> None:
        """A whole listing in one page: publish what the topic lacks, tombstone what vanished."""
        run = await self.listing(resource, scope)
        await run.page(page.items)
        await run.finish(page.resource_version)

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
            await self.tombstone(resource, key, version=_version(obj), observed_at=self._clock())
        elif state.known.get(key) != _version(obj):
            await self.upsert(resource, obj, kind=kind, observed_at=self._clock())
        self.check(resource, state)

    def reconciled(self, resource: Resource, *, tombstones: int, unchanged: int) -> None:
        self._metrics.reconcile_tombstones.labels(resource.value).inc(tombstones)
        self._metrics.reconcile_unchanged.labels(resource.value).inc(unchanged)

    def clock(self) -> float:
        return self._clock()

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

    def check(self, resource: Resource, state: TopicState) -> None:
        if self._publisher.failures != state.loaded_at_failures:
            self.resync(resource)
            raise PublishFailed("Kafka did not acknowledge a record; re-reading the topic")

    def by_key(self, resource: Resource, items: list[KubeObject]) -> dict[ObjectKey, KubeObject]:
        objects: dict[ObjectKey, KubeObject] = {}
        for obj in items:
            try:
                objects[trim.key_of(obj)] = obj
            except trim.TrimError as exc:
                self._skip(resource, "untrimmable", key="?", reason=str(exc))
        return objects

    async def upsert(
        self, resource: Resource, obj: KubeObject, *, kind: EventType, observed_at: float
    ) -> None:
        await self.hand_over(
            resource, self.upsert_records(resource, obj, kind=kind, observed_at=observed_at)
        )

    async def tombstone(
        self, resource: Resource, key: ObjectKey, *, version: str, observed_at: float
    ) -> None:
        await self.hand_over(
            resource,
            [self.tombstone_record(resource, key, version=version, observed_at=observed_at)],
        )

    def upsert_records(
        self, resource: Resource, obj: KubeObject, *, kind: EventType, observed_at: float
    ) -> list[Record]:
        """The object's record; none if it cannot be trimmed or serialised (counted), or
        the earlier record's tombstone if it is too large now."""
        key = trim.key_of(obj)
        version = _version(obj)
        try:
            value = events.encode_change(
                type=kind,
                cluster=self._naming.cluster,
                resource=resource,
                resource_version=version,
                observed_at=observed_at,
                object=trim.trim(resource, obj, drop_annotations=self._naming.drop_annotations),
            )
        except trim.TrimError as exc:
            self._skip(resource, "untrimmable", key=key, reason=str(exc))
            return []
        except (ValueError, TypeError) as exc:
            self._skip(resource, "unserialisable", key=key, reason=str(exc))
            return []
        record = self._record(
            resource, key, value, kind=kind, version=version, observed_at=observed_at
        )
        size = record_size(key.encode(), value, record.headers)
        if size > self._naming.max_record_bytes:
            return self._too_large(record, size=size)
        return [record]

    def tombstone_record(
        self, resource: Resource, key: ObjectKey, *, version: str, observed_at: float
    ) -> Record:
        kind = EventType.DELETED
        return self._record(
            resource, key, None, kind=kind, version=version, observed_at=observed_at
        )

    async def hand_over(self, resource: Resource, records: Sequence[Record]) -> None:
        """Publish the records, then remember what the topic holds for their keys."""
        if not records:
            return
        await self._publisher.publish(records)
        state = self._topics.get(resource)  # None after a resync: the next read has it
        if state is None:
            return
        known = state.known
        for record in records:
            if record.value is None:
                known.pop(record.key, None)
            else:
                known[record.key] = record.version

    def _record(  # one record's parts, all keyword-only
        self,
        resource: Resource,
        key: ObjectKey,
        value: bytes | None,
        *,
        kind: EventType,
        version: str,
        observed_at: float,
    ) -> Record:
        naming = self._naming
        return Record(
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
            version=version,
        )

    def _too_large(self, record: Record, *, size: int) -> list[Record]:
        """Skip the record; tombstone the key if the topic holds an earlier record of it."""
        resource, key = record.resource, record.key
        state = self._topics.get(resource)
        held = state is not None and key in state.known
        limit = self._naming.max_record_bytes
        reason = f"a record of {size} bytes, over max_record_bytes={limit}"
        self._skip(resource, "too_large", key=key, reason=reason, size=size)
        if not held:
            return []
        logger.warning(
            "Tombstoning the earlier record of %s %s while it is too large.",
            resource,
            key,
            extra={"resource": resource.value, "key": key},
        )
        return [
            self.tombstone_record(
                resource, key, version=record.version, observed_at=record.observed_at
            )
        ]

    def _skip(
        self, resource: Resource, why: str, *, key: str, reason: str, size: int | None = None
    ) -> None:
        self._metrics.skipped.labels(resource.value, why).inc()
        logger.warning(
            "Skipping %s %s: %s (%s).",
            resource,
            key,
            why,
            reason,
            extra={"resource": resource.value, "key": key, "reason": reason, "bytes": size},
        )


class Listing:
    """One listing in progress (one resource, one scope), driven page by page.

    Holds the scope's known `{key: resourceVersion}` and the keys listed so far,
    never a page after it is published. Dropping it unfinished writes no tombstone.
    """

    def __init__(
        self,
        emitter: Emitter,
        resource: Resource,
        scope: Scope,
        *,
        state: TopicState,
        known: dict[ObjectKey, str],
    ) -> None:
        self._emitter = emitter
        self._resource = resource
        self._scope = scope
        self._state = state
        self._reconciler = reconcile.Reconciler(known)

    async def page(self, items: list[KubeObject]) -> None:
        """Publish the page's objects the topic lacks (or holds at another version)."""
        emitter, resource, state = self._emitter, self._resource, self._state
        observed_at = emitter.clock()
        records: list[Record] = []
        with heap.paused():  # trimming and encoding a page: no cycles among its objects
            objects = emitter.by_key(resource, items)
            upserts = self._reconciler.listed({k: _version(o) for k, o in objects.items()})
            for key in upserts:
                kind = EventType.MODIFIED if key in state.known else EventType.ADDED
                records += emitter.upsert_records(
                    resource, objects[key], kind=kind, observed_at=observed_at
                )
        await emitter.hand_over(resource, records)
        emitter.check(resource, state)

    async def finish(self, resource_version: str) -> None:
        """The last page is in: tombstone the known keys no page listed."""
        emitter, resource, reconciler = self._emitter, self._resource, self._reconciler
        emitter.check(resource, self._state)  # a lost record: re-read and re-list first
        tombstones = reconciler.finish()
        observed_at = emitter.clock()
        records = [
            emitter.tombstone_record(
                resource, key, version=reconciler.known[key], observed_at=observed_at
            )
            for key in tombstones
        ]
        await emitter.hand_over(resource, records)
        emitter.reconciled(resource, tombstones=len(tombstones), unchanged=reconciler.unchanged)
        emitter.check(resource, self._state)
        logger.info(
            "Listed %s%s at %s: %d objects, %d published, %d tombstoned, %d unchanged.",
            resource,
            f" in {self._scope.namespace}" if self._scope.namespace else "",
            resource_version,
            len(reconciler.keys),
            reconciler.upserted,
            len(tombstones),
            reconciler.unchanged,
            extra={"resource": resource.value, "namespace": self._scope.namespace},
        )


def _version(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(version) if version is not None else ""


def _in_scope(key: ObjectKey, resource: Resource, scope: Scope) -> bool:
    if scope.namespace is None or resource.cluster_scoped:
        return True
    return split_key(key)[0] == scope.namespace
