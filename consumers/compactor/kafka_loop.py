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
after that each batch of records rebuilds only the groups it touched. Offsets are
committed as progress markers for lag tools (`kafka_offsets`), never read back: state is
rebuilt from the compacted topics at every start and for every gained partition. With
`group_instance_id` the member is static (KIP-345): a restart within the session timeout
keeps its partitions and the group does not rebalance. Partitions of topics Kafka denies
us are paused (`pauses`, pure) and unknown to the full sync until read again
(`full_sync.Unread`): their published groups are left as they are, then re-read from 0
and synced again once Kafka lets us fetch them. In one process restarted on a targets topic
that holds records, the fold folds only once this process's sinks have read it
(`_sinks_first`): they serve it meanwhile, as a replica would. This module only drives
those rules with aiokafka calls.

Steps per batch: 1. fold the records; 2. if caught up, rebuild touched groups; 3. keep
the groups this member owns; 4. show them to this process's sinks; 5. hand them to the
producer once the acks of what it has are in, merged with the rounds shown meanwhile
(latest write per key). No step waits for acks: once they are in, the sinks keep those
rounds and their offsets are marked; a failure takes back every round not acked yet and
a full sync follows.

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
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

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
    fold_metrics,
    folds,
    full_sync,
    kafka_offsets,
    kafka_targets_topic,
    kafka_writer,
    monitor_views,
    ownership,
    packed,
    records,
    state,
)
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
from schemas.targets import TargetGroup
from schemas.topics import Resource, TargetKey, parse_object_topic, parse_target_key

logger = logging.getLogger(__name__)

NAMESPACED = full_sync.NAMESPACED  # the registry's `fold` column
GLOBAL = resources.read(resources.FoldRead.GLOBAL)
TOPIC_CHECK_S = 5.0
START_RETRY_MAX_S = 15.0  # longest wait between attempts to reach Kafka at start
RECORD_OVERHEAD = kafka_writer.RECORD_OVERHEAD  # the targets topic's margin (tests read it here)
DENIED_RETRY_S = 30.0  # a topic or group Kafka denies us is tried again this often
DENIALS = (TopicAuthorizationFailedError, GroupAuthorizationFailedError)
WRITER_START_S = 30.0  # a new producer for the targets topic starts within this, or again
REVOKE_ACKS_S = 10.0  # a revocation waits this long for the acks of our writes
# One process restarted on a targets topic a fold published: from its start, the fold
# waits at most this for the sinks' reader to read it whole before it folds anything.
FIRST_READ_WAIT_S = 60.0
# A rebuild gives the event loop a turn (Kafka heartbeats and fetches, HTTP) this often.
REBUILD_SLICE_S = 0.025
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Write: TypeAlias = full_sync.Write
Progress: TypeAlias = catch_up.Progress[TopicPartition]


@dataclass(frozen=True)
class Membership:
    """How the fold sits in its consumer group: static with `instance_id`, the session
    timeout, and how often it commits its offsets as progress markers."""

    instance_id: str | None = None
    session_timeout_s: float = 10.0
    commit_interval_s: float = 5.0


class FoldFailed(RuntimeError):
    """The fold cannot go on (Kafka refused what it needs); the message says what."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    def __init__(self, loop: FoldLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._loop.assigned(assigned)


class Feed(Protocol):
    """Sinks in this process, given each write as it is sent (`sdstream consume` in one
    process): they serve the fold's groups without parsing them back from the topic."""

    def put(self, key: TargetKey, group: TargetGroup | None, value: bytes | None) -> None: ...

    async def show(self) -> None:
        """The round's writes are built: tell whoever listens what changed, before the
        acks (it may still be taken back by `abort`)."""

    async def flush(self) -> None:
        """The round's writes are acknowledged: they stay; tell whoever listens the rest."""

    async def abort(self) -> None:
        """The round's send failed: forget what it was given since the last flush."""

    def published(self) -> bool:
        """Whether the targets topic held records, none of them ours, when the sinks
        first looked at it (a fold's last answer: a restart)."""

    async def wait_read(self, timeout_s: float) -> bool:
        """Until the sinks have read the targets topic to its end (at most `timeout_s`):
        whether they have."""


