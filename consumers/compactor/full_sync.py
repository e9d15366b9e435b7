"""The full-sync rule, as data: what a caught-up member writes so the targets topic holds
exactly the groups it owns, and who tombstones the groups nobody owns.

A member compares the groups it owns with what the topic holds for keys it owns, and
writes only what differs (a restart writes nothing for current groups). Groups of a
cluster whose namespaced topics are all gone (a deleted cluster) have no owner: the
"janitor", the member holding partition 0 of the first subscribed topic (every member,
if none is subscribed), tombstones them. Liveness is judged on every topic that exists,
not only the subscribed ones.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TypeAlias

from consumers.compactor import folds, ownership
from schemas import resources
from schemas.topics import TargetKey, parse_object_topic

NAMESPACED = resources.read(resources.FoldRead.PARTITIONED)
Write: TypeAlias = tuple[TargetKey, bytes | None]  # a record for the targets topic


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
    owned: Collection[tuple[str, int]],
) -> list[TargetKey]:  # fmt: skip
    """The published keys, owned by nobody, that this member tombstones."""
    found = ownership.orphaned(unowned, live_clusters(topics, prefix))
    return found if found and janitor(topics, group_pattern, owned) else []


def split(
    published: Mapping[TargetKey, bytes], owns: Callable[[TargetKey], bool]
) -> tuple[dict[TargetKey, bytes], set[TargetKey]]:
    """The topic's keys this member owns (with their digests), and the others."""
    held = {k: v for k, v in published.items() if owns(k)}
    return held, published.keys() - held.keys()


def writes(
    desired: Iterable[tuple[TargetKey, bytes]],
    held: Mapping[TargetKey, bytes],
    orphaned: Iterable[TargetKey],
    *,
    fingerprint: Callable[[bytes], bytes],
) -> Iterator[Write]:
    """Upserts where a desired value differs from the held digest, tombstones for held
    keys no longer desired, then tombstones for the orphans. Lazy: each desired value may
    be encoded only as it is written."""
    changed = folds.diff(desired, held, fingerprint=fingerprint)
    return itertools.chain(changed, ((k, None) for k in orphaned))
