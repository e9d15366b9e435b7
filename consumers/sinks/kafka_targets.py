"""Reads `<prefix>.targets` whole into a `TargetView`, then tails it, for the sinks.

Every sink replica reads the small compacted topic from the beginning on its own:
`assign()` of all partitions, no consumer group, no committed offsets. That is what
makes HTTP SD survive restarts: a new process rebuilds the same view from the topic and
serves the same answer as soon as it has caught up.

Caught up (`kafka_access.reading`): every partition read to the end offsets seen at
start. Until then listeners hear nothing and readiness says why; at catch-up they hear
every job once, then each batch's changed jobs.

After Kafka refused us (credentials, an ACL) the reader starts over from offset 0 into a
fresh view, while the old one keeps serving, and swaps them once caught up (listeners
hear the jobs that differ): tombstones compacted away during a long outage
(`delete.retention.ms`) would otherwise leave deleted groups served until a restart.
The first read goes straight into the view: in one process it already holds the fold's
own writes (`local_feed`), which the reader then skips by digest instead of parsing.

Bad records are counted by reason, logged with topic[partition]@offset, and skipped;
records of jobs not configured here are counted and named once per batch.
The partition count is read once: targets topics never grow partitions (keys would move).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from consumers import heap, skips
from consumers.sinks import sink_metrics, views
from kafka_access import kafka_options, reading
from kafka_access.reading import Batch
from kafka_access.reporting import Refusals
from lifecycle import stopping
from lifecycle.backoff import Backoff
from schemas.config import KafkaSettings
from schemas.topics import targets_topic

logger = logging.getLogger(__name__)

Listener = Callable[[frozenset[str]], Awaitable[None]]
REFUSED_RETRY_MAX_S = 30.0
# Records taken per batch. Unbounded, a batch is every record the client has fetched:
# ~1 MiB per partition of zstd batches that inflate ~70x on similar groups, hundreds of
# MiB of values alive at once, and a heap that stays that big after (bench/README.md,
# session 7: a --mode serve replica of 300k targets peaked at 1172 MiB, then 202).
BATCH_RECORDS = 2000


class TargetsReadFailed(Exception):
    """Kafka refused to let the reader go on (auth, a deleted topic, ...); cause chained."""

    retriable = False


class TargetsReader:
    """Folds the targets topic into `view` and tells `listeners` which jobs changed."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        view: views.TargetView,
        metrics: sink_metrics.SinkMetrics,
        listeners: Sequence[Listener] = (),
        retry_s: float = 2.0,
        topic: str | None = None,
    ) -> None:
        self.topic = topic or targets_topic(settings.topic_prefix)
        self.view = view
        self._settings = settings
        self._metrics = metrics
        self._listeners = list(listeners)
        self._retry_s = retry_s
        self._caught_up = asyncio.Event()
        self._reads = 0  # reads of the topic from offset 0 started (one, unless refused)
        # Records written to the topic (its end offsets, summed) when the first read
        # started; None until then (`local_feed.LocalFeed.published`).
        self.found_at_start: int | None = None
        self._behind = f"topic {self.topic} does not exist yet"
        self._refusals = Refusals(settings, counter=metrics.kafka_refusals)

    def add_listener(self, listener: Listener) -> None:
        """Tell `listener` too (after the others) which jobs changed; before `run`."""
        self._listeners.append(listener)

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    def unready_reason(self) -> str | None:
        """None once caught up (the view read so far keeps being served: a refusal after
        that is `degraded_reason`); else what the reader is waiting for (for /readyz)."""
        if self.caught_up:
            return None
        return self._refusals.problem or self._behind

    def degraded_reason(self) -> str | None:
        """What /readyz names while ready: a refusal since the reader caught up."""
        return self._refusals.problem if self.caught_up else None

    async def wait_caught_up(self) -> None:
        await self._caught_up.wait()

    async def run(self) -> None:
        """Read to the end, then tail until cancelled. What Kafka refuses (credentials, TLS,
        a denied topic) is reported and retried with backoff; anything else it refuses is
        TargetsReadFailed."""
        backoff = Backoff(self._retry_s, REFUSED_RETRY_MAX_S, jitter=False)
        while True:
            try:
                await self._read()
            except TargetsReadFailed as exc:
                if not await self._refusals.check(exc, doing=f"reading {self.topic}"):
                    raise
            await asyncio.sleep(backoff.next())

    async def _read(self) -> None:
        partitions = await self._wait_for_topic()
        consumer = AIOKafkaConsumer(
            **kafka_options.client_options(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
            parts = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            if self.found_at_start is None:
                self.found_at_start = sum((await consumer.end_offsets(parts)).values())
            # A read after a failed one starts over into a fresh view (see the module doc).
            fresh = self.view.fresh() if self._reads else None
            self._reads += 1
            await self._catch_up(consumer, parts, fresh)
            self._refusals.clear()
            while True:
                batch = await consumer.getmany(*parts, timeout_ms=1000, max_records=BATCH_RECORDS)
                await self._apply(batch)
        except KafkaError as exc:
            raise TargetsReadFailed(f"reading {self.topic}: {exc!r}") from exc
        finally:
            await stopping.stop("targets consumer", consumer.stop)

    async def _wait_for_topic(self) -> list[int]:
        """The topic's partitions, once it exists (the folding consumer creates it)."""
        attempt = 0
        while True:
            try:
                partitions = await _partitions(self._settings, self.topic)
                self._behind = f"topic {self.topic} does not exist yet"
            except KafkaError as exc:
                partitions = []
                refused = await self._refusals.check(exc, doing=f"reading {self.topic}")
                self._behind = refused or f"cannot read the metadata of {self.topic}: {exc!r}"
            else:
                self._refusals.clear()
            if partitions:
                return partitions
            logger.log(
                logging.INFO if attempt % 30 == 0 else logging.DEBUG,
                "Not reading yet (%s); retrying every %.1f s.",
                self._behind,
                self._retry_s,
                extra={"topic": self.topic, "attempt": attempt},
            )
            await asyncio.sleep(self._retry_s)
            attempt += 1

    async def _catch_up(
        self,
        consumer: AIOKafkaConsumer,
        parts: list[TopicPartition],
        fresh: views.TargetView | None = None,
    ) -> None:
        """Read the topic from 0 into `fresh`, then make the view it; the first time,
        into the view itself (see the module doc)."""
        started = time.monotonic()
        self._behind = f"reading {self.topic}: {len(parts)} partitions"
        batches = reading.batches_to_end(consumer, parts, max_records=BATCH_RECORDS)
        async for batch, behind in batches:
            self._behind = f"reading {self.topic}: {behind} of {len(parts)} partitions"
            self._fold(batch, fresh)
        first = not self.caught_up
        changed = frozenset() if fresh is None else self.view.take(fresh)
        jobs = frozenset(self.view.jobs()) if first else changed
        # Sinks hold the whole topic before anyone calls us ready; told even of no job the
        # first time, so a sink waiting for our catch-up knows it happened.
        await self._notify(jobs, always=first)
        self._caught_up.set()
        self._metrics.caught_up.set(1)
        logger.info(
            "Caught up with %s: %d groups in %d jobs, %.1f s.",
            self.topic,
            len(self.view),
            len(self.view.jobs()),
            time.monotonic() - started,
            extra={"topic": self.topic, "groups": len(self.view), "jobs": len(self.view.jobs())},
        )

    async def changed(self, jobs: frozenset[str]) -> None:
        """Jobs whose groups a writer in this process changed in the view
        (`local_feed`): told to the listeners once caught up; until then, the catch-up
        tells every job."""
        if self.caught_up:
            await self._notify(jobs)

    async def _apply(self, batch: Batch) -> None:
        await self._notify(self._fold(batch).changed)

    def _fold(self, batch: Batch, view: views.TargetView | None = None) -> views.Applied:
        applied = (self.view if view is None else view).apply_records(_raw(batch))
        heap.settle_after(applied.applied)
        self._metrics.records.inc(applied.applied)
        unconfigured: set[str] = set()
        for skip in applied.skipped:
            self._metrics.skipped.labels(skip.reason).inc()
            if skip.reason == skips.UNCONFIGURED_JOB:
                unconfigured.add(skip.detail)  # one line per batch, not one per record
            else:
                _log_skip(skip)
        if unconfigured:
            named = sorted(unconfigured)
            logger.warning(
                "Skipping records of %d jobs not configured here: %s%s.",
                len(named),
                ", ".join(named[:10]),
                ", ..." if len(named) > 10 else "",
                extra={"topic": self.topic, "reason": skips.UNCONFIGURED_JOB, "jobs": named[:100]},
            )
        return applied

    async def _notify(self, jobs: frozenset[str], *, always: bool = False) -> None:
        for job in jobs:
            self._metrics.set_job(job, self.view)
        if not jobs and not always:
            return
        for listener in self._listeners:
            try:
                await listener(jobs)
            except Exception:
                logger.exception(
                    "A sink failed to take %d changed jobs; it retries on their next change.",
                    len(jobs),
                    extra={"topic": self.topic, "jobs": sorted(jobs)},
                )


def _log_skip(skip: views.Skip) -> None:
    where = skip.record
    logger.warning(
        "Skipping %s[%d]@%d: %s (%s).",
        where.topic,
        where.partition,
        where.offset,
        skip.reason,
        skip.detail,
        extra={
            "topic": where.topic,
            "partition": where.partition,
            "offset": where.offset,
            "reason": skip.reason,
        },
    )


def _raw(batch: Batch) -> Iterable[views.RawRecord]:
    for tp, records in batch.items():
        for r in records:
            yield views.RawRecord(r.key, r.value, tp.topic, tp.partition, r.offset)


async def _partitions(settings: KafkaSettings, topic: str) -> list[int]:
    """Partition ids of `topic`, [] if it does not exist.

    Asks for every topic's metadata: a Metadata request naming a missing topic would
    auto-create it on brokers that allow that, with the delete policy.
    """
    admin = AIOKafkaAdminClient(**kafka_options.client_options(settings))
    try:
        await admin.start()
        described: list[dict[str, Any]] = await admin.describe_topics(None)
    finally:
        await stopping.stop("admin client", admin.close)
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return sorted(p["partition"] for p in entry["partitions"])
    return []