class MonitorFeed(Protocol):
    """The sinks' monitor reader in this process (`sdstream consume`, mode all): the table
    consumer hands it the monitor and Namespace records it reads anyway (whole, on every
    member, as the sinks' own reader would), so those topics are read once."""

    def take(self, topic: str, got: Sequence[Record], partitions: int) -> None: ...

    def forget(self, topic: str, partition: int, partitions: int) -> None:
        """Before `partition` is read again from 0 (Kafka denied it before)."""

    async def settle(self, *, caught_up: bool) -> None:
        """After each round of the table consumer."""


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
        targets_zstd_level: int | None = None,
        membership: Membership | None = None,
        monitors: MonitorsSettings | None = None,
        feed: Feed | None = None,
        monitor_feed: MonitorFeed | None = None,
    ) -> None:
        self.fold = fold
        self._feed = feed
        self._monitor_feed = monitor_feed
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
        self._membership = membership or Membership()
        self._committer: kafka_offsets.OffsetCommitter | None = None
        self._prefix = kafka.topic_prefix
        regex = records.cluster_regex(clusters, cluster_pattern)
        self._group_pattern = records.topic_pattern(self._prefix, regex, NAMESPACED)
        self._global_pattern = records.topic_pattern(self._prefix, regex, GLOBAL)
        self._targets = targets_topic
        self._targets_partitions = targets_partitions
        self._writer = TargetsWriter(kafka, topic=targets_topic, max_group_bytes=max_group_bytes,
                                     metrics=metrics, skip=self._skip_group,
                                     zstd_level=targets_zstd_level)  # fmt: skip
        self._state: catch_up.CatchUp[TopicPartition] = catch_up.CatchUp()
        self._synced = asyncio.Event()
        self._dirty = asyncio.Event()
        self._owned: set[TopicPartition] = set()
        self._group_consumer: AIOKafkaConsumer | None = None
        self._kafka_problem: str | None = None
        self._publish_problem: str | None = None  # the last publish failed (not a refusal)
        self._refusals = Refusals(kafka, counter=metrics.kafka_refusals)
        # Per consumer (group, table): partitions of denied topics, paused until (monotonic).
        self._denied: dict[int, Pauses[TopicPartition]] = {}
        # Partitions denied and not fetched since: when (epoch ms, aiokafka's poll clock).
        self._unread: dict[TopicPartition, int] = {}
        self._unread_topics: set[str] = set()  # topics the gauge has shown
        self._step_clock = _StepClock(0.0)  # the publish step under way (debug timings)
        self._inflight: _Round | None = None  # rounds handed over, acks not awaited yet
        self._waiting = _Waiting()  # rounds shown, to hand over once those acks are in
        self._writing = asyncio.Event()  # clear while records go to the producer (`_write`)
        self._writing.set()
        self.revoke_acks_s = REVOKE_ACKS_S
        # Until when the fold waits for the sinks to read a published topic first; set
        # once that wait is over, so both read loops hold back until then, not just the
        # first one to fetch a batch.
        self._first_read_by: float | None = None
        self._sinks_waited = asyncio.Event()
        self._sinks_waited.set()

    # readiness -----------------------------------------------------------------------

    def caught_up(self) -> bool:
        return self._state.caught_up()

    def ready(self) -> bool:
        return self._state.ready()

    def synced_once(self) -> bool:
        """A publish step has completed (ready since, but for full syncs due)."""
        return self._state.synced

    def unready_reason(self) -> str | None:
        problem = self._kafka_problem or self._publish_problem
        return self._state.unready_reason(refusal=self._refusals.problem, kafka_problem=problem)

    def problem(self) -> str | None:
        """A refusal, Kafka away or a failing publish, ready or not (what /readyz names
        while the sinks serve the topic before the fold's first sync)."""
        return self._refusals.problem or self._kafka_problem or self._publish_problem

    def degraded_reason(self) -> str | None:
        """What /readyz names while ready: a refusal or a failing publish (the fold serves
        and publishes what it can; `sdstream_fold_unread_partitions` says which topics)."""
        return self._refusals.problem or self._publish_problem if self.ready() else None

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def pause_publishing(self) -> None:
        self._state.need_sync = True

    async def revoked(self) -> None:
        """Partitions revoked (aiokafka revokes every one at each rebalance): nothing more
        is handed over until the full sync, and before the partitions go, the acks of what
        the producer has are awaited (up to `revoke_acks_s`). Else a write of ours still
        in flight could land after the full sync of the member taking a partition over,
        and the topic would keep our older version of a group (or a group it deleted)
        until that group changed again. Failed acks are the publish loop's to handle."""
        self.pause_publishing()
        try:
            async with asyncio.timeout(self.revoke_acks_s):
                await self._writing.wait()  # a full sync or a hand under way: its sends
                inflight = self._inflight
                if inflight is not None:
                    await asyncio.wait([inflight.acks])  # never cancels them
        except TimeoutError:
            self._metrics.revoke_unacked.inc()
            logger.warning("Giving partitions up with writes to %s not acked after %.0f s: "
                           "an older group of ours may land after the new owner's.",
                           self._targets, self.revoke_acks_s,
                           extra={"topic": self._targets})  # fmt: skip

    # run -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._first_read_by = time.monotonic() + FIRST_READ_WAIT_S
        self._sinks_waited.clear()
        await self._ensure_targets_topic()
        options = kafka_options.client_options(self._kafka)
        member = self._membership
        group = AIOKafkaConsumer(
            **options, group_id=self._group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", metadata_max_age_ms=int(TOPIC_CHECK_S * 1000),
            partition_assignment_strategy=(RangePartitionAssignor,),
            group_instance_id=member.instance_id,
            session_timeout_ms=int(member.session_timeout_s * 1000),
        )  # fmt: skip
        committer = kafka_offsets.OffsetCommitter(
            group, interval_s=member.commit_interval_s, commits=self._metrics.offset_commits,
            failures=self._metrics.offset_commit_failures,
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
                if client is group:  # before the group consumer stops: the last markers
                    started.push_async_callback(
                        committer.commit, kafka_offsets.FINAL_COMMIT_TIMEOUT_S
                    )
                    self._committer = committer
            try:
                group.subscribe(pattern=self._group_pattern, listener=_Rebalance(self))
            except ValueError as exc:  # aiokafka wraps re.error; settings validate it first
                raise FoldFailed(f"cluster_pattern: {exc}") from exc
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read_group(group))
                tasks.create_task(self._read_global(table))
                tasks.create_task(self._publish_loop())
                tasks.create_task(committer.run())

    def published_before(self) -> bool:
        """In one process, whether the targets topic held a fold's last answer when this
        process's sinks first looked (`Feed.published`): they serve it once read."""
        return self._feed is not None and self._feed.published()

    async def _sinks_first(self) -> None:
        """One process restarted: while the sinks read the topic a fold published (the
        last answer, what they serve first), the fold folds nothing, at most
        FIRST_READ_WAIT_S from start. Both hold the GIL, so working side by side delayed
        serving by the fold's whole catch-up and rebuild (bench/README.md, session 9).
        The group joins meanwhile. Asked before each fetch until the wait is over (the
        sinks may not have looked at the topic yet), never between a fetch and its fold:
        a rebalance during the wait would leave a batch of partitions given away."""
        if self._feed is None or self._sinks_waited.is_set():
            return
        if self._first_read_by is None:  # the other read loop is waiting for the sinks
            await self._sinks_waited.wait()
            return
        left = self._first_read_by - time.monotonic()
        if left > 0 and not self._feed.published():
            return  # not known yet, or a new topic (then folding goes on: nothing to serve)
        self._first_read_by = None
        try:
            if left > 0:
                started = time.monotonic()
                read = await self._feed.wait_read(left)
                logger.info("Folding after the sinks %s %s (%.1f s).",
                            "read" if read else "did not finish reading", self._targets,
                            time.monotonic() - started)  # fmt: skip
        finally:
            self._sinks_waited.set()

    async def _ensure_targets_topic(self) -> None:
        """Create the targets topic, the first thing that needs Kafka: while Kafka cannot be
        reached (it may start after us), retry with backoff and say so on /readyz."""
        backoff = Backoff(0.5, START_RETRY_MAX_S, jitter=False)
        while True:
            try:
                await kafka_targets_topic.ensure_topic(
                    self._kafka, self._targets, partitions=self._targets_partitions,
                    configs=self._writer.topic_configs(),
                )  # fmt: skip
                found = await kafka_targets_topic.writer_configs(self._kafka, self._targets)
            except (KafkaError, kafka_targets_topic.TopicRefused) as exc:
                delay = backoff.next()
                if await self._refusals.check(exc, doing=f"checking topic {self._targets}"):
                    await asyncio.sleep(delay)  # credentials and ACLs change: try again
                    continue
                if isinstance(exc, kafka_targets_topic.TopicRefused):
                    raise FoldFailed(str(exc)) from exc
                # aiokafka marks a timeout not retriable; we retry it
                if not (exc.retriable or isinstance(exc, KafkaTimeoutError)):
                    raise FoldFailed(f"creating {self._targets}: {exc!r}") from exc
                problem = f"{exc!r}"
            else:
                self._kafka_problem = None
                self._refusals.clear()
                self._writer.fit_topic(found)
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
            self._unread.pop(tp, None)
        self._count_unread()
        for tp in assigned - gained:
            consumer.seek(tp, self._state.group.positions.get(tp, 0))
        ends: dict[TopicPartition, int] = {}
        if gained:
            await consumer.seek_to_beginning(*gained)
            ends = await consumer.end_offsets(list(gained))
        self._state.reassigned(lost=lost, gained=ends)
        self._owned = set(assigned)
        self._update_ownership(consumer)
        self._metrics.rebalances.inc()
        self._dirty.set()
        logger.info("Assigned %d partitions (%d new, %d lost).", len(assigned), len(gained),
                    len(lost))  # fmt: skip

    def _drop_partition(self, tp: TopicPartition, *, count: int | None = None) -> None:
        parsed = parse_object_topic(self._prefix, tp.topic)
        if parsed is None:
            return
        cluster, resource = parsed
        count = self.owners.counts.get(cluster, 0) if count is None else count
        if self.monitors is not None and count:  # monitors and namespaces: global tables,
            # so only a partition denied and readable again gets here, never a revoked one
            self.monitors.drop_partition(cluster, resource, partition=tp.partition,
                                         partitions=count)  # fmt: skip
        if not count or cluster not in self.fold.clusters:
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
            await self._sinks_first()
            batch = await self._get(consumer, self._state.group)
            if batch:
                fetched = time.time()
                self._fold(batch, self._state.group, consumer)
                _log_folded(batch, fetched)
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
                await self._feed_monitors({}, consumer)
                await asyncio.sleep(0.2)
                continue
            await self._sinks_first()
            batch = await self._get(consumer, self._state.table)
            if batch:
                self._fold(batch, self._state.table, consumer)
            await self._positions(consumer, self._state.table)
            await self._feed_monitors(batch, consumer)

    async def _feed_monitors(
        self, batch: Mapping[TopicPartition, Sequence[Record]], consumer: AIOKafkaConsumer
    ) -> None:
        feed = self._monitor_feed
        if feed is None:
            return
        for tp, got in batch.items():
            if self._monitor_topic(tp.topic):
                feed.take(tp.topic, got, len(consumer.partitions_for_topic(tp.topic) or ()))
        table = self._state.table
        await feed.settle(caught_up=self._state.table_complete and not table.behind())

    def _monitor_topic(self, topic: str) -> bool:
        parsed = parse_object_topic(self._prefix, topic)
        return parsed is not None and parsed[1] in live.READS

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
        back = await self._readable_again(consumer, progress)
        return {tp: got for tp, got in batch.items() if tp not in back}

    async def _readable_again(
        self, consumer: AIOKafkaConsumer, progress: Progress
    ) -> set[TopicPartition]:
        """Denied partitions Kafka let us fetch since: what was folded from them is
        forgotten (deletions may have been compacted away meanwhile), they are read again
        from 0, and a full sync follows once caught up (groups gone meanwhile are
        tombstoned then)."""
        assignment = consumer.assignment()
        back = {tp for tp, since in self._unread.items() if tp in assignment
                and (consumer.last_poll_timestamp(tp) or 0) > since}  # fmt: skip
        if not back:
            return back
        for tp in back:
            del self._unread[tp]
        self._count_unread()
        for tp in back:
            count = len(consumer.partitions_for_topic(tp.topic) or ())
            self._drop_partition(tp, count=count)
            if self._monitor_feed is not None and self._monitor_topic(tp.topic):
                self._monitor_feed.forget(tp.topic, tp.partition, count)
        await consumer.seek_to_beginning(*back)
        progress.gain(await consumer.end_offsets(list(back)))
        self._state.need_sync = True
        self._dirty.set()
        logger.info("Reading %d partitions again, which Kafka denied us before: %s.", len(back),
                    ", ".join(sorted({tp.topic for tp in back})))  # fmt: skip
        return back

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
        self._unread.update(dict.fromkeys(tps, int(time.time() * 1000)))
        self._count_unread()
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
        """Publish each step; a step Kafka refuses or cannot take (credentials changed,
        the targets topic's write ACL removed, the broker away) is reported, and a full
        sync follows after a backoff: it writes whatever the topic lacks, so nothing is
        lost, and the groups already published keep being served meanwhile."""
        backoff = Backoff(0.5, DENIED_RETRY_S, jitter=False)
        try:
            while True:
                await self._work()
                await self._publish_or_settle(backoff)
        finally:
            if self._inflight is not None:
                self._inflight.acks.cancel()

    async def _work(self) -> None:
        """Until records were folded (or the assignment changed), or the round in flight
        has its acks."""
        inflight = self._inflight
        if inflight is None or self._dirty.is_set():
            await self._dirty.wait()
            return
        dirty = asyncio.ensure_future(self._dirty.wait())
        either: list[asyncio.Future[Any]] = [dirty, inflight.acks]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dirty.cancel()

    async def _publish_or_settle(self, backoff: Backoff) -> None:
        try:
            if self._dirty.is_set():
                self._dirty.clear()
                self._step_clock = _StepClock(time.time())
                await self._publish_step()
            else:
                await self._settle()
                await self._hand()
        except (KafkaError, kafka_targets_topic.TopicRefused) as exc:
            # What was shown and not acked goes with the full sync that follows.
            self._inflight, self._waiting = None, _Waiting()
            if self._feed is not None:
                await self._feed.abort()  # every round not acked yet
            await self._publish_failed(exc, backoff)
        else:
            if self._publish_problem is not None:
                logger.info("Publishing to %s again.", self._targets)
                self._publish_problem = None
                self._refusals.clear()
            backoff.reset()

    async def _publish_failed(self, exc: BaseException, backoff: Backoff) -> None:
        """Report why publishing failed, then, after a backoff, start a new producer (it
        reads the password file again) until one starts: an idempotent producer cannot
        even start while the principal may write no topic at all (its producer id is
        refused). A full sync follows."""
        await self._report_publish(exc, backoff.next())
        self._state.resync = True  # the next step re-reads the topic and writes the rest
        while True:
            await asyncio.sleep(backoff.next())
            try:
                async with asyncio.timeout(WRITER_START_S):
                    await self._writer.restart()
            except (KafkaError, TimeoutError) as failed:
                await self._report_publish(failed, backoff.next())
            else:
                break
        self._dirty.set()

    async def _report_publish(self, exc: BaseException, delay: float) -> None:
        doing = f"publishing to {self._targets}"
        refused = await self._refusals.check(exc, doing=doing, options=self._writer.options())
        if refused is None and not _retriable(exc):
            raise FoldFailed(f"{doing}: {exc!r}") from exc
        self._publish_problem = refused or f"{doing} failed: {exc!r}"
        if refused is None:
            logger.warning("%s; retrying in %.1f s.", self._publish_problem, delay,
                           extra={"topic": self._targets})  # fmt: skip

    async def _publish_step(self) -> None:
        self._metrics.caught_up.set(1 if self._state.caught_up() else 0)
        step = self._state.next_step()
        if step is catch_up.Step.WAIT:
            return
        self._update_monitor_views()
        folded = dict(self._state.group.positions)  # what this step's groups reflect
        if step is catch_up.Step.FULL_SYNC:
            await self._drain()
            shown = self._show if self._feed is not None else None  # served before the acks
            sync = self._fed(await self._full_sync())
            with self._write():
                written = await self._writer.send(sync, handed=shown)
            if self._state.need_sync:  # the assignment changed meanwhile: not a sync yet
                self._dirty.set()
                return
            logger.info("Synced: %d records written.", written, extra={"writes": written})
            await self._acked(folded, self._step_clock)
            heap.trim()  # what encoding and sending every group freed (`consumers.heap`)
        else:
            await self._publish_round(folded)
        self._state.synced = True
        self._synced.set()
        self._gauges()

    async def _publish_round(self, folded: dict[TopicPartition, int]) -> None:
        """Rebuild the touched groups and show them to this process's sinks at once; the
        producer gets them once the acks of what it has are in (`_hand`), merged with any
        other round shown meanwhile (the latest write per key), so neither the show nor
        the next round waits for acks."""
        built, errors = await self._rebuilt()
        self._report(errors)
        changes = [(c.key, self._writer.checked(c.key, c.value()))
                   for c in built if self.owners.owns(c.key)]  # fmt: skip
        if self._feed is not None:  # the sinks hold the round before the producer has it
            changes = list(self._fed(changes))
            await self._show()
        self._waiting.add(changes, folded, self._step_clock)
        if self._inflight is not None and self._inflight.acks.done():
            await self._settle()
        if self._inflight is None:
            await self._hand()

    async def _hand(self) -> None:
        """Hand the rounds waiting to the producer; their acks are awaited apart. Not
        while a full sync is due (a rebalance): rounds built before it may hold groups of
        partitions another member owns now; the full sync takes them over (`_drain`)."""
        if self._state.need_sync or not self._waiting.clocks:
            return
        waiting, self._waiting = self._waiting, _Waiting()
        with self._write():
            sent = await self._writer.hand(waiting.writes.items())
            self._inflight = _Round(asyncio.ensure_future(self._writer.acked(sent)), waiting)

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """While records go to the producer (a revocation waits for them to be in)."""
        self._writing.clear()
        try:
            yield
        finally:
            self._writing.set()

    async def _settle(self) -> None:
        """Wait for the acks of what the producer has (raising what failed them); a record
        refused as too large is resent before anything newer is handed over."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            await inflight.acks
            for clock in inflight.rounds.clocks:
                await self._acked(inflight.rounds.folded, clock)

    async def _drain(self) -> None:
        """Before a full sync: the acks of what the producer has; rounds not handed over
        are taken back from the sinks, and the full sync writes and shows what they
        changed in the partitions this member owns now (it diffs the fold's groups with
        the topic)."""
        await self._settle()
        if self._waiting.clocks:
            self._waiting = _Waiting()
            if self._feed is not None:
                await self._feed.abort()

    async def _acked(self, folded: dict[TopicPartition, int], clock: _StepClock) -> None:
        """A round's acks are in: the sinks keep it, its offsets are marked."""
        clock.log()
        if self._feed is not None:
            await self._feed.flush()
        if self._committer is not None:
            self._committer.mark(folded)

    async def _rebuilt(self) -> tuple[list[folds.Change], list[folds.BuildError]]:
        """The fold's rebuild, giving the event loop a turn every `REBUILD_SLICE_S`: a
        rebuild of 200 monitor jobs ran for a minute and starved heartbeats and HTTP.
        Records folded meanwhile are marked for the next step; changes come only at the
        end, so no half-built view swap is published."""
        steps = self.fold.rebuilding()
        turn = time.monotonic() + REBUILD_SLICE_S
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: tuple[list[folds.Change], list[folds.BuildError]] = done.value
                return result
            if time.monotonic() >= turn:
                await asyncio.sleep(0)
                turn = time.monotonic() + REBUILD_SLICE_S

    async def _show(self) -> None:
        """The sinks in this process serve the round now, before its acks: as soon as it is
        built (changes, already a list), or once the full sync's lazy writes are handed
        over."""
        self._step_clock.shown = time.time()
        if self._feed is not None:
            await self._feed.show()

    def _fed(self, writes: Iterable[Write]) -> Iterator[Write]:
        """`writes`, each given to the feed as it is taken: the group the fold holds for an
        upsert (its record is the value), None for a tombstone. Lazy, as the full sync's
        writes are, so no more values are held at once than before."""
        for key, value in writes:
            if self._feed is not None:
                group = (
                    packed.decode(value) if value is not None and key in self.fold.groups else None
                )
                self._feed.put(key, group, None if group is None else value)
            yield key, value

    async def _full_sync(self) -> Iterator[Write]:
        objects = sum(s.size() for s in self.fold.clusters.values())
        logger.info("Caught up: %d objects folded; building every group.", objects,
                    extra={"objects": objects})  # fmt: skip
        started = time.monotonic()
        with heap.paused():
            self.fold.mark_all()
            _, errors = await self._rebuilt()  # finished before anything is diffed
        self._report(errors)
        built = len(self.fold.groups)
        logger.info("Built %d groups in %.1f s.", built, time.monotonic() - started,
                    extra={"groups": built})  # fmt: skip
        published = await kafka_targets_topic.read_digests(self._kafka, self._targets)
        owns = self.owners.owns
        # Compared as digests of record bytes (encoding is canonical), each group encoded
        # only as it is written: parsing the whole topic took longer than the build, and
        # holding its values, or every desired value at once, added its size to the peak.
        owned = [(k, g) for k, g in self.fold.groups.packed().items() if owns(k)]  # fixed now
        unread = self._unread_now()
        held, unowned = full_sync.split(published, owns, unread)
        orphans = await self._orphans(unowned, unread)
        if self._state.need_sync:
            # The build and the reads above yield: a rebalance (or a partition readable
            # again) meanwhile makes `owns` name partitions not read yet, whose published
            # groups this sync would tombstone. The full sync now due judges them instead.
            logger.info("Assignment changed during the sync; syncing again once caught up.")
            self._dirty.set()
            return iter(())
        # A group too large to publish is left out, like a vanished one: tombstoned if the
        # topic holds it, else nothing written, so each sync (and restart) agrees.
        desired = ((k, v) for k, g in owned if self._writer.fits(k, v := g.value()))
        logger.info("Syncing: %d groups owned, %d in the targets topic, %d orphans.",
                    len(owned), len(held), len(orphans),
                    extra={"groups": len(owned), "published": len(held)})  # fmt: skip
        if denied := ", ".join(sorted(unread.touched_clusters())):
            logger.info("Leaving the published groups of partitions Kafka denies us as they "
                        "are (clusters %s).", denied, extra={"clusters": denied})  # fmt: skip
        return full_sync.writes(desired, held, orphans, fingerprint=targets.digest, unread=unread)

    def _count_unread(self) -> None:
        """`sdstream_fold_unread_partitions` per topic; 0 once a topic is read again."""
        counts = dict.fromkeys(self._unread_topics, 0)
        for tp in self._unread:
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        for topic, count in counts.items():
            self._metrics.unread.labels(topic).set(count)
        self._unread_topics = set(counts)

    def _unread_now(self) -> full_sync.Unread:
        """What the full sync may not judge: partitions denied and not fetched since."""
        partitions: dict[str, set[int]] = {}
        tables: set[str] = set()
        for tp in self._unread:
            parsed = parse_object_topic(self._prefix, tp.topic)
            if parsed is not None and parsed[1] in NAMESPACED:
                partitions.setdefault(parsed[0], set()).add(tp.partition)
            elif parsed is not None:
                tables.add(parsed[0])
        return full_sync.Unread(ownership.Ownership(partitions, dict(self.owners.counts)),
                                frozenset(tables))  # fmt: skip

    async def _orphans(
        self, unowned: Iterable[TargetKey], unread: full_sync.Unread
    ) -> list[TargetKey]:
        """Published groups of deleted clusters this member tombstones (`full_sync.orphans`),
        judged on fresh metadata of every topic, not only subscribed ones. A cluster whose
        topics we may no longer describe is not listed either: asked by name, such a
        cluster is denied, not deleted, and its groups stay."""
        consumer = self._group_consumer
        if consumer is None:
            return []
        unowned, topics = list(unowned), await consumer.topics()

        def judged(denied: set[str]) -> list[TargetKey]:
            return full_sync.orphans(unowned, topics=topics, prefix=self._prefix,
                                     group_pattern=self._group_pattern, owned=self._owned,
                                     unread=denied)  # fmt: skip

        orphans = judged(unread.touched_clusters())
        if orphans:
            clusters = {parse_target_key(k)[1] for k in orphans}
            denied = await kafka_targets_topic.denied_clusters(self._kafka, clusters, NAMESPACED)
            orphans = judged(unread.touched_clusters() | denied)
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
        generation = self.monitors.generation
        plan = monitor_views.plan({w: job for w, (_, job) in self._monitor_views.items()},
                                  wanted)  # fmt: skip
        for where in plan.remove:
            position, _ = self._monitor_views.pop(where)
            self.fold.remove_view(position)
            self._forget_gauges(where[0])
        for job in plan.add:
            position = self.fold.add_view(monitor_views.view_of(job))
            self._monitor_views[(job.name, job.cluster)] = position, job
        self._monitors_seen = generation  # once applied, so a plan cut short is made again
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
                dropped, invalid = self.fold.left_out.totals.get(view.job, (0, 0))
                self._metrics.left_out.labels(view.job, "dropped").set(dropped)
                self._metrics.left_out.labels(view.job, "invalid").set(invalid)


