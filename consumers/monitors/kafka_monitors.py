"""Reads every cluster's monitor and Namespace topics whole into a `LiveMonitors`, for a
sink that serves monitor jobs (`monitors:`) without running the fold.

A sink serves only the jobs its own settings make (docs/monitors.md "Trust"): for monitor
jobs it derives them from the monitors themselves, never from the targets topic. The
topics are small (a monitor per team, a namespace per team), read like the fold's global
tables: no consumer group, every partition from the start, new clusters' topics picked up
by pattern. Caught up once every matching topic is read to the end offsets seen when it
was assigned; listeners then hear every job once, and after that the names of the jobs
each batch made appear, change or vanish.

Bad records are counted (`sdstream_sink_records_skipped_total{reason}`, the targets
reader's counter), logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from consumers.compactor import records
from consumers.monitors import live
from consumers.sinks import sink_metrics
from kafka_access import kafka_options
from lifecycle import stopping
from schemas.config import KafkaSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import parse_object_topic

logger = logging.getLogger(__name__)

Listener = Callable[[frozenset[str]], Awaitable[None]]
TOPIC_CHECK_S = 5.0


class MonitorsReader:
    """Keeps `live` current from the monitor and Namespace topics; see the module doc."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        settings: MonitorsSettings,
        metrics: sink_metrics.SinkMetrics,
        clusters: Sequence[str] = (),
        cluster_pattern: str = ".*",
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.live = live.LiveMonitors(settings)
        self._kafka = kafka
        self._prefix = kafka.topic_prefix
        self._metrics = metrics
        regex = records.cluster_regex(clusters, cluster_pattern)
        self._pattern = records.topic_pattern(self._prefix, regex, sorted(live.READS))
        self._listeners = list(listeners)
        self._ends: dict[TopicPartition, int] = {}
        self._caught_up = asyncio.Event()
        self._behind = "monitor topics not read yet"

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    def unready_reason(self) -> str | None:
        return None if self.caught_up else self._behind

    async def wait_caught_up(self) -> None:
        await self._caught_up.wait()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **kafka_options.client_options(self._kafka), enable_auto_commit=False,
            auto_offset_reset="earliest", metadata_max_age_ms=int(TOPIC_CHECK_S * 1000),
        )  # fmt: skip
        await consumer.start()
        try:
            consumer.subscribe(pattern=self._pattern)
            await self._loop(consumer)
        finally:
            await stopping.stop("monitors consumer", consumer.stop)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        known: set[TopicPartition] = set()
        while True:
            assignment = set(consumer.assignment())
            if assignment != known:
                ends = await consumer.end_offsets(list(assignment - known))
                self._ends.update(ends)
                known = assignment
            before = self.live.jobs()
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, got in batch.items():
                self._fold(tp, got, len(consumer.partitions_for_topic(tp.topic) or ()))
            if not self.caught_up:
                if await self._done(consumer, known):
                    self._caught_up.set()
                    count = len(self.live.jobs())
                    logger.info("Caught up with the monitor topics: %d monitor jobs.", count,
                                extra={"jobs": count})  # fmt: skip
                    await self._notify(frozenset(self.live.jobs()))
                continue
            await self._notify(live.changed_jobs(before, self.live.jobs()))

    async def _done(self, consumer: AIOKafkaConsumer, known: set[TopicPartition]) -> bool:
        matching = {t for t in await consumer.topics() if re.match(self._pattern, t)}
        if not matching <= {tp.topic for tp in known}:
            self._behind = "monitor topics: waiting for the assignment"
            return False
        behind = [tp for tp in known if await consumer.position(tp) < self._ends.get(tp, 0)]
        self._behind = f"reading monitor topics: {len(behind)} of {len(known)} partitions"
        return not behind

    def _fold(
        self, tp: TopicPartition, got: Sequence[ConsumerRecord[bytes, bytes]], partitions: int
    ) -> None:
        parsed = parse_object_topic(self._prefix, tp.topic)
        if parsed is None:
            return
        cluster, resource = parsed
        for record in got:
            try:
                key, obj = records.decode(record.key, record.value, cluster, resource)
                records.check_placement(key, obj, partition=record.partition,
                                        partitions=partitions)  # fmt: skip
            except records.BadRecord as exc:
                self._metrics.skipped.labels(exc.reason).inc()
                logger.warning("Skipping %s[%d]@%d: %s.", record.topic, record.partition,
                               record.offset, exc, extra={"reason": exc.reason})  # fmt: skip
                continue
            self.live.apply(cluster, resource, key, obj)

    async def _notify(self, jobs: frozenset[str]) -> None:
        if not jobs:
            return
        for listener in self._listeners:
            try:
                await listener(jobs)
            except Exception:
                logger.exception("A sink failed to take %d changed monitor jobs.", len(jobs))
