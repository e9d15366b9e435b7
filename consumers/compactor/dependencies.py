"""Which groups must be rebuilt when an object changes, learnt from the builds themselves.

Every build runs through a `RecordingLookup`, which notes each object the role asked
for, found or not (a missing pod that appears later must rebuild its Endpoints). The
reverse index then answers "who read this object?" exactly, for every role and join,
without a per-role rule that could drift from what the role really reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from consumers.roles import lookups
from schemas.objects import KubeObject
from schemas.topics import ObjectKey, Resource

Dep = tuple[Resource, ObjectKey]
Owner = TypeVar("Owner", bound=Hashable)


@dataclass
class RecordingLookup:
    """A `Lookup` that remembers what was asked of it."""

    inner: lookups.Lookup
    deps: set[Dep] = field(default_factory=set)

    def get(self, resource: Resource, key: ObjectKey, /) -> KubeObject | None:
        self.deps.add((resource, key))
        return self.inner.get(resource, key)


@dataclass
class DependencyIndex(Generic[Owner]):
    """owner -> the objects its last build read, and the reverse."""

    reads: dict[Owner, frozenset[Dep]] = field(default_factory=dict)
    readers: defaultdict[Dep, set[Owner]] = field(default_factory=lambda: defaultdict(set))

    def record(self, owner: Owner, deps: set[Dep]) -> None:
        new = frozenset(deps)
        old = self.reads.get(owner, frozenset())
        if new == old:
            return
        for dep in old - new:
            self._unlink(dep, owner)
        for dep in new - old:
            self.readers[dep].add(owner)
        if new:
            self.reads[owner] = new
        else:
            self.reads.pop(owner, None)

    def forget(self, owner: Owner) -> None:
        self.record(owner, set())

    def dependents(self, dep: Dep) -> set[Owner]:
        found = self.readers.get(dep)
        return set(found) if found else set()

    def _unlink(self, dep: Dep, owner: Owner) -> None:
        found = self.readers.get(dep)
        if found is not None:
            found.discard(owner)
            if not found:
                del self.readers[dep]