@dataclass
class _Waiting:
    """Rounds shown and not yet handed to the producer: the latest write per key, the
    positions the last one reflects, and each round's step timings."""

    writes: dict[TargetKey, bytes | None] = field(default_factory=dict)
    folded: dict[TopicPartition, int] = field(default_factory=dict)
    clocks: list[_StepClock] = field(default_factory=list)

    def add(self, writes: Iterable[Write], folded: dict[TopicPartition, int],
            clock: _StepClock) -> None:  # fmt: skip
        for key, value in writes:
            self.writes.pop(key, None)  # re-inserted last: the topic gets the latest order
            self.writes[key] = value
        self.folded = folded
        self.clocks.append(clock)


@dataclass(frozen=True)
class _Round:
    """Rounds handed to the producer together, and their acks."""

    acks: asyncio.Future[int]
    rounds: _Waiting


@dataclass
class _StepClock:
    """When a publish step started, was shown to this process's sinks and was acked
    (epoch seconds, comparable with record timestamps): logged at debug, for latency
    breakdowns (bench/kafka_latency.py)."""

    started: float
    shown: float | None = None

    def log(self) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        acked = time.time()
        shown = acked if self.shown is None else self.shown  # no sinks here: at the acks
        logger.debug("Publish step: shown after %.1f ms, acked after %.1f ms.",
                     (shown - self.started) * 1000, (acked - self.started) * 1000,
                     extra={"stage": "publish", "started_at": self.started,
                            "shown_at": shown, "acked_at": acked})  # fmt: skip


