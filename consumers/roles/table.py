"""Role -> how to build it: the one place a caller dispatches on a role.

Prometheus wires each role into a long `Run`; here a role is a row of code keyed by the
same `Role` the job config holds: how an object key becomes a group source (also for
tombstones) and the pure builder. What it builds from and which other resources its
builder may read for a given `Attach` (what a dependency index must watch to know when a
group goes stale) come from the role's contract row, `schemas.discovery_roles`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from consumers.roles import endpoints, endpointslice, ingress, lookups, node, pod, service
from schemas import discovery_roles
from schemas.discovery_roles import Role
from schemas.objects import KubeObject
from schemas.targets import Group
from schemas.topics import ObjectKey, Resource, Source, split_key


class Builder(Protocol):
    """A role's `build_group`; None only for a node without a known address."""

    def __call__(
        self, obj: KubeObject, /, *, lookup: lookups.Lookup, attach: lookups.Attach
    ) -> Group | None: ...


@dataclass(frozen=True, slots=True)
class RoleCode:
    """One row of the table: a role's code, beside its contract row (`role.spec`)."""

    role: Role
    source: Callable[[ObjectKey], Source]
    build_group: Builder

    @property
    def name(self) -> str:
        return self.role.value

    @property
    def resource(self) -> Resource:
        return self.role.resource

    def joins(self, attach: lookups.Attach) -> frozenset[Resource]:
        """Which other resources the builder may read with these attach flags."""
        return self.role.spec.reads(discovery_roles.enabled(attach))


def _namespaced(make: Callable[[str, str], Source]) -> Callable[[ObjectKey], Source]:
    def source(key: ObjectKey) -> Source:
        namespace, name = split_key(key)
        return make(namespace, name)

    return source


# Keyed by the `Role` enum, a `str`: `ROLES["pod"]` finds the pod row too.
ROLES: Mapping[Role, RoleCode] = MappingProxyType(
    {
        Role.NODE: RoleCode(Role.NODE, node.source, node.build_group),
        Role.SERVICE: RoleCode(Role.SERVICE, _namespaced(service.source), service.build_group),
        Role.POD: RoleCode(Role.POD, _namespaced(pod.source), pod.build_group),
        Role.ENDPOINTS: RoleCode(
            Role.ENDPOINTS, _namespaced(endpoints.source), endpoints.build_group
        ),
        Role.ENDPOINTSLICE: RoleCode(
            Role.ENDPOINTSLICE, _namespaced(endpointslice.source), endpointslice.build_group
        ),
        Role.INGRESS: RoleCode(Role.INGRESS, _namespaced(ingress.source), ingress.build_group),
    }
)


def role(name: str) -> RoleCode:
    """The row for a role (a `Role` or its name); KeyError names the six valid roles."""
    try:
        return ROLES[name]  # type: ignore[index]  # a StrEnum key hashes as its str
    except KeyError:
        raise KeyError(f"unknown role {name!r}; expected one of {', '.join(ROLES)}") from None
