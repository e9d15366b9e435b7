"""Object-topic records as the fold reads them: which topics match, what a record holds.

Pure (no Kafka client): key and value bytes in, the object or a `BadRecord` out.

A record is trusted only where the producer would have put it: under the object's own
key and on the partition that key maps to. Anything else could never be superseded by
the producer's tombstone (that goes to the key's own partition), so it would serve a
stale object forever; `check_placement` rejects it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pydantic

from consumers import skips
from schemas import events
from schemas.topics import ObjectKey, Resource, object_key, partition_for


def topic_pattern(prefix: str, clusters: str, resources: Iterable[Resource]) -> str:
    kinds = "|".join(r.value for r in resources)
    return rf"^{re.escape(prefix)}\.({clusters})\.({kinds})$"


def cluster_regex(clusters: Sequence[str], pattern: str) -> str:
    return "|".join(re.escape(c) for c in clusters) if clusters else pattern


# One class for every consumer (`consumers.skips`); the fold's Kafka edge catches it here.
BadRecord = skips.BadRecord


def decode(
    key: bytes | None, value: bytes | None, cluster: str, resource: Resource
) -> tuple[ObjectKey, dict[str, Any] | None]:
    """The record's key and object (None for a tombstone); BadRecord says why not."""
    if key is None:
        raise BadRecord(skips.NO_KEY, "record without a key")
    try:
        text = ObjectKey(key.decode())
    except UnicodeDecodeError as exc:
        raise BadRecord(skips.BAD_KEY, "key is not UTF-8") from exc
    if value is None:
        return text, None
    try:
        event_cluster, event_resource, obj = events.decode_object(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(skips.INVALID_JSON, f"value is not JSON: {exc}") from exc
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = skips.UNKNOWN_SCHEMA_VERSION if where == "schema_version" else skips.INVALID_EVENT
        raise BadRecord(reason, f"{where}: {first['msg']}") from exc
    if event_cluster != cluster or event_resource is not resource:
        raise BadRecord(
            skips.TOPIC_MISMATCH, f"event for {event_cluster}/{event_resource} on this topic"
        )
    return text, obj


def check_placement(
    key: ObjectKey, obj: dict[str, Any] | None, *, partition: int, partitions: int
) -> None:
    """BadRecord unless `key` is the object's own (`namespace/name`, or `name`) and the
    record sits on the partition its key maps to among the topic's `partitions`
    (0: count unknown, not checked). Tombstones have no object: only the partition."""
    if obj is not None and (own := _own_key(obj)) != key:
        raise BadRecord(skips.KEY_MISMATCH, f"key {key!r} is not the object's ({own!r})")
    if partitions > 0 and (expected := partition_for(key, partitions)) != partition:
        raise BadRecord(skips.WRONG_PARTITION, f"key {key!r} belongs on partition {expected}")


def _own_key(obj: dict[str, Any]) -> ObjectKey | None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    namespace, name = meta.get("namespace"), meta.get("name")
    if isinstance(name, str) and (namespace is None or isinstance(namespace, str)):
        return object_key(namespace, name)
    return None
