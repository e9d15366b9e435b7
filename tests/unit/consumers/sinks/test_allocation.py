"""Sharing targets among collectors (`consumers.sinks.allocation`): a partition of the
targets, and a collector added or removed moves only the targets it wins or held."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.sinks import allocation, sd_json
from tests.unit.consumers.sinks.builders import group

names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
collector_sets = st.lists(names, min_size=1, max_size=12, unique=True)
addresses = st.lists(
    st.builds("10.{}.{}.{}:{}".format, st.integers(0, 255), st.integers(0, 255),
              st.integers(0, 255), st.integers(1, 65535)),
    unique=True, max_size=200,
)  # fmt: skip


def fleet(n: int) -> list[str]:
    return [f"collector-{i}" for i in range(n)]


MANY = [f"10.{i // 250}.{i % 250}.7:8080" for i in range(6000)]


@given(collectors=collector_sets, targets=addresses)
def test_the_shares_are_a_partition_of_the_targets(
    collectors: list[str], targets: list[str]
) -> None:
    shares = allocation.allocate(targets, allocation.Collectors.of(collectors))
    assert set(shares) == set(collectors)
    every = [t for share in shares.values() for t in share]
    assert sorted(every) == sorted(targets)  # each target in exactly one share


@given(collectors=collector_sets, new=names, targets=addresses)
def test_a_collector_added_takes_targets_from_others_and_moves_nothing_else(
    collectors: list[str], new: str, targets: list[str]
) -> None:
    before = allocation.Collectors.of(collectors)
    after = allocation.Collectors.of([*collectors, new])
    for target in targets:
        was = before.names[allocation.owner(target, before)]
        now = after.names[allocation.owner(target, after)]
        assert now in (was, new)  # removing `new` again gives back exactly `before`


@given(collectors=collector_sets, order=st.randoms(use_true_random=False))
@settings(max_examples=30)
def test_the_allocation_depends_on_the_names_not_their_order(
    collectors: list[str], order: random.Random
) -> None:
    shuffled = list(collectors)
    order.shuffle(shuffled)
    a, b = allocation.Collectors.of(collectors), allocation.Collectors.of(shuffled)
    assert allocation.allocate(MANY[:300], a) == allocation.allocate(MANY[:300], b)


def test_adding_a_collector_to_n_moves_about_one_in_n_plus_one() -> None:
    for n in (1, 2, 4, 9):
        before = allocation.Collectors.of(fleet(n))
        after = allocation.Collectors.of(fleet(n + 1))
        moved = sum(
            before.names[allocation.owner(t, before)] != after.names[allocation.owner(t, after)]
            for t in MANY
        )
        expected = len(MANY) / (n + 1)
        assert 0.85 * expected < moved < 1.15 * expected, (n, moved, expected)


def test_shares_are_balanced() -> None:
    shares = allocation.allocate(MANY, allocation.Collectors.of(fleet(5)))
    sizes = sorted(len(s) for s in shares.values())
    assert sizes[0] > 0.85 * len(MANY) / 5
    assert sizes[-1] < 1.15 * len(MANY) / 5


def test_a_fragment_splits_into_the_collectors_entries_keeping_their_order() -> None:
    g = group("j", "c", "p", *MANY[:40])
    fragment = sd_json.http_sd_fragment(g)
    collectors = allocation.Collectors.of(fleet(3))
    split = allocation.split_fragment(fragment, collectors)
    entries = sd_json.fragment_entries(fragment)
    for i, part in enumerate(split):
        mine = [e for a, e in entries if allocation.owner(a, collectors) == i]
        assert part == b",".join(mine)
    shared = [e for part in split if part for e in sd_json.fragment_entries(part)]
    assert sorted(shared) == sorted(entries)
