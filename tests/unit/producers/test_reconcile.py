from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers import reconcile
from schemas.topics import ObjectKey

keys = st.sampled_from([ObjectKey(k) for k in ("a/x", "a/y", "b/x", "n1", "n2", "c/z")])
versions = st.sampled_from(["1", "2", "3"])
states = st.dictionaries(keys, versions)


@st.composite
def split(draw: st.DrawFn, listing: dict[ObjectKey, str]) -> list[dict[ObjectKey, str]]:
    """`listing` cut into consecutive pages (empty pages included) in any way."""
    items = list(listing.items())
    cuts = sorted(draw(st.lists(st.integers(0, len(items)), max_size=len(items) + 2)))
    bounds = [0, *cuts, len(items)]
    return [dict(items[start:end]) for start, end in itertools.pairwise(bounds)]


def by_pages(
    pages: list[dict[ObjectKey, str]], known: dict[ObjectKey, str]
) -> tuple[reconcile.Reconciler, tuple[ObjectKey, ...]]:
    reconciler = reconcile.Reconciler(known)
    upserts = tuple(key for page in pages for key in reconciler.listed(page))
    return reconciler, upserts


@given(listing=states, known=states, data=st.data())
def test_page_by_page_equals_the_whole_listing_for_any_split(
    listing: dict[ObjectKey, str], known: dict[ObjectKey, str], data: st.DataObject
) -> None:
    pages = data.draw(split(listing))
    reconciler, upserts = by_pages(pages, known)
    whole = reconcile.plan(listing, known)
    assert reconcile.Plan(upserts, reconciler.finish(), reconciler.unchanged) == whole
    assert reconciler.keys == set(listing)


@given(listing=states, known=states, data=st.data())
def test_an_aborted_listing_yields_no_tombstones(
    listing: dict[ObjectKey, str], known: dict[ObjectKey, str], data: st.DataObject
) -> None:
    """Pages read before a failure only publish what the whole listing would; `finish`,
    the only source of tombstones, is never reached, so unread keys stay untouched."""
    pages = data.draw(split(listing))
    read = data.draw(st.integers(0, len(pages) - 1))  # the LIST fails before page `read`
    _, upserts = by_pages(pages[:read], known)
    whole = reconcile.plan(listing, known)
    assert upserts == whole.upserts[: len(upserts)]
    assert all(known.get(key) != listing[key] for key in upserts)


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
