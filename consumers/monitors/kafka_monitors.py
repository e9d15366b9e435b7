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
from aiokafka.errors import KafkaError

from consumers.compactor import records
from consumers.monitors import live
from consumers.sinks import sink_metrics
from kafka_access import kafka_options
from lifecycle import stopping
from lifecycle.backoff import Backoff
from schemas.config import KafkaSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import parse_object_topic

logger = logging.getLogger(__name__)

Listener = Callable[[frozenset[str]], Awaitable[None]]
TOPIC_CHECK_S = 5.0
RETRY_S, RETRY_MAX_S = 1.0, 30.0


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
        """Read until cancelled; a Kafka error is logged, named on /readyz until caught up,
        and retried with backoff (what was read stays)."""
        backoff = Backoff(RETRY_S, RETRY_MAX_S, jitter=False)
        while True:
            try:
                await self._read()
            except KafkaError as exc:
                delay = backoff.next()
                self._behind = f"reading monitor topics: {exc!r}"
                logger.warning("Reading the monitor topics failed (%r); retrying in %.1f s.",
                               exc, delay, extra={"attempt": backoff.attempt})  # fmt: skip
                await asyncio.sleep(delay)

    async def _read(self) -> None:
        self._ends = {}
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
        """Each read (the first, or after an error) fills a fresh `LiveMonitors`, swapped in
        once caught up: until then the last complete one is served, never a partial one."""
        known: set[TopicPartition] = set()
        building = live.LiveMonitors(self.live.settings)
        swapped = False
        while True:
            assignment = set(consumer.assignment())
            if assignment != known:
                ends = await consumer.end_offsets(list(assignment - known))
                self._ends.update(ends)
                known = assignment
            before = building.jobs()
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, got in batch.items():
                self._fold(building, tp, got, len(consumer.partitions_for_topic(tp.topic) or ()))
            if swapped:
                await self._notify(live.changed_jobs(before, building.jobs()))
            elif await self._done(consumer, known):
                old, self.live, swapped = self.live.jobs(), building, True
                self._caught_up.set()
                count = len(building.jobs())
                logger.info("Caught up with the monitor topics: %d monitor jobs.", count,
                            extra={"jobs": count})  # fmt: skip
                await self._notify(frozenset(old) | frozenset(building.jobs()), always=True)

    async def _done(self, consumer: AIOKafkaConsumer, known: set[TopicPartition]) -> bool:
        matching = {t for t in await consumer.topics() if re.match(self._pattern, t)}
        if not matching <= {tp.topic for tp in known}:
            self._behind = "monitor topics: waiting for the assignment"
            return False
        behind = [tp for tp in known if await consumer.position(tp) < self._ends.get(tp, 0)]
        self._behind = f"reading monitor topics: {len(behind)} of {len(known)} partitions"
        return not behind

    def _fold(
        self,
        into: live.LiveMonitors,
        tp: TopicPartition,
        got: Sequence[ConsumerRecord[bytes, bytes]],
        partitions: int,
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
            into.apply(cluster, resource, key, obj)

    async def _notify(self, jobs: frozenset[str], *, always: bool = False) -> None:
        if not jobs and not always:
            return
        for listener in self._listeners:
            try:
                await listener(jobs)
            except Exception:
                logger.exception("A sink failed to take %d changed monitor jobs.", len(jobs))
