"""A job's targets as the discovery page lists them: search, state filter, paging."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.discovery import rows
from schemas.targets import TargetGroup


def group(ns: str, name: str, *addresses: str) -> tuple[str, TargetGroup]:
    labels = {"__meta_kubernetes_namespace": ns, "__meta_kubernetes_pod_name": name}
    targets = [{"__address__": address} for address in addresses]
    source = f"pod/{ns}/{name}"
    built = TargetGroup(job="pods", cluster="c1", source=source, labels=labels, targets=targets)
    return f"pods/c1/{source}", built


@dataclass(frozen=True)
class Dropped:
    final: dict[str, str] | None = None
    dropped_by: int | None = 1
    error: str | None = None


def keep_shop(labels: Mapping[str, str]) -> rows.Verdict:
    """Stands in for a job whose second rule keeps namespace shop."""
    if labels["__meta_kubernetes_namespace"] != "shop":
        return Dropped()
    return rows.AsDiscovered({"__address__": labels["__address__"], "ns": "shop"})


JOB = rows.JobTargets(
    "pods",
    [group("shop", "a", "10.0.0.1:80"), group("shop", "b", "10.0.0.2:80"),
     group("web", "c", "10.0.0.3:80", "10.0.0.3:90")],
    keep_shop,
    ("action=replace", "action=keep source_labels=[__meta_kubernetes_namespace] regex=shop"),
)  # fmt: skip


def test_counts_and_rows_show_both_sides_and_the_dropping_rule() -> None:
    page = rows.select(JOB, rows.Query())
    assert (page.total, page.active, page.dropped, page.matched) == (4, 2, 2, 4)
    first, last = page.rows[0], page.rows[-1]
    assert first.discovered["__address__"] == "10.0.0.1:80"
    assert first.final == {"__address__": "10.0.0.1:80", "ns": "shop"}
    assert last.final is None
    assert last.why == (
        "dropped by relabel_configs[1]: "
        "action=keep source_labels=[__meta_kubernetes_namespace] regex=shop"
    )


def test_a_job_without_rules_serves_what_it_discovered() -> None:
    plain = rows.JobTargets("pods", JOB.groups)
    page = rows.select(plain, rows.Query())
    assert all(row.final == row.discovered for row in page.rows)
    assert page.active == page.total == 4


@pytest.mark.parametrize(
    ("text", "state", "addresses"),
    [
        ('namespace="web"', "all", ["10.0.0.3:80", "10.0.0.3:90"]),
        ("NS=", "all", ["10.0.0.1:80", "10.0.0.2:80"]),  # a final label, any case
        ("", "dropped", ["10.0.0.3:80", "10.0.0.3:90"]),
        ("", "active", ["10.0.0.1:80", "10.0.0.2:80"]),
        ('pod_name="b"', "active", ["10.0.0.2:80"]),
        ("nothing-like-it", "all", []),
        ('__address__="10.0.0.3:90"', "all", ["10.0.0.3:90"]),  # a target's own label
    ],
)
def test_search_and_state_narrow_the_rows(text: str, state: str, addresses: list[str]) -> None:
    query = rows.parse_query({"q": [text], "state": [state]})
    page = rows.select(JOB, query)
    assert [row.discovered["__address__"] for row in page.rows] == addresses
    assert page.matched == len(addresses)
    assert page.total == 4  # the counts are the job's, not the search's


@given(total=st.integers(0, 40), size=st.integers(1, 7), asked=st.integers(1, 12))
def test_paging_shows_each_target_once_and_clamps_past_the_end(
    total: int, size: int, asked: int
) -> None:
    many = rows.JobTargets("pods", [group("shop", f"p{i:02}", f"10.0.0.{i}:80")
                                    for i in range(total)])  # fmt: skip
    everything = [r.discovered["__address__"] for r in rows.rows(many)]
    pages = max(1, -(-total // size))
    seen = []
    for number in range(1, pages + 1):
        page = rows.select(many, rows.Query(page=number), page_size=size)
        assert (page.page, page.pages) == (number, pages)
        assert len(page.rows) <= size
        seen += [r.discovered["__address__"] for r in page.rows]
    assert seen == everything
    past = rows.select(many, rows.Query(page=asked), page_size=size)
    expected = rows.select(many, rows.Query(page=min(asked, pages)), page_size=size)
    assert (past.page, past.rows) == (expected.page, expected.rows)


@pytest.mark.parametrize(
    "query",
    [{"state": ["gone"]}, {"page": ["0"]}, {"page": ["x"]}, {"page": ["-1"]},
     {"q": ["x" * (rows.MAX_QUERY_CHARS + 1)]}],
)  # fmt: skip
def test_bad_queries_are_refused(query: dict[str, list[str]]) -> None:
    with pytest.raises(rows.BadQuery):
        rows.parse_query(query)


def test_an_error_verdict_says_why() -> None:
    assert rows.why(Dropped(dropped_by=None, error="no address"), ()) == "no address"
    assert rows.why(Dropped(dropped_by=7), ()) == "dropped by relabel_configs[7]: ?"
