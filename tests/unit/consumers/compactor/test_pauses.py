"""Denied partitions stay paused until their deadline, then are asked for again once."""

from __future__ import annotations

from consumers.compactor.pauses import Pauses


def test_a_pause_ends_at_its_deadline_and_is_forgotten() -> None:
    pauses: Pauses[tuple[str, int]] = Pauses()
    pauses.pause([("a", 0), ("a", 1)], until=10.0)
    pauses.pause([("b", 0)], until=20.0)
    assert pauses.due(9.9) == []
    assert ("a", 0) in pauses
    assert pauses.due(10.0) == [("a", 0), ("a", 1)]
    assert set(pauses) == {("b", 0)}
    assert pauses.due(10.0) == []
    assert pauses.due(30.0) == [("b", 0)]
    assert not pauses
