"""A full sync writes only what differs from the topic for owned keys, and the janitor
tombstones groups of clusters without topics."""

from __future__ import annotations

from consumers.compactor import full_sync
from schemas.topics import TargetKey

PREFIX = "sd"
PATTERN = r"^sd\.[^.]+\.(pods|services)$"
TOPICS = ["sd.east.pods", "sd.east.services", "sd.west.pods", "sd.east.nodes", "sd.gone.nodes"]


def key(text: str) -> TargetKey:
    return TargetKey(text)


def test_live_clusters_are_those_with_a_namespaced_topic() -> None:
    assert full_sync.live_clusters(TOPICS, PREFIX) == {"east", "west"}


def test_the_janitor_holds_partition_0_of_the_first_subscribed_topic() -> None:
    assert full_sync.janitor(TOPICS, PATTERN, {("sd.east.pods", 0)})
    assert not full_sync.janitor(TOPICS, PATTERN, {("sd.east.pods", 1), ("sd.west.pods", 0)})
    assert full_sync.janitor(["sd.east.nodes"], PATTERN, set())  # nothing subscribed: everyone


def test_orphans_are_unowned_groups_of_clusters_without_topics_for_the_janitor_only() -> None:
    unowned = [key("pods/gone/default/web"), key("pods/west/default/web")]
    kwargs = {"topics": TOPICS, "prefix": PREFIX, "group_pattern": PATTERN}
    assert full_sync.orphans(unowned, owned={("sd.east.pods", 0)}, **kwargs) == [  # type: ignore[arg-type]
        key("pods/gone/default/web")
    ]
    assert full_sync.orphans(unowned, owned=set(), **kwargs) == []  # type: ignore[arg-type]


def test_writes_are_changed_values_then_tombstones_for_undesired_and_orphans() -> None:
    held, unowned = full_sync.split(
        {key("j/east/a"): b"A", key("j/east/b"): b"B", key("j/west/c"): b"C"},
        owns=lambda k: k.startswith("j/east/"),
    )
    assert unowned == {key("j/west/c")}
    desired = [(key("j/east/a"), b"A"), (key("j/east/new"), b"N")]
    written = list(full_sync.writes(desired, held, [key("j/gone/x")], fingerprint=bytes))
    assert written == [
        (key("j/east/new"), b"N"), (key("j/east/b"), None), (key("j/gone/x"), None)
    ]  # fmt: skip


def test_groups_of_unread_partitions_are_neither_written_nor_tombstoned() -> None:
    """A denied partition (or a cluster's denied global table) is unknown, not empty."""
    from consumers.compactor.ownership import Ownership, source_object_key
    from schemas.topics import partition_for

    on = {p: f"pods/east/pod/ns{i}/web" for i in range(8)
          for p in [partition_for(source_object_key(f"pod/ns{i}/web"), 2)]}  # fmt: skip
    denied, read = key(on[1]), key(on[0])
    unread = full_sync.Unread(Ownership({"east": {1}}, {"east": 2}), frozenset({"west"}))
    assert unread.covers(denied)
    assert not unread.covers(read)
    assert unread.covers(key("pods/west/pod/ns/web"))
    held, unowned = full_sync.split(
        {denied: b"D", read: b"R", key("pods/west/pod/ns/web"): b"W"}, owns=lambda k: True,
        unread=unread,
    )  # fmt: skip
    assert held == {read: b"R"}
    assert unowned == set()
    desired = [(denied, b"partial"), (key("pods/west/pod/ns/new"), b"partial")]
    assert list(full_sync.writes(desired, held, [], fingerprint=bytes, unread=unread)) == [
        (read, None)
    ]
    assert unread.touched_clusters() == {"east", "west"}


def test_a_cluster_denied_to_us_has_no_orphans() -> None:
    unowned = [key("pods/gone/default/web")]
    kwargs = {"topics": TOPICS, "prefix": PREFIX, "group_pattern": PATTERN}
    found = full_sync.orphans(unowned, owned={("sd.east.pods", 0)}, unread={"gone"}, **kwargs)  # type: ignore[arg-type]
    assert found == []
