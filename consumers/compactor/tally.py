"""Two counts per group, summed per job, kept as groups change: the per-job figures
(gauges, the discovery page) without walking every group. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.topics import TargetKey


@dataclass
class Tally:
    by_key: dict[TargetKey, tuple[str, int, int]] = field(default_factory=dict)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)

    def set(self, key: TargetKey, job: str, first: int, second: int) -> None:
        """`key`'s counts now (in `job`): its last ones forgotten, these added."""
        self.forget(key)
        if first or second:
            self.by_key[key] = job, first, second
            was = self.totals.get(job, (0, 0))
            self.totals[job] = was[0] + first, was[1] + second

    def forget(self, key: TargetKey) -> None:
        old = self.by_key.pop(key, None)
        if old is not None:
            job, first, second = old
            was = self.totals[job]
            self.totals[job] = was[0] - first, was[1] - second
