"""The fold's writes, straight into the sinks of the same process (`sdstream consume`).

In one process the sinks would otherwise parse, check and render back every group the
fold just built and encoded, a second time for each: with this feed they hold each
written group as it is sent, and the targets reader, reading the same records later,
finds them held already (same digest) and skips them unparsed. The reader still reads
the whole topic: groups of other fold members, and what was published before we started,
only come from there.

Nothing else changes: the view holds what the targets topic will hold (the same records,
tombstones included), listeners hear nothing until the reader has caught up, then each
round's changed jobs, as soon as the fold has built the round (`show`), not after its
acks: the fold is the source of truth here, and waiting for the acks was the largest
wait between an event and the answer (docs/RELIABILITY.md, "served before acked"). Until
the acks are in (`flush`) the round stays revocable: a failed send puts back what the view
held (`abort`) and tells the listeners again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.sinks import kafka_targets, views
from schemas.targets import TargetGroup
from schemas.topics import TargetKey


@dataclass
class LocalFeed:
    """`consumers.compactor.kafka_loop.Feed` for this process's sinks."""

    view: views.TargetView
    reader: kafka_targets.TargetsReader
    _changed: set[str] = field(default_factory=set)
    # What the view held for each key fed since the last flush, to put back if the send
    # fails: the fold may never write those groups (it can go back to what the topic has).
    _before: dict[TargetKey, views.Held | None] = field(default_factory=dict)

    def put(self, key: TargetKey, group: TargetGroup | None, value: bytes | None) -> None:
        self._before.setdefault(key, self.view.held_at(key))
        self._changed |= self.view.put(key, group, value)

    async def show(self) -> None:
        """The round is built: tell the listeners what changed now; what it changed can
        still be put back (`abort`) until its acks are in (`flush`)."""
        changed, self._changed = frozenset(self._changed), set()
        await self.reader.changed(changed)

    async def flush(self) -> None:
        """The round's writes are acknowledged: they stay; tell the listeners what changed
        since `show`."""
        self._before.clear()
        await self.show()

    async def abort(self) -> None:
        """The round's send failed: the view holds again what it held before the round
        (records that did reach the topic come back through the reader, no longer held)."""
        for key, held in self._before.items():
            self._changed |= self.view.restore(key, held)
        await self.flush()  # what was shown is taken back: listeners hear those jobs again
