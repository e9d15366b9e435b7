"""Sharing a job's targets among collectors, as the Target Allocator's default strategy.

The OpenTelemetry Target Allocator's `consistent-hashing` strategy (opentelemetry-operator
`cmd/otel-allocator/internal/allocation/consistent_hashing.go`) gives each target, by its
`__address__`, to one collector on a hash ring (buraksezer/consistent, bounded loads), so
a collector that comes or goes moves only about 1/N of the targets. sdstream gets the
same properties from rendezvous (highest random weight) hashing: a target goes to the
collector whose keyed BLAKE2b hash of its address is highest. Why not a ring library:
rendezvous needs no partition count, replication factor or load bound to tune, balances
as well as the ring's bounded loads, and moves exactly the targets that a new collector
wins (or that a removed one held), nothing else, which the tests can state exactly; its
cost is one hash per target and collector (`schemas.scrape_configs.MAX_COLLECTORS`),
paid once per group (the sinks keep each group's split by its digest). The placement is
not the allocator's: a collector moving from the allocator to sdstream gets a different
share, once. The hash is BLAKE2b (stable across processes and versions), keyed by each
collector name's own BLAKE2b, so any replica computes the same allocation.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from consumers.sinks.sd_json import fragment_entries

_SCORE_BYTES = 8


@dataclass(frozen=True, slots=True)
class Collectors:
    """The collectors a job's targets are shared among, sorted, with their hash keys."""

    names: tuple[str, ...]
    keys: tuple[bytes, ...]

    @classmethod
    def of(cls, names: Iterable[str]) -> Collectors:
        ordered = tuple(sorted(set(names)))
        return cls(ordered, tuple(hashlib.blake2b(n.encode()).digest() for n in ordered))

    def index(self, name: str) -> int | None:
        try:
            return self.names.index(name)
        except ValueError:
            return None


def owner(address: str, collectors: Collectors) -> int:
    """The index of the collector `address` goes to (needs at least one collector)."""
    data = address.encode()
    blake2b = hashlib.blake2b
    scores = [blake2b(data, digest_size=_SCORE_BYTES, key=k).digest() for k in collectors.keys]
    return scores.index(max(scores))


def allocate(addresses: Iterable[str], collectors: Collectors) -> dict[str, list[str]]:
    """Each collector's addresses (for tests and tools)."""
    shares: dict[str, list[str]] = {name: [] for name in collectors.names}
    for address in addresses:
        shares[collectors.names[owner(address, collectors)]].append(address)
    return shares


def split_fragment(fragment: bytes, collectors: Collectors) -> tuple[bytes, ...]:
    """An HTTP SD fragment (a group's entries) split into one fragment per collector,
    in `collectors.names` order, each keeping the entries' order."""
    kept: list[list[bytes]] = [[] for _ in collectors.names]
    for address, entry in fragment_entries(fragment):
        kept[owner(address, collectors)].append(entry)
    return tuple(b",".join(entries) for entries in kept)
