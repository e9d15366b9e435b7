"""How a role builder sees other objects: the join seam and Prometheus's attach_metadata.

Builders never hold caches of their own. Whatever owns the state (the compactor's
per-partition store, the render CLI's files, a test) hands them a `Lookup`; `MemoryLookup`
is the dict-backed one, cheap to build and able to wrap existing dicts without copying.

Keys follow client-go: an object is stored under `namespace/name` (`name` when it has no
namespace) and a join asks for `namespace/name` with the namespace the reference carries,
so a reference without a namespace never finds a namespaced object (as in Prometheus).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schemas.objects import KubeObject, meta
from schemas.topics import ObjectKey, object_key


class Lookup(Protocol):
    """Read access to the joined objects; None when the object is not cached (or not visible).

    An implementation decides visibility: objects outside the job's watched namespaces, or
    excluded by its `service`/`pod`/`node` selectors, must return None here.
    """

    def pod(self, namespace: str, name: str) -> KubeObject | None: ...

    def service(self, namespace: str, name: str) -> KubeObject | None: ...

    def node(self, name: str) -> KubeObject | None: ...

    def namespace(self, name: str) -> KubeObject | None: ...

    def replicaset(self, namespace: str, name: str) -> KubeObject | None: ...

    def job(self, namespace: str, name: str) -> KubeObject | None: ...


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

_KINDS = {
    "Pod": "pods",
    "Service": "services",
    "Node": "nodes",
    "Namespace": "namespaces",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
}


def index(objects: Iterable[KubeObject]) -> dict[ObjectKey, KubeObject]:
    """Objects by client-go key (`namespace/name` or `name`); a later duplicate wins."""
    out: dict[ObjectKey, KubeObject] = {}
    for obj in objects:
        m = meta(obj)
        out[object_key(m.get("namespace"), m.get("name") or "")] = obj
    return out


def _namespaced(namespace: str, name: str) -> ObjectKey:
    return ObjectKey(f"{namespace}/{name}")


@dataclass(frozen=True, slots=True)
class MemoryLookup:
    """A `Lookup` over plain mappings keyed by `ObjectKey`; pass live dicts to avoid copies."""

    pods: Mapping[ObjectKey, KubeObject] = field(default_factory=dict)
    services: Mapping[ObjectKey, KubeObject] = field(default_factory=dict)
    nodes: Mapping[ObjectKey, KubeObject] = field(default_factory=dict)
    namespaces: Mapping[ObjectKey, KubeObject] = field(default_factory=dict)
    replicasets: Mapping[ObjectKey, KubeObject] = field(default_factory=dict)
    jobs: Mapping[ObjectKey, KubeObject] = field(default_factory=dict)

    @classmethod
    def from_objects(
        cls,
        *,
        pods: Iterable[KubeObject] = (),
        services: Iterable[KubeObject] = (),
        nodes: Iterable[KubeObject] = (),
        namespaces: Iterable[KubeObject] = (),
        replicasets: Iterable[KubeObject] = (),
        jobs: Iterable[KubeObject] = (),
    ) -> MemoryLookup:
        """Index lists of objects, one list per kind."""
        return cls(
            pods=index(pods),
            services=index(services),
            nodes=index(nodes),
            namespaces=index(namespaces),
            replicasets=index(replicasets),
            jobs=index(jobs),
        )

    @classmethod
    def from_kinds(cls, objects: Iterable[KubeObject]) -> MemoryLookup:
        """Index a mixed list by each object's `kind` (as `kubectl get -o json` items carry).

        Objects of other kinds, or without `kind`, are ignored.
        """
        by_kind: dict[str, list[KubeObject]] = {plural: [] for plural in _KINDS.values()}
        for obj in objects:
            plural = _KINDS.get(obj.get("kind") or "")
            if plural is not None:
                by_kind[plural].append(obj)
        return cls.from_objects(**by_kind)

    def pod(self, namespace: str, name: str) -> KubeObject | None:
        return self.pods.get(_namespaced(namespace, name))

    def service(self, namespace: str, name: str) -> KubeObject | None:
        return self.services.get(_namespaced(namespace, name))

    def node(self, name: str) -> KubeObject | None:
        return self.nodes.get(ObjectKey(name))

    def namespace(self, name: str) -> KubeObject | None:
        return self.namespaces.get(ObjectKey(name))

    def replicaset(self, namespace: str, name: str) -> KubeObject | None:
        return self.replicasets.get(_namespaced(namespace, name))

    def job(self, namespace: str, name: str) -> KubeObject | None:
        return self.jobs.get(_namespaced(namespace, name))


EMPTY = MemoryLookup()
