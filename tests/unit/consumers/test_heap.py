"""Bulk steps run without cyclic collections and leave the collector as they found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from consumers import heap


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_a_paused_step_runs_without_collections_and_enables_them_after() -> None:
    gc.enable()
    with heap.paused():
        inside = gc.isenabled()

    assert (inside, gc.isenabled()) == (False, True)


def test_a_paused_step_that_fails_still_enables_collections() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), heap.paused():
        raise RuntimeError("build failed")

    assert gc.isenabled()


def test_a_paused_step_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with heap.paused():
        pass

    assert not gc.isenabled()


def test_what_a_paused_step_made_is_frozen_after_it() -> None:
    before = gc.get_freeze_count()
    with heap.paused():
        made = [{"n": i} for i in range(1000)]

    assert gc.get_freeze_count() >= before + len(made)
