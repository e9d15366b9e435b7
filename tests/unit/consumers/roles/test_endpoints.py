"""The endpoints role: golden groups and the pod join's bookkeeping.

The contract: docs/kubernetes-sd-contract.md §4.4.
"""

from __future__ import annotations

import pytest

from consumers.roles import endpoints, lookups
from tests.unit.consumers.roles import golden


@pytest.mark.parametrize("name", golden.names("endpoints"))
def test_golden(name: str) -> None:
    golden.check("endpoints", name)


def test_every_expectation_has_a_case() -> None:
    assert golden.expected_names("endpoints") == golden.names("endpoints")


_POD = {
    "metadata": {"name": "p", "namespace": "ns"},
    "spec": {
        "containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]
    },
    "status": {"podIP": "10.0.0.1"},
}


def _addresses(subset: dict[str, object]) -> list[str]:
    obj = {"metadata": {"name": "e", "namespace": "ns"}, "subsets": [subset]}
    lookup = lookups.MemoryLookup.from_objects(pods=[_POD])
    group = endpoints.build_group(obj, lookup=lookup, attach=lookups.NO_ATTACH)
    return [target["__address__"] for target in group.targets]


@pytest.mark.parametrize(
    ("subset", "addresses"),
    [
        # A subset without ports builds no target, so the pod never joins: no extras.
        (
            {
                "addresses": [
                    {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}}
                ]
            },
            [],
        ),
        # A not-ready address covers its port too.
        (
            {
                "notReadyAddresses": [
                    {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}}
                ],
                "ports": [{"port": 81}],
            },
            ["10.0.0.1:81", "10.0.0.1:80"],
        ),
        # A missing port is 0 (Go zero value) and matches no container port here.
        (
            {
                "addresses": [
                    {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}}
                ],
                "ports": [{}],
            },
            ["10.0.0.1:0", "10.0.0.1:80", "10.0.0.1:81"],
        ),
        # targetRef kind other than Pod never joins, even with a matching name.
        (
            {
                "addresses": [
                    {
                        "ip": "10.0.0.1",
                        "targetRef": {"kind": "Node", "name": "p", "namespace": "ns"},
                    }
                ],
                "ports": [{"port": 80}],
            },
            ["10.0.0.1:80"],
        ),
    ],
)
def test_extra_targets_follow_built_targets(
    subset: dict[str, object], addresses: list[str]
) -> None:
    """Spec §4.4: extra pod-port targets come from pods some built target resolved to."""
    assert _addresses(subset) == addresses


def test_source() -> None:
    assert endpoints.source("ns", "e") == "endpoints/ns/e"
