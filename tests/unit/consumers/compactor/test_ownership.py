"""Who publishes which group: the member holding its object's partition; nobody for a
cluster whose topics are gone."""

from __future__ import annotations

from consumers.compactor import ownership
from schemas.topics import ObjectKey, TargetKey, partition_for


def key(cluster: str, source: str, job: str = "pods") -> TargetKey:
    return TargetKey(f"{job}/{cluster}/{source}")


def test_a_group_belongs_to_the_member_holding_its_namespace_partition() -> None:
    partition = partition_for(ObjectKey("shop/web-0"), 6)
    mine = ownership.Ownership({"east": {partition}}, {"east": 6})
    other = ownership.Ownership({"east": set(range(6)) - {partition}}, {"east": 6})

    assert mine.owns(key("east", "pod/shop/web-0"))
    assert not other.owns(key("east", "pod/shop/web-0"))


def test_a_cluster_without_partitions_is_owned_by_nobody() -> None:
    members = [ownership.Ownership({"east": set(range(6))}, {"east": 6}), ownership.Ownership()]
    assert not any(m.owns(key("west", "pod/shop/web-0")) for m in members)


def test_orphans_are_the_keys_of_clusters_without_topics() -> None:
    keys = [key("west", "pod/a/b"), key("east", "pod/a/b"), key("west", "node/n1", "nodes")]

    assert ownership.orphaned(keys, {"east"}) == [key("west", "node/n1", "nodes"),
                                                  key("west", "pod/a/b")]  # fmt: skip
    assert ownership.orphaned(keys, {"east", "west"}) == []
