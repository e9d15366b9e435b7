"""MemoryLookup, and the property that the lookup's object order never changes a group."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.roles import lookups, table
from schemas.topics import ObjectKey, Resource
from tests.unit.consumers.roles import golden

_POD = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
_NODE = {"kind": "Node", "metadata": {"name": "n"}}
_NS = {"kind": "Namespace", "metadata": {"name": "ns"}}
_SVC = {"kind": "Service", "metadata": {"name": "s", "namespace": "ns"}}
_RS = {"kind": "ReplicaSet", "metadata": {"name": "r", "namespace": "ns"}}
_JOB = {"kind": "Job", "metadata": {"name": "j", "namespace": "ns"}}
_OTHER = {"kind": "ConfigMap", "metadata": {"name": "p", "namespace": "ns"}}


def test_from_kinds_dispatches_on_kind() -> None:
    found = lookups.MemoryLookup.from_kinds([_POD, _NODE, _NS, _SVC, _RS, _JOB, _OTHER, {}])
    assert found.get(Resource.PODS, lookups.key("ns", "p")) is _POD
    assert found.get(Resource.NODES, ObjectKey("n")) is _NODE
    assert found.get(Resource.NAMESPACES, ObjectKey("ns")) is _NS
    assert found.get(Resource.SERVICES, lookups.key("ns", "s")) is _SVC
    assert found.get(Resource.REPLICASETS, lookups.key("ns", "r")) is _RS
    assert found.get(Resource.JOBS, lookups.key("ns", "j")) is _JOB
    assert found.objects[Resource.PODS] == {ObjectKey("ns/p"): _POD}


@pytest.mark.parametrize(
    ("namespace", "name"), [("", "p"), ("other", "p"), ("ns", "q"), ("ns", "")]
)
def test_misses(namespace: str, name: str) -> None:
    """A reference is looked up by its own namespace; "" never finds a namespaced object."""
    found = lookups.MemoryLookup.from_kinds([_POD])
    assert found.get(Resource.PODS, lookups.key(namespace, name)) is None


def test_wraps_live_dicts_without_copying() -> None:
    pods: dict[ObjectKey, dict[str, Any]] = {}
    found = lookups.MemoryLookup({Resource.PODS: pods})
    pods[ObjectKey("ns/p")] = _POD
    assert found.get(Resource.PODS, lookups.key("ns", "p")) is _POD


def test_later_duplicate_wins() -> None:
    newer = {"metadata": {"name": "p", "namespace": "ns", "uid": "2"}}
    found = lookups.MemoryLookup.from_objects(pods=[_POD, newer])
    assert found.get(Resource.PODS, lookups.key("ns", "p")) is newer


_CASES = [(role, name) for role in table.ROLES for name in golden.names(role)]
_MAPS = frozenset({"labels", "annotations", "deprecatedTopology"})


def _reordered(value: Any, rng: random.Random, *, in_map: bool = False) -> Any:
    """A deep copy with every labels/annotations/topology map in a shuffled key order."""
    if isinstance(value, list):
        return [_reordered(item, rng) for item in value]
    if not isinstance(value, dict):
        return value
    items = [(k, _reordered(v, rng, in_map=k in _MAPS)) for k, v in value.items()]
    if in_map:
        rng.shuffle(items)
    return dict(items)


@pytest.mark.parametrize(("role", "name"), _CASES)
@settings(max_examples=15, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_lookup_and_map_order_do_not_change_the_group(
    role: str, name: str, rng: random.Random
) -> None:
    """Any order of the cached objects, and of every map's keys, builds the expected group."""
    case = golden.case(role, name)
    cluster = _reordered(case.cluster, rng)
    rng.shuffle(cluster)
    shuffled = golden.Case(role, name, _reordered(case.obj, rng), cluster, case.attach)
    golden.assert_matches(golden.build(shuffled), role, name)
