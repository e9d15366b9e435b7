"""The pod role: golden groups (docs/kubernetes-sd-contract.md §4.3) and container IDs."""

from __future__ import annotations

import pytest

from consumers.roles import pod
from tests.unit.consumers.roles import golden


@pytest.mark.parametrize("name", golden.names("pod"))
def test_golden(name: str) -> None:
    golden.check("pod", name)


def test_every_expectation_has_a_case() -> None:
    assert golden.expected_names("pod") == golden.names("pod")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (None, {}),
        ([{"name": "a", "containerID": "x"}, {"name": "a", "containerID": "y"}], {"a": "x"}),
        ([{"name": "a"}], {"a": ""}),
    ],
)
def test_container_ids(statuses: list[dict[str, str]] | None, expected: dict[str, str]) -> None:
    """Spec §4.3: the same-named status entry's containerID, or ""."""
    assert pod.container_ids(statuses) == expected


def test_source() -> None:
    assert pod.source("ns", "p") == "pod/ns/p"
