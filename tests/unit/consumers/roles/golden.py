"""Golden cases for the role builders: raw API objects in, whole expected groups out.

A case is `tests/fixtures/k8s/<role>/<case>.json`:
`{"_comment", "object": <raw object>, "cluster": [<raw objects with kind>], "attach": {...}}`.
Its expectation is `tests/fixtures/targets/<role>/<case>.json`:
`{"_comment", "order": "exact" | "multiset", "group": null | {"source", "labels", "targets"}}`,
written by hand from docs/kubernetes-sd-contract.md (see the README there), never captured
from our output.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.roles import lookups, table
from schemas.objects import KubeObject
from schemas.targets import Group, LabelSet

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"


@dataclass(frozen=True)
class Case:
    role: str
    name: str
    obj: KubeObject
    cluster: list[KubeObject]
    attach: lookups.Attach


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def names(role: str) -> list[str]:
    return sorted(path.stem for path in (FIXTURES / "k8s" / role).glob("*.json"))


def expected_names(role: str) -> list[str]:
    return sorted(path.stem for path in (FIXTURES / "targets" / role).glob("*.json"))


def case(role: str, name: str) -> Case:
    raw = _read(FIXTURES / "k8s" / role / f"{name}.json")
    return Case(
        role,
        name,
        raw["object"],
        raw.get("cluster", []),
        lookups.Attach(**raw.get("attach", {})),
    )


def build(c: Case, *, cluster: list[KubeObject] | None = None) -> Group | None:
    lookup = lookups.MemoryLookup.from_kinds(c.cluster if cluster is None else cluster)
    return table.role(c.role).build_group(c.obj, lookup=lookup, attach=c.attach)


def _key(target: LabelSet) -> str:
    return json.dumps(target, sort_keys=True)


def as_json(group: Group | None) -> dict[str, Any] | None:
    if group is None:
        return None
    return {"source": group.source, "labels": group.labels, "targets": group.targets}


def assert_matches(actual: Group | None, role: str, name: str) -> None:
    """Whole-group comparison; targets in order, or as a multiset where the spec says so."""
    raw = _read(FIXTURES / "targets" / role / f"{name}.json")
    assert raw.get("_comment"), "every expectation cites the contract"
    expected = raw["group"]
    got = as_json(actual)
    if expected is None or got is None:
        assert got == expected
        return
    assert got["source"] == expected["source"]
    assert got["labels"] == expected["labels"]
    if raw["order"] == "multiset":
        assert Counter(map(_key, got["targets"])) == Counter(map(_key, expected["targets"]))
    else:
        assert raw["order"] == "exact"
        assert got["targets"] == expected["targets"]


def check(role: str, name: str) -> None:
    """The expected group, and no label set shared between targets or with the group."""
    group = build(case(role, name))
    assert_matches(group, role, name)
    if group is not None:
        sets = [group.labels, *group.targets]
        assert len({id(labels) for labels in sets}) == len(sets)
