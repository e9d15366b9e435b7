"""The fold's groups as it holds them: each group's record, deflated.

A built `TargetGroup` keeps a dict of label strings per target: at 50k pods (300k
targets) the fold's groups took 464 MiB, 1622 bytes a target, the biggest thing a
one-process consumer held (bench/README.md, session 7 one-process memory). The fold
only needs a group whole to write it (its record, `targets.encode`), to feed this
process's sinks, and for the discovery page; to tell a changed group from an unchanged
one, a digest of its record does (encoding is canonical). So each group is held as its
record compressed (~4-30x), with its job, cluster and target count for gauges and page
summaries; the model is decoded again where it is needed.

Packing was half the cost of building a group (bench/README.md, session 8 one-process
CPU), so it is kept cheap: the record is encoded straight from the built labels (no model
made first), and no digest is computed: two groups are equal when their packed bytes are,
since one compressor at one level always gives the same bytes for the same record (and
different bytes for different records, which inflate differently), and groups are only
ever compared with groups this process packed. (zlib-ng would compress ~2.5x faster, but
with it a one-process consumer held ~85 MiB more once serving, unexplained: see there.)

`Groups` is a mapping of keys to groups that holds them so: reading a group decodes it,
so callers that read a few (tests, a discovery page for one job) keep working, and the
fold's own bookkeeping uses the packed form (`held`, `hold`, `drop`).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Final

import orjson

from schemas.events import SCHEMA_VERSION
from schemas.targets import LabelSet, TargetGroup, encode_fields
from schemas.topics import TargetKey

LEVEL: Final = 1  # zlib: the cheapest level; a group is packed each time it is built


@dataclass(frozen=True, slots=True)
class Packed:
    """One group: `packed` is its record (`targets.encode`) deflated; equal groups have
    equal records, so equal `Packed`s, and unequal ones unequal `packed` bytes."""

    job: str
    cluster: str
    count: int  # targets
    packed: bytes

    @classmethod
    def of(cls, group: TargetGroup) -> Packed:
        return cls.build(
            group.job, group.cluster, group.source, group.labels, group.targets,
            schema_version=group.schema_version,
        )  # fmt: skip

    @classmethod
    def build(
        cls, job: str, cluster: str, source: str, labels: LabelSet, targets: list[LabelSet],
        *, schema_version: int = SCHEMA_VERSION,
    ) -> Packed:  # fmt: skip
        """The group `TargetGroup(job=job, ...)` would be, without making that model."""
        value = encode_fields(job, cluster, source, labels, targets, schema_version=schema_version)
        return cls(
            sys.intern(job),  # one str per job and cluster, not one per group
            sys.intern(cluster),
            len(targets),
            zlib.compress(value, LEVEL),
        )

    def value(self) -> bytes:
        """The group's record value."""
        return zlib.decompress(self.packed)

    def group(self) -> TargetGroup:
        return decode(self.value())


def decode(value: bytes) -> TargetGroup:
    """A group from a record the fold encoded (`targets.encode`): not validated again."""
    return TargetGroup.model_construct(**orjson.loads(value))


@dataclass(eq=False)
class Groups(MutableMapping[TargetKey, TargetGroup]):
    """Groups by key, held packed; reading one decodes it, setting one packs it."""

    _held: dict[TargetKey, Packed] = field(default_factory=dict)

    def __getitem__(self, key: TargetKey) -> TargetGroup:
        return self._held[key].group()

    def __setitem__(self, key: TargetKey, group: TargetGroup) -> None:
        self._held[key] = Packed.of(group)

    def __delitem__(self, key: TargetKey) -> None:
        del self._held[key]

    def __iter__(self) -> Iterator[TargetKey]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, key: object) -> bool:
        return key in self._held

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Groups):
            return self._held == other._held
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dict

    def held(self, key: TargetKey) -> Packed | None:
        return self._held.get(key)

    def hold(self, key: TargetKey, packed: Packed) -> None:
        self._held[key] = packed

    def drop(self, key: TargetKey) -> Packed | None:
        return self._held.pop(key, None)

    def packed(self) -> Mapping[TargetKey, Packed]:
        """Every group as held (read-only use: a live view, not a copy)."""
        return self._held

    def copy(self) -> Groups:
        """A copy of the index (the packed groups are immutable and shared)."""
        return Groups(dict(self._held))
