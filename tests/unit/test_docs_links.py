"""Every docs/ page and section the code and tests cite exists, so the citations stay true.

- In Python files (product packages, tests, bench) and in the golden fixtures
  (`tests/fixtures/`, JSON and Markdown): `docs/<page>.md` names a page of the repository,
  `docs/<page>.md#<anchor>` one of its headings (GitHub's anchor), and a `§N` a section
  heading `§N` of the page cited last before it in the same file. In `tests/fixtures/` a
  `§N` with no page before it means the SD contract (its README says so); anywhere else it
  is a citation nobody can follow, and fails.
- In `docs/*.md`: every relative Markdown link, and its `#anchor`, resolves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CODE = ("schemas", "producers", "consumers", "sdstream", "lifecycle", "tests", "bench")
FIXTURES = ROOT / "tests" / "fixtures"
CONTRACT = "kubernetes-sd-contract.md"

CITATION = re.compile(
    r"(?<![\w/.-])docs/(?P<page>[\w.-]+\.md)(?:#(?P<anchor>[\w-]+))?|§(?P<section>\d+(?:\.\d+)*)"
)
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$", re.MULTILINE)
SECTION = re.compile(r"^§(\d+(?:\.\d+)*)\s")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
# Pages linked before they land: EXTENDING.md is written on branch resource-registry.
# Drop a name from here once its page is merged.
PENDING: frozenset[str] = frozenset()


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


@cache
def headings(page: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(anchors, § sections) of a Markdown page."""
    titles = [m["title"] for m in HEADING.finditer(page.read_text(encoding="utf-8"))]
    sections = {m[1] for t in titles if (m := SECTION.match(t))}
    return frozenset(anchor(t) for t in titles), frozenset(sections)


def citing_files() -> Iterator[Path]:
    for top in CODE:
        yield from sorted((ROOT / top).rglob("*.py"))
    for pattern in ("*.json", "*.md"):
        yield from sorted(FIXTURES.rglob(pattern))


def broken_citations(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    page = DOCS / CONTRACT if path.is_relative_to(FIXTURES) else None
    for match in CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        where = f"{path.relative_to(ROOT)}:{line}: {match[0]}"
        if match["page"]:
            page = DOCS / match["page"]
            if not page.is_file():
                yield f"{where}: no such page"
            elif match["anchor"] and match["anchor"] not in headings(page)[0]:
                yield f"{where}: no such heading"
        elif page is None:
            yield f"{where}: a section of which docs/ page?"
        elif page.is_file() and match["section"] not in headings(page)[1]:
            yield f"{where}: no section §{match['section']} in docs/{page.name}"


def test_every_cited_docs_page_and_section_exists() -> None:
    broken = [problem for path in citing_files() for problem in broken_citations(path)]
    assert broken == []


def test_citations_are_found() -> None:
    """The check above reads real citations (a regex that matched nothing would pass)."""
    cited = {m[0] for path in citing_files() for m in CITATION.finditer(path.read_text())}
    assert {"docs/kubernetes-sd-contract.md", "§4.3", "docs/kafka-facts.md"} <= cited


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_links_between_docs_resolve(page: Path) -> None:
    broken = []
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target = match["target"]
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        name, _, fragment = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        if not linked.exists():
            if not (linked.parent == DOCS and linked.name in PENDING):
                broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in headings(linked)[0]:
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_contract_numbers_its_sections() -> None:
    """Citations say §N, so the contract's section headings carry those numbers."""
    sections = headings(DOCS / CONTRACT)[1]
    assert {"1", "2", "3", "4.1", "4.6", "6", "9", "11"} <= sections
    assert "4-roles" in headings(DOCS / CONTRACT)[0]
