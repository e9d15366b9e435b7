"""Reading what an object topic holds at start: big values must not be kept (issue 13, case 7).

The producer reads its topics to their end at start and after each publish failure, to
know `{key: resourceVersion}`. It folds records as they arrive; this reads a real topic
of large values, tombstones, repeated keys and a header-less record, and checks the fold.
Memory itself is measured in bench/known_memory.py, never asserted here.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from producers.kafka_known import KafkaKnownReader
from schemas import events
from schemas.config import KafkaSettings
from schemas.topics import ObjectKey, partition_for
from tests.integration import kafka_helpers

PARTITIONS = 3
KEYS = 40
VALUE = b"x" * 200_000  # 40 keys x 3 versions x 200 KB: a 24 MB topic


async def write(bootstrap: str, topic: str) -> dict[ObjectKey, str]:
    """Three versions per key, every fifth key tombstoned last; the expected fold."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_048_576)
    await producer.start()
    expected: dict[ObjectKey, str] = {}
    try:
        sends = []
        for version in range(3):
            for i in range(KEYS):
                key = ObjectKey(f"ns{i % 4}/pod-{i}")
                rv = str(1000 * version + i)
                headers = [(events.HEADER_RESOURCE_VERSION, rv.encode())]
                part = partition_for(key, PARTITIONS)
                sends.append(await producer.send(topic, VALUE, key.encode(), part, None, headers))
                expected[key] = rv
        for i in range(0, KEYS, 5):
            key = ObjectKey(f"ns{i % 4}/pod-{i}")
            part = partition_for(key, PARTITIONS)
            sends.append(await producer.send(topic, None, key.encode(), part))
            del expected[key]
        no_header = ObjectKey("ns0/old")  # a record from before the version header
        value = b'{"resource_version": "77", "pad": "' + VALUE + b'"}'
        part = partition_for(no_header, PARTITIONS)
        sends.append(await producer.send(topic, value, no_header.encode(), part))
        expected[no_header] = "77"
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return expected


async def test_a_topic_of_big_values_folds_to_keys_and_versions(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.c1.pods"
    await kafka_helpers.create_topic(kafka_bootstrap, topic, partitions=PARTITIONS)
    expected = await write(kafka_bootstrap, topic)

    reader = KafkaKnownReader(KafkaSettings(bootstrap=kafka_bootstrap))
    async with asyncio.timeout(60):
        state = await reader.load(topic, partitions=PARTITIONS)

    assert state == expected
