"""The fold's Kafka edge: read object topics, fold them, publish target-group changes.

Namespaced topics (pods, services, endpoints, endpointslices, ingresses, replicasets,
jobs) are read in a consumer group with the range assignor, so a member gets the same
partition numbers, hence the same namespaces, of every topic of a cluster. Nodes and
namespaces are read whole by every member, like a global table. Topics are matched by
pattern, so a new cluster's topics are picked up without a restart.

Nothing is published until every assigned partition has been read to the end offset
seen when it was assigned (`catch_up`, pure). Then a full sync builds every group and
writes only what differs from the targets topic (`full_sync`, pure: a restart writes
nothing for current groups, and groups that vanished while we were down are tombstoned);
after that each batch of records rebuilds only the groups it touched. Offsets are never
committed: state is rebuilt from the compacted topics at every start and for every
gained partition. Partitions of topics Kafka denies us are paused (`pauses`, pure).
This module only drives those rules with aiokafka calls.

Steps per batch: 1. fold the records; 2. if caught up, rebuild touched groups; 3. keep
the groups this member owns; 4. send them and wait for the acks.

Limits: a group too large to publish gets a tombstone, counted and logged
(`kafka_writer`); one group never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from consumers import heap
from consumers.compactor import (
    catch_up,
    full_sync,
    kafka_published,
    kafka_writer,
    monitor_views,
    ownership,
    records,
    state,
)
from consumers.compactor import fold as folds
from consumers.compactor import metrics as fold_metrics
from consumers.compactor.kafka_writer import TargetsWriter
from consumers.compactor.pauses import Pauses
from consumers.monitors import live
from consumers.monitors.select import MonitorJob, Rejected
from kafka_access import kafka_options, refusals
from kafka_access.reporting import Refusals
from lifecycle import stopping
from lifecycle.backoff import Backoff
from schemas import resources, targets
from schemas.config import MAX_GROUP_BYTES, KafkaSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource, TargetKey, parse_object_topic, parse_target_key

logger = logging.getLogger(__name__)

NAMESPACED = full_sync.NAMESPACED  # the registry's `fold` column
GLOBAL = resources.read(resources.FoldRead.GLOBAL)
TOPIC_CHECK_S = 5.0
START_RETRY_MAX_S = 15.0  # longest wait between attempts to reach Kafka at start
RECORD_OVERHEAD = kafka_writer.RECORD_OVERHEAD  # the targets topic's margin (tests read it here)
DENIED_RETRY_S = 30.0  # a topic or group Kafka denies us is tried again this often
DENIALS = (TopicAuthorizationFailedError, GroupAuthorizationFailedError)
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Write: TypeAlias = full_sync.Write
Progress: TypeAlias = catch_up.Progress[TopicPartition]


class FoldFailed(RuntimeError):
    """The fold cannot go on (Kafka refused what it needs); the message says what."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    def __init__(self, loop: FoldLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._loop.pause_publishing()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._loop.assigned(assigned)


