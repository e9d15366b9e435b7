"""Which member of a consumer group publishes which target group.

Object topics are partitioned by namespace (`schemas.topics.partition_for`), and the
range assignor gives a member the same partition numbers of every namespaced topic of a
cluster. A group is owned by the member holding its object's partition; node groups,
built by every member from the global nodes table, are owned by the member holding the
partition their name hashes to. So each group has exactly one publisher.

A cluster whose namespaced topics were all deleted has no partitions, so no owner: its
published groups are orphans, tombstoned by one member (see `kafka_loop`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.topics import ObjectKey, TargetKey, parse_target_key, partition_for, split_key


def source_object_key(source: str) -> ObjectKey:
    """`pod/ns/name` -> `ns/name`; `node/name` -> `name`."""
    _, _, rest = source.partition("/")
    namespace, name = split_key(ObjectKey(rest))
    return ObjectKey(f"{namespace}/{name}" if namespace else name)


@dataclass
class Ownership:
    """Assigned partition numbers and partition counts, per cluster."""

    assigned: dict[str, set[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def owns(self, key: TargetKey) -> bool:
        _, cluster, source = parse_target_key(key)
        count = self.counts.get(cluster)
        if not count:
            return False
        return partition_for(source_object_key(source), count) in self.assigned.get(cluster, ())


def orphaned(keys: Iterable[TargetKey], live_clusters: set[str]) -> list[TargetKey]:
    """Keys of clusters with no namespaced topic left, sorted: nobody owns them now."""
    return sorted(key for key in keys if parse_target_key(key)[1] not in live_clusters)
