"""Role name -> how to build it: the one place a caller dispatches on a role.

Prometheus wires each role into a long `Run`; here a role is a row: the resource its
groups come from, how an object key becomes a group source (also for tombstones), the pure
builder, and which other resources its builder may read for a given `Attach` (what a
dependency index must watch to know when a group goes stale).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from consumers.roles import endpoints, endpointslice, ingress, node, pod, service
from consumers.roles import lookup as lookups
from schemas.objects import KubeObject
from schemas.targets import Group
from schemas.topics import ObjectKey, Resource, Source, split_key


class Builder(Protocol):
    """A role's `build_group`; None only for a node without a known address."""

    def __call__(
        self, obj: KubeObject, /, *, lookup: lookups.Lookup, attach: lookups.Attach
    ) -> Group | None: ...


@dataclass(frozen=True, slots=True)
class Role:
    """One row of the table."""

    name: str
    resource: Resource
    source: Callable[[ObjectKey], Source]
    build_group: Builder
    joins: Callable[[lookups.Attach], frozenset[Resource]]


def _namespaced(make: Callable[[str, str], Source]) -> Callable[[ObjectKey], Source]:
    def source(key: ObjectKey) -> Source:
        namespace, name = split_key(key)
        return make(namespace, name)

    return source


def _flagged(*pairs: tuple[bool, Resource]) -> frozenset[Resource]:
    return frozenset(resource for enabled, resource in pairs if enabled)


def _no_joins(attach: lookups.Attach) -> frozenset[Resource]:
    return frozenset()


def _namespace_joins(attach: lookups.Attach) -> frozenset[Resource]:
    return _flagged((attach.namespace, Resource.NAMESPACES))


def _pod_joins(attach: lookups.Attach) -> frozenset[Resource]:
    """Node, namespace, and the owner chain's ReplicaSets and Jobs (`job` alone reads none)."""
    return _flagged(
        (attach.node, Resource.NODES),
        (attach.namespace, Resource.NAMESPACES),
        (attach.deployment, Resource.REPLICASETS),
        (attach.cronjob, Resource.JOBS),
    )


def _endpoints_joins(attach: lookups.Attach) -> frozenset[Resource]:
    """Services and pods always, then what the joined pods read, as for the pod role."""
    return _pod_joins(attach) | {Resource.SERVICES, Resource.PODS}


ROLES: Mapping[str, Role] = MappingProxyType(
    {
        "node": Role("node", Resource.NODES, node.source, node.build_group, _no_joins),
        "service": Role(
            "service",
            Resource.SERVICES,
            _namespaced(service.source),
            service.build_group,
            _namespace_joins,
        ),
        "pod": Role("pod", Resource.PODS, _namespaced(pod.source), pod.build_group, _pod_joins),
        "endpoints": Role(
            "endpoints",
            Resource.ENDPOINTS,
            _namespaced(endpoints.source),
            endpoints.build_group,
            _endpoints_joins,
        ),
        "endpointslice": Role(
            "endpointslice",
            Resource.ENDPOINTSLICES,
            _namespaced(endpointslice.source),
            endpointslice.build_group,
            _endpoints_joins,
        ),
        "ingress": Role(
            "ingress",
            Resource.INGRESSES,
            _namespaced(ingress.source),
            ingress.build_group,
            _namespace_joins,
        ),
    }
)


def role(name: str) -> Role:
    """The row for a role name; KeyError names the six valid roles."""
    try:
        return ROLES[name]
    except KeyError:
        raise KeyError(f"unknown role {name!r}; expected one of {', '.join(ROLES)}") from None
