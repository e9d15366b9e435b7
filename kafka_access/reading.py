"""Reading assigned partitions up to where they end now: the catch-up every reader of a
compacted topic does before it can say it holds the topic's state. The one read-to-end
of both sides: the producer's known state, the fold's published digests, the sinks.

Caught up means `position(tp) >= end offset` for the end offsets seen when reading
started (the last offsets may be compacted away or be transaction markers, so the last
record's offset is never compared).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

Batch: TypeAlias = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]


async def batches_to_end(
    consumer: AIOKafkaConsumer,
    parts: Sequence[TopicPartition],
    *,
    max_records: int | None = None,
    clipped: bool = False,
) -> AsyncIterator[tuple[Batch, int]]:
    """Batches of `parts` from their positions to the end offsets seen now, each with how
    many partitions were still behind when it was asked for (for progress reports);
    `clipped`, without the records at or past those end offsets."""
    ends: dict[TopicPartition, int] = await consumer.end_offsets(list(parts))
    behind = [tp for tp in parts if await consumer.position(tp) < ends[tp]]
    while behind:
        batch = await consumer.getmany(*behind, timeout_ms=500, max_records=max_records)
        yield (clip(batch, ends) if clipped else batch), len(behind)
        behind = [tp for tp in behind if await consumer.position(tp) < ends[tp]]


def clip(batch: Batch, ends: Mapping[TopicPartition, int]) -> Batch:
    """Only the records before `ends`: for a reader that stops there and must not see
    what was written after it started (a tailing reader keeps them instead)."""
    return {tp: [r for r in records if r.offset < ends[tp]] for tp, records in batch.items()}
