"""A new topic is usable once every partition has a leader."""

from __future__ import annotations

from typing import Any

from consumers.compactor import kafka_targets_topic


def topic(*leaders: int, error: int = 0) -> dict[str, Any]:
    partitions = [{"error_code": 0 if leader >= 0 else 5, "partition": i, "leader": leader}
                  for i, leader in enumerate(leaders)]  # fmt: skip
    return {"error_code": error, "topic": "t", "partitions": partitions}


def test_leaders_elected_only_when_every_partition_has_one() -> None:
    assert kafka_targets_topic.leaders_elected([topic(1, 1, 1)])
    assert not kafka_targets_topic.leaders_elected([topic(1, -1, 1)])
    assert not kafka_targets_topic.leaders_elected([topic()])  # no partitions listed yet
    assert not kafka_targets_topic.leaders_elected([topic(1, error=5)])  # leader not available
