"""Wires the producer: API client, Kafka publisher, emitter and one watcher per
resource and scope, under one TaskGroup, until `stop` is set.

Exit status: 0 after a clean stop (buffered records flushed), 2 when an existing
topic does not match (not compacted, wrong partition count).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka_access.reporting import Refusals
from lifecycle.backoff import Backoff
from producers import emit, known, leader, prefetch, trim
from producers.emit import PublishFailed
from producers.health import WatchHealth
from producers.kafka_known import KafkaKnownReader
from producers.kafka_publisher import KafkaPublisher, TopicMismatch
from producers.kubeapi import api, auth, errors
from producers.producer_metrics import ProducerMetrics
from producers.watcher import ObjectSource, Watch, Watcher
from schemas import config
from schemas.config import ProducerSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")

UNFILTERED = config.UNFILTERED  # never filtered by the producer's selectors


def watches(settings: ProducerSettings, *, timeout_s: int = 300) -> list[Watch]:
    """One watch per resource, times one per namespace when namespaces are given."""
    result: list[Watch] = []
    for resource in settings.resources:
        label, fields = settings.label_selector, settings.field_selector
        if resource in UNFILTERED:
            label = fields = None
        names: tuple[str | None, ...] = (None,)
        if settings.namespaces and not resource.cluster_scoped:
            names = settings.namespaces
        result += [Watch(resource, api.Scope(n, label, fields), timeout_s) for n in names]
    return result


@dataclass
class Readiness:
    """Ready once every watch's initial list is published, and while no watch is stuck."""

    expected: frozenset[Watch] = frozenset()
    listed: set[Watch] = field(default_factory=set)
    metrics: ProducerMetrics | None = None
    standby: bool = False  # a healthy hot standby counts as ready (rollouts must not stall)
    health: WatchHealth = field(default_factory=WatchHealth)
    refusals: Refusals | None = None  # what Kafka refuses us (credentials, TLS, ACLs)

    def mark(self, watch: Watch) -> None:
        self.listed.add(watch)
        if self.metrics is not None and all(
            w in self.listed for w in self.expected if w.resource is watch.resource
        ):
            self.metrics.ready.labels(watch.resource.value).set(1)

    def reason(self) -> str | None:
        """Why /readyz says 503, or None when ready."""
        if self.standby:
            return None
        stuck = self.health.stuck()
        if stuck:
            return "; ".join(stuck)
        listed = bool(self.expected) and self.expected <= self.listed
        if self.refusals is not None and self.refusals.problem is not None and not listed:
            return self.refusals.problem
        if not listed:
            return "initial lists not yet published"
        return None

    def degraded(self) -> str | None:
        """What /readyz names while ready: a refusal since every initial list was published
        (e.g. one resource's topic denied; a watch that stays stuck is `reason`)."""
        problem = self.refusals.problem if self.refusals is not None else None
        return problem if self.reason() is None and not self.standby else None

    @property
    def ready(self) -> bool:
        return self.reason() is None


