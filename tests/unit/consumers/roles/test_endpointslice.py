"""The endpointslice role: golden groups, the dual-stack rule, topology keys.

The contract: docs/kubernetes-sd-contract.md §4.5.
"""

from __future__ import annotations

from typing import Any

import pytest

from consumers.roles import endpointslice, lookups
from tests.unit.consumers.roles import golden


@pytest.mark.parametrize("name", golden.names("endpointslice"))
def test_golden(name: str) -> None:
    golden.check("endpointslice", name)


def test_every_expectation_has_a_case() -> None:
    assert golden.expected_names("endpointslice") == golden.names("endpointslice")


@pytest.mark.parametrize(
    ("spec", "address_type", "secondary"),
    [
        ({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"]}, "IPv6", True),
        ({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}, "IPv6", True),
        ({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"]}, "IPv4", False),
        ({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": []}, "IPv6", False),
        ({"ipFamilyPolicy": "PreferDualStack"}, "IPv6", False),
        ({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}, "IPv6", False),
        ({"ipFamilies": ["IPv4", "IPv6"]}, "IPv6", False),
        ({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4"]}, "FQDN", True),
    ],
)
def test_secondary_family(spec: dict[str, Any], address_type: str, secondary: bool) -> None:
    """Spec §4.5: dual-stack policy, non-empty families, address type not the first family."""
    assert endpointslice.secondary_family({"spec": spec}, address_type) is secondary


def test_no_service_is_never_secondary() -> None:
    assert endpointslice.secondary_family(None, "IPv6") is False


def _target(endpoint: dict[str, Any]) -> dict[str, str]:
    obj = {
        "metadata": {"name": "s", "namespace": "n"},
        "ports": [{"port": 1}],
        "endpoints": [endpoint],
    }
    group = endpointslice.build_group(obj, lookup=lookups.EMPTY, attach=lookups.NO_ATTACH)
    (target,) = group.targets
    return target


@pytest.mark.parametrize(
    "topology",
    [{"present_x": "v", "x": "w"}, {"x": "w", "present_x": "v"}],
)
def test_topology_collision_is_deterministic(topology: dict[str, str]) -> None:
    """Spec §3: `present_x` and `x` both write `topology_present_x`; Go's winner is random.

    Ours, whatever the map order: keys in sorted order, so `x` (written last) wins.
    """
    prefix = "__meta_kubernetes_endpointslice_endpoint_topology_"
    assert _target({"addresses": ["h"], "deprecatedTopology": topology}) == {
        "__address__": "h:1",
        "__meta_kubernetes_endpointslice_port": "1",
        prefix + "present_x": "true",
        prefix + "x": "w",
        prefix + "present_present_x": "true",
    }


def test_source() -> None:
    assert endpointslice.source("ns", "s") == "endpointslice/ns/s"
