"""The fold publishes nothing before it has read everything, then one full sync, then
changes; a rebalance asks for a full sync again; /readyz says what it waits for."""

from __future__ import annotations

from consumers.compactor.catch_up import CatchUp, Step

A, B, G = ("pods", 0), ("pods", 1), ("nodes", 0)


def test_nothing_is_published_before_an_assignment_and_the_global_tables() -> None:
    state: CatchUp[tuple[str, int]] = CatchUp()
    assert state.next_step() is Step.WAIT
    assert state.unready_reason(refusal=None, kafka_problem=None) == (
        "waiting for partition assignments"
    )
    state.reassigned(lost=[], gained={A: 10})
    assert state.next_step() is Step.WAIT  # the global tables are not known yet
    state.table_complete = True
    assert state.unready_reason(refusal=None, kafka_problem=None) == (
        "catching up: 10 records behind"
    )


def test_caught_up_at_the_end_offsets_seen_at_assignment_then_one_full_sync() -> None:
    state: CatchUp[tuple[str, int]] = CatchUp(table_complete=True)
    state.reassigned(lost=[], gained={A: 10, B: 0})
    state.table.gain({G: 3})
    state.group.positions[A] = 10
    assert state.next_step() is Step.WAIT
    state.table.positions[G] = 5  # compaction gaps can move a position past the end
    assert state.unready_reason(refusal=None, kafka_problem=None) == "publishing first sync"
    assert state.next_step() is Step.FULL_SYNC
    state.synced = True
    assert state.ready()
    assert state.next_step() is Step.CHANGES


def test_a_rebalance_reads_gained_partitions_from_zero_and_syncs_again() -> None:
    state: CatchUp[tuple[str, int]] = CatchUp(table_complete=True)
    state.reassigned(lost=[], gained={A: 0})
    assert state.next_step() is Step.FULL_SYNC
    state.synced = True
    state.reassigned(lost=[A], gained={B: 4})
    assert not state.ready()
    assert state.group.ends == {B: 4}
    assert state.group.positions == {B: 0}
    assert state.next_step() is Step.WAIT
    state.group.positions[B] = 4
    assert state.next_step() is Step.FULL_SYNC


def test_a_refusal_or_kafka_problem_makes_it_unready_only_before_it_has_synced() -> None:
    state: CatchUp[tuple[str, int]] = CatchUp(assigned_once=True, table_complete=True)
    assert state.unready_reason(refusal="denied", kafka_problem="away") == "denied"
    assert state.next_step() is Step.FULL_SYNC
    state.synced = True
    assert state.unready_reason(refusal="denied", kafka_problem="away") is None
    assert state.unready_reason(refusal=None, kafka_problem="away") is None
    state.need_sync = True
    assert state.unready_reason(refusal=None, kafka_problem="away") == "away"


def test_dropped_partitions_are_no_longer_waited_for() -> None:
    state: CatchUp[tuple[str, int]] = CatchUp(table_complete=True)
    state.reassigned(lost=[], gained={A: 10, B: 5})
    state.group.drop([A, B])  # e.g. paused because Kafka denies their topic
    assert state.behind() == 0
    assert state.next_step() is Step.FULL_SYNC
