"""The service role: golden groups and the load-balancer IP rule.

The contract: docs/kubernetes-sd-contract.md §4.2.
"""

from __future__ import annotations

from typing import Any

import pytest

from consumers.roles import service
from tests.unit.consumers.roles import golden


@pytest.mark.parametrize("name", golden.names("service"))
def test_golden(name: str) -> None:
    golden.check("service", name)


def test_every_expectation_has_a_case() -> None:
    assert golden.expected_names("service") == golden.names("service")


@pytest.mark.parametrize(
    ("ingress", "spec_ip", "expected"),
    [
        ([{"ip": "1.1.1.1"}, {"ip": "2.2.2.2"}], "9.9.9.9", "1.1.1.1,2.2.2.2"),
        ([{"hostname": "h"}, {"ip": "1.1.1.1"}], "9.9.9.9", "1.1.1.1"),
        ([{"hostname": "h"}], "9.9.9.9", "9.9.9.9"),
        ([{"ip": ""}], None, ""),
        (None, "9.9.9.9", "9.9.9.9"),
        ([], None, ""),
    ],
)
def test_load_balancer_ip(ingress: Any, spec_ip: str | None, expected: str) -> None:
    """Spec §4.2: status IPs joined with ',' in order, else spec.loadBalancerIP."""
    spec = {} if spec_ip is None else {"loadBalancerIP": spec_ip}
    obj = {"spec": spec, "status": {"loadBalancer": {"ingress": ingress}}}
    assert service.load_balancer_ip(obj, spec) == expected


def test_source() -> None:
    assert service.source("ns", "web") == "svc/ns/web"
