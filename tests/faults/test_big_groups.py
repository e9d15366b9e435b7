"""A target group too large for the targets topic (one Endpoints object with many
addresses x ports, or pods with huge annotations behind one Service) is skipped, counted
and tombstoned; the fold keeps running and publishing everything else, across restarts.

The big group here is ~170 KB against limits lowered to match (a lower `max_group_bytes`,
a targets topic that takes 100 kB), so the tests stay quick; the mechanism is the same
for a 10 MB group against the 4 MiB default.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from consumers.compactor import kafka_loop, kafka_targets_topic
from schemas.topics import Resource, targets_topic
from tests.integration import events, kafka_helpers
from tests.integration.test_consume import POD_JOB, Running, consumer, pod, records, settings
from tests.naming import unique

ENDPOINTS_JOB = {"job_name": "endpoints", "kubernetes_sd_configs": [{"role": "endpoints"}]}
BIG_KEY = b"endpoints/c1/endpoints/a/big"
SKIPPED = "sdstream_fold_groups_skipped_total"
SMALL_TOPIC_LIMIT = 100_000  # max.message.bytes of a targets topic made by hand
# Lowered while running: the limit is on compressed batches, and the big group's JSON
# compresses ~15x, so it must be far below the group's size to be refused.
LOWERED_LIMIT = 2000


def endpoints(ns: str, name: str, *, addresses: int, ports: int, first: int = 1000) -> Any:
    return {
        "metadata": {"name": name, "namespace": ns},
        "subsets": [{
            "addresses": [{"ip": f"10.66.{i // 250}.{i % 250 + 1}"} for i in range(addresses)],
            "ports": [{"name": f"p{p}", "port": first + p, "protocol": "TCP"}
                      for p in range(ports)],
        }],
    }  # fmt: skip


BIG = endpoints("a", "big", addresses=100, ports=10)  # 1000 targets, ~170 KB encoded
SMALL = endpoints("a", "small", addresses=1, ports=1)


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):
        while not check():  # noqa: ASYNC110 - polling metrics
            await asyncio.sleep(0.1)


def targets(entries: list[dict[str, Any]]) -> int:
    return sum(len(e["targets"]) for e in entries)


def skipped(running: Running, reason: str) -> float:
    return running.metric(SKIPPED, job="endpoints", reason=reason)


async def latest(bootstrap: str, prefix: str, key: bytes) -> list[bytes | None]:
    return [r.value for r in await records(bootstrap, prefix) if r.key == key]


async def test_a_group_over_max_group_bytes_is_skipped_counted_and_tombstoned(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    config = settings(kafka_bootstrap, topic_prefix, POD_JOB, ENDPOINTS_JOB, group=unique("g"))
    config = config.model_copy(update={"max_group_bytes": 64 << 10})
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.ENDPOINTS, BIG)
        await writer.put("c1", Resource.ENDPOINTS, SMALL)
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.7.1"))
        async with consumer(config) as running:  # ready: the first sync is published
            assert skipped(running, "too_large") == 1
            found = await running.until("endpoints", lambda e: len(e) == 1)
            assert found[0]["targets"] == ["10.66.0.1:1000"]
            # changes keep flowing, the big group's changes keep being skipped
            await writer.put("c1", Resource.ENDPOINTS, {**BIG, "subsets": BIG["subsets"] * 2})
            await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.7.2"))
            await running.until("pods", lambda e: len(e) == 2)
            await until(lambda: skipped(running, "too_large") == 2)

        # A restart skips it again, no crash. Ready comes before the fold's rebuild now (it
        # serves the topic as read), so the skip is counted once the rebuild reaches it.
        async with consumer(config) as running:
            await until(lambda: skipped(running, "too_large") == 1)
            await running.until("pods", lambda e: len(e) == 2)
            await writer.put("c1", Resource.PODS, pod("c", "web-2", "10.244.7.3"))
            await running.until("pods", lambda e: len(e) == 3)
    assert all(v is None for v in await latest(kafka_bootstrap, topic_prefix, BIG_KEY))
    created = await kafka_targets_topic.max_message_bytes(config.kafka, targets_topic(topic_prefix))
    assert created == config.max_group_bytes + kafka_loop.RECORD_OVERHEAD


async def test_a_targets_topic_taking_less_than_max_group_bytes_lowers_the_limit(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A targets topic created before (or by hand) with a lower max.message.bytes: the fold
    reads the topic's limit and skips what Kafka would refuse, instead of crashing."""
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    await kafka_helpers.create_topic(
        kafka_bootstrap, targets_topic(topic_prefix), partitions=2,
        configs={"cleanup.policy": "compact", "max.message.bytes": str(SMALL_TOPIC_LIMIT)},
    )  # fmt: skip
    config = settings(kafka_bootstrap, topic_prefix, POD_JOB, ENDPOINTS_JOB, group=unique("g"))
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.ENDPOINTS, BIG)
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.8.1"))
        async with consumer(config) as running:
            assert skipped(running, "too_large") == 1
            await running.until("pods", lambda e: len(e) == 1)
            await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.8.2"))
            await running.until("pods", lambda e: len(e) == 2)
    assert await latest(kafka_bootstrap, topic_prefix, BIG_KEY) == []


