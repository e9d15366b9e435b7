"""The object event: what a producer writes for each Kubernetes change.

ADDED and MODIFIED carry the trimmed object; DELETED is a tombstone (null value)
whose headers say what it was, so compaction can remove the key for good.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.topics import Resource

SCHEMA_VERSION: Final = 1

HEADER_EVENT: Final = "sdstream-event"
HEADER_CLUSTER: Final = "sdstream-cluster"
HEADER_RESOURCE: Final = "sdstream-resource"
HEADER_SCHEMA: Final = "sdstream-schema"
HEADER_RESOURCE_VERSION: Final = "sdstream-resource-version"

Headers = list[tuple[str, bytes]]


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


class ObjectEvent(BaseModel):
    """Value of a record on `<prefix>.<cluster>.<resource>`, keyed by ObjectKey."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Annotated[int, Field(ge=1, le=SCHEMA_VERSION)] = SCHEMA_VERSION
    type: EventType
    cluster: str
    resource: Resource
    resource_version: str = Field(description="metadata.resourceVersion of the object")
    observed_at: float = Field(description="Unix time the producer saw the change")
    object: dict[str, Any] = Field(description="The object, trimmed to what discovery reads")


def encode(event: ObjectEvent) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))


def encode_change(  # an ObjectEvent's fields, all keyword-only
    *,
    type: EventType,
    cluster: str,
    resource: Resource,
    resource_version: str,
    observed_at: float,
    object: dict[str, Any],
) -> bytes:
    """The bytes `encode(ObjectEvent(...))` gives for an object of JSON values (what
    orjson parsed), without building the model: its validation and dump of the whole
    object cost more than trimming it, for every object a producer lists.

    TypeError for a value JSON cannot hold, as orjson raises it.
    """
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "type": type.value,
            "cluster": cluster,
            "resource": resource.value,
            "resource_version": resource_version,
            "observed_at": float(observed_at),
            "object": object,
        }
    )


def headers(
    *, event: EventType, cluster: str, resource: Resource, resource_version: str
) -> Headers:
    """Headers let a reader route or skip a record without parsing its value."""
    return [
        (HEADER_EVENT, event.value.encode()),
        (HEADER_CLUSTER, cluster.encode()),
        (HEADER_RESOURCE, resource.value.encode()),
        (HEADER_SCHEMA, str(SCHEMA_VERSION).encode()),
        (HEADER_RESOURCE_VERSION, resource_version.encode()),
    ]


def decode(value: bytes) -> ObjectEvent:
    """Parse a record value; raises ValueError (pydantic's or orjson's) on bad input."""
    return ObjectEvent.model_validate(orjson.loads(value))


_FIELDS: Final = frozenset(ObjectEvent.model_fields)
_RESOURCES: Final = {r.value: r for r in Resource}
_TYPES: Final = frozenset(t.value for t in EventType)


def decode_object(value: bytes) -> tuple[str, Resource, dict[str, Any]]:
    """(cluster, resource, object) of a record value, accepting exactly what `decode` does.

    The fold reads every record of every object topic at each start; building the model
    for each cost as much as parsing it. Values of the exact shape producers write are
    checked here without it; anything else goes through the model, so it is rejected
    (or coerced) with the same errors as `decode`.
    """
    raw = orjson.loads(value)
    if (
        type(raw) is dict
        and raw.keys() == _FIELDS
        and type(raw["schema_version"]) is int
        and 1 <= raw["schema_version"] <= SCHEMA_VERSION
        and type(raw["type"]) is str
        and raw["type"] in _TYPES
        and type(raw["cluster"]) is str
        and type(raw["resource"]) is str
        and raw["resource"] in _RESOURCES
        and type(raw["resource_version"]) is str
        and type(raw["observed_at"]) in (float, int)
        and type(raw["object"]) is dict
    ):
        return raw["cluster"], _RESOURCES[raw["resource"]], raw["object"]
    event = ObjectEvent.model_validate(raw)
    return event.cluster, event.resource, event.object