def _log_folded(batch: Mapping[TopicPartition, Sequence[Record]], fetched: float) -> None:
    """At debug: a batch's size, when it was fetched and folded, and when its records
    were appended (CreateTime, epoch ms), for latency breakdowns (bench/kafka_latency.py)."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    folded = time.time()
    stamps = [r.timestamp for got in batch.values() for r in got]
    oldest, newest = min(stamps), max(stamps)
    logger.debug("Folded %d records in %.1f ms, appended %.0f to %.0f ms before.", len(stamps),
                 (folded - fetched) * 1000, fetched * 1000 - newest, fetched * 1000 - oldest,
                 extra={"stage": "fold", "records": len(stamps), "fetched_at": fetched,
                        "folded_at": folded, "oldest_ms": oldest, "newest_ms": newest})  # fmt: skip


def _retriable(exc: BaseException) -> bool:
    """Worth trying again: aiokafka's retriable errors, its timeouts (marked otherwise),
    connection errors, and a topic Kafka would not create or read just now."""
    timeouts = KafkaTimeoutError | TimeoutError | kafka_targets_topic.TopicRefused
    return isinstance(exc, timeouts) or bool(getattr(exc, "retriable", False))


async def _covers(consumer: AIOKafkaConsumer, pattern: str, tps: set[TopicPartition]) -> bool:
    """Whether `tps` include every topic matching `pattern` that exists now."""
    matching = {t for t in await consumer.topics() if re.match(pattern, t)}
    return matching <= {tp.topic for tp in tps}
