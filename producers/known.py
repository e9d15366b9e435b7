"""What a compacted object topic already holds: `{key: resourceVersion}`.

Read once at start (and after a failed publish) so reconciliation can skip what
is already there and tombstone what vanished. The fold is pure and incremental
(`Fold.add`, one record at a time), so a reader keeps only keys and versions, never
the records' values: memory grows with the number of keys, not with value sizes.
Reading the topic is a `KnownReader` (Kafka in `kafka_known`, a dict in tests).

A topic the producer has just created holds nothing, so `FreshTopics` answers its first
read without asking Kafka: reading a topic created a moment ago cost ~0.6 s at start,
the broker answering NotLeaderForPartition to its ListOffsets until its partitions
settled (bench/README.md, session 9). Later reads (after a failed publish) ask Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from schemas import events
from schemas.topics import ObjectKey


class KnownReader(Protocol):
    async def load(self, topic: str, *, partitions: int) -> dict[ObjectKey, str]:
        """The topic's latest resourceVersion per live key, read to its end offsets."""
        ...


@dataclass
class FreshTopics:
    """A KnownReader that knows the topics created in this start are empty: the first
    read of each is `{}`, every other read is `reader`'s."""

    reader: KnownReader
    fresh: set[str] = field(default_factory=set)

    async def load(self, topic: str, *, partitions: int) -> dict[ObjectKey, str]:
        if topic in self.fresh:
            self.fresh.discard(topic)
            return {}
        return await self.reader.load(topic, partitions=partitions)


@dataclass(frozen=True)
class StoredRecord:
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def version_of(record: StoredRecord) -> str | None:
    """The record's resourceVersion: from its header, else from its value."""
    for name, value in record.headers:
        if name == events.HEADER_RESOURCE_VERSION:
            return value.decode(errors="replace")
    if record.value is None:
        return None
    try:
        version = orjson.loads(record.value).get("resource_version")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return version if isinstance(version, str) else None


@dataclass
class Fold:
    """`{key: resourceVersion}` so far; feed it records in topic order, then read `state`."""

    state: dict[ObjectKey, str] = field(default_factory=dict)
    records: int = 0
    unusable: int = 0

    def add(self, record: StoredRecord) -> None:
        """Fold one record in: the latest version per key, a tombstone removing its key."""
        self.records += 1
        if record.key is None:
            self.unusable += 1
            return
        key = ObjectKey(record.key.decode(errors="replace"))
        if record.value is None:
            self.state.pop(key, None)
            return
        version = version_of(record)
        if version is None:
            self.unusable += 1
        self.state[key] = version or ""  # unknown version: republished by the next reconcile


def fold(records: Iterable[StoredRecord]) -> tuple[dict[ObjectKey, str], int]:
    """Latest version per key, tombstones removing keys; also how many records were unusable."""
    folded = Fold()
    for record in records:
        folded.add(record)
    return folded.state, folded.unusable