async def retry(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` until it stops raising PublishFailed, backing off in between."""
    backoff = Backoff(maximum_s=15.0)
    while True:
        try:
            await step()
        except PublishFailed as exc:
            delay = backoff.next()
            logger.warning("%s: %s; retrying in %.1fs.", what, exc, delay, extra={"step": what})
            await asyncio.sleep(delay)
        else:
            return


def default_identity() -> str:
    """Pod name (the hostname in Kubernetes) plus a random suffix: unique per process."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Producer:
    settings: ProducerSettings
    metrics: ProducerMetrics
    readiness: Readiness = field(default_factory=Readiness)
    connect: Callable[[Any], Awaitable[Any]] = auth.connect
    wrap_source: Callable[[ObjectSource], ObjectSource] = lambda source: source  # fault seam
    identity: str = field(default_factory=default_identity)
    absent_recheck_s: float = 60.0  # how often to ask again for a CRD the server lacks
    _api: api.KubeApi | None = None

    async def run(self, stop: asyncio.Event) -> int:
        """Watch and publish until `stop` (as leader, if election is on); the exit status."""
        self.readiness.expected = frozenset(watches(self.settings))
        self.readiness.metrics = self.metrics
        self.metrics.leader_election.set(1 if self.settings.leader.enabled else 0)
        self.readiness.health = WatchHealth(self.metrics)
        self.readiness.refusals = Refusals(
            self.settings.kafka, counter=self.metrics.kafka_refusals, log=False
        )
        elector: leader.Elector | None = None
        try:
            started = time.perf_counter()
            self._api = api.KubeApi(
                await self.connect(self.settings.kube), page_size=self.settings.page_size
            )
            _stage("kube client ready", started)
            elector = self._elector(self._api)
            while not stop.is_set():
                if elector is not None and not await self._campaign(elector, stop):
                    break
                if not await self._term(stop, elector):
                    break
        except TopicMismatch as exc:
            logger.error("%s", exc)  # noqa: TRY400  # a configuration error, not a crash
            return 2
        finally:
            await self._close(elector)
        return 0

    def _elector(self, source: api.KubeApi) -> leader.Elector | None:
        config = self.settings.leader
        if not config.enabled:
            return None
        store = leader.KubeLeaseStore(source, namespace=config.namespace, name=config.name)
        return leader.Elector(store, config, identity=self.identity)

    async def _campaign(self, elector: leader.Elector, stop: asyncio.Event) -> bool:
        """Wait as a standby until we lead (True) or `stop` is set (False)."""
        self.readiness.standby = True
        self.metrics.leader.set(0)
        logger.info("Standing by for lease %s.", self.settings.leader.name)
        if not await _first(elector.acquire(), stop):
            return False
        self.metrics.leader.set(1)
        return True

    async def _term(self, stop: asyncio.Event, elector: leader.Elector | None) -> bool:
        """One term as the writer: True to start another (the lease was lost: campaign
        again; or Kafka refused a record: a new Kafka producer, topic limits read again)."""
        self.readiness.standby = False
        self.readiness.listed.clear()
        self.readiness.health.clear()
        lost = asyncio.Event()
        publisher = KafkaPublisher(
            self.settings.kafka,
            metrics=self.metrics,
            max_request_size=self.settings.max_record_bytes,
            refusals=self.readiness.refusals,
        )
        holder = asyncio.create_task(_hold(elector, lost)) if elector else None
        assert self._api is not None  # noqa: S101  # set by run() before any term
        wanted = [(w.resource, w.scope) for w in self.readiness.expected]
        source = prefetch.FirstPages(self.wrap_source(self._api), wanted)  # LISTs go out now
        try:
            refused = publisher.refused
            watcher = await _first(self._start(publisher, source), stop, lost)
            if watcher is not None:
                jobs = [watcher.run(w) for w in self.readiness.expected]
                await _until(jobs, stop, lost, refused)
            if refused.is_set() and not stop.is_set():
                logger.warning(
                    "Kafka refused a record: restarting the Kafka producer (its sequence for "
                    "that partition is broken) and reading the topics' limits again."
                )
        finally:
            await source.close()
            if holder is not None:
                holder.cancel()
                await asyncio.gather(holder, return_exceptions=True)
            await publisher.stop()
            logger.info("Stopped writing; buffered records flushed.")
        return lost.is_set() or (publisher.refused.is_set() and not stop.is_set())

    async def _start(self, publisher: KafkaPublisher, source: ObjectSource) -> Watcher:
        """Topics, the Kafka producer, and the watcher over `source` (whose first LIST
        pages are on their way meanwhile: `prefetch`)."""
        settings = self.settings
        naming = emit.Naming(
            cluster=settings.cluster,
            prefix=settings.kafka.topic_prefix,
            partitions=settings.partitions,
            drop_annotations=trim.DropAnnotations.of(
                settings.drop_annotations, settings.drop_annotation_patterns
            ),
            max_record_bytes=settings.max_record_bytes,
        )
        topics = {naming.topic(r): settings.partitions for r in settings.resources}
        limits: dict[str, int] = {}
        created: set[str] = set()

        async def check_topics() -> None:
            checked = await publisher.ensure_topics(topics)
            limits.update(checked.limits)
            created.update(checked.created)

        started = time.perf_counter()
        await retry("checking topics", check_topics)
        started = _stage("topics checked", started)
        naming = _fit(naming, limits)
        publisher.fit_batches(naming.max_record_bytes)
        await retry("starting the Kafka producer", publisher.start)
        _stage("Kafka producer started", started)
        kafka = KafkaKnownReader(settings.kafka, refusals=self.readiness.refusals)
        reader = known.FreshTopics(kafka, fresh=created)  # just created: nothing to read
        sink = emit.Emitter(naming, publisher=publisher, reader=reader, metrics=self.metrics)
        watcher = Watcher(
            source,
            sink,
            metrics=self.metrics,
            on_listed=self.readiness.mark,
            health=self.readiness.health,
        )
        watcher.absent_recheck_s = self.absent_recheck_s
        return watcher

    async def _close(self, elector: leader.Elector | None) -> None:
        if elector is not None:
            with contextlib.suppress(errors.ApiError):
                await elector.release()
        if self._api is not None:
            await self._api.close()
            self._api = None


def _stage(what: str, since: float) -> float:
    """Log at debug how long a start stage took (bench/produce.py --profile reads these)."""
    now = time.perf_counter()
    logger.debug("Start: %s in %.3fs.", what, now - since, extra={"stage": what})
    return now


def _fit(naming: emit.Naming, topic_limits: dict[str, int]) -> emit.Naming:
    """Lower the record limit to what every topic accepts: Kafka refusing a record would
    break the idempotent producer's sequence for its partition until a restart."""
    limit, lowering = emit.fitting(naming.max_record_bytes, topic_limits)
    for topic in lowering:
        logger.warning(
            "Topic %s takes records up to max.message.bytes=%d, below max_record_bytes=%d: "
            "objects over %d bytes are skipped as too_large.",
            topic,
            topic_limits[topic],
            naming.max_record_bytes,
            limit,
            extra={"topic": topic, "limit": limit},
        )
    return dataclasses.replace(naming, max_record_bytes=limit)


async def _hold(elector: leader.Elector | None, lost: asyncio.Event) -> None:
    if elector is None:
        return
    try:
        await elector.hold()
    except leader.LostLease as exc:
        logger.error("%s; stopping all writes now.", exc)  # noqa: TRY400  # expected, not a crash
        lost.set()


async def _first(step: Awaitable[T], *events: asyncio.Event) -> T | None:
    """`step`'s result, or None if one of `events` is set first (then `step` is cancelled)."""
    work = asyncio.ensure_future(step)
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    await asyncio.wait({work, *waits}, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not work.done():
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return None
    return work.result()


async def _until(jobs: list[Any], *events: asyncio.Event) -> None:
    """Run `jobs` until one of `events` is set, then cancel them."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job) for job in jobs]
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in [*tasks, *waits]:
            task.cancel()
