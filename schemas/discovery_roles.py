"""The six Prometheus kubernetes_sd roles as rows: what each builds from and may read.

One row per role holds every per-role fact the job config and the fold share: the
resource its groups come from, the resources it always joins, the selector roles
Prometheus allows with it, and the `attach_metadata` options it honours. From these the
job config validates selectors and attach_metadata, the fold knows which resources a
job's informers watch and which a builder reads, and the resource registry learns which
roles read each resource (`readers`). The role's code (`consumers.roles.table`) is keyed
by the same `Role`, so a new role is a member and a row here plus its builder there.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from schemas.resources import Resource


class Role(enum.StrEnum):
    NODE = "node"
    SERVICE = "service"
    POD = "pod"
    ENDPOINTS = "endpoints"
    ENDPOINTSLICE = "endpointslice"
    INGRESS = "ingress"

    @property
    def resource(self) -> Resource:
        """The resource whose objects produce this role's groups."""
        return _RESOURCE[self]  # a plain dict: asked for every event the fold applies

    @property
    def spec(self) -> RoleSpec:
        return ROLES[self]


ATTACH_FLAGS: Final = ("node", "namespace", "deployment", "job", "cronjob")
# What an attach_metadata option makes Prometheus's informers watch ...
ATTACH_WATCHES: Final[Mapping[str, Resource]] = {
    "node": Resource.NODES,
    "namespace": Resource.NAMESPACES,
    "deployment": Resource.REPLICASETS,
    "job": Resource.JOBS,
    "cronjob": Resource.JOBS,
}
# ... and what a builder then reads: `job` names the pod's owning Job without reading it.
ATTACH_READS: Final[Mapping[str, Resource]] = {
    flag: resource for flag, resource in ATTACH_WATCHES.items() if flag != "job"
}
_OWNER_CHAIN: Final = frozenset(ATTACH_FLAGS)  # roles that build pod labels honour them all


@dataclass(frozen=True, slots=True)
class RoleSpec:
    role: Role
    resource: Resource  # groups come from these objects
    joined: frozenset[Resource]  # always read, whatever attach_metadata says
    selector_roles: tuple[Role, ...]  # allowed `selectors[].role`, in Prometheus's order
    attach: frozenset[str]  # attach_metadata options it honours; others have no effect

    def watches(self, enabled: Iterable[str]) -> frozenset[Resource]:
        """Every resource Prometheus's informers watch for this role."""
        return self._with(enabled, ATTACH_WATCHES) | {self.resource}

    def reads(self, enabled: Iterable[str]) -> frozenset[Resource]:
        """The resources its builder may look up (what a dependency index must watch)."""
        return self._with(enabled, ATTACH_READS)

    def _with(self, enabled: Iterable[str], by_flag: Mapping[str, Resource]) -> frozenset[Resource]:
        flags = set(enabled) & self.attach
        return self.joined | {by_flag[f] for f in flags if f in by_flag}


_ENDPOINT_JOINS: Final = frozenset({Resource.SERVICES, Resource.PODS})
_NONE: Final = frozenset[Resource]()
_NAMESPACE_ONLY: Final = frozenset({"namespace"})
_R = Role
ROLES: Final[Mapping[Role, RoleSpec]] = MappingProxyType(
    {
        spec.role: spec
        for spec in (
            RoleSpec(_R.NODE, Resource.NODES, _NONE, (_R.NODE,), frozenset()),
            RoleSpec(_R.SERVICE, Resource.SERVICES, _NONE, (_R.SERVICE,), _NAMESPACE_ONLY),
            RoleSpec(_R.POD, Resource.PODS, _NONE, (_R.POD, _R.NODE), _OWNER_CHAIN),
            RoleSpec(
                _R.ENDPOINTS,
                Resource.ENDPOINTS,
                _ENDPOINT_JOINS,
                (_R.POD, _R.SERVICE, _R.ENDPOINTS),
                _OWNER_CHAIN,
            ),
            RoleSpec(
                _R.ENDPOINTSLICE,
                Resource.ENDPOINTSLICES,
                _ENDPOINT_JOINS,
                (_R.POD, _R.SERVICE, _R.ENDPOINTSLICE),
                _OWNER_CHAIN,
            ),
            RoleSpec(
                _R.INGRESS, Resource.INGRESSES, _NONE, (_R.INGRESS,), frozenset({"namespace"})
            ),
        )
    }
)

_RESOURCE: Final = {role: spec.resource for role, spec in ROLES.items()}


def enabled(attach: object) -> frozenset[str]:
    """The attach_metadata options set on an object with one bool attribute per flag."""
    return frozenset(flag for flag in ATTACH_FLAGS if getattr(attach, flag, False) is True)


def readers(resource: Resource) -> frozenset[Role]:
    """The roles whose groups come from, or may read, `resource` (with every option on)."""
    return frozenset(s.role for s in ROLES.values() if resource in s.watches(ATTACH_FLAGS))
