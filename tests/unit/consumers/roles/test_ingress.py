"""The ingress role: golden groups, host matching and rule paths.

The contract: docs/kubernetes-sd-contract.md §4.6.
"""

from __future__ import annotations

from typing import Any

import pytest

from consumers.roles import ingress
from tests.unit.consumers.roles import golden


@pytest.mark.parametrize("name", golden.names("ingress"))
def test_golden(name: str) -> None:
    golden.check("ingress", name)


def test_every_expectation_has_a_case() -> None:
    assert golden.expected_names("ingress") == golden.names("ingress")


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("example.com", "example.com", True),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "a.example.org", False),
        ("a.*.com", "a.b.com", False),
        ("*", "localhost", True),
        ("", "", True),
        ("*.example.com", "", False),
    ],
)
def test_matches_host(pattern: str, host: str, matches: bool) -> None:
    """Spec §4.6: equal, or first label `*`, same label count, later labels equal."""
    assert ingress.matches_host(pattern, host) is matches


@pytest.mark.parametrize(
    ("rule", "paths"),
    [
        ({}, ["/"]),
        ({"http": None}, ["/"]),
        ({"http": {}}, []),
        ({"http": {"paths": []}}, []),
        ({"http": {"paths": [{"path": ""}, {}, {"path": "/a"}]}}, ["/", "/", "/a"]),
    ],
)
def test_rule_paths(rule: dict[str, Any], paths: list[str]) -> None:
    """Spec §4.6/§6: absent http is one `/`; http without paths none; "" is `/`."""
    assert ingress.rule_paths(rule) == paths


def test_source() -> None:
    assert ingress.source("ns", "i") == "ingress/ns/i"
