"""Pure: a full listing against what the topic already holds.

The listing is the truth; the known state is `{key: resourceVersion}` as read
from the compacted topic (or kept since). The plan publishes only what the topic
lacks and tombstones what vanished, so a restart with nothing changed writes
nothing, and a delete that happened while nobody watched is never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.topics import ObjectKey


@dataclass(frozen=True)
class Plan:
    upserts: tuple[ObjectKey, ...]  # listed keys the topic lacks, or holds at another version
    tombstones: tuple[ObjectKey, ...]  # known keys the listing no longer has, sorted
    unchanged: int  # listed keys the topic already holds at the listed version


def plan(listing: Mapping[ObjectKey, str], known: Mapping[ObjectKey, str]) -> Plan:
    """Upserts in listing order, tombstones sorted (deterministic output)."""
    upserts = tuple(key for key, version in listing.items() if known.get(key) != version)
    tombstones = tuple(sorted(key for key in known if key not in listing))
    return Plan(upserts=upserts, tombstones=tombstones, unchanged=len(listing) - len(upserts))


def apply(
    known: Mapping[ObjectKey, str], result: Plan, listing: Mapping[ObjectKey, str]
) -> dict[ObjectKey, str]:
    """The known state after publishing `result`: what the topic then holds."""
    state = dict(known)
    for key in result.tombstones:
        del state[key]
    for key in result.upserts:
        state[key] = listing[key]
    return state
