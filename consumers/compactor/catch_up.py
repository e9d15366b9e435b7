"""The fold's catch-up and readiness, as data: what `kafka_loop` has read, and what that
allows (publish nothing, publish a full sync, or publish changes).

Nothing is published until every assigned partition has been read to the end offset
seen when it was assigned, every global-table topic that exists is read, and the group
has assigned partitions once (or no topic matches, so an empty fold is current). A
rebalance (partitions revoked or assigned) asks for a full sync again. Readiness
(`/readyz`) is a full sync published and none pending.

Partitions are any hashable value (aiokafka's TopicPartition in `kafka_loop`, tuples in
the tests), so this module imports no client.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass
class Progress(Generic[P]):
    """End offsets to reach and positions reached, per partition."""

    ends: dict[P, int] = field(default_factory=dict)
    positions: dict[P, int] = field(default_factory=dict)

    def behind(self) -> dict[P, int]:
        """Records still to read, per partition not yet at its end."""
        return {tp: end - self.positions.get(tp, 0) for tp, end in self.ends.items()
                if self.positions.get(tp, 0) < end}  # fmt: skip

    def drop(self, tps: Iterable[P]) -> None:
        for tp in tps:
            self.ends.pop(tp, None)
            self.positions.pop(tp, None)

    def gain(self, ends: Mapping[P, int]) -> None:
        """Partitions read again from offset 0, up to `ends`."""
        self.ends.update(ends)
        self.positions.update(dict.fromkeys(ends, 0))


class Step(enum.Enum):
    WAIT = "wait"  # not caught up: publish nothing
    FULL_SYNC = "full_sync"  # build every group, write what differs from the topic
    CHANGES = "changes"  # rebuild and write only the touched groups


@dataclass
class CatchUp(Generic[P]):
    """Where the fold's two readers are, and whether a full sync is due."""

    group: Progress[P] = field(default_factory=Progress)
    table: Progress[P] = field(default_factory=Progress)
    assigned_once: bool = False  # the group has had an assignment (or nothing to assign)
    table_complete: bool = False  # every matching global-table topic is being read
    need_sync: bool = True
    resync: bool = False  # a full sync after a failed publish: readiness is kept meanwhile
    synced: bool = False  # a publish step has completed

    def caught_up(self) -> bool:
        return (
            self.assigned_once
            and self.table_complete
            and not self.group.behind()
            and not self.table.behind()
        )

    def ready(self) -> bool:
        return self.synced and not self.need_sync

    def behind(self) -> int:
        return sum({**self.group.behind(), **self.table.behind()}.values())

    def unready_reason(self, *, refusal: str | None, kafka_problem: str | None) -> str | None:
        """Why /readyz says 503: None once ready (a refusal after that is a note on /readyz,
        not a reason: one cluster's ACL mistake must not take every replica out of its
        Service), else the refusal, a Kafka problem or what the fold waits for."""
        if self.ready():
            return None
        if refusal is not None:
            return refusal
        if kafka_problem is not None:
            return kafka_problem
        if not self.assigned_once or not self.table_complete:
            return "waiting for partition assignments"
        behind = self.behind()
        return f"catching up: {behind} records behind" if behind else "publishing first sync"

    def reassigned(self, *, lost: Iterable[P], gained: Mapping[P, int]) -> None:
        """The group's assignment changed: lost partitions are forgotten, gained ones are
        read from 0 to `gained` (their end offsets), and a full sync is due."""
        self.group.drop(lost)
        self.group.gain(gained)
        self.assigned_once = True
        self.need_sync = True

    def next_step(self) -> Step:
        """What the publisher does now; a full sync, once chosen, is no longer due."""
        if not self.caught_up():
            return Step.WAIT
        if self.need_sync or self.resync:
            self.need_sync = self.resync = False
            return Step.FULL_SYNC
        return Step.CHANGES
