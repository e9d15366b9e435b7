"""The role table: six roles, their resources, sources for keys, and joins per attach flags.

Spec: docs/kubernetes-sd-contract.md.
"""

from __future__ import annotations

import pytest

from consumers.roles import lookups, table
from schemas.objects import meta
from schemas.topics import ObjectKey, Resource, object_key
from tests.unit.consumers.roles import golden


def test_exactly_the_six_roles() -> None:
    """Spec §2: exactly node, pod, service, endpoints, endpointslice, ingress."""
    assert set(table.ROLES) == {"node", "pod", "service", "endpoints", "endpointslice", "ingress"}
    assert all(row.name == name for name, row in table.ROLES.items())


def test_unknown_role() -> None:
    with pytest.raises(KeyError, match="unknown role 'httproute'"):
        table.role("httproute")


@pytest.mark.parametrize(
    ("role", "resource", "key", "source"),
    [
        ("node", Resource.NODES, "node-a", "node/node-a"),
        ("service", Resource.SERVICES, "ns/web", "svc/ns/web"),
        ("pod", Resource.PODS, "ns/web-1", "pod/ns/web-1"),
        ("endpoints", Resource.ENDPOINTS, "ns/web", "endpoints/ns/web"),
        ("endpointslice", Resource.ENDPOINTSLICES, "ns/web-x", "endpointslice/ns/web-x"),
        ("ingress", Resource.INGRESSES, "ns/web", "ingress/ns/web"),
    ],
)
def test_rows(role: str, resource: Resource, key: str, source: str) -> None:
    """Spec §1: the Source of each role's groups, also for a tombstone's key."""
    row = table.role(role)
    assert row.resource is resource
    assert row.source(ObjectKey(key)) == source


@pytest.mark.parametrize(("role", "name"), [(r, n) for r in table.ROLES for n in golden.names(r)])
def test_built_source_matches_the_key(role: str, name: str) -> None:
    case = golden.case(role, name)
    group = golden.build(case)
    m = meta(case.obj)
    if group is not None:
        assert group.source == table.role(role).source(object_key(m.get("namespace"), m["name"]))


_NONE = lookups.NO_ATTACH
_ALL = lookups.Attach(node=True, namespace=True, deployment=True, job=True, cronjob=True)
_ENDPOINTS_ALL = frozenset(
    {
        Resource.SERVICES,
        Resource.PODS,
        Resource.NODES,
        Resource.NAMESPACES,
        Resource.REPLICASETS,
        Resource.JOBS,
    }
)


@pytest.mark.parametrize(
    ("role", "attach", "joins"),
    [
        ("node", _ALL, frozenset()),
        ("service", _NONE, frozenset()),
        ("service", _ALL, frozenset({Resource.NAMESPACES})),
        ("ingress", _ALL, frozenset({Resource.NAMESPACES})),
        ("pod", _NONE, frozenset()),
        ("pod", lookups.Attach(job=True), frozenset()),
        (
            "pod",
            _ALL,
            frozenset({Resource.NODES, Resource.NAMESPACES, Resource.REPLICASETS, Resource.JOBS}),
        ),
        ("endpoints", _NONE, frozenset({Resource.SERVICES, Resource.PODS})),
        ("endpoints", _ALL, _ENDPOINTS_ALL),
        ("endpointslice", _NONE, frozenset({Resource.SERVICES, Resource.PODS})),
        ("endpointslice", _ALL, _ENDPOINTS_ALL),
    ],
)
def test_joins(role: str, attach: lookups.Attach, joins: frozenset[Resource]) -> None:
    """Which resources a role's builder reads (spec §2, §3, §4)."""
    assert table.role(role).joins(attach) == joins
