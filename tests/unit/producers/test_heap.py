"""heap.paused: the collector is off inside, back on after, unless it was off before."""

from __future__ import annotations

import gc

import pytest

from producers import heap


def test_paused_turns_the_collector_off_inside_and_on_after() -> None:
    assert gc.isenabled()
    with heap.paused():
        assert not gc.isenabled()
        with heap.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause leaves it to the outer one
    assert gc.isenabled()


def test_paused_turns_it_back_on_after_an_error() -> None:
    with pytest.raises(ValueError, match="bad page"), heap.paused():
        raise ValueError("bad page")
    assert gc.isenabled()


def test_paused_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
