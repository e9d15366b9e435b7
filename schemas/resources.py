"""The resource registry: one row per Kubernetes resource sdstream publishes and reads.

Everything that used to be a per-resource table somewhere else is derived from `ROWS`:
the producer's API paths, trims and unfiltered set, the fold's partitioned and global
topic sets, the kinds `render` and test lookups dispatch on, the selectable fields, and
the producer's ClusterRole. Which roles read a resource is derived from the role rows
(`schemas.discovery_roles.readers`). It lives in `schemas` because producers and
consumers both read it and may not import each other. `tests/unit/test_registry.py`
checks that every consumer of the registry covers every row, so a new row that one of
them misses fails there rather than in a silent, never-read topic.

Adding a resource: a `Resource` member and its row here, its trim in `schemas.trims`
(and field set in `schemas.field_sets` if the server has selectable fields for it), and
the role code that reads it (see docs/EXTENDING.md).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from schemas import field_sets, trims
from schemas.field_sets import FieldSet
from schemas.trims import Spec


class Resource(enum.StrEnum):
    """The Kubernetes resources a producer publishes, by their plural API name."""

    PODS = "pods"
    SERVICES = "services"
    ENDPOINTS = "endpoints"
    ENDPOINTSLICES = "endpointslices"
    INGRESSES = "ingresses"
    NODES = "nodes"
    NAMESPACES = "namespaces"
    REPLICASETS = "replicasets"
    JOBS = "jobs"
    SERVICEMONITORS = "servicemonitors"
    PODMONITORS = "podmonitors"

    @property
    def cluster_scoped(self) -> bool:
        return self in _CLUSTER_SCOPED  # a set: asked for every object the fold sees


class Scope(enum.Enum):
    NAMESPACED = "namespaced"  # keyed "namespace/name", partitioned by namespace
    CLUSTER = "cluster"  # keyed "name"


class FoldRead(enum.Enum):
    """How each fold member reads the resource's topics."""

    PARTITIONED = "partitioned"  # in the consumer group: a member gets some namespaces
    GLOBAL = "global"  # whole, by every member, like a global table (joins cross namespaces)


READ_VERBS: Final = ("get", "list", "watch")


@dataclass(frozen=True, slots=True)
class Row:
    """One resource: where the API serves it, what a topic keeps of it, how it is read."""

    resource: Resource
    kind: str  # the object's `kind`, as `kubectl get -o json` items carry it
    api: str  # API prefix: "/api/v1" or "/apis/<group>/<version>"
    scope: Scope
    fold: FoldRead
    trim: Spec  # what the producer keeps besides metadata (schemas.trims)
    fields: FieldSet | None  # selectable fields (schemas.field_sets); None: no field selectors
    filtered: bool = True  # False: Prometheus never filters it, so producer selectors skip it
    verbs: tuple[str, ...] = READ_VERBS  # RBAC verbs the producer needs
    optional: bool = False  # a CRD: the API server may not serve it (yet); 404 is no error

    @property
    def api_group(self) -> str:
        """The RBAC API group: "" for the core group."""
        return self.api.removeprefix("/apis/").removeprefix("/api").split("/")[0]


_NS, _CLUSTER = Scope.NAMESPACED, Scope.CLUSTER
_PART, _GLOBAL = FoldRead.PARTITIONED, FoldRead.GLOBAL
_CORE = "/api/v1"
_MONITORING = "/apis/monitoring.coreos.com/v1"
R = Resource
# fmt: off
ROWS: Final[Mapping[Resource, Row]] = MappingProxyType({row.resource: row for row in (
    Row(R.PODS, "Pod", _CORE, _NS, _PART, trims.POD, field_sets.POD),
    Row(R.SERVICES, "Service", _CORE, _NS, _PART, trims.SERVICE, field_sets.SERVICE),
    Row(R.ENDPOINTS, "Endpoints", _CORE, _NS, _PART, trims.ENDPOINTS, field_sets.NAMESPACED),
    Row(R.ENDPOINTSLICES, "EndpointSlice", "/apis/discovery.k8s.io/v1", _NS, _PART,
        trims.ENDPOINTSLICE, field_sets.NAMESPACED),
    Row(R.INGRESSES, "Ingress", "/apis/networking.k8s.io/v1", _NS, _PART,
        trims.INGRESS, field_sets.NAMESPACED),
    Row(R.NODES, "Node", _CORE, _CLUSTER, _GLOBAL, trims.NODE, field_sets.NODE),
    Row(R.NAMESPACES, "Namespace", _CORE, _CLUSTER, _GLOBAL, trims.NOTHING, field_sets.NAMESPACE,
        filtered=False),
    Row(R.REPLICASETS, "ReplicaSet", "/apis/apps/v1", _NS, _PART, trims.NOTHING, None,
        filtered=False),
    Row(R.JOBS, "Job", "/apis/batch/v1", _NS, _PART, trims.NOTHING, None, filtered=False),
    # Read whole by every fold member: a monitor selects objects in other namespaces.
    Row(R.SERVICEMONITORS, "ServiceMonitor", _MONITORING, _NS, _GLOBAL, trims.SERVICEMONITOR,
        field_sets.NAMESPACED, filtered=False, optional=True),
    Row(R.PODMONITORS, "PodMonitor", _MONITORING, _NS, _GLOBAL, trims.PODMONITOR,
        field_sets.NAMESPACED, filtered=False, optional=True),
)})
# fmt: on
del R
_CLUSTER_SCOPED: Final = frozenset(r for r, row in ROWS.items() if row.scope is Scope.CLUSTER)


MONITORS: Final = (Resource.SERVICEMONITORS, Resource.PODMONITORS)  # read by no role


def row(resource: Resource) -> Row:
    return ROWS[resource]


def by_kind() -> dict[str, Resource]:
    """`kind` -> resource, for objects that say what they are (`kubectl get -o json`)."""
    return {r.kind: r.resource for r in ROWS.values()}


def read(fold: FoldRead) -> tuple[Resource, ...]:
    """The resources the fold reads this way, in registry order."""
    return tuple(r.resource for r in ROWS.values() if r.fold is fold)


def rbac_rules() -> list[dict[str, list[str]]]:
    """The producer's ClusterRole rules: one per API group and verb set, in registry order."""
    rules: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for r in ROWS.values():
        rules.setdefault((r.api_group, r.verbs), []).append(r.resource.value)
    return [
        {"apiGroups": [group], "resources": resources, "verbs": list(verbs)}
        for (group, verbs), resources in rules.items()
    ]
