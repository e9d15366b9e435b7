"""A byte-budgeted LRU of HTTP SD answers, grouped by job.

What a request selects (`?cluster=`, `shards=`/`shard=`) is the caller's choice, so a
count limit alone lets a client pin a budget's worth of answers per distinct query; each
entry here carries its cost in bytes (what it holds beyond the view: a sharded body, the
list of fragment references of a filtered one) and the least recently used entries go
first once the budget is spent. An answer larger than the whole budget is not kept.

Entries are dropped per job when the job changes (`drop_job`), in time proportional to
that job's entries, not to the whole cache, except `lasting` ones: values that stay true
whatever the job holds (an inflated body with the segments it came from, reused piece by
piece for the next one), which leave only by eviction or replacement. Pure data
structure: the owner turns `size`/`evictions` into metrics.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

V = TypeVar("V")
Key = tuple[str, Hashable]  # (job, what else selects the answer)
ENTRY_OVERHEAD = 256  # bytes of key, tuple and dict slots an entry costs besides its value


@dataclass
class AnswerCache(Generic[V]):
    budget: int
    size: int = 0  # bytes held, overheads included
    evictions: int = 0  # entries dropped (or refused) to stay within the budget
    _entries: OrderedDict[Key, tuple[V, int]] = field(default_factory=OrderedDict)
    _by_job: dict[str, set[Key]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def peek(self, key: Key) -> V | None:
        """`get` without making the entry the most recently used."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def put(self, key: Key, value: V, cost: int, *, lasting: bool = False) -> bool:
        """Keep `value` (replacing an entry of `key`); False if it alone exceeds the budget.
        A `lasting` entry is not dropped by `drop_job`."""
        self._drop(key)
        cost += ENTRY_OVERHEAD
        if cost > self.budget:
            self.evictions += 1
            return False
        while self.size + cost > self.budget:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evictions += 1
        self._entries[key] = (value, cost)
        if not lasting:
            self._by_job.setdefault(key[0], set()).add(key)
        self.size += cost
        return True

    def drop_job(self, job: str) -> None:
        for key in self._by_job.pop(job, set()):
            self._drop(key)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.size -= entry[1]
        keys = self._by_job.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_job[key[0]]
