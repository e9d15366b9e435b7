"""The full-sync rule, as data: what a caught-up member writes so the targets topic holds
exactly the groups it owns, and who tombstones the groups nobody owns.

A member compares the groups it owns with what the topic holds for keys it owns, and
writes only what differs (a restart writes nothing for current groups). Groups of a
cluster whose namespaced topics are all gone (a deleted cluster) have no owner: the
"janitor", the member holding partition 0 of the first subscribed topic (every member,
if none is subscribed), tombstones them. Liveness is judged on every topic that exists,
not only the subscribed ones.

What a member could not read (topics Kafka denies it) is unknown, not absent: groups of a
denied partition (or of a cluster whose global tables are denied) are neither written nor
tombstoned, and such a cluster's groups are never orphans. The published groups stay
what they were until the topic can be read again (`kafka_loop` then syncs again).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from consumers.compactor import folds, ownership
from schemas import resources
from schemas.topics import TargetKey, parse_object_topic, parse_target_key

NAMESPACED = resources.read(resources.FoldRead.PARTITIONED)
Write: TypeAlias = tuple[TargetKey, bytes | None]  # a record for the targets topic


@dataclass(frozen=True)
class Unread:
    """What this member could not read: partition numbers of namespaced topics per
    cluster (with the clusters' partition counts), and clusters with a denied global table
    (nodes, namespaces feed every group of their cluster)."""

    partitions: ownership.Ownership = field(default_factory=ownership.Ownership)
    clusters: frozenset[str] = frozenset()

    def covers(self, key: TargetKey) -> bool:
        """Whether `key`'s group was built (or would be) from something not read."""
        return parse_target_key(key)[1] in self.clusters or self.partitions.owns(key)

    def touched_clusters(self) -> set[str]:
        return set(self.clusters) | {c for c, ps in self.partitions.assigned.items() if ps}


def live_clusters(topics: Iterable[str], prefix: str) -> set[str]:
    """Clusters that still have a namespaced object topic."""
    return {parsed[0] for topic in topics
            if (parsed := parse_object_topic(prefix, topic)) is not None
            and parsed[1] in NAMESPACED}  # fmt: skip


def janitor(topics: Iterable[str], group_pattern: str, owned: Collection[tuple[str, int]]) -> bool:
    """Whether this member tombstones orphans: it holds partition 0 of the first topic the
    group subscribes to, or no topic is subscribed. `owned` are (topic, partition) pairs
    (aiokafka's TopicPartition is one)."""
    subscribed = sorted(t for t in topics if re.match(group_pattern, t))
    return not subscribed or (subscribed[0], 0) in owned


def orphans(
    unowned: Iterable[TargetKey], *, topics: Collection[str], prefix: str, group_pattern: str,
    owned: Collection[tuple[str, int]], unread: Collection[str] = (),
) -> list[TargetKey]:  # fmt: skip
    """The published keys, owned by nobody, that this member tombstones; clusters in
    `unread` (denied to us) are not known to be gone."""
    found = ownership.orphaned(unowned, live_clusters(topics, prefix) | set(unread))
    return found if found and janitor(topics, group_pattern, owned) else []


def split(
    published: Mapping[TargetKey, bytes], owns: Callable[[TargetKey], bool],
    unread: Unread | None = None,
) -> tuple[dict[TargetKey, bytes], set[TargetKey]]:  # fmt: skip
    """The topic's keys this member owns and has read (with their digests), and the keys
    it does not own. Owned keys built from unread partitions are in neither: left alone."""
    mine = {k: v for k, v in published.items() if owns(k)}
    held = mine if unread is None else {k: v for k, v in mine.items() if not unread.covers(k)}
    return held, published.keys() - mine.keys()


def writes(
    desired: Iterable[tuple[TargetKey, bytes]],
    held: Mapping[TargetKey, bytes],
    orphaned: Iterable[TargetKey],
    *,
    fingerprint: Callable[[bytes], bytes],
    unread: Unread | None = None,
) -> Iterator[Write]:
    """Upserts where a desired value differs from the held digest, tombstones for held
    keys no longer desired, then tombstones for the orphans; nothing for keys `unread`
    covers (a group built without its denied partitions would be wrong or absent). Lazy:
    each desired value may be encoded only as it is written."""
    if unread is not None:
        desired = ((k, v) for k, v in desired if not unread.covers(k))
    changed = folds.diff(desired, held, fingerprint=fingerprint)
    return itertools.chain(changed, ((k, None) for k in orphaned))
