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

The reader reads each of our writes back some time after the view holds it. A key that
changed in two rounds in a row is held at its newer group when the older record is
read: the view skips our own older writes (`TargetView.expect`), so an answer never goes
back to a group the fold has replaced.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from consumers.sinks import kafka_targets, views
from schemas.targets import TargetGroup
from schemas.topics import TargetKey

# What the view held for each key a round fed, and the mark of what the round fed last
# (`views.mark`): a take-back restores a key only while the view still holds that.
Before = dict[TargetKey, tuple[views.Held | None, bytes]]


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
    # The fold wrote before the reader saw the topic's end offsets: what it found may be
    # ours (`published`).
    _early: bool = False

    def published(self) -> bool:
        """The targets topic held records, none of them this fold's, when the reader first
        looked: a fold's last answer (a restart), which the sinks may serve once read. Every
        write is put here before it is sent, so a write not put before the reader had the
        end offsets is not among them."""
        return not self._early and bool(self.reader.found_at_start)

    def put(self, key: TargetKey, group: TargetGroup | None, value: bytes | None) -> None:
        if self.reader.found_at_start is None:
            self._early = True
        before = self._open.get(key)
        self._open[key] = (self.view.held_at(key) if before is None else before[0],
                           views.mark(value))  # fmt: skip
        self._changed |= self.view.put(key, group, value)
        self.view.expect(key, value)

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
        acked (rounds are put back newest first), and the listeners hear those jobs again.
        A key stays as it is if the reader has meanwhile read our write back (the topic has
        it) or applied a newer record (another member's): restoring would serve a group the
        topic no longer holds, until the key changes again. Our writes not read back yet
        are applied when read, like any record."""
        rounds = (self._open, *reversed(self._shown))
        unread = {key: self.view.unread(key) for before in rounds for key in before}
        for before in rounds:
            for key, (held, fed) in before.items():
                now = self.view.held_at(key)
                if (b"" if now is None else now.digest) == fed and fed in unread[key]:
                    self._changed |= self.view.restore(key, held)
        for key in unread:
            self.view.unexpect(key)
        self._open, self._shown = {}, deque()
        await self._tell()

    async def wait_read(self, timeout_s: float) -> bool:
        """Until the reader has read the targets topic to its end, at most `timeout_s`:
        whether it has (a restarted fold folds after that, `kafka_loop._sinks_first`)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.reader.wait_caught_up()
        except TimeoutError:
            return False
        return True

    async def _tell(self) -> None:
        changed, self._changed = frozenset(self._changed), set()
        await self.reader.changed(changed)
