"""Partitions of topics Kafka denies us, paused until a deadline: the fold keeps reading
every other topic, and asks again for these once their pause is over. Pure (the caller
passes the clock), keyed by any hashable partition."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass
class Pauses(Generic[P]):
    until: dict[P, float] = field(default_factory=dict)  # partition -> monotonic deadline

    def pause(self, tps: Iterable[P], *, until: float) -> None:
        self.until.update(dict.fromkeys(tps, until))

    def due(self, now: float) -> list[P]:
        """The partitions whose pause is over, forgotten here."""
        over = [tp for tp, until in self.until.items() if until <= now]
        for tp in over:
            del self.until[tp]
        return over

    def __contains__(self, tp: object) -> bool:
        return tp in self.until

    def __iter__(self) -> Iterator[P]:
        return iter(self.until)

    def __len__(self) -> int:
        return len(self.until)
