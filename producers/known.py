"""What a compacted object topic already holds: `{key: resourceVersion}`.

Read once at start (and after a failed publish) so reconciliation can skip what
is already there and tombstone what vanished. The fold is pure; reading the
topic is a `KnownReader` (Kafka in `kafka_known`, a dict in tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from schemas import events
from schemas.topics import ObjectKey


class KnownReader(Protocol):
    async def load(self, topic: str, *, partitions: int) -> dict[ObjectKey, str]:
        """The topic's latest resourceVersion per live key, read to its end offsets."""
        ...


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


def fold(records: Iterable[StoredRecord]) -> tuple[dict[ObjectKey, str], int]:
    """Latest version per key, tombstones removing keys; also how many records were unusable."""
    state: dict[ObjectKey, str] = {}
    unusable = 0
    for record in records:
        if record.key is None:
            unusable += 1
            continue
        key = ObjectKey(record.key.decode(errors="replace"))
        if record.value is None:
            state.pop(key, None)
            continue
        version = version_of(record)
        if version is None:
            unusable += 1
            state[key] = ""  # held, version unknown: republished by the next reconcile
        else:
            state[key] = version
    return state, unusable
