"""Reads every cluster's monitor and Namespace topics whole into a `LiveMonitors`, for a
sink that serves monitor jobs (`monitors:`).

A sink serves only the jobs its own settings make (docs/monitors.md "Trust"): for monitor
jobs it derives them from the monitors themselves, never from the targets topic. The
topics are small (a monitor per team, a namespace per team), read like the fold's global
tables: no consumer group, every partition from the start, new clusters' topics picked up
by pattern. Caught up once every matching topic is read to the end offsets seen when it
was assigned; listeners then hear every job once, and after that the names of the jobs
each batch made appear, change or vanish.

In one process with the fold (`sdstream consume`, mode all) this reader reads nothing
itself (`feed_from_fold`): the fold's table consumer, which reads these topics whole on
every member anyway, hands it each batch (`take`), each partition it reads again
(`forget`) and whether it has caught up (`settle`); the rest is the same.
`sdstream_sink_monitor_records_total{topic}` counts what our own consumer reads.

A topic Kafka denies us follows the readiness policy of docs/RELIABILITY.md: counted
(`sdstream_sink_kafka_refusals_total{reason}`), logged once a minute, named on /readyz
(503 before the first catch-up, then "ready, degraded"), its partitions paused and asked
again with backoff while the others are read and not waited for; the jobs read from it
stay as last known. Once Kafka lets us fetch it again, it is read again from offset 0
into a copy with what came from it forgotten (a monitor deleted meanwhile may have lost
its tombstone to compaction), swapped in once caught up.

Bad records are counted (`sdstream_sink_records_skipped_total{reason}`, the targets
reader's counter), logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from consumers.compactor import records
from consumers.compactor.pauses import Pauses
from consumers.monitors import live
from consumers.sinks import sink_metrics
from kafka_access import kafka_options, refusals
from kafka_access.reporting import Refusals
from lifecycle import stopping
from lifecycle.backoff import Backoff
from schemas.config import KafkaSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import parse_object_topic

logger = logging.getLogger(__name__)

Listener = Callable[[frozenset[str]], Awaitable[None]]
Record: TypeAlias = ConsumerRecord[bytes, bytes]
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
        self._refusals = Refusals(kafka, counter=metrics.kafka_refusals)
        self._denied: Pauses[TopicPartition] = Pauses()  # paused until (monotonic)
        self._unread: dict[TopicPartition, int] = {}  # denied, not fetched since (epoch ms)
        self._denied_backoff = Backoff(RETRY_S, RETRY_MAX_S, jitter=False)
        # The LiveMonitors being read into: `live` itself once swapped (then each batch's
        # changes are told), else a fresh or re-read one served only once caught up.
        self._building = live.LiveMonitors(settings)
        self._swapped = False
        self._told: live.Jobs = {}  # the jobs the listeners last heard of
        self.fed = False  # the fold in this process hands us the records (`feed_from_fold`)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    def unready_reason(self) -> str | None:
        """None once caught up (a refusal after that is `degraded_reason`)."""
        return None if self.caught_up else self._refusals.problem or self._behind

    def degraded_reason(self) -> str | None:
        """What /readyz names while ready: a refusal (the last known jobs are served)."""
        return self._refusals.problem if self.caught_up else None

    async def wait_caught_up(self) -> None:
        await self._caught_up.wait()

    def feed_from_fold(self) -> None:
        """The fold in this process hands us the records (`take`, `forget`, `settle`):
        `run` is not to be called."""
        self.fed = True
        self._behind = "monitor topics: waiting for the fold to read them"

    async def run(self) -> None:
        """Read until cancelled. A topic Kafka denies is paused and asked again with
        backoff while the others are read (`_denial`); any other Kafka error is counted
        if a refusal, logged, named on /readyz, and the read starts over with backoff
        (the last complete jobs keep being served)."""
        backoff = Backoff(RETRY_S, RETRY_MAX_S, jitter=False)
        while True:
            try:
                await self._read()
            except KafkaError as exc:
                delay = backoff.next()
                refused = await self._refusals.check(exc, doing="reading monitor topics")
                self._behind = refused or f"reading monitor topics: {exc!r}"
                if refused is None:
                    logger.warning("Reading the monitor topics failed (%r); retrying in %.1f s.",
                                   exc, delay, extra={"attempt": backoff.attempt})  # fmt: skip
                await asyncio.sleep(delay)

    async def _read(self) -> None:
        self._ends, self._unread, self._denied = {}, {}, Pauses()
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
        """Each read (the first, after an error, or of partitions Kafka denied and lets us
        read again) fills a `LiveMonitors` apart from the served one, swapped in once caught
        up: until then the last complete one is served, never a partial one."""
        known: set[TopicPartition] = set()
        self._building, self._swapped = live.LiveMonitors(self.live.settings), False
        while True:
            self._resume_due(consumer)
            try:
                known = await self._assignment(consumer, known)
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            except TopicAuthorizationFailedError as exc:
                await self._denial(consumer, exc)
                continue
            back = self._readable_again(consumer)
            if back:  # forget what came from them (deletions may be compacted away)
                await self._reread(consumer, back)
            for tp, got in batch.items():
                self._metrics.monitor_records.labels(tp.topic).inc(len(got))
                if tp not in back:
                    self.take(tp.topic, got, len(consumer.partitions_for_topic(tp.topic) or ()))
            await self.settle(caught_up=self._swapped or await self._done(consumer, known))

    # the records, from our consumer or from the fold's (`fed`) -------------------------

    def take(self, topic: str, got: Sequence[Record], partitions: int) -> None:
        """Apply a batch of one partition of a monitor or Namespace topic."""
        self._fold(self._building, topic, got, partitions)

    def forget(self, topic: str, partition: int, partitions: int) -> None:
        """Before `partition` is read again from 0: what came from it is forgotten in a
        copy of the served jobs, served once caught up again."""
        if self._swapped:
            self._building, self._swapped = self._building.copy(), False
        parsed = parse_object_topic(self._prefix, topic)
        if parsed is not None:
            self._building.drop_partition(*parsed, partition=partition, partitions=partitions)

    async def settle(self, *, caught_up: bool) -> None:
        """After a batch: tell the listeners what changed, or, once every partition was
        read to its end offset (`caught_up`), swap the read jobs in."""
        if self._swapped:
            await self._notify(live.changed_jobs(self._told, self._building.jobs()))
        elif caught_up:
            old, self.live, self._swapped = self.live.jobs(), self._building, True
            await self._swapped_in(old)
        if self._swapped:
            self._told = self._building.jobs()

    async def _assignment(
        self, consumer: AIOKafkaConsumer, known: set[TopicPartition]
    ) -> set[TopicPartition]:
        """The assignment, the end offsets of its new partitions known (a denied one's
        are asked for once Kafka lets us read it again: `_reread`)."""
        assignment = set(consumer.assignment())
        new = assignment - known - self._unread.keys()
        if new:
            self._ends.update(await consumer.end_offsets(list(new)))
        return assignment

    async def _swapped_in(self, old: live.Jobs) -> None:
        first = not self.caught_up
        self._caught_up.set()
        if not self._unread:
            self._refusals.clear()
        count = len(self.live.jobs())
        logger.info("Caught up with the monitor topics: %d monitor jobs.", count,
                    extra={"jobs": count})  # fmt: skip
        await self._notify(frozenset(old) | frozenset(self.live.jobs()), always=first)

    async def _denial(self, consumer: AIOKafkaConsumer, exc: KafkaError) -> None:
        """Count, log (once a minute) and name on /readyz a denied topic; pause its
        partitions and ask again after a backoff. What was read from them stays served;
        they are not waited for to be caught up."""
        await self._refusals.check(exc, doing="reading monitor topics")
        refusal = refusals.classify(exc)
        named = set((refusal.resource or "").split(", ")) if refusal else set()
        tps = [tp for tp in consumer.assignment() if tp.topic in named]
        delay = self._denied_backoff.next()
        if not tps:  # e.g. the end offsets of a topic not assigned yet: wait, ask again
            await asyncio.sleep(delay)
            return
        consumer.pause(*tps)
        self._unread.update(dict.fromkeys(tps, int(time.time() * 1000)))
        self._denied.pause(tps, until=time.monotonic() + delay)

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        due = self._denied.due(time.monotonic())
        consumer.resume(*(tp for tp in due if tp in consumer.assignment()))

    def _readable_again(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Denied partitions Kafka let us fetch since they were denied."""
        assignment = consumer.assignment()
        back = {tp for tp, since in self._unread.items() if tp in assignment
                and (consumer.last_poll_timestamp(tp) or 0) > since}  # fmt: skip
        for tp in back:
            del self._unread[tp]
        if back:
            self._denied_backoff.reset()
            topics = ", ".join(sorted({tp.topic for tp in back}))
            logger.info("Reading %d monitor topic partitions again, which Kafka denied us "
                        "before: %s.", len(back), topics)  # fmt: skip
        return back

    async def _reread(self, consumer: AIOKafkaConsumer, back: set[TopicPartition]) -> None:
        """Read `back` again from 0 (the served jobs stay until caught up)."""
        for tp in back:
            self.forget(tp.topic, tp.partition, len(consumer.partitions_for_topic(tp.topic) or ()))
        await consumer.seek_to_beginning(*back)
        self._ends.update(await consumer.end_offsets(list(back)))

    async def _done(self, consumer: AIOKafkaConsumer, known: set[TopicPartition]) -> bool:
        matching = {t for t in await consumer.topics() if re.match(self._pattern, t)}
        if not matching <= {tp.topic for tp in known}:
            self._behind = "monitor topics: waiting for the assignment"
            return False
        read = [tp for tp in known if tp not in self._unread]  # a denied topic is not awaited
        behind = [tp for tp in read if await consumer.position(tp) < self._ends.get(tp, 0)]
        self._behind = f"reading monitor topics: {len(behind)} of {len(known)} partitions"
        return not behind

    def _fold(
        self, into: live.LiveMonitors, topic: str, got: Sequence[Record], partitions: int
    ) -> None:
        parsed = parse_object_topic(self._prefix, topic)
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