async def test_a_group_kafka_refuses_is_skipped_and_the_fold_goes_on(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The topic's limit lowered while the fold runs: Kafka refuses the big group's
    record; it is counted, its key tombstoned, and later records are still published
    (the refused batch must not leave the producer unable to write that partition)."""
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    config = settings(kafka_bootstrap, topic_prefix, POD_JOB, ENDPOINTS_JOB, group=unique("g"))
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.9.1"))
        async with consumer(config) as running:
            await lower_limit(kafka_bootstrap, targets_topic(topic_prefix), LOWERED_LIMIT)
            async with asyncio.timeout(60):
                for attempt in range(60):  # until the broker applies the new limit
                    await writer.put("c1", Resource.ENDPOINTS, random_names(endpoints(
                        "a", "big", addresses=40, ports=10, first=1000 + attempt)))  # fmt: skip
                    if await first(lambda: skipped(running, "rejected") >= 1, wait_s=1.0):
                        break
            await writer.put("c1", Resource.ENDPOINTS, SMALL)
            await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.9.2"))
            await running.until("pods", lambda e: len(e) == 2)
            await running.until("endpoints", lambda e: len(e) == 1)
            assert skipped(running, "rejected") == 1
    assert (await latest(kafka_bootstrap, topic_prefix, BIG_KEY))[-1] is None


def random_names(obj: Any) -> Any:
    """Hostnames of random hex: the group's records compress far less."""
    for address in obj["subsets"][0]["addresses"]:
        address["hostname"] = os.urandom(24).hex()
    return obj


async def first(check: Callable[[], bool], *, wait_s: float) -> bool:
    """Whether `check` holds within `wait_s` (a bounded poll, not an assertion)."""
    try:
        await asyncio.wait_for(until(check), wait_s)
    except TimeoutError:
        return False
    return True


async def lower_limit(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, topic,
            {"cleanup.policy": "compact", "max.message.bytes": str(limit)},
        )])  # fmt: skip
    finally:
        await admin.close()


async def test_the_issues_endpoints_object_is_skipped_at_the_default_limit(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The issue's object: 1000 addresses x 60 ports, a ~10 MB group, over 4 MiB."""
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    config = settings(kafka_bootstrap, topic_prefix, POD_JOB, ENDPOINTS_JOB, group=unique("g"))
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.ENDPOINTS, endpoints("a", "big", addresses=1000, ports=60))
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.10.1"))
        async with consumer(config) as running:
            assert skipped(running, "too_large") == 1
            await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.10.2"))
            await running.until("pods", lambda e: len(e) == 2)
    assert await latest(kafka_bootstrap, topic_prefix, BIG_KEY) == []


async def test_a_group_over_the_brokers_default_message_size_is_published_and_served(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The issue's second trigger: 8 pods with ~240 KB annotations (random, so they
    compress little) behind one Endpoints object make a ~2 MB group, over the broker's
    default 1 MiB message.max.bytes even compressed, under 4 MiB: the targets topic is
    created to take it, and the sinks read it back, across a restart."""
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    config = settings(kafka_bootstrap, topic_prefix, ENDPOINTS_JOB, group=unique("g"))
    big = endpoints("a", "big", addresses=8, ports=1)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        for i, address in enumerate(big["subsets"][0]["addresses"]):
            address["targetRef"] = {"kind": "Pod", "namespace": "a", "name": f"p{i}"}
            noted = pod("a", f"p{i}", address["ip"])
            blob = base64.b64encode(os.urandom(180_000)).decode()  # 240 KB
            noted["metadata"]["annotations"] = {"blob": blob}
            await writer.put("c1", Resource.PODS, noted)
        await writer.put("c1", Resource.ENDPOINTS, big)
        for _ in range(2):  # the second start reads the group back in its full sync
            async with consumer(config) as running:
                await running.until("endpoints", lambda e: targets(e) >= 8)
                assert skipped(running, "too_large") == 0
    sizes = [len(v or b"") for v in await latest(kafka_bootstrap, topic_prefix, BIG_KEY)]
    assert len(sizes) == 1
    assert sizes[0] > 3 << 19  # 1.5 MiB
