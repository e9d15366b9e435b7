"""Object-topic records as the fold reads them: which topics match, what a record holds.

Pure (no Kafka client): key and value bytes in, the object or a `BadRecord` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pydantic

from schemas import events
from schemas.topics import ObjectKey, Resource


def topic_pattern(prefix: str, clusters: str, resources: Iterable[Resource]) -> str:
    kinds = "|".join(r.value for r in resources)
    return rf"^{re.escape(prefix)}\.({clusters})\.({kinds})$"


def cluster_regex(clusters: Sequence[str], pattern: str) -> str:
    return "|".join(re.escape(c) for c in clusters) if clusters else pattern


class BadRecord(ValueError):
    """`reason` is the `reason` label of the skipped-records metric."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def decode(
    key: bytes | None, value: bytes | None, cluster: str, resource: Resource
) -> tuple[ObjectKey, dict[str, Any] | None]:
    """The record's key and object (None for a tombstone); BadRecord says why not."""
    if key is None:
        raise BadRecord("no_key", "record without a key")
    try:
        text = ObjectKey(key.decode())
    except UnicodeDecodeError as exc:
        raise BadRecord("key", "key is not UTF-8") from exc
    if value is None:
        return text, None
    try:
        event_cluster, event_resource, obj = events.decode_object(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord("json", f"value is not JSON: {exc}") from exc
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = "schema_version" if where == "schema_version" else "invalid"
        raise BadRecord(reason, f"{where}: {first['msg']}") from exc
    if event_cluster != cluster or event_resource is not resource:
        raise BadRecord("mismatch", f"event for {event_cluster}/{event_resource} on this topic")
    return text, obj
