"""Target groups: what the consumer publishes and scrapers read.

`Group` is what a role builds (cheap, no validation: it is on the hot path);
`TargetGroup` is the wire model on `<prefix>.targets`, keyed `job/cluster/source`; the
sinks render both into the SD formats (`consumers.sinks.sd_json`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.events import SCHEMA_VERSION
from schemas.topics import Source

LabelSet = dict[str, str]


@dataclass(frozen=True, slots=True)
class Group:
    """One Prometheus target group: its source, shared labels, and targets.

    Each target is a label set holding `__address__`. A group with no labels and no
    targets is Prometheus's way of saying "gone".
    """

    source: Source
    labels: LabelSet = field(default_factory=dict)
    targets: list[LabelSet] = field(default_factory=list)


class TargetGroup(BaseModel):
    """Value of a record on `<prefix>.targets`; a vanished group is a tombstone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    job: str
    cluster: str
    source: str = Field(description='Prometheus source, e.g. "pod/ns/name"')
    labels: LabelSet = Field(description="Group labels, shared by every target")
    targets: list[LabelSet] = Field(description="Label sets, each with __address__")


def encode(group: TargetGroup) -> bytes:
    """The record value, keys sorted: equal groups give equal bytes, so a writer and the
    sinks can tell a changed group from a republished one without parsing either."""
    return encode_fields(
        group.job, group.cluster, group.source, group.labels, group.targets,
        schema_version=group.schema_version,
    )  # fmt: skip


def encode_fields(
    job: str, cluster: str, source: str, labels: LabelSet, targets: list[LabelSet],
    *, schema_version: int = SCHEMA_VERSION,
) -> bytes:  # fmt: skip
    """`encode` of the group with these fields, without making the model (the fold packs
    each group it builds straight from its labels)."""
    return orjson.dumps(
        {"schema_version": schema_version, "job": job, "cluster": cluster, "source": source,
         "labels": labels, "targets": targets},
        option=orjson.OPT_SORT_KEYS,
    )  # fmt: skip


def digest(value: bytes) -> bytes:
    """16 bytes standing for a record value (encoding is canonical, so for its group):
    readers that only compare groups keep this instead of the record.

    SHA-256 cut to 128 bits, as strong against collisions as the BLAKE2b-128 it replaces
    (a changed group taken for the one held by chance: 2**-128 per comparison), and ~1.8x
    faster here: CPUs with SHA extensions hash in hardware, BLAKE2b in software. A sink
    replica digests every record it takes, a one-process consumer every group it writes
    and reads back (bench/README.md, session 8 replica start). Digests are compared only
    within a process (and as ETags), so changing the function needs no migration.
    """
    return hashlib.sha256(value).digest()[:16]


def decode(value: bytes) -> TargetGroup:
    return TargetGroup.model_validate(orjson.loads(value))
