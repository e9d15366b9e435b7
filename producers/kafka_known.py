"""Reads an object topic to its end offsets and folds it into `{key: resourceVersion}`.

Records are folded as each batch arrives and then dropped, so reading a topic of
large values costs one fetch's worth of memory, not the topic's size; fetches are
kept small (FETCH_BYTES) since only keys and headers are wanted. Kafka still hands
over a record larger than a fetch whole.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from kafka_access import kafka_options, reading
from kafka_access.reporting import Refusals
from lifecycle import stopping
from producers import known
from producers.emit import PublishFailed
from schemas.config import KafkaSettings
from schemas.topics import ObjectKey

logger = logging.getLogger(__name__)

FETCH_BYTES = 4 * 2**20  # per fetch; aiokafka's default is 50 MiB
PARTITION_FETCH_BYTES = 512 * 2**10  # per partition and fetch; default 1 MiB


class KafkaKnownReader:
    def __init__(self, settings: KafkaSettings, *, refusals: Refusals | None = None) -> None:
        self._settings = settings
        self._refusals = refusals or Refusals(settings, log=False)

    async def load(self, topic: str, *, partitions: int) -> dict[ObjectKey, str]:
        options = kafka_options.client_options(self._settings)
        consumer = AIOKafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        )
        try:
            await consumer.start()
            folded = await _read_to_end(consumer, topic, partitions=partitions)
        except KafkaError as exc:
            refused = await self._refusals.check(
                exc, doing=f"reading {topic}", options=options, keep=False
            )
            raise PublishFailed(refused or f"reading {topic}: {exc!r}") from exc
        finally:
            await stopping.stop("known-state consumer", consumer.stop)
        logger.info(
            "Read %d records of %s: %d live keys, %d unusable.",
            folded.records,
            topic,
            len(folded.state),
            folded.unusable,
            extra={"topic": topic, "keys": len(folded.state), "unusable": folded.unusable},
        )
        return folded.state


async def _read_to_end(consumer: AIOKafkaConsumer, topic: str, *, partitions: int) -> known.Fold:
    # The partition count comes from the caller, who checked the topic: a fresh consumer's
    # partitions_for_topic() stays None until something subscribes, and end_offsets() of
    # a partition that does not exist would wait forever.
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    folded = known.Fold()
    async for batch, _ in reading.batches_to_end(consumer, parts, clipped=True):
        for records in batch.values():
            for r in records:
                folded.add(known.StoredRecord(r.key, r.value, tuple(r.headers)))
    return folded
