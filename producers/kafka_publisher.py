"""Writes object events to Kafka: idempotent, acks=all, namespace partitioning.

Every record carries its partition (`schemas.topics.partition_for`), so one
namespace's objects meet in one partition number on every topic. A bounded
number of unacknowledged records blocks `publish()`, and so the watch, when the
broker is slow or away: nothing is dropped. A record the broker never
acknowledged bumps `failures`; its writer then re-reads the topic and re-lists.

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
import logging
import time
from collections.abc import Mapping
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

from kafka_access import compacted, kafka_options, topic_plan
from kafka_access.reporting import Refusals
from lifecycle import stopping
from producers.emit import PublishFailed, Record
from producers.producer_metrics import ProducerMetrics
from schemas.config import KafkaSettings

logger = logging.getLogger(__name__)

UNKNOWN_TOPIC = UnknownTopicOrPartitionError.errno
TOPIC_DENIED = TopicAuthorizationFailedError.errno
# Kafka refuses the record itself: sending it again cannot help.
REJECTIONS = (MessageSizeTooLargeError, RecordListTooLargeError)


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
        self._slots = asyncio.Semaphore(max_unacked)
        self._producer: AIOKafkaProducer | None = None
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

    async def publish(self, record: Record) -> None:
        """Hand one record to the producer; blocks while too many are unacknowledged."""
        if self._producer is None:
            raise PublishFailed("publisher not started")
        await self._slots.acquire()
        sent_at = time.monotonic()
        try:
            future = await self._producer.send(
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
            refused = self._failed(record, exc)
            raise PublishFailed(refused or f"send to {record.topic}: {exc!r}") from exc
        future.add_done_callback(lambda f: self._acked(record, sent_at, f))

    def _acked(self, record: Record, sent_at: float, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if future.cancelled():
            self._failed(record, asyncio.CancelledError())
            return
        exc = future.exception()
        if isinstance(exc, REJECTIONS):
            self._rejected(record, exc)
            self.refused.set()
            return
        if exc is not None:
            self._failed(record, exc)
            return
        self._metrics.publish_latency.observe(time.monotonic() - sent_at)
        self._metrics.lag.observe(max(0.0, time.time() - record.observed_at))
        self._metrics.published.labels(record.resource.value, record.event.value).inc()

    def _failed(self, record: Record, exc: BaseException) -> str | None:
        """Count and log; the refusal's line if Kafka refused us (the watch logs that)."""
        self.failures += 1
        self._metrics.errors.labels(record.resource.value, type(exc).__name__).inc()
        refused = self._refusals.check_now(exc, doing=f"writing {record.topic}", keep=False)
        if refused is not None:
            return refused
        logger.warning(
            "Kafka did not take %s %s: %r.",
            record.topic,
            record.key,
            exc,
            extra={"topic": record.topic, "key": record.key, "error": repr(exc)},
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

    async def ensure_topics(self, topics: Mapping[str, int]) -> dict[str, int]:
        """Create missing topics compacted (unless `create_topics` is false); TopicMismatch
        naming every topic that is missing or unusable (not compacted, another partition
        count), with the commands that fix them.

        Returns each topic's max.message.bytes (the broker's default unless the topic
        sets its own): a record over it would be refused, and a refused batch leaves the
        idempotent producer's sequence broken for its partition until a restart.
        """
        options = kafka_options.client_options(self._settings)
        admin = AIOKafkaAdminClient(**options)
        create = self._settings.create_topics
        try:
            await admin.start()
            if create:
                await _create_missing(admin, topics, replication=self._settings.replication_factor)
            found, limits = await _found(admin, topics, missing_ok=not create)
        except KafkaError as exc:
            refused = await self._refusals.check(exc, doing="checking topics", options=options)
            raise PublishFailed(refused or f"checking topics: {exc!r}") from exc
        finally:
            await stopping.stop("admin client", admin.close)
        wanted = [topic_plan.Wanted(name, count) for name, count in topics.items()]
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
        return limits


async def _create_missing(
    admin: AIOKafkaAdminClient, topics: Mapping[str, int], *, replication: int
) -> None:
    existing = set(await admin.list_topics())
    missing = {name: count for name, count in topics.items() if name not in existing}
    answers = await compacted.create(admin, missing, replication=replication)
    for name, error in answers.items():
        if error is not None:  # e.g. an ACL: ensure_topics says which
            raise error
        logger.info("Created compacted topic %s.", name, extra={"topic": name})


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
    configs = await compacted.configs(admin, counts)
    found = {name: topic_plan.Found(n, configs.get(name, {})) for name, n in counts.items()}
    return found, _max_message_bytes(configs)


def _max_message_bytes(configs: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    limits = {name: compacted.max_message_bytes(config) for name, config in configs.items()}
    return {name: limit for name, limit in limits.items() if limit is not None}
