"""KafkaPublisher hands a page's records to Kafka as batches of its own (`send_batch`);
the topic must hold exactly what one `send` per record (the path before) writes: the
same keys, values and headers, in the same partitions, in the same order."""

from __future__ import annotations

import random

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.emit import Record
from producers.kafka_publisher import KafkaPublisher
from schemas import events
from schemas.config import KafkaSettings
from schemas.events import EventType
from schemas.topics import ObjectKey, Resource, object_key, partition_for
from tests.integration import kafka_helpers

PARTITIONS = 6
MAX_REQUEST = 60_000  # one record here is over it: skipped on both paths


def table(topic: str) -> list[Record]:
    """Keys in 12 namespaces, most written more than once, values from 10 bytes to
    70 KB (batches fill up; one is over MAX_REQUEST), a tombstone every 7th record."""
    rng = random.Random(19)
    rows: list[Record] = []
    for i in range(400):
        key = object_key(f"ns-{rng.randrange(12)}", f"pod-{rng.randrange(150)}")
        kind = EventType.DELETED if i % 7 == 3 else EventType.MODIFIED
        size = 70_000 if i == 123 else rng.choice((10, 900, 1500, 4000, 20_000))
        value = None if kind is EventType.DELETED else rng.randbytes(size)
        rows.append(record(topic, key, value, kind=kind, version=str(i)))
    return rows


def record(
    topic: str, key: ObjectKey, value: bytes | None, *, kind: EventType, version: str
) -> Record:
    return Record(
        topic=topic,
        key=key,
        value=value,
        headers=events.headers(
            event=kind, cluster="c", resource=Resource.PODS, resource_version=version
        ),
        partition=partition_for(key, PARTITIONS),
        resource=Resource.PODS,
        event=kind,
        observed_at=1.0,
        version=version,
    )


async def send_one_by_one(bootstrap: str, topic: str, records: list[Record]) -> None:
    """The reference: one `send` per record, as the publisher did before batches."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        max_request_size=MAX_REQUEST,
        max_batch_size=16_384,
    )
    await producer.start()
    try:
        for r in records:
            try:
                await producer.send(
                    topic, value=r.value, key=r.key.encode(), partition=r.partition,
                    headers=r.headers,
                )  # fmt: skip
            except MessageSizeTooLargeError:
                continue
        await producer.flush()
    finally:
        await producer.stop()


async def test_batches_write_what_one_send_per_record_writes(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    reference, batched = f"{topic_prefix}.reference", f"{topic_prefix}.batched"
    for name in (reference, batched):
        await kafka_helpers.create_topic(kafka_bootstrap, name, partitions=PARTITIONS)
    rows = table(batched)
    await send_one_by_one(kafka_bootstrap, reference, rows)
    registry = CollectorRegistry()
    publisher = KafkaPublisher(
        KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        metrics=producer_metrics.create(registry),
        max_unacked=37,  # fewer than a call hands over: batches go while it gathers
        max_request_size=MAX_REQUEST,
    )
    publisher.fit_batches(50_000)  # several batches per partition in one call
    await publisher.start()
    try:
        await publisher.publish(rows[:300])  # a page
        for r in rows[300:303]:  # watch events, one at a time
            await publisher.publish([r])
        await publisher.publish(rows[303:])
        await publisher.flush()
    finally:
        await publisher.stop()

    def written(topic: str) -> list[tuple[int, bytes | None, bytes | None, tuple[object, ...]]]:
        return [(r.partition, r.key, r.value, r.headers) for r in got[topic]]

    got = {t: await kafka_helpers.read_all(kafka_bootstrap, t) for t in (reference, batched)}
    assert len(got[reference]) == len(rows) - 1
    assert written(batched) == written(reference)
    assert publisher.failures == 0
    skipped = {"resource": "pods", "reason": "rejected"}
    assert registry.get_sample_value("sdstream_producer_skipped_objects_total", skipped) == 1
    published = sum(
        registry.get_sample_value("sdstream_producer_published_total", {"resource": "pods",
                                                                         "type": t}) or 0
        for t in ("MODIFIED", "DELETED")
    )  # fmt: skip
    assert published == len(rows) - 1
