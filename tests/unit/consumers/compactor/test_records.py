"""What the fold makes of one object-topic record: the object, a tombstone, or why not."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from consumers.compactor import records
from schemas.topics import ObjectKey, Resource

OBJECT = {"metadata": {"name": "web-0", "namespace": "shop"}}


def value(**changes: Any) -> bytes:
    event = {
        "schema_version": 1, "type": "ADDED", "cluster": "east", "resource": "pods",
        "resource_version": "7", "observed_at": 1.0, "object": OBJECT,
    }  # fmt: skip
    return orjson.dumps({**event, **changes})


def test_a_record_gives_its_key_and_object() -> None:
    assert records.decode(b"shop/web-0", value(), "east", Resource.PODS) == ("shop/web-0", OBJECT)


def test_a_tombstone_gives_none() -> None:
    assert records.decode(b"shop/web-0", None, "east", Resource.PODS) == ("shop/web-0", None)


@pytest.mark.parametrize(
    ("key", "raw", "reason"),
    [
        (None, value(), "no_key"),
        (b"\xff", value(), "bad_key"),
        (b"shop/web-0", b"{not json", "invalid_json"),
        (b"shop/web-0", value(schema_version=2), "unknown_schema_version"),
        (b"shop/web-0", value(object=[1]), "invalid_event"),
        (b"shop/web-0", value(cluster="west"), "topic_mismatch"),
        (b"shop/web-0", value(resource="services"), "topic_mismatch"),
    ],
)
def test_bad_records_say_why(key: bytes | None, raw: bytes, reason: str) -> None:
    with pytest.raises(records.BadRecord) as caught:
        records.decode(key, raw, "east", Resource.PODS)
    assert caught.value.reason == reason


def test_the_topic_pattern_matches_listed_clusters_and_resources_only() -> None:
    pattern = records.topic_pattern("sd", records.cluster_regex(["east"], ".*"), [Resource.PODS])
    assert [t for t in ("sd.east.pods", "sd.west.pods", "sd.east.nodes", "sdx.east.pods")
            if re.match(pattern, t)] == ["sd.east.pods"]  # fmt: skip


NODE = {"metadata": {"name": "n1"}}


@pytest.mark.parametrize(
    ("key", "obj", "partition", "partitions"),
    [
        ("shop/web-0", OBJECT, 0, 6),  # crc32("shop") % 6 == 0
        ("shop/web-0", None, 0, 6),  # a tombstone
        ("n1", NODE, 4, 6),  # cluster-scoped: hashed by name
        ("shop/web-0", OBJECT, 5, 0),  # partition count unknown: not checked
    ],
)
def test_a_record_where_the_producer_puts_it_is_trusted(
    key: str, obj: dict[str, Any] | None, partition: int, partitions: int
) -> None:
    records.check_placement(ObjectKey(key), obj, partition=partition, partitions=partitions)


@pytest.mark.parametrize(
    ("key", "obj", "partition", "reason"),
    [
        ("shop/web-1", OBJECT, 0, "key_mismatch"),  # another object's key
        ("web-0", OBJECT, 0, "key_mismatch"),  # namespace missing from the key
        ("shop/n1", NODE, 0, "key_mismatch"),  # a namespace a cluster-scoped object lacks
        ("shop/web-0", {"metadata": {"name": 7}}, 0, "key_mismatch"),
        ("shop/web-0", {"metadata": [1]}, 0, "key_mismatch"),
        ("shop/web-0", OBJECT, 1, "wrong_partition"),
        ("shop/web-0", None, 1, "wrong_partition"),  # a tombstone elsewhere changes nothing
    ],
)
def test_a_record_elsewhere_is_rejected(
    key: str, obj: dict[str, Any] | None, partition: int, reason: str
) -> None:
    with pytest.raises(records.BadRecord) as caught:
        records.check_placement(ObjectKey(key), obj, partition=partition, partitions=6)
    assert caught.value.reason == reason
