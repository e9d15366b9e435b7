"""Kafka helpers for integration tests: compacted topics and reading a topic whole."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

# Compaction that happens within seconds (docs/kafka-facts.md §1).
FAST_COMPACTION = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "100",
}


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


async def create_topic(
    bootstrap: str, name: str, *, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=configs or {"cleanup.policy": "compact"})]
        )
        errors = [e for _, e, *_ in response.topic_errors if e not in (0, 36)]
        assert not errors, response
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record a fresh reader sees from the beginning up to the end offsets now."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()  # subscribing at start fetches the topic's metadata
    try:
        known = consumer.partitions_for_topic(topic)
        assert known, f"topic {topic} does not exist"
        parts = [TopicPartition(topic, p) for p in sorted(known)]
        consumer.unsubscribe()
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        records: list[Record] = []
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(*parts, timeout_ms=500)
            records += [
                Record(r.partition, r.offset, r.key, r.value, tuple(r.headers))
                for rs in batch.values()
                for r in rs
                if r.offset < end[TopicPartition(topic, r.partition)]
            ]
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
