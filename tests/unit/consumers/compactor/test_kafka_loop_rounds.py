"""The Kafka loop's publish rounds in one process: round N+1 is shown to the sinks while
round N's acks are out, handed to the producer only once they are in (per key, the topic
gets the fold's order), and a failure of N takes back both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, kafka_loop, packed
from consumers.compactor.full_sync import Write
from consumers.compactor.jobs import compile_job
from consumers.sinks import kafka_targets, local_feed, sink_metrics, views
from schemas.config import KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource

JOB = {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}


def pod(ip: str) -> dict[str, object]:
    return {"metadata": {"name": "p0", "namespace": "ns", "uid": "p0"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
            "status": {"podIP": ip}}  # fmt: skip


class Writer:
    """The loop's `TargetsWriter` seam: records what is handed, acks when the test says."""

    def __init__(self) -> None:
        self.handed: list[list[Write]] = []
        self.acks: list[asyncio.Future[None]] = []

    def checked(self, key: object, value: bytes | None) -> bytes | None:
        return value

    async def hand(self, writes: Iterable[Write]) -> asyncio.Future[None]:
        self.handed.append(list(writes))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]

    async def acked(self, sent: asyncio.Future[None]) -> int:
        await sent
        return 1

    async def send(self, writes: Iterable[Write], *, handed: object = None) -> int:
        return await self.acked(await self.hand(writes))


async def until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the loop's state, between its turns
            await asyncio.sleep(0)


def addresses(view: views.TargetView) -> list[str]:
    fragments = b",".join(h.fragment for h in view.held("pods"))
    return [a for entry in orjson.loads(b"[%s]" % fragments) for a in entry["targets"]]


def publishing_loop(view: views.TargetView, writer: Writer) -> kafka_loop.FoldLoop:
    """A fold loop past its full sync, pod ns/p0 at 10.0.0.1 published and served."""
    fold = folds.Fold(compile_job(ScrapeJob.model_validate(JOB)))
    fold.load("c1", Resource.PODS, ObjectKey("ns/p0"), pod("10.0.0.1"))
    fold.mark_all()
    (first,), _ = fold.rebuild()
    value = first.value()
    assert value is not None
    view.put(first.key, packed.decode(value), value)
    reader = kafka_targets.TargetsReader(
        KafkaSettings(), view=view, metrics=sink_metrics.create(CollectorRegistry())
    )
    loop = kafka_loop.FoldLoop(
        kafka=KafkaSettings(bootstrap="127.0.0.1:9", topic_prefix="p"), fold=fold,
        metrics=fold_metrics.create(CollectorRegistry()), group_id="g",
        targets_topic="p.targets", feed=local_feed.LocalFeed(view, reader),
    )  # fmt: skip
    loop._writer = writer  # type: ignore[assignment]
    loop.owners.counts["c1"], loop.owners.assigned["c1"] = 1, {0}
    state = loop._state
    state.assigned_once = state.table_complete = state.synced = True
    state.need_sync = False
    return loop


def move(loop: kafka_loop.FoldLoop, ip: str) -> None:
    loop.fold.apply("c1", Resource.PODS, ObjectKey("ns/p0"), pod(ip))
    loop._dirty.set()


async def test_round_n_plus_1_is_shown_before_n_is_acked_and_a_failure_takes_back_both() -> None:
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    failures: list[BaseException] = []

    async def failed(exc: BaseException, _: object) -> None:
        failures.append(exc)

    loop._publish_failed = failed  # type: ignore[method-assign]
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")  # round N
        await until(lambda: len(writer.handed) == 1)
        move(loop, "10.0.0.3")  # round N+1
        await until(lambda: addresses(view) == ["10.0.0.3:80"])  # shown, N not acked
        assert len(writer.handed) == 1  # handed only after N's acks

        writer.acks[0].set_exception(kafka_loop.KafkaTimeoutError())
        await until(lambda: failures)
        assert addresses(view) == ["10.0.0.1:80"]  # both rounds taken back
        assert len(writer.handed) == 1
    finally:
        publishing.cancel()


async def test_acked_rounds_are_handed_in_order_and_kept() -> None:
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")
        await until(lambda: len(writer.handed) == 1)
        move(loop, "10.0.0.3")
        await until(lambda: addresses(view) == ["10.0.0.3:80"])
        writer.acks[0].set_result(None)
        await until(lambda: len(writer.handed) == 2)
        assert [[k for k, _ in w] for w in writer.handed] == [[k for k, _ in writer.handed[0]]] * 2
        writer.acks[1].set_result(None)
        await until(lambda: loop._inflight is None)  # settled without another change
        assert loop._feed is not None
        await loop._feed.abort()  # nothing left to take back
        assert addresses(view) == ["10.0.0.3:80"]
    finally:
        publishing.cancel()


