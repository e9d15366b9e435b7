"""The fold as a consumer group that Kafka's own tools can watch, against the real broker.

Lag tools (kafka-consumer-groups, Burrow, kminion) read a group's committed offsets with
OffsetFetch, which is the admin client's `list_consumer_group_offsets`: after catch-up
they equal the end offsets. Those offsets are progress markers only: a fold restarted in
the same group still rebuilds every group from offset 0. With static membership
(`group_instance_id`) a member restarted within the session timeout gets its partitions
back without a rebalance: the other member never sees a new assignment (each new
generation gives every member one) and the broker's description of the group shows the
same partitions under the same instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol

from schemas.config import ConsumerSettings
from schemas.topics import Resource, object_topic
from tests.integration import events
from tests.integration.test_consume import POD_JOB, Running, consumer, pod, settings
from tests.naming import unique

PODS = 12  # spread over the topic's 3 partitions


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(events.PARTITIONS)]
        return dict(await reader.end_offsets(tps))
    finally:
        await reader.stop()


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """What lag tools read: the group's committed offsets (OffsetFetch)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def members(bootstrap: str, group: str) -> tuple[str, dict[str, set[int]]]:
    """The broker's description of the group: its state, and each member id's partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    ((_, _, state, _, _, described),) = response.groups
    assigned = {}
    for member_id, _, _, _, assignment in described:
        decoded = ConsumerProtocol.ASSIGNMENT.decode(assignment) if assignment else None
        assigned[member_id] = {p for _, ps in (decoded.assignment if decoded else []) for p in ps}
    return state, assigned


async def until(check: Any, *, what: str, timeout_s: float = 60) -> Any:
    """Poll the async `check` until it returns something true; return it."""
    try:
        async with asyncio.timeout(timeout_s):
            while not (found := await check()):  # noqa: ASYNC110 - polling Kafka
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s:.0f}s: {what}") from None
    return found


async def write_pods(bootstrap: str, prefix: str) -> None:
    await events.create_topics(bootstrap, prefix, "c1", [Resource.PODS])
    async with events.Writer(bootstrap, prefix) as writer:
        for i in range(PODS):
            await writer.put("c1", Resource.PODS, pod(f"ns{i}", f"web-{i}", f"10.244.0.{i + 1}"))


def fold_settings(bootstrap: str, prefix: str, group: str, **fields: Any) -> ConsumerSettings:
    base = settings(bootstrap, prefix, POD_JOB, group=group)
    return base.model_copy(update={"commit_interval_s": 0.2, **fields})


async def test_lag_tools_see_committed_offsets_equal_to_the_end_after_catch_up(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await write_pods(kafka_bootstrap, topic_prefix)
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    ends = await end_offsets(kafka_bootstrap, topic)
    assert sum(ends.values()) == PODS
    group = unique("g")

    async with consumer(fold_settings(kafka_bootstrap, topic_prefix, group)) as running:
        await running.until("pods", lambda e: len(e) == PODS)
        await until(lambda: _equal(committed(kafka_bootstrap, group), ends),
                    what="committed offsets at the end offsets")  # fmt: skip
        assert _sample(running, "sdstream_fold_offset_commits_total") >= 1
        assert _sample(running, "sdstream_fold_offset_commit_failures_total") == 0

        async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
            await writer.put("c1", Resource.PODS, pod("ns0", "late", "10.244.1.1"))
        later = await end_offsets(kafka_bootstrap, topic)
        await until(lambda: _equal(committed(kafka_bootstrap, group), later),
                    what="committed offsets follow new records")  # fmt: skip


async def test_a_fold_restarted_with_committed_offsets_still_serves_everything(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Committed offsets at the end: a fold that resumed from them would read nothing and
    its full sync would tombstone every group. It rebuilds from offset 0 instead."""
    await write_pods(kafka_bootstrap, topic_prefix)
    ends = await end_offsets(kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.PODS))
    group = unique("g")
    config = fold_settings(kafka_bootstrap, topic_prefix, group)
    async with consumer(config) as running:
        await running.until("pods", lambda e: len(e) == PODS)
        await until(lambda: _equal(committed(kafka_bootstrap, group), ends),
                    what="committed offsets at the end offsets")  # fmt: skip

    async with consumer(config) as restarted:
        found = await restarted.until("pods", lambda e: len(e) == PODS)
        assert len(found) == PODS
    assert await committed(kafka_bootstrap, group) == ends


async def test_a_fold_commits_its_offsets_when_it_stops(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """An interval longer than the test: only the commit at shutdown can write them."""
    await write_pods(kafka_bootstrap, topic_prefix)
    ends = await end_offsets(kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.PODS))
    group = unique("g")
    config = fold_settings(kafka_bootstrap, topic_prefix, group, commit_interval_s=3600.0)
    async with consumer(config) as running:
        await running.until("pods", lambda e: len(e) == PODS)
        assert await committed(kafka_bootstrap, group) == {}
    assert await committed(kafka_bootstrap, group) == ends


@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
async def test_a_member_restarted_within_the_session_timeout_keeps_its_partitions(
    kafka_bootstrap: str, topic_prefix: str, static: bool
) -> None:
    await write_pods(kafka_bootstrap, topic_prefix)
    group = unique("g")

    def member(name: str) -> ConsumerSettings:
        instance = {"group_instance_id": f"{group}-{name}"} if static else {}
        return fold_settings(kafka_bootstrap, topic_prefix, group, mode="fold",
                             session_timeout_s=45.0, **instance)  # fmt: skip

    async with consumer(member("a")) as a:
        async with consumer(member("b")):
            state, before = await until(lambda: _split(kafka_bootstrap, group),
                                        what="both members assigned")  # fmt: skip
            await until(lambda: _at_least(a, 2), what="a reassigned once b joined")
        seen_by_a = _sample(a, "sdstream_fold_rebalances_total")
        async with consumer(member("b")):
            state, after = await until(lambda: _split(kafka_bootstrap, group, new=before),
                                       what="the restarted member assigned")  # fmt: skip
            if static:
                assert state == "Stable"
                assert set(_by_instance(after)) == {f"{group}-a", f"{group}-b"}
                assert _by_instance(after) == _by_instance(before)
                assert _sample(a, "sdstream_fold_rebalances_total") == seen_by_a
            else:
                await until(lambda: _at_least(a, seen_by_a + 1), what="a reassigned")


async def _equal(offsets: Any, wanted: Mapping[TopicPartition, int]) -> bool:
    return bool(await offsets == dict(wanted))


async def _split(
    bootstrap: str, group: str, *, new: Mapping[str, set[int]] | None = None
) -> tuple[str, dict[str, set[int]]] | None:
    """The group's state and members once two members hold partitions (and, given `new`,
    once a member id is not one of those), else None."""
    state, assigned = await members(bootstrap, group)
    held = [ps for ps in assigned.values() if ps]
    joined = new is None or not set(assigned) <= set(new)
    if state == "Stable" and len(assigned) == 2 and len(held) == 2 and joined:
        return state, assigned
    return None


def _by_instance(assigned: Mapping[str, set[int]]) -> dict[str, set[int]]:
    """Partitions by instance id: a static member's id is `<group.instance.id>-<uuid>`."""
    return {member.rsplit("-", 5)[0]: ps for member, ps in assigned.items()}


async def _at_least(running: Running, count: float) -> bool:
    return _sample(running, "sdstream_fold_rebalances_total") >= count


def _sample(running: Running, name: str) -> float:
    return sum(
        s.value for metric in running.registry.collect() for s in metric.samples if s.name == name
    )
