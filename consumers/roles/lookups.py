"""How a role builder sees other objects: the join seam and Prometheus's attach_metadata.

Builders never hold caches of their own. Whatever owns the state (the compactor's
per-partition store, the render CLI's files, a test) hands them a `Lookup`; `MemoryLookup`
is the dict-backed one, cheap to build and able to wrap existing dicts without copying.
One `get(resource, key)` serves every resource, so a new resource needs no new method.

Keys follow client-go: an object is stored under `namespace/name` (`name` when it has no
namespace) and a join asks for `namespace/name` with the namespace the reference carries,
so a reference without a namespace never finds a namespaced object (as in Prometheus).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schemas import resources
from schemas.objects import KubeObject, meta
from schemas.topics import ObjectKey, Resource, object_key


class Lookup(Protocol):
    """Read access to the joined objects; None when the object is not cached (or not visible).

    One method for every resource: `get(Resource.PODS, key("ns", "p"))`. An implementation
    decides visibility: objects outside the job's watched namespaces, or excluded by its
    `service`/`pod`/`node` selectors, must return None here.
    """

    def get(self, resource: Resource, key: ObjectKey, /) -> KubeObject | None: ...


def key(namespace: str, name: str) -> ObjectKey:
    """The key a reference asks for: always `namespace/name`, so "" never finds a
    namespaced object. Cluster-scoped objects are asked for by `ObjectKey(name)`."""
    return ObjectKey(f"{namespace}/{name}")


@dataclass(frozen=True, slots=True)
class Attach:
    """Prometheus's `attach_metadata`; each flag adds joined labels where the role allows it.

    The node role ignores all flags; service and ingress honour only `namespace`.
    """

    node: bool = False
    namespace: bool = False
    deployment: bool = False
    job: bool = False
    cronjob: bool = False


NO_ATTACH = Attach()


def index(objects: Iterable[KubeObject]) -> dict[ObjectKey, KubeObject]:
    """Objects by client-go key (`namespace/name` or `name`); a later duplicate wins."""
    out: dict[ObjectKey, KubeObject] = {}
    for obj in objects:
        m = meta(obj)
        out[object_key(m.get("namespace"), m.get("name") or "")] = obj
    return out


@dataclass(frozen=True, slots=True)
class MemoryLookup:
    """A `Lookup` over plain mappings keyed by `ObjectKey`; pass live dicts to avoid copies."""

    objects: Mapping[Resource, Mapping[ObjectKey, KubeObject]] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, **by_resource: Iterable[KubeObject]) -> MemoryLookup:
        """Index lists of objects, one keyword per resource (`pods=[...]`, `nodes=[...]`)."""
        return cls({Resource(name): index(objects) for name, objects in by_resource.items()})

    @classmethod
    def from_kinds(cls, objects: Iterable[KubeObject]) -> MemoryLookup:
        """Index a mixed list by each object's `kind` (as `kubectl get -o json` items carry).

        Objects of other kinds, or without `kind`, are ignored.
        """
        kinds = resources.by_kind()
        by_resource: dict[Resource, list[KubeObject]] = {r: [] for r in kinds.values()}
        for obj in objects:
            resource = kinds.get(obj.get("kind") or "")
            if resource is not None:
                by_resource[resource].append(obj)
        return cls({r: index(found) for r, found in by_resource.items()})

    def get(self, resource: Resource, key: ObjectKey, /) -> KubeObject | None:
        found = self.objects.get(resource)
        return None if found is None else found.get(key)


EMPTY = MemoryLookup()