async def test_rounds_shown_while_acks_are_out_are_handed_together_latest_write_per_key() -> None:
    """Neither a show nor the next round waits for acks: rounds N+1 and N+2 are shown
    while N's are out, then handed to the producer as one, with each key's latest write."""
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")
        await until(lambda: len(writer.handed) == 1)
        move(loop, "10.0.0.3")
        await until(lambda: addresses(view) == ["10.0.0.3:80"])
        move(loop, "10.0.0.4")
        await until(lambda: addresses(view) == ["10.0.0.4:80"])  # N still not acked
        writer.acks[0].set_result(None)
        await until(lambda: len(writer.handed) == 2)
        ((key, value),) = writer.handed[1]
        assert value == loop.fold.groups.packed()[key].value()  # 10.0.0.4's, not 10.0.0.3's
    finally:
        publishing.cancel()


async def test_rounds_waiting_when_partitions_are_revoked_are_left_to_the_full_sync() -> None:
    """A round built before a rebalance may hold groups of partitions another member now
    owns: it is not handed over once the acks are in; the full sync that follows writes
    what this member owns then, and the sinks are given it back meanwhile."""
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")
        await until(lambda: len(writer.handed) == 1)
        move(loop, "10.0.0.3")
        await until(lambda: addresses(view) == ["10.0.0.3:80"])
        loop.pause_publishing()  # partitions revoked
        writer.acks[0].set_result(None)
        await until(lambda: loop._inflight is None)
        assert len(writer.handed) == 1
        await loop._drain()  # what the full sync does first
        assert addresses(view) == ["10.0.0.2:80"]  # the acked round stays served
        assert len(writer.handed) == 1
    finally:
        publishing.cancel()


async def turns(n: int = 50) -> None:
    """Give the publish loop and a revocation many turns of the event loop."""
    for _ in range(n):
        await asyncio.sleep(0)


def revoke(loop: kafka_loop.FoldLoop) -> Coroutine[Any, Any, None]:
    """What aiokafka calls when the group rebalances (every partition is revoked)."""
    listener = kafka_loop._Rebalance(loop)
    revoking: Coroutine[Any, Any, None] = listener.on_partitions_revoked(set())
    return revoking


async def test_revocation_waits_for_the_acks_of_what_the_producer_has() -> None:
    """Else a write of ours could land after the full sync of the member taking the
    partition over, and the topic would keep our older group until it changed again."""
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")
        await until(lambda: len(writer.handed) == 1)
        revoking = asyncio.create_task(revoke(loop))
        await turns()
        assert not revoking.done()  # the partitions are not given up yet
        writer.acks[0].set_result(None)
        async with asyncio.timeout(5):
            await revoking
        assert len(writer.handed) == 1  # nothing more handed before the full sync
    finally:
        publishing.cancel()


class GatedWriter(Writer):
    """Hands over only once the test opens the gate (a producer buffer full)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate = asyncio.Event(), asyncio.Event()

    async def hand(self, writes: Iterable[Write]) -> asyncio.Future[None]:
        self.entered.set()
        await self.gate.wait()
        return await super().hand(writes)


async def test_revocation_waits_for_a_hand_under_way_then_its_acks() -> None:
    view, writer = views.TargetView(configured=frozenset({"pods"})), GatedWriter()
    loop = publishing_loop(view, writer)
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")
        await until(writer.entered.is_set)  # handing over
        revoking = asyncio.create_task(revoke(loop))
        await turns()
        assert not revoking.done()
        writer.gate.set()
        await until(lambda: len(writer.handed) == 1)
        await turns()
        assert not revoking.done()  # handed over, not acked
        writer.acks[0].set_result(None)
        async with asyncio.timeout(5):
            await revoking
    finally:
        publishing.cancel()


async def test_revocation_gives_the_partitions_up_after_its_deadline_counted() -> None:
    registry = CollectorRegistry()
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    loop._metrics = fold_metrics.create(registry)
    loop.revoke_acks_s = 0.0  # the acks never come
    publishing = asyncio.create_task(loop._publish_loop())
    try:
        move(loop, "10.0.0.2")
        await until(lambda: len(writer.handed) == 1)
        async with asyncio.timeout(5):
            await loop.revoked()
        assert registry.get_sample_value("sdstream_fold_revoked_unacked_total") == 1
        assert loop._inflight is not None
        assert not loop._inflight.acks.done()  # still awaited by the publish loop
    finally:
        publishing.cancel()


async def test_a_full_sync_given_up_for_a_rebalance_is_not_the_first_sync() -> None:
    """A restarted process serves the topic until the fold's first sync: a sync that
    gave up (the assignment changed during it, nothing written) must not end that."""
    view, writer = views.TargetView(configured=frozenset({"pods"})), Writer()
    loop = publishing_loop(view, writer)
    loop._state.synced, loop._state.need_sync = False, True

    async def sent(writes: Iterable[Write], *, handed: object = None) -> int:
        return len(list(writes))

    async def given_up() -> Iterable[Write]:
        loop._state.need_sync = True  # a rebalance during the build
        return iter(())

    writer.send = sent  # type: ignore[method-assign]
    loop._full_sync = given_up  # type: ignore[method-assign]
    loop._state.caught_up = lambda: True  # type: ignore[method-assign]
    await loop._publish_step()
    assert not loop.synced_once()
