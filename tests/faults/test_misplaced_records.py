"""Object records the producer would never write: under another object's key, or on a
partition other than the one their key maps to. Neither could ever be superseded by the
producer's tombstone (it goes to the key's own partition), so the fold rejects and counts
them, and folds the good records around them."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas import events
from schemas.topics import ObjectKey, Resource, object_topic, partition_for
from tests.integration import events as test_events
from tests.integration.test_consume import POD_JOB, addresses, consumer, pod, settings
from tests.naming import unique

SKIPPED = "sdstream_fold_records_skipped_total"


def event(obj: dict[str, Any]) -> bytes:
    return events.encode(events.ObjectEvent(
        type=events.EventType.MODIFIED, cluster="c1", resource=Resource.PODS,
        resource_version="1", observed_at=time.time(), object=obj,
    ))  # fmt: skip


async def put(bootstrap: str, topic: str, key: str, value: bytes, partition: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode(), partition=partition)
    finally:
        await producer.stop()


async def test_records_off_their_key_or_partition_are_skipped_and_counted(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await test_events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    n = test_events.PARTITIONS
    home = partition_for(ObjectKey("a/web-0"), n)
    stray = partition_for(ObjectKey("b/evil"), n)
    async with test_events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.5.1"))
        # another object under web-0's key, on web-0's partition: would replace it
        await put(kafka_bootstrap, topic, "a/web-0", event(pod("a", "evil", "10.66.0.1")), home)
        # its own key, on a partition the producer never writes it to
        evil = event(pod("b", "evil", "10.66.0.2"))
        await put(kafka_bootstrap, topic, "b/evil", evil, (stray + 1) % n)
        config = settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
        async with consumer(config) as running:
            found = await running.until("pods", lambda e: len(e) == 1)
            assert addresses(found) == ["10.244.5.1:8080"]
            assert running.metric(SKIPPED, reason="key_mismatch") == 1
            assert running.metric(SKIPPED, reason="wrong_partition") == 1

            await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.5.2"))
            found = await running.until("pods", lambda e: len(e) == 2)  # still folding
            assert addresses(found) == ["10.244.5.1:8080", "10.244.5.2:8080"]
