"""docs/EXTENDING.md stays true: the paths it names exist, and every product module that
enumerates all resources (or all roles) is one the doc tells you to touch.

A module that names every `Resource` member, or every kind, is a per-resource table; one
that names every `Role` member is a per-role table. Such a table outside the lists is a
place the next resource or role would have to be added by hand and could be forgotten.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.discovery_roles import ROLES, Role
from schemas.resources import ROWS, Resource

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "EXTENDING.md").read_text()
PRODUCT = ("schemas", "producers", "consumers", "sdstream", "lifecycle")
_PATH = re.compile(r"`((?:schemas|producers|consumers|sdstream|deploy|tests|docs)/[^`<*\s]*)`")


def _section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else len(DOC)]


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _names_every(text: str, attribute: str, members: list[str], literals: list[str]) -> bool:
    named = set(re.findall(rf"\b{attribute}\.([A-Z_]+)\b", text))
    quoted = {word for word in literals if f'"{word}"' in text}
    return named >= set(members) or quoted == set(literals)


@pytest.mark.parametrize("path", sorted(set(_PATH.findall(DOC))))
def test_every_named_path_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"docs/EXTENDING.md names {path}, which does not exist"


@pytest.mark.parametrize(
    ("title", "attribute", "members", "literals"),
    [
        ("A new resource", "Resource", [r.name for r in Resource], [r.kind for r in ROWS.values()]),
        ("A new role", "Role", [r.name for r in Role], [r.value for r in ROLES]),
    ],
)
def test_every_table_of_all_members_is_listed(
    title: str, attribute: str, members: list[str], literals: list[str]
) -> None:
    listed = set(_PATH.findall(_section(title)))
    tables = {
        path
        for path, text in _sources().items()
        if _names_every(text, attribute, members, literals)
    }
    missing = sorted(tables - listed)
    assert not missing, f"per-{attribute.lower()} tables not listed in '{title}': {missing}"
