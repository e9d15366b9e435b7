"""Writes object events to Kafka: idempotent, acks=all, namespace partitioning.

Every record carries its partition (`schemas.topics.partition_for`), so one
namespace's objects meet in one partition number on every topic. A bounded
number of unacknowledged records blocks `publish()`, and so the watch, when the
broker is slow or away: nothing is dropped. A record the broker never
acknowledged bumps `failures`; its writer then re-reads the topic and re-lists.

A page's records are handed over together (`publish(records)`) and go out as batches
built here, one `send_batch` per partition and batch, not one `send` per record: the
producer's future, callback and metric updates per record were a third of what a listed
pod cost from trim to ack (bench/README.md, session 8). A handful of records
(a watch event) still go one by one into the producer's own batches, which a lone
`send_batch` would have to wait behind. Either way a record goes to its partition
with its key, value and headers, in order: the topic holds the same records.

A record Kafka refuses for what it is (too large for the topic's limit) is
different: re-listing would only send it again, forever. The emitter keeps records
within `max_request_size` and the topics' max.message.bytes read at start, so this
happens only when a topic's limit is lowered under a running producer. Then the
record is counted as skipped (`reason="rejected"`) and logged, and `refused` is set:
a refused batch leaves the idempotent producer's sequence for that partition broken
(OutOfOrderSequenceNumber for every later record), so the runner starts a new
publisher, which reads the topics' limits again and skips the record before sending.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import Counter

from kafka_access import compacted, kafka_options, topic_plan
from kafka_access.reporting import Refusals
from lifecycle import stopping
from producers.emit import PublishFailed, Record
from producers.producer_metrics import ProducerMetrics
from schemas.config import KafkaSettings
from schemas.events import EventType
from schemas.topics import Resource

logger = logging.getLogger(__name__)

UNKNOWN_TOPIC = UnknownTopicOrPartitionError.errno
TOPIC_DENIED = TopicAuthorizationFailedError.errno
# Records per partition are gathered into batches of up to this many bytes, uncompressed
# (aiokafka's default is 16 KiB: ~11 trimmed pods, so an initial LIST of 50k pods went out
# as ~4,500 batches, each compressed, checksummed and requested on its own). Never above
# the record limit: the emitter fits that to every topic's max.message.bytes, which
# Kafka checks per (compressed) batch.
BATCH_BYTES = 256 * 2**10
# Kafka refuses the record itself: sending it again cannot help.
REJECTIONS = (MessageSizeTooLargeError, RecordListTooLargeError)
# Fewer records than this are sent one by one into the producer's own batches (a watch
# event, a page with few changes); more go as batches of our own (`send_batch`).
FEW = 8
_TOO_LARGE = (
    "The message is %d bytes when serialized which is larger than the maximum request "
    "size you have configured with the max_request_size configuration"
)  # aiokafka's own words, as `send` raises them


@dataclass
class _Batch:
    """A batch being filled for one partition, and the records in it (for their acks)."""

    builder: BatchBuilder
    records: list[Record] = field(default_factory=list)

    def add(self, key: bytes, record: Record) -> bool:
        """Append the record; False if the batch is full."""
        appended = self.builder.append(
            timestamp=None, key=key, value=record.value, headers=record.headers
        )
        if appended is None:
            return False
        self.records.append(record)
        return True


@dataclass
class _Gathering:
    """One `publish` call's batches being filled, and how many slots it holds for
    records not yet handed to the producer."""

    batches: dict[tuple[str, int], _Batch] = field(default_factory=dict)
    unsent: int = 0


@dataclass(frozen=True)
class TopicsChecked:
    """What `ensure_topics` found: each topic's max.message.bytes, and the topics it
    created (empty: nothing to read back at start)."""

    limits: dict[str, int]
    created: frozenset[str] = frozenset()


class TopicMismatch(Exception):
    """An existing topic is not compacted or has another partition count, or (with
    `create_topics: false`) a topic is missing: fix it by hand."""

    retriable: ClassVar[bool] = False


class KafkaPublisher:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        metrics: ProducerMetrics,
        max_unacked: int = 10_000,
        max_request_size: int = 1_048_576,
        refusals: Refusals | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._refusals = refusals or Refusals(settings, log=False)
        self._max_request_size = max_request_size
        self._batch_bytes = BATCH_BYTES
        self._slots = asyncio.Semaphore(max_unacked)
        self._producer: AIOKafkaProducer | None = None
        self._counters: dict[tuple[Resource, EventType], Counter] = {}
        self.failures = 0
        self.refused = asyncio.Event()  # Kafka refused a record: start a new publisher

    async def start(self) -> None:
        options = kafka_options.client_options(
            self._settings
        )  # a new client reads password files again
        producer = AIOKafkaProducer(
            **options,
            enable_idempotence=True,
            acks="all",
            compression_type=self._settings.compression_type(),
            linger_ms=5,
            max_request_size=self._max_request_size,
            max_batch_size=min(self._batch_bytes, self._max_request_size),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await stopping.stop("producer", producer.stop)
            refused = await self._refusals.check(
                exc, doing="starting the producer", options=options
            )
            raise PublishFailed(
                refused or f"cannot reach Kafka at {self._settings.bootstrap}: {exc!r}"
            ) from exc
        self._producer = producer
        self._refusals.clear()

    def fit_batches(self, record_limit: int) -> None:
        """Keep batches within `record_limit` (a topic's max.message.bytes, less margins)
        from the next start on: Kafka refuses a batch over a topic's limit."""
        self._batch_bytes = max(1, min(BATCH_BYTES, record_limit))

    async def stop(self) -> None:
        """Flush what is buffered, then close; within stopping.STOP_TIMEOUT_S, so a
        broker that is gone cannot keep the process from exiting (what was not acked is
        published again after the next start's re-list)."""
        if self._producer is not None:
            await stopping.stop("producer", self._producer.stop)
            self._producer = None

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()

    async def publish(self, records: Sequence[Record]) -> None:
        """Hand records over in order, in one batch per partition (more when a batch is
        full); blocks while too many are unacknowledged.

        One `send_batch` per batch rather than one `send` per record: the producer then
        keeps no future per record and runs one callback per batch, not per record. Each
        record still goes to its own partition (`Record.partition`) with its key, value
        and headers, so the topic holds the same records either way.
        """
        producer = self._producer
        if producer is None:
            raise PublishFailed("publisher not started")
        if len(records) < FEW:
            for record in records:
                await self._slots.acquire()
                await self._send_one(producer, record)
            return
        gathering = _Gathering()
        try:
            for record in records:
                await self._gather(producer, gathering, record)
            await self._send_all(producer, gathering)
        finally:  # a failed send or a cancel: give back the slots of records not sent
            for _ in range(gathering.unsent):
                self._slots.release()

    async def _gather(
        self, producer: AIOKafkaProducer, gathering: _Gathering, record: Record
    ) -> None:
        """Add the record to its partition's batch; send that batch first if it is full."""
        if self._slots.locked():  # let what is gathered go, so acks can free slots
            await self._send_all(producer, gathering)
        await self._slots.acquire()
        gathering.unsent += 1
        key = record.key.encode()
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, record.value, record.headers)
        if size > self._max_request_size:  # what `send` would refuse
            gathering.unsent -= 1
            self._slots.release()
            self._rejected(record, MessageSizeTooLargeError(_TOO_LARGE % size))
            return
        where = (record.topic, record.partition)
        batch = gathering.batches.get(where)
        if batch is not None and batch.add(key, record):
            return
        if batch is not None:  # full: off it goes, in order
            await self._send_batch(producer, gathering, where)
        batch = gathering.batches[where] = _Batch(producer.create_batch())
        batch.add(key, record)  # the first record of a batch always fits

    async def _send_all(self, producer: AIOKafkaProducer, gathering: _Gathering) -> None:
        for where in list(gathering.batches):
            await self._send_batch(producer, gathering, where)

    async def _send_batch(
        self, producer: AIOKafkaProducer, gathering: _Gathering, where: tuple[str, int]
    ) -> None:
        """Hand one gathered batch to the producer; PublishFailed if it does not take it."""
        topic, partition = where
        batch = gathering.batches[where]
        sent_at = time.monotonic()
        try:
            future = await producer.send_batch(batch.builder, topic, partition=partition)
        except KafkaError as exc:
            refused = self._batch_failed(batch.records, exc)
            raise PublishFailed(refused or f"send to {topic}: {exc!r}") from exc
        del gathering.batches[where]
        gathering.unsent -= len(batch.records)
        future.add_done_callback(functools.partial(self._acked, batch.records, sent_at))

    async def _send_one(self, producer: AIOKafkaProducer, record: Record) -> None:
        """One record into the producer's own batches: a watch event alone in a batch of
        its own would wait for the partition's previous batch to be drained."""
        sent_at = time.monotonic()
        try:
            future = await producer.send(
                record.topic,
                value=record.value,
                key=record.key.encode(),
                partition=record.partition,
                headers=record.headers,
            )
        except REJECTIONS as exc:  # aiokafka's own size check, before any batch
            self._slots.release()
            self._rejected(record, exc)
            return
        except KafkaError as exc:
            self._slots.release()
            refused = self._batch_failed([record], exc)
            raise PublishFailed(refused or f"send to {record.topic}: {exc!r}") from exc
        except asyncio.CancelledError:  # the record never reached the producer
            self._slots.release()
            raise
        future.add_done_callback(functools.partial(self._acked, [record], sent_at))

    def _acked(self, records: list[Record], sent_at: float, future: asyncio.Future[Any]) -> None:
        for _ in records:
            self._slots.release()
        exc = asyncio.CancelledError() if future.cancelled() else future.exception()
        if isinstance(exc, REJECTIONS):
            for record in records:
                self._rejected(record, exc)
            self.refused.set()
            return
        if exc is not None:
            self._batch_failed(records, exc)
            return
        self._metrics.publish_latency.observe(time.monotonic() - sent_at)
        self._metrics.lag.observe(max(0.0, time.time() - records[0].observed_at))  # earliest
        if len(records) == 1:
            self._published(records[0].resource, records[0].event).inc()
            return
        counts: dict[tuple[Resource, EventType], int] = {}
        for r in records:
            counts[r.resource, r.event] = counts.get((r.resource, r.event), 0) + 1
        for (resource, event), count in counts.items():
            self._published(resource, event).inc(count)

    def _published(self, resource: Resource, event: EventType) -> Counter:
        """The published counter of a resource and event type, its labels looked up once."""
        counter = self._counters.get((resource, event))
        if counter is None:
            counter = self._metrics.published.labels(resource.value, event.value)
            self._counters[resource, event] = counter
        return counter

    def _batch_failed(self, records: list[Record], exc: BaseException) -> str | None:
        """Count each record and log the batch once; the refusal's line if Kafka refused
        us (the watch logs that)."""
        first = records[0]
        self.failures += len(records)
        counts = collections.Counter(r.resource for r in records)
        for resource, count in counts.items():
            self._metrics.errors.labels(resource.value, type(exc).__name__).inc(count)
        refused = self._refusals.check_now(exc, doing=f"writing {first.topic}", keep=False)
        if refused is not None:
            return refused
        logger.warning(
            "Kafka did not take %d records of %s[%d] (%s first): %r.",
            len(records),
            first.topic,
            first.partition,
            first.key,
            exc,
            extra={
                "topic": first.topic,
                "key": first.key,
                "records": len(records),
                "error": repr(exc),
            },
        )
        return None

    def _rejected(self, record: Record, exc: BaseException) -> None:
        self._metrics.skipped.labels(record.resource.value, "rejected").inc()
        size = len(record.value or b"")
        logger.warning(
            "Skipping %s %s: Kafka rejected its record of %d bytes: %r.",
            record.resource,
            record.key,
            size,
            exc,
            extra={"topic": record.topic, "key": record.key, "bytes": size, "error": repr(exc)},
        )

    async def ensure_topics(self, topics: Mapping[str, int]) -> TopicsChecked:
        """Create missing topics compacted (unless `create_topics` is false); TopicMismatch
        naming every topic that is missing or unusable (not compacted, another partition
        count), with the commands that fix them.

        Returns each topic's max.message.bytes (the broker's default unless the topic
        sets its own): a record over it would be refused, and a refused batch leaves the
        idempotent producer's sequence broken for its partition until a restart. And the
        topics created by this call, which hold nothing yet.
        """
        options = kafka_options.client_options(self._settings)
        admin = AIOKafkaAdminClient(**options)
        create = self._settings.create_topics
        durable = topic_plan.durability_configs(self._settings.min_insync_replicas)
        created: frozenset[str] = frozenset()
        try:
            await admin.start()
            if create:
                replication = self._settings.replication_factor
                created = await _create_missing(
                    admin, topics, replication=replication, configs=durable
                )
            found, limits = await _found(admin, topics, missing_ok=not create)
        except KafkaError as exc:
            refused = await self._refusals.check(exc, doing="checking topics", options=options)
            raise PublishFailed(refused or f"checking topics: {exc!r}") from exc
        finally:
            await stopping.stop("admin client", admin.close)
        wanted = [topic_plan.Wanted(name, count, configs=durable) for name, count in topics.items()]
        _warn_durability(found, self._settings)
        problems = topic_plan.unfit(
            wanted, found, bootstrap=self._settings.bootstrap,
            replication=self._settings.replication_factor,
        )  # fmt: skip
        if problems:
            raise TopicMismatch(
                topic_plan.message(problems, creating=create)
                + " (object topics must be compacted and share one partition count; or set "
                "the partitions setting to match)"
            )
        self._refusals.clear()
        return TopicsChecked(limits, created)


