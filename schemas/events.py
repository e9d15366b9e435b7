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
