"""What the fold makes of one object-topic record: the object, a tombstone, or why not."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from consumers.compactor import records
from schemas.topics import Resource

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
        (b"\xff", value(), "key"),
        (b"shop/web-0", b"{not json", "json"),
        (b"shop/web-0", value(schema_version=2), "schema_version"),
        (b"shop/web-0", value(object=[1]), "invalid"),
        (b"shop/web-0", value(cluster="west"), "mismatch"),
        (b"shop/web-0", value(resource="services"), "mismatch"),
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