def _warn_durability(found: Mapping[str, topic_plan.Found], kafka: KafkaSettings) -> None:
    """A warning per topic whose durability differs from the settings: it still works."""
    for line in topic_plan.durability_drift(
        found, replication=kafka.replication_factor, min_insync=kafka.min_insync_replicas,
        bootstrap=kafka.bootstrap,
    ):  # fmt: skip
        logger.warning("Using %s.", line, extra={"problem": line})


async def _create_missing(
    admin: AIOKafkaAdminClient,
    topics: Mapping[str, int],
    *,
    replication: int,
    configs: Mapping[str, str],
) -> frozenset[str]:
    """Create the missing topics; those this call created (not another client first)."""
    existing = set(await admin.list_topics())
    missing = {name: count for name, count in topics.items() if name not in existing}
    answers, created = await compacted.create_new(
        admin, missing, replication=replication, configs=configs
    )
    for name, error in answers.items():
        if error is not None:  # e.g. an ACL: ensure_topics says which
            raise error
        if name in created:
            logger.info("Created compacted topic %s.", name, extra={"topic": name})
    return created


async def _described(
    admin: AIOKafkaAdminClient,
    topics: Mapping[str, int],
    *,
    missing_ok: bool,
    settle_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Topic metadata once every topic shows partitions, each with a leader: a topic
    created a moment ago can still describe as 0 partitions (or leader not available)
    until metadata settles, and writing to it then logs NotLeaderForPartition warnings.
    A topic we may not describe is settled; so is a missing one when `missing_ok`."""
    deadline = time.monotonic() + settle_s
    final = (TOPIC_DENIED, UNKNOWN_TOPIC) if missing_ok else (TOPIC_DENIED,)
    while True:
        described = await _describe(admin, topics, every=missing_ok)
        settled = all(
            m["error_code"] in final
            or (
                m["error_code"] == 0
                and m["partitions"]
                and all(p["leader"] >= 0 for p in m["partitions"])
            )
            for m in described
        )
        if settled or time.monotonic() >= deadline:
            return described
        await asyncio.sleep(0.2)


async def _describe(
    admin: AIOKafkaAdminClient, topics: Mapping[str, int], *, every: bool
) -> list[dict[str, Any]]:
    """Metadata of `topics`; with `every`, read from every topic's metadata (naming a
    missing topic would auto-create it on brokers that allow that), missing ones as
    UNKNOWN_TOPIC (so are those we may not describe: they are not listed)."""
    if not every:
        named: list[dict[str, Any]] = await admin.describe_topics(list(topics))
        return named
    listed = {m["topic"]: m for m in await admin.describe_topics(None) if m["topic"] in topics}
    missing = {"error_code": UNKNOWN_TOPIC, "partitions": []}
    return [listed.get(name, {"topic": name, **missing}) for name in topics]


async def _found(
    admin: AIOKafkaAdminClient, topics: Mapping[str, int], *, missing_ok: bool
) -> tuple[dict[str, topic_plan.Found], dict[str, int]]:
    """The topics that exist (partition count, configs) and their max.message.bytes; a
    topic we may not describe is TopicAuthorizationFailedError naming them all."""
    described = await _described(admin, topics, missing_ok=missing_ok)
    denied = sorted(m["topic"] for m in described if m["error_code"] == TOPIC_DENIED)
    if denied:
        raise TopicAuthorizationFailedError(denied)
    counts = {m["topic"]: len(m["partitions"]) for m in described if m["error_code"] == 0}
    replicas = {m["topic"]: compacted.fewest_replicas(m) for m in described}
    configs = await compacted.configs(admin, counts)
    found = {name: topic_plan.Found(n, configs.get(name, {}), replicas.get(name))
             for name, n in counts.items()}  # fmt: skip
    return found, _max_message_bytes(configs)


def _max_message_bytes(configs: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    limits = {name: compacted.max_message_bytes(config) for name, config in configs.items()}
    return {name: limit for name, limit in limits.items() if limit is not None}
