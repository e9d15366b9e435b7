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
held (`abort`) and tells the listeners again. The fold may show the next round while one
is still waiting for its acks, so what each round took is kept apart, oldest first: its
acks settle it alone, a failure takes back every round not yet acked.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from consumers.sinks import kafka_targets, views
from schemas.targets import TargetGroup
from schemas.topics import TargetKey

Before = dict[TargetKey, views.Held | None]  # what the view held for each key a round fed


@dataclass
class LocalFeed:
    """`consumers.compactor.kafka_loop.Feed` for this process's sinks."""

    view: views.TargetView
    reader: kafka_targets.TargetsReader
    _changed: set[str] = field(default_factory=set)
    # What the view held for each key fed by the round being built, and by each round shown
    # and not yet acked (oldest first), to put back if a send fails: the fold may never
    # write those groups (it can go back to what the topic has).
    _open: Before = field(default_factory=dict)
    _shown: deque[Before] = field(default_factory=deque)

    def put(self, key: TargetKey, group: TargetGroup | None, value: bytes | None) -> None:
        self._open.setdefault(key, self.view.held_at(key))
        self._changed |= self.view.put(key, group, value)

    async def show(self) -> None:
        """The round is built: tell the listeners what changed now; what it changed can
        still be put back (`abort`) until its acks are in (`flush`). The next round may be
        shown before this one's acks."""
        self._shown.append(self._open)  # even an empty one: `flush` pops rounds in order
        self._open = {}
        await self._tell()

    async def flush(self) -> None:
        """The oldest round not yet acked (one shown, else the one being built) is
        acknowledged: it stays; tell the listeners what changed since `show`."""
        if self._shown:
            self._shown.popleft()
        else:
            self._open.clear()
        await self._tell()

    async def abort(self) -> None:
        """A send failed: the view holds again what it held before the oldest round not yet
        acked (rounds are put back newest first; records that did reach the topic come back
        through the reader, no longer held), and the listeners hear those jobs again."""
        for before in (self._open, *reversed(self._shown)):
            for key, held in before.items():
                self._changed |= self.view.restore(key, held)
        self._open, self._shown = {}, deque()
        await self._tell()

    async def _tell(self) -> None:
        changed, self._changed = frozenset(self._changed), set()
        await self.reader.changed(changed)
