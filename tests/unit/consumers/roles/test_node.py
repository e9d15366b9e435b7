"""The node role: golden groups and the address priority table.

The contract: docs/kubernetes-sd-contract.md §4.1.
"""

from __future__ import annotations

import pytest

from consumers.roles import lookups, node
from tests.unit.consumers.roles import golden


@pytest.mark.parametrize("name", golden.names("node"))
def test_golden(name: str) -> None:
    golden.check("node", name)


def test_every_expectation_has_a_case() -> None:
    assert golden.expected_names("node") == golden.names("node")


def _node(*types: str) -> dict[str, object]:
    addresses = [{"type": kind, "address": kind.lower()} for kind in types]
    return {
        "metadata": {"name": "n"},
        "status": {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}},
    }


@pytest.mark.parametrize(
    ("types", "chosen"),
    [
        (
            ("Hostname", "LegacyHostIP", "ExternalDNS", "ExternalIP", "InternalDNS", "InternalIP"),
            "internalip",
        ),
        (("Hostname", "LegacyHostIP", "ExternalDNS", "ExternalIP", "InternalDNS"), "internaldns"),
        (("Hostname", "LegacyHostIP", "ExternalDNS", "ExternalIP"), "externalip"),
        (("Hostname", "LegacyHostIP", "ExternalDNS"), "externaldns"),
        (("Hostname", "LegacyHostIP"), "legacyhostip"),
        (("Custom", "Hostname"), "hostname"),
    ],
)
def test_address_priority(types: tuple[str, ...], chosen: str) -> None:
    """Spec §4.1/§9: the first present type in the code's order, whatever the list order."""
    group = node.build_group(_node(*types), lookup=lookups.EMPTY, attach=lookups.NO_ATTACH)
    assert group is not None
    assert group.targets[0]["__address__"] == f"{chosen}:1"


def test_attach_metadata_is_ignored() -> None:
    """Spec §2: the node role ignores attach_metadata."""
    everything = lookups.Attach(node=True, namespace=True, deployment=True, job=True, cronjob=True)
    plain = node.build_group(_node("InternalIP"), lookup=lookups.EMPTY, attach=lookups.NO_ATTACH)
    assert node.build_group(_node("InternalIP"), lookup=lookups.EMPTY, attach=everything) == plain


def test_source() -> None:
    assert node.source("node-a") == "node/node-a"
