"""The fold's writes into the sinks of the same process: held at once, told to the
listeners only once the targets reader has caught up (the catch-up tells every job)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from consumers.sinks import kafka_targets, local_feed, sink_metrics
from consumers.sinks.views import Held, RawRecord, TargetView
from schemas.config import KafkaSettings
from schemas.targets import TargetGroup
from schemas.topics import TargetKey
from tests.unit.consumers.sinks.builders import group, key, record

WEB = group("web", "east", "web-0", "10.0.0.1:80")


def _web_feed() -> tuple[TargetView, local_feed.LocalFeed]:
    """A view serving job "web", fed by a LocalFeed (its reader never started)."""
    view = TargetView(configured=frozenset({"web"}))
    reader = kafka_targets.TargetsReader(
        KafkaSettings(), view=view, metrics=sink_metrics.create(CollectorRegistry())
    )
    return view, local_feed.LocalFeed(view, reader)


class EmptyTopic:
    """What the reader's catch-up asks of its consumer, for a topic with no records."""

    async def end_offsets(self, parts: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(parts, 0)


async def test_writes_are_held_at_once_and_told_once_the_reader_caught_up() -> None:
    view = TargetView(configured=frozenset({"web"}))
    heard: list[frozenset[str]] = []

    async def listener(jobs: frozenset[str]) -> None:
        heard.append(jobs)

    reader = kafka_targets.TargetsReader(
        KafkaSettings(), view=view, metrics=sink_metrics.create(CollectorRegistry()),
        listeners=[listener],
    )  # fmt: skip
    feed = local_feed.LocalFeed(view, reader)

    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.flush()
    assert view.counts("web") == (1, 1)
    assert heard == []  # a partial view: nobody hears of it before the catch-up

    await reader._catch_up(EmptyTopic(), [])  # type: ignore[arg-type]
    assert heard == [frozenset({"web"})]

    feed.put(key(WEB), None, None)
    await feed.flush()
    assert heard[-1] == frozenset({"web"})
    assert view.counts("web") == (0, 0)
    await feed.flush()  # nothing changed since: nobody told
    assert len(heard) == 2


async def test_a_failed_send_puts_back_what_the_view_held() -> None:
    """The fold may never write what a failed round fed (it can go back to what the topic
    holds, or the object may be deleted): the view must not keep serving it."""
    view, feed = _web_feed()
    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.flush()
    moved = group("web", "east", "web-0", "10.0.0.9:80")
    other = group("web", "east", "web-1", "10.0.0.2:80")

    feed.put(key(moved), moved, record(moved)[1])
    feed.put(key(other), other, record(other)[1])
    feed.put(key(other), None, None)
    feed.put(key(other), other, record(other)[1])
    await feed.abort()

    assert view.held("web") == [Held.of(WEB)]
    assert view.counts("web") == (1, 1)


async def test_a_round_is_shown_before_its_acks_and_still_taken_back_if_they_fail() -> None:
    """Listeners hear a round once it is handed to the producer (`show`), not after its
    acks; a send that then fails puts back what the view held, and they hear it again, so
    no answer keeps serving a group the topic never got."""
    view = TargetView(configured=frozenset({"web"}))
    heard: list[frozenset[str]] = []

    async def listener(jobs: frozenset[str]) -> None:
        heard.append(jobs)

    reader = kafka_targets.TargetsReader(
        KafkaSettings(), view=view, metrics=sink_metrics.create(CollectorRegistry()),
        listeners=[listener],
    )  # fmt: skip
    await reader._catch_up(EmptyTopic(), [])  # type: ignore[arg-type]
    feed = local_feed.LocalFeed(view, reader)
    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.flush()
    moved = group("web", "east", "web-0", "10.0.0.9:80")

    feed.put(key(moved), moved, record(moved)[1])
    await feed.show()
    assert heard[-1] == frozenset({"web"})
    assert view.held("web") == [Held.of(moved)]
    shown = len(heard)

    await feed.abort()
    assert view.held("web") == [Held.of(WEB)]
    assert len(heard) == shown + 1  # told again: the answer goes back to what was acked
    assert heard[-1] == frozenset({"web"})

    feed.put(key(moved), moved, record(moved)[1])
    await feed.show()
    await feed.flush()  # acked: nothing changed since the show, nobody told twice
    assert len(heard) == shown + 2
    await feed.abort()  # nothing left to take back
    assert view.held("web") == [Held.of(moved)]


async def test_rounds_shown_before_an_older_ones_acks_are_settled_and_taken_back_apart() -> None:
    """The fold shows round N+1 while round N's acks are out: N's acks keep N alone (N+1
    can still be taken back), and a failure takes back every round not yet acked, newest
    first, so the view holds again what the last acked round left."""
    view, feed = _web_feed()
    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.show()
    await feed.flush()
    moved = group("web", "east", "web-0", "10.0.0.9:80")
    again = group("web", "east", "web-0", "10.0.0.7:80")
    other = group("web", "east", "web-1", "10.0.0.2:80")

    feed.put(key(moved), moved, record(moved)[1])  # round N
    await feed.show()
    feed.put(key(again), again, record(again)[1])  # round N+1, before N's acks
    feed.put(key(other), other, record(other)[1])
    await feed.show()
    await feed.flush()  # N acked: N+1 is still revocable
    await feed.abort()  # N+1 failed
    assert view.held("web") == [Held.of(moved)]

    feed.put(key(again), again, record(again)[1])  # N+2
    await feed.show()
    feed.put(key(other), other, record(other)[1])  # N+3 (and an empty N+4)
    await feed.show()
    await feed.show()
    await feed.abort()  # N+2 failed: N+3 and N+4 go too
    assert view.held("web") == [Held.of(moved)]
    assert view.counts("web") == (1, 1)


def _read_back(view: TargetView, *groups: TargetGroup | tuple[TargetKey, None]) -> None:
    """The targets reader reading these records (a tuple: a tombstone for its key)."""
    raw = [
        RawRecord(g[0].encode(), None) if isinstance(g, tuple) else RawRecord(*record(g))
        for g in groups
    ]
    view.apply_records(raw)


async def test_an_older_own_write_read_back_late_does_not_take_the_answer_back() -> None:
    """A key changed in two rounds in a row: the view holds the newer group when the
    reader reads the older record back; the answer must not go new -> old -> new (a
    target gone in a rollout would come back for a moment)."""
    view, feed = _web_feed()
    moved = group("web", "east", "web-0", "10.0.0.9:80")
    feed.put(key(WEB), WEB, record(WEB)[1])  # round N
    await feed.show()
    feed.put(key(moved), moved, record(moved)[1])  # round N+1, before N is read back
    await feed.show()

    _read_back(view, WEB)
    assert view.held("web") == [Held.of(moved)]
    _read_back(view, moved)
    assert view.held("web") == [Held.of(moved)]
    _read_back(view, WEB)  # once caught up, a later record is the topic's word again
    assert view.held("web") == [Held.of(WEB)]


async def test_a_record_not_ours_is_applied_even_while_ours_are_pending() -> None:
    """Kafka refused our group and the writer sent a tombstone instead: the view serves
    what the topic holds, not what the fold wrote; a failed round's keys, once put back,
    take what is read."""
    view, feed = _web_feed()
    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.show()
    _read_back(view, (key(WEB), None))
    assert view.held("web") == []

    moved = group("web", "east", "web-0", "10.0.0.9:80")
    feed.put(key(moved), moved, record(moved)[1])
    await feed.show()
    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.show()
    await feed.abort()  # both rounds failed; the first had reached the topic after all
    _read_back(view, moved)
    assert view.held("web") == [Held.of(moved)]


async def test_a_take_back_leaves_a_newer_record_the_reader_applied_meanwhile() -> None:
    """A round waits (its partition moved away); the new owner writes the key and our
    reader applies that. Taking the round back must not restore what the view held
    before the round: the new owner's group would be lost until the key changes again."""
    view, feed = _web_feed()
    feed.put(key(WEB), WEB, record(WEB)[1])
    await feed.show()
    await feed.flush()
    _read_back(view, WEB)
    ours = group("web", "east", "web-0", "10.0.0.9:80")
    theirs = group("web", "east", "web-0", "10.0.0.3:80")

    feed.put(key(ours), ours, record(ours)[1])
    await feed.show()
    _read_back(view, theirs)  # the partition's new owner wrote it
    await feed.abort()
    assert view.held("web") == [Held.of(theirs)]


async def test_a_take_back_leaves_what_reached_the_topic_and_was_read_back() -> None:
    """A round's records went to two partitions: one was acked (and read back), the other
    failed. The first stays: the topic has it, and the full sync that follows writes only
    what differs from the topic, so a group put back now would stay stale."""
    view, feed = _web_feed()
    other = group("web", "east", "web-1", "10.0.0.2:80")
    feed.put(key(WEB), WEB, record(WEB)[1])
    feed.put(key(other), other, record(other)[1])
    await feed.show()
    _read_back(view, WEB)  # its partition acked; the other's send fails
    await feed.abort()
    assert view.held("web") == [Held.of(WEB)]


async def test_a_key_that_goes_back_and_forth_is_read_back_in_order() -> None:
    """A, B, A (a pod unready for a moment): the first A read back is not the last write,
    so the B read after it must not be served."""
    view, feed = _web_feed()
    moved = group("web", "east", "web-0", "10.0.0.9:80")
    for g in (WEB, moved, WEB):
        feed.put(key(g), g, record(g)[1])
        await feed.show()

    for g in (WEB, moved, WEB):
        _read_back(view, g)
        assert view.held("web") == [Held.of(WEB)]


async def test_wait_read_says_whether_the_reader_read_the_topic_within_the_bound() -> None:
    _, feed = _web_feed()
    assert await feed.wait_read(0.01) is False  # never read: the fold goes on anyway

    await feed.reader._catch_up(EmptyTopic(), [])  # type: ignore[arg-type]
    assert await feed.wait_read(0.01) is True


def test_published_only_when_the_reader_found_records_before_any_write_of_ours() -> None:
    _, feed = _web_feed()
    assert not feed.published()  # the reader has not looked
    feed.reader.found_at_start = 3
    assert feed.published()  # a fold's last answer: a restart

    _, new = _web_feed()
    new.reader.found_at_start = 0
    assert not new.published()  # a new topic: nothing to serve before the fold's sync

    _, early = _web_feed()
    early.put(key(WEB), WEB, record(WEB)[1])  # written before the reader looked
    early.reader.found_at_start = 1
    assert not early.published()  # what it found may be ours
