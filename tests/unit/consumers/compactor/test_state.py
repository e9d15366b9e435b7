"""The fold's state keeps objects as their record values, deflated, and parses them when
read."""

from __future__ import annotations

from typing import Any

import orjson

from consumers.compactor import state
from schemas import events
from schemas.topics import ObjectKey, Resource

KEY = ObjectKey("shop/web-0")


def pod(version: str, ip: str = "10.1.0.1") -> dict[str, Any]:
    return {"metadata": {"name": "web-0", "namespace": "shop", "resourceVersion": version},
            "status": {"podIP": ip}}  # fmt: skip


def encoded(obj: dict[str, Any], *, observed_at: float = 1.0) -> state.Encoded:
    value = events.encode(events.ObjectEvent(
        type=events.EventType.MODIFIED, cluster="east", resource=Resource.PODS,
        resource_version=obj["metadata"]["resourceVersion"], observed_at=observed_at,
        object=obj))  # fmt: skip
    return state.Encoded.of(obj, value)


def test_an_encoded_object_reads_back_as_the_object() -> None:
    s = state.ClusterState()
    s.apply(Resource.PODS, KEY, encoded(pod("1")))

    assert s.get(Resource.PODS, KEY) == pod("1")


def test_a_replaced_object_is_read_anew_not_from_the_cache() -> None:
    s = state.ClusterState()
    s.apply(Resource.PODS, KEY, encoded(pod("1", ip="10.1.0.1")))
    s.get(Resource.PODS, KEY)
    s.apply(Resource.PODS, KEY, encoded(pod("2", ip="10.1.0.2")))

    assert s.get(Resource.PODS, KEY) == pod("2", ip="10.1.0.2")


def test_the_same_version_seen_again_is_no_change_even_at_another_time() -> None:
    """A producer's relist writes the same object with a new observed_at."""
    s = state.ClusterState()
    assert s.apply(Resource.PODS, KEY, encoded(pod("1"), observed_at=1.0))

    assert not s.apply(Resource.PODS, KEY, encoded(pod("1"), observed_at=2.0))
    assert s.apply(Resource.PODS, KEY, encoded(pod("2"), observed_at=3.0))


def test_a_tombstone_removes_an_encoded_object() -> None:
    s = state.ClusterState()
    s.apply(Resource.PODS, KEY, encoded(pod("1")))
    s.get(Resource.PODS, KEY)

    assert s.apply(Resource.PODS, KEY, None)
    assert s.get(Resource.PODS, KEY) is None


def test_more_objects_than_the_cache_holds_all_read_correctly() -> None:
    s = state.ClusterState(cache=state.ParseCache(size=3))
    keys = [ObjectKey(f"shop/web-{i}") for i in range(10)]
    for i, key in enumerate(keys):
        s.apply(Resource.PODS, key, encoded(pod(str(i), ip=f"10.1.0.{i}")))

    for _ in range(2):
        assert [s.get(Resource.PODS, k)["status"]["podIP"] for k in keys] == [  # type: ignore[index]
            f"10.1.0.{i}" for i in range(10)
        ]
    assert len(s.cache) == 3


def test_the_state_counts_the_bytes_it_holds_through_replaces_deletes_and_drops() -> None:
    s = state.ClusterState()
    first, second = encoded(pod("1")), encoded(pod("2", ip="10.1.0.22"))
    other = encoded({**pod("3"), "metadata": {"name": "db-0", "namespace": "data",
                                               "resourceVersion": "3"}})  # fmt: skip
    s.apply(Resource.PODS, KEY, first)
    s.put(Resource.PODS, ObjectKey("data/db-0"), other)
    assert s.encoded_bytes == len(first.packed) + len(other.packed)

    s.apply(Resource.PODS, KEY, second)
    assert s.encoded_bytes == len(second.packed) + len(other.packed)

    s.put(Resource.PODS, KEY, None)
    assert s.encoded_bytes == len(other.packed)

    s.drop_partitions([Resource.PODS], partitions=set(range(6)), count=6)
    assert (s.size(), s.encoded_bytes) == (0, 0)


def slice_with(endpoints: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-abc", "namespace": "shop", "resourceVersion": "7"},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.1.{i >> 8}.{i & 255}"], "conditions": {"ready": True},
             "targetRef": {"kind": "Pod", "namespace": "shop", "name": f"web-{i}"}}
            for i in range(endpoints)
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }  # fmt: skip


def test_an_object_is_held_deflated_and_reads_back_whole() -> None:
    obj = slice_with(100)
    value = events.encode(events.ObjectEvent(
        type=events.EventType.ADDED, cluster="east", resource=Resource.ENDPOINTSLICES,
        resource_version="7", observed_at=1.0, object=obj))  # fmt: skip
    s = state.ClusterState()
    s.apply(Resource.ENDPOINTSLICES, KEY, state.Encoded.of(obj, value))

    assert s.encoded_bytes * 4 < len(value)  # a hundred alike endpoints: far smaller
    assert s.get(Resource.ENDPOINTSLICES, KEY, cached=False) == obj
    assert state.Encoded.of(obj, value).value == value


def test_the_cache_keeps_parsed_objects_of_at_most_its_bytes_of_records() -> None:
    big = [state.Encoded.of(obj, b'{"object":' + orjson.dumps(obj) + b"}")
           for obj in (slice_with(100) for _ in range(40))]  # fmt: skip
    cache = state.ParseCache()
    for stored in big:
        assert cache.parse(stored) == slice_with(100)

    assert 0 < len(cache) * len(big[0].value) <= state.PARSED_BYTES


def test_a_small_record_starts_from_the_vocabulary_so_it_shrinks_too() -> None:
    obj = {"metadata": {"name": "web-0", "namespace": "shop", "resourceVersion": "7",
                        "labels": {"app.kubernetes.io/name": "web", "pod-template-hash": "5d8f"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "web-5d8f", "controller": True}]},
           "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "web:1",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
           "status": {"phase": "Running", "podIP": "10.1.0.1", "hostIP": "10.0.0.1",
                      "conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip
    value = events.encode(events.ObjectEvent(
        type=events.EventType.ADDED, cluster="east", resource=Resource.PODS,
        resource_version="7", observed_at=1.0, object=obj))  # fmt: skip
    held = state.Encoded.of(obj, value)

    assert len(held.packed) * 2 < len(value)  # plain deflate: ~1.5x on a record this small
    assert held.value == value