class FoldLoop:
    def __init__(  # noqa: PLR0913 - the loop's collaborators, all keyword-only
        self,
        *,
        kafka: KafkaSettings,
        fold: folds.Fold,
        metrics: fold_metrics.FoldMetrics,
        group_id: str,
        clusters: Sequence[str] = (),
        cluster_pattern: str = ".*",
        targets_topic: str,
        targets_partitions: int = 6,
        max_group_bytes: int = MAX_GROUP_BYTES,
        monitors: MonitorsSettings | None = None,
    ) -> None:
        self.fold = fold
        # Monitor jobs (`monitors:`): the monitors and namespaces read from the global
        # tables, and the view each live (job, cluster) has in the fold.
        self.monitors = None if monitors is None else live.LiveMonitors(monitors)
        self._monitor_views: dict[monitor_views.Where, tuple[int, MonitorJob]] = {}
        self._rejected: frozenset[Rejected] = frozenset()
        self._monitors_seen = 0  # the LiveMonitors generation the views follow
        self.owners = ownership.Ownership()
        self._kafka = kafka
        self._metrics = metrics
        self._group_id = group_id
        self._prefix = kafka.topic_prefix
        regex = records.cluster_regex(clusters, cluster_pattern)
        self._group_pattern = records.topic_pattern(self._prefix, regex, NAMESPACED)
        self._global_pattern = records.topic_pattern(self._prefix, regex, GLOBAL)
        self._targets = targets_topic
        self._targets_partitions = targets_partitions
        self._writer = TargetsWriter(kafka, topic=targets_topic, max_group_bytes=max_group_bytes,
                                     metrics=metrics, skip=self._skip_group)  # fmt: skip
        self._state: catch_up.CatchUp[TopicPartition] = catch_up.CatchUp()
        self._synced = asyncio.Event()
        self._dirty = asyncio.Event()
        self._owned: set[TopicPartition] = set()
        self._group_consumer: AIOKafkaConsumer | None = None
        self._kafka_problem: str | None = None
        self._refusals = Refusals(kafka, counter=metrics.kafka_refusals)
        # Per consumer (group, table): partitions of denied topics, paused until (monotonic).
        self._denied: dict[int, Pauses[TopicPartition]] = {}

    # readiness -----------------------------------------------------------------------

    def caught_up(self) -> bool:
        return self._state.caught_up()

    def ready(self) -> bool:
        return self._state.ready()

    def unready_reason(self) -> str | None:
        return self._state.unready_reason(
            refusal=self._refusals.problem, kafka_problem=self._kafka_problem
        )

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def pause_publishing(self) -> None:
        self._state.need_sync = True

    # run -------------------------------------------------------------------------------

    async def run(self) -> None:
        await self._ensure_targets_topic()
        options = kafka_options.client_options(self._kafka)
        group = AIOKafkaConsumer(
            **options, group_id=self._group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", metadata_max_age_ms=int(TOPIC_CHECK_S * 1000),
            partition_assignment_strategy=(RangePartitionAssignor,),
        )  # fmt: skip
        table = AIOKafkaConsumer(
            **options, enable_auto_commit=False, auto_offset_reset="earliest",
            metadata_max_age_ms=int(TOPIC_CHECK_S * 1000),
        )  # fmt: skip
        self._group_consumer = group
        async with contextlib.AsyncExitStack() as started:
            await self._writer.start()
            started.push_async_callback(self._writer.stop)
            for name, client in (("group consumer", group), ("table consumer", table)):
                await client.start()
                started.push_async_callback(stopping.stop, name, client.stop)
            try:
                group.subscribe(pattern=self._group_pattern, listener=_Rebalance(self))
            except ValueError as exc:  # aiokafka wraps re.error; settings validate it first
                raise FoldFailed(f"cluster_pattern: {exc}") from exc
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read_group(group))
                tasks.create_task(self._read_global(table))
                tasks.create_task(self._publish_loop())

    async def _ensure_targets_topic(self) -> None:
        """Create the targets topic, the first thing that needs Kafka: while Kafka cannot be
        reached (it may start after us), retry with backoff and say so on /readyz."""
        backoff = Backoff(0.5, START_RETRY_MAX_S, jitter=False)
        while True:
            try:
                await kafka_published.ensure_topic(
                    self._kafka, self._targets, partitions=self._targets_partitions,
                    configs={kafka_published.MAX_MESSAGE_BYTES: str(self._writer.topic_limit())},
                )  # fmt: skip
                taken = await kafka_published.max_message_bytes(self._kafka, self._targets)
            except (KafkaError, kafka_published.TopicRefused) as exc:
                delay = backoff.next()
                if await self._refusals.check(exc, doing=f"checking topic {self._targets}"):
                    await asyncio.sleep(delay)  # credentials and ACLs change: try again
                    continue
                if isinstance(exc, kafka_published.TopicRefused):
                    raise FoldFailed(str(exc)) from exc
                # aiokafka marks a timeout not retriable; we retry it
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    raise FoldFailed(f"creating {self._targets}: {exc!r}") from exc
                problem = f"{exc!r}"
            else:
                self._kafka_problem = None
                self._refusals.clear()
                self._writer.limit_records(taken)
                return
            self._kafka_problem = f"cannot reach Kafka at {self._kafka.bootstrap}: {problem}"
            logger.warning("Cannot reach Kafka at %s (%s); retrying in %.1f s.",
                           self._kafka.bootstrap, problem, delay,
                           extra={"attempt": backoff.attempt})  # fmt: skip
            await asyncio.sleep(delay)

    # group-partitioned topics ----------------------------------------------------------

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        """Keep kept partitions' positions, drop lost ones, read gained ones from 0."""
        consumer = self._group_consumer
        if consumer is None:  # cannot happen: the listener is registered after start
            return
        lost, gained = self._owned - assigned, assigned - self._owned
        for tp in lost:
            self._drop_partition(tp)
        for tp in assigned - gained:
            consumer.seek(tp, self._state.group.positions.get(tp, 0))
        ends: dict[TopicPartition, int] = {}
        if gained:
            await consumer.seek_to_beginning(*gained)
            ends = await consumer.end_offsets(list(gained))
        self._state.reassigned(lost=lost, gained=ends)
        self._owned = set(assigned)
        self._update_ownership(consumer)
        self._dirty.set()
        logger.info("Assigned %d partitions (%d new, %d lost).", len(assigned), len(gained),
                    len(lost))  # fmt: skip

    def _drop_partition(self, tp: TopicPartition) -> None:
        parsed = parse_object_topic(self._prefix, tp.topic)
        if parsed is None:
            return
        cluster, resource = parsed
        count = self.owners.counts.get(cluster, 0)
        if not count:
            return
        dropped = self.fold.cluster(cluster).drop_partitions(
            [resource], partitions={tp.partition}, count=count
        )
        self.fold.forget(cluster, resource, [key for _, key in dropped])

    def _update_ownership(self, consumer: AIOKafkaConsumer) -> None:
        assigned: dict[str, set[int]] = {}
        counts: dict[str, int] = {}
        for tp in self._owned:
            parsed = parse_object_topic(self._prefix, tp.topic)
            if parsed is None:
                continue
            cluster = parsed[0]
            assigned.setdefault(cluster, set()).add(tp.partition)
            counts[cluster] = len(consumer.partitions_for_topic(tp.topic) or ())
        self.owners = ownership.Ownership(assigned, counts)

    async def _read_group(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            if not self._state.assigned_once and await _covers(
                consumer, self._group_pattern, set()
            ):
                self._state.assigned_once = True  # no matching topic: an empty fold is current
            batch = await self._get(consumer, self._state.group)
            if batch:
                self._fold(batch, self._state.group, consumer)
            await self._positions(consumer, self._state.group)

    # global tables ---------------------------------------------------------------------

    async def _read_global(self, consumer: AIOKafkaConsumer) -> None:
        """No group: every partition of every matching topic; metadata refreshes add new
        clusters' topics, and a changed assignment re-reads all of them (folding the same
        records again changes nothing)."""
        consumer.subscribe(pattern=self._global_pattern)
        known: set[TopicPartition] = set()
        while True:
            self._resume_denied(consumer)
            denied = self._denied.setdefault(id(consumer), Pauses())
            assignment = {tp for tp in consumer.assignment() if tp not in denied}
            if assignment != known:
                try:
                    ends = await consumer.end_offsets(list(assignment))
                except DENIALS as exc:
                    await self._denial(consumer, self._state.table, exc)
                    continue
                known = assignment
                self._state.table = Progress(ends=ends)
                self._dirty.set()
            if not self._state.table_complete:
                self._state.table_complete = await _covers(
                    consumer, self._global_pattern, known | set(denied)
                )  # a denied topic is not waited for
            if not known:
                await asyncio.sleep(0.2)
                continue
            batch = await self._get(consumer, self._state.table)
            if batch:
                self._fold(batch, self._state.table, consumer)
            await self._positions(consumer, self._state.table)

    # shared ----------------------------------------------------------------------------

    async def _get(
        self, consumer: AIOKafkaConsumer, progress: Progress
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        """A batch; a topic or group Kafka denies us is reported and left out (`_denial`),
        so every other topic keeps flowing."""
        self._resume_denied(consumer)
        try:
            batch: Mapping[TopicPartition, Sequence[Record]] = await consumer.getmany(
                timeout_ms=200, max_records=5000
            )
        except DENIALS as exc:
            await self._denial(consumer, progress, exc)
            return {}
        if self._refusals.problem is not None and not any(self._denied.values()):
            self._refusals.clear()  # e.g. a group denied before: a batch means it is granted
        return batch

    async def _denial(
        self, consumer: AIOKafkaConsumer, progress: Progress, exc: KafkaError
    ) -> None:
        """Log, count and name on /readyz what Kafka denied. A denied topic's partitions
        are paused for DENIED_RETRY_S and no longer awaited for catching up (what was folded
        from them stays); a denied group is asked again after DENIED_RETRY_S."""
        await self._refusals.check(exc, doing="reading object topics")
        refusal = refusals.classify(exc)
        named = set((refusal.resource or "").split(", ")) if refusal else set()
        if not isinstance(exc, TopicAuthorizationFailedError):
            await asyncio.sleep(DENIED_RETRY_S)
            return
        tps = [tp for tp in consumer.assignment() if tp.topic in named]
        consumer.pause(*tps)
        progress.drop(tps)
        until = time.monotonic() + DENIED_RETRY_S
        self._denied.setdefault(id(consumer), Pauses()).pause(tps, until=until)
        self._dirty.set()
        if not tps:  # e.g. end offsets of a topic not yet assigned: wait before asking again
            await asyncio.sleep(DENIED_RETRY_S)

    def _resume_denied(self, consumer: AIOKafkaConsumer) -> None:
        """Ask again for denied partitions whose pause is over (those no longer assigned
        are forgotten); /readyz stops naming the refusal once none is paused."""
        denied = self._denied.get(id(consumer))
        due = denied.due(time.monotonic()) if denied is not None else []
        if not due:
            return
        consumer.resume(*(tp for tp in due if tp in consumer.assignment()))
        if not any(self._denied.values()):
            self._refusals.clear()  # named again at once if Kafka still denies them

    async def _positions(self, consumer: AIOKafkaConsumer, progress: Progress) -> None:
        for tp in list(progress.ends):
            if tp in consumer.assignment():
                progress.positions[tp] = await consumer.position(tp)
                end = consumer.highwater(tp)
                if end is not None:
                    self._metrics.lag.labels(tp.topic, str(tp.partition)).set(
                        max(0, end - progress.positions[tp])
                    )
        self._dirty.set()

    def _fold(
        self,
        batch: Mapping[TopicPartition, Sequence[Record]],
        progress: Progress,
        consumer: AIOKafkaConsumer,
    ) -> None:
        for tp, got in batch.items():
            parsed = parse_object_topic(self._prefix, tp.topic)
            if parsed is None:
                continue
            cluster, resource = parsed
            partitions = len(consumer.partitions_for_topic(tp.topic) or ())
            for record in got:
                self._fold_one(record, cluster, resource, partitions)
            if got:
                progress.positions[tp] = got[-1].offset + 1
            self._metrics.events.labels(cluster, resource.value).inc(len(got))
        clusters = self.fold.clusters.values()
        self._metrics.objects.set(sum(s.size() for s in clusters))
        self._metrics.state_bytes.set(sum(s.encoded_bytes for s in clusters))
        heap.settle_after(sum(len(got) for got in batch.values()))

    def _fold_one(self, record: Record, cluster: str, resource: Resource, partitions: int) -> None:
        try:
            key, obj = records.decode(record.key, record.value, cluster, resource)
            records.check_placement(key, obj, partition=record.partition, partitions=partitions)
        except records.BadRecord as exc:
            self._metrics.skipped.labels(exc.reason).inc()
            logger.warning(
                "Skipping %s[%d]@%d: %s.", record.topic, record.partition, record.offset, exc,
                extra={"topic": record.topic, "partition": record.partition,
                       "offset": record.offset, "reason": exc.reason},
            )  # fmt: skip
            return
        if self.monitors is not None:
            self.monitors.apply(cluster, resource, key, obj)
        kept = None if obj is None else state.Encoded.of(obj, record.value)
        if self._state.need_sync:  # the full sync rebuilds every group anyway
            self.fold.load(cluster, resource, key, kept)
        else:
            self.fold.apply(cluster, resource, key, kept)

    # publishing ------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._metrics.caught_up.set(1 if self._state.caught_up() else 0)
            step = self._state.next_step()
            if step is catch_up.Step.WAIT:
                continue
            self._update_monitor_views()
            if step is catch_up.Step.FULL_SYNC:
                written = await self._writer.send(await self._full_sync())
                logger.info("Synced: %d records written.", written, extra={"writes": written})
            else:
                built, errors = self.fold.rebuild()
                self._report(errors)
                await self._writer.send([(c.key, self._writer.value(c.key, c.group))
                                         for c in built if self.owners.owns(c.key)])  # fmt: skip
            self._state.synced = True
            self._synced.set()
            self._gauges()

    async def _full_sync(self) -> Iterator[Write]:
        objects = sum(s.size() for s in self.fold.clusters.values())
        logger.info("Caught up: %d objects folded; building every group.", objects,
                    extra={"objects": objects})  # fmt: skip
        started = time.monotonic()
        with heap.paused():
            self.fold.mark_all()
            _, errors = self.fold.rebuild()
        self._report(errors)
        built = len(self.fold.groups)
        logger.info("Built %d groups in %.1f s.", built, time.monotonic() - started,
                    extra={"groups": built})  # fmt: skip
        try:
            published = await kafka_published.read_digests(self._kafka, self._targets)
        except kafka_published.TopicRefused as exc:
            raise FoldFailed(str(exc)) from exc
        owns = self.owners.owns
        # Compared as digests of record bytes (encoding is canonical), each group encoded
        # only as it is written: parsing the whole topic took longer than the build, and
        # holding its values, or every desired value at once, added its size to the peak.
        owned = [(k, g) for k, g in self.fold.groups.items() if owns(k)]  # fixed before awaits
        held, unowned = full_sync.split(published, owns)
        orphans = await self._orphans(unowned)
        # A group too large to publish is left out, like a vanished one: tombstoned if the
        # topic holds it, else nothing written, so each sync (and restart) agrees.
        desired = ((k, v) for k, g in owned if self._writer.fits(k, v := targets.encode(g)))
        logger.info("Syncing: %d groups owned, %d in the targets topic, %d orphans.",
                    len(owned), len(held), len(orphans),
                    extra={"groups": len(owned), "published": len(held)})  # fmt: skip
        return full_sync.writes(desired, held, orphans, fingerprint=targets.digest)

    async def _orphans(self, unowned: Iterable[TargetKey]) -> list[TargetKey]:
        """Published groups of deleted clusters this member tombstones (`full_sync.orphans`),
        judged on fresh metadata of every topic, not only subscribed ones."""
        consumer = self._group_consumer
        if consumer is None:
            return []
        orphans = full_sync.orphans(
            unowned, topics=await consumer.topics(), prefix=self._prefix,
            group_pattern=self._group_pattern, owned=self._owned,
        )  # fmt: skip
        if not orphans:
            return []
        logger.info("Tombstoning %d groups of clusters without topics.", len(orphans),
                    extra={"orphans": len(orphans)})  # fmt: skip
        return orphans

    def _skip_group(self, key: TargetKey, reason: str, detail: str, size: int) -> None:
        job, cluster, source = parse_target_key(key)
        self._metrics.groups_skipped.labels(job, reason).inc()
        logger.warning(
            "Not publishing group %s of job %s in cluster %s (%s): %s; its key gets a "
            "tombstone.", source, job, cluster, reason, detail,
            extra={"job": job, "cluster": cluster, "source": source, "bytes": size,
                   "reason": reason},
        )  # fmt: skip

    def _update_monitor_views(self) -> None:
        """Make the fold's monitor views those of the live monitor jobs: removed views'
        groups are tombstoned, added ones built, by the rebuild that follows."""
        if self.monitors is None:
            return
        wanted = self.monitors.jobs()
        if self.monitors.generation == self._monitors_seen:
            return
        self._monitors_seen = self.monitors.generation
        plan = monitor_views.plan({w: job for w, (_, job) in self._monitor_views.items()},
                                  wanted)  # fmt: skip
        for where in plan.remove:
            position, _ = self._monitor_views.pop(where)
            self.fold.remove_view(position)
            self._forget_gauges(where[0])
        for job in plan.add:
            position = self.fold.add_view(monitor_views.view_of(job))
            self._monitor_views[(job.name, job.cluster)] = position, job
        if plan.remove or plan.add:
            logger.info("Monitor jobs: %d live (%d views removed, %d added).",
                        len(self._monitor_views), len(plan.remove), len(plan.add),
                        extra={"jobs": len(self._monitor_views)})  # fmt: skip
        self._metrics.monitor_jobs.set(len(self._monitor_views))
        self._report_rejected(frozenset(self.monitors.rejected()))

    def _report_rejected(self, rejected: frozenset[Rejected]) -> None:
        """Log each newly rejected monitor once; the gauge counts them per cluster."""
        for r in sorted(rejected - self._rejected, key=lambda r: (r.cluster, r.key)):
            logger.warning("Monitor %s %s in cluster %s makes no job: %s.", r.resource.value,
                           r.key, r.cluster, r.reason,
                           extra={"cluster": r.cluster, "reason": "monitor_rejected"})  # fmt: skip
        for cluster in {r.cluster for r in self._rejected | rejected}:
            self._metrics.monitors_rejected.labels(cluster).set(
                sum(r.cluster == cluster for r in rejected)
            )
        self._rejected = rejected

    def _forget_gauges(self, job: str) -> None:
        if any(v.job == job for v in self.fold.active.values()):
            return
        for gauge in (self._metrics.groups, self._metrics.targets):
            with contextlib.suppress(KeyError):
                gauge.remove(job)
        for reason in ("dropped", "invalid"):
            with contextlib.suppress(KeyError):
                self._metrics.left_out.remove(job, reason)

    def _report(self, errors: Sequence[folds.BuildError]) -> None:
        for error in errors:
            self._metrics.build_errors.labels(error.job).inc()
            logger.warning(
                "Cannot build %s group for %s/%s: %s.", error.job, error.cluster, error.key,
                error.reason, extra={"job": error.job, "cluster": error.cluster},
            )  # fmt: skip

    def _gauges(self) -> None:
        for view in self.fold.active.values():
            groups, n = self.fold.totals.get(view.job, (0, 0))
            self._metrics.groups.labels(view.job).set(groups)
            self._metrics.targets.labels(view.job).set(n)
            if view.rules:
                dropped, invalid = self.fold.left_out_totals.get(view.job, (0, 0))
                self._metrics.left_out.labels(view.job, "dropped").set(dropped)
                self._metrics.left_out.labels(view.job, "invalid").set(invalid)


async def _covers(consumer: AIOKafkaConsumer, pattern: str, tps: set[TopicPartition]) -> bool:
    """Whether `tps` include every topic matching `pattern` that exists now."""
    matching = {t for t in await consumer.topics() if re.match(pattern, t)}
    return matching <= {tp.topic for tp in tps}
