from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers import reconcile
from schemas.topics import ObjectKey

keys = st.sampled_from([ObjectKey(k) for k in ("a/x", "a/y", "b/x", "n1", "n2", "c/z")])
versions = st.sampled_from(["1", "2", "3"])
states = st.dictionaries(keys, versions)


@given(listing=states, known=states)
def test_applying_the_plan_yields_the_listing(
    listing: dict[ObjectKey, str], known: dict[ObjectKey, str]
) -> None:
    result = reconcile.plan(listing, known)
    assert reconcile.apply(known, result, listing) == listing


@given(listing=states, known=states)
def test_the_plan_is_minimal(listing: dict[ObjectKey, str], known: dict[ObjectKey, str]) -> None:
    result = reconcile.plan(listing, known)
    assert all(known.get(k) != listing[k] for k in result.upserts)
    assert all(k not in listing for k in result.tombstones)
    assert result.unchanged + len(result.upserts) == len(listing)


@given(listing=states)
def test_nothing_changed_writes_nothing(listing: dict[ObjectKey, str]) -> None:
    result = reconcile.plan(listing, dict(listing))
    assert result == reconcile.Plan(upserts=(), tombstones=(), unchanged=len(listing))


@pytest.mark.parametrize(
    ("listing", "known", "upserts", "tombstones"),
    [
        ({}, {}, (), ()),
        ({"a/x": "1"}, {}, ("a/x",), ()),
        ({}, {"a/x": "1"}, (), ("a/x",)),
        ({"a/x": "2"}, {"a/x": "1"}, ("a/x",), ()),
        ({"a/y": "1", "a/x": "1"}, {"b/z": "1", "a/a": "3"}, ("a/y", "a/x"), ("a/a", "b/z")),
    ],
)
def test_table(
    listing: dict[ObjectKey, str],
    known: dict[ObjectKey, str],
    upserts: tuple[str, ...],
    tombstones: tuple[str, ...],
) -> None:
    result = reconcile.plan(listing, known)
    assert (result.upserts, result.tombstones) == (upserts, tombstones)
