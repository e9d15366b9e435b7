"""Catch-up reads each partition to the end offset seen at start, and no further."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from kafka_access import reading

A, B, C = (TopicPartition("t", p) for p in range(3))


class Partitions:
    """A consumer stand-in: each getmany moves every asked partition `step` offsets on
    (compaction can leave gaps, so positions may jump past the end)."""

    def __init__(self, ends: dict[TopicPartition, int], *, step: int) -> None:
        self.ends = ends
        self.positions = dict.fromkeys(ends, 0)
        self.step = step
        self.asked: list[tuple[TopicPartition, ...]] = []

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, *tps: TopicPartition, **_: Any) -> dict[TopicPartition, list[int]]:
        self.asked.append(tps)
        for tp in tps:
            self.positions[tp] += self.step
        self.ends[A] += 100  # records written after the start are not waited for
        return {tp: [self.positions[tp]] for tp in tps}


async def drain(consumer: Partitions) -> list[int]:
    return [behind async for _, behind in reading.batches_to_end(consumer, [A, B, C])]  # type: ignore[arg-type]


async def test_each_partition_is_read_to_its_end_at_start_and_empty_ones_never() -> None:
    consumer = Partitions({A: 4, B: 0, C: 2}, step=2)

    assert await drain(consumer) == [2, 1]
    assert consumer.asked == [(A, C), (A,)]


async def test_a_position_past_the_end_counts_as_caught_up() -> None:
    consumer = Partitions({A: 3, B: 1, C: 1}, step=5)

    assert await drain(consumer) == [3]


def test_clip_keeps_only_records_before_the_end_offsets() -> None:
    records = [SimpleNamespace(offset=o) for o in (3, 4, 5)]
    clipped = reading.clip({A: records, B: records}, {A: 5, B: 4})  # type: ignore[dict-item]
    assert [r.offset for r in clipped[A]] == [3, 4]
    assert [r.offset for r in clipped[B]] == [3]
