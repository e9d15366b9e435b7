"""The offset committer: commits what moved on assigned partitions, and a failing commit
is counted, never raised (the fold goes on)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, kafka_offsets

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


class Group:
    """The two calls the committer makes on aiokafka's consumer."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail: KafkaError | None = None

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail is not None:
            raise self.fail
        self.commits.append(dict(offsets))


def committer(group: Group) -> tuple[kafka_offsets.OffsetCommitter, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = fold_metrics.create(registry)
    made = kafka_offsets.OffsetCommitter(
        group,  # type: ignore[arg-type]  # the fake has the two methods used
        interval_s=1, commits=metrics.offset_commits, failures=metrics.offset_commit_failures,
    )  # fmt: skip
    return made, registry


def test_only_moved_offsets_of_assigned_partitions_are_committed() -> None:
    group = Group({A})
    made, registry = committer(group)
    made.mark({A: 5, B: 7})  # B was revoked meanwhile
    asyncio.run(made.commit())
    asyncio.run(made.commit())  # nothing moved
    made.mark({A: 6})
    asyncio.run(made.commit())
    assert group.commits == [{A: 5}, {A: 6}]
    assert registry.get_sample_value("sdstream_fold_offset_commits_total") == 2


def test_a_failed_commit_is_counted_and_tried_again() -> None:
    group = Group({A})
    made, registry = committer(group)
    made.mark({A: 5})
    group.fail = CommitFailedError("rebalancing")
    asyncio.run(made.commit())
    asyncio.run(made.commit())
    failures: Any = registry.get_sample_value(
        "sdstream_fold_offset_commit_failures_total", {"reason": "CommitFailedError"}
    )
    assert failures == 2
    group.fail = None
    asyncio.run(made.commit())
    assert group.commits == [{A: 5}]
