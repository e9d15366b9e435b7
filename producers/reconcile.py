"""Pure: a listing, read page by page, against what the topic already holds.

The listing is the truth; the known state is `{key: resourceVersion}` as read
from the compacted topic (or kept since). Each page yields the keys the topic
lacks (or holds at another version) as the page arrives; once the last page is
in, `finish` names the known keys no page listed. A restart with nothing changed
writes nothing, a delete that happened while nobody watched is never lost, and a
listing abandoned midway (an error, 410 Gone) never tombstones anything, since
only `finish` does. Only the listed keys are kept, never the listed objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.topics import ObjectKey


@dataclass(frozen=True)
class Plan:
    upserts: tuple[ObjectKey, ...]  # listed keys the topic lacks, or holds at another version
    tombstones: tuple[ObjectKey, ...]  # known keys the listing no longer has, sorted
    unchanged: int  # listed keys the topic already holds at the listed version


@dataclass
class Reconciler:
    """One listing in progress: `listed(page)` per page, then `finish()` once, at the end.

    Keys are unique across the pages of one listing (a LIST is one snapshot).
    """

    known: Mapping[ObjectKey, str]  # what the topic held when the listing began
    keys: set[ObjectKey] = field(default_factory=set)  # listed so far
    upserted: int = 0
    unchanged: int = 0

    def listed(self, page: Mapping[ObjectKey, str]) -> tuple[ObjectKey, ...]:
        """The page's keys to publish, in page order."""
        upserts = tuple(key for key, version in page.items() if self.known.get(key) != version)
        self.keys.update(page)
        self.upserted += len(upserts)
        self.unchanged += len(page) - len(upserts)
        return upserts

    def finish(self) -> tuple[ObjectKey, ...]:
        """Known keys no page listed, sorted: call only after the last page."""
        return tuple(sorted(key for key in self.known if key not in self.keys))


def plan(listing: Mapping[ObjectKey, str], known: Mapping[ObjectKey, str]) -> Plan:
    """A whole listing at once: upserts in listing order, tombstones sorted."""
    reconciler = Reconciler(known)
    upserts = reconciler.listed(listing)
    return Plan(upserts=upserts, tombstones=reconciler.finish(), unchanged=reconciler.unchanged)


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
