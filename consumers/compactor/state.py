"""The folded state of one cluster: the latest trimmed object per key, per resource.

A record's value replaces the object; a tombstone removes it. Whether a change is
real is judged by resourceVersion, so replays and duplicate deliveries (at-least-once
across producer restarts) change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.objects import KubeObject, meta
from schemas.topics import ObjectKey, Resource, partition_for


def same(old: KubeObject | None, new: KubeObject | None) -> bool:
    if old is None or new is None:
        return old is new
    version = meta(new).get("resourceVersion")
    if version and version == meta(old).get("resourceVersion"):
        return True
    return old == new


@dataclass
class ClusterState:
    """Objects by resource and key; partitions only matter when a rebalance takes some away."""

    objects: dict[Resource, dict[ObjectKey, KubeObject]] = field(
        default_factory=lambda: {resource: {} for resource in Resource}
    )

    def get(self, resource: Resource, key: ObjectKey) -> KubeObject | None:
        return self.objects[resource].get(key)

    def apply(self, resource: Resource, key: ObjectKey, obj: KubeObject | None) -> bool:
        """Store or remove; True when the stored state really changed."""
        table = self.objects[resource]
        old = table.get(key)
        if same(old, obj):
            return False
        if obj is None:
            del table[key]
        else:
            table[key] = obj
        return True

    def put(self, resource: Resource, key: ObjectKey, obj: KubeObject | None) -> None:
        """Store or remove without comparing (bulk loads that rebuild everything after)."""
        if obj is None:
            self.objects[resource].pop(key, None)
        else:
            self.objects[resource][key] = obj

    def keys(self, resource: Resource) -> Iterable[ObjectKey]:
        return self.objects[resource].keys()

    def drop_partitions(
        self, resources: Iterable[Resource], *, partitions: set[int], count: int
    ) -> list[tuple[Resource, ObjectKey]]:
        """Forget objects of revoked partitions (namespace partitioning, as the producer's)."""
        dropped: list[tuple[Resource, ObjectKey]] = []
        for resource in resources:
            table = self.objects[resource]
            gone = [k for k in table if partition_for(k, count) in partitions]
            for key in gone:
                del table[key]
            dropped += [(resource, key) for key in gone]
        return dropped

    def size(self) -> int:
        return sum(len(table) for table in self.objects.values())
