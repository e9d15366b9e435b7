from __future__ import annotations

from producers import known
from schemas import events
from schemas.topics import ObjectKey


def record(key: bytes | None, value: bytes | None, version: str | None) -> known.StoredRecord:
    headers = [(events.HEADER_RESOURCE_VERSION, version.encode())] if version else []
    return known.StoredRecord(key, value, headers)


def test_fold_keeps_the_latest_version_and_drops_tombstoned_keys() -> None:
    state, unusable = known.fold(
        [
            record(b"ns/a", b"{}", "1"),
            record(b"ns/b", b"{}", "2"),
            record(b"ns/a", b"{}", "3"),
            record(b"ns/b", None, "4"),
            record(b"ns/c", b'{"resource_version": "7"}', None),
            record(b"ns/d", b"garbage", None),
            record(None, b"{}", "1"),
        ]
    )
    assert state == {"ns/a": "3", "ns/c": "7", "ns/d": ""}
    assert unusable == 2


def test_fold_one_record_at_a_time_keeps_only_keys_and_versions() -> None:
    big = b"x" * 100_000
    records = [
        record(b"ns/a", big, "1"),
        record(b"ns/b", big, "2"),
        record(b"ns/a", None, "3"),
        record(b"ns/c", b'{"resource_version": "9"}', None),
        record(b"ns/b", big, "4"),
        record(None, big, "5"),
    ]
    folded = known.Fold()
    for one in records:
        folded.add(one)
    assert folded.state == {"ns/b": "4", "ns/c": "9"}
    assert (folded.records, folded.unusable) == (6, 1)
    assert (folded.state, folded.unusable) == known.fold(records)


class Reader:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def load(self, topic: str, *, partitions: int) -> dict[ObjectKey, str]:
        self.asked.append(topic)
        return {ObjectKey("ns/a"): "1"}


async def test_a_topic_just_created_is_read_as_empty_once_then_from_kafka() -> None:
    kafka = Reader()
    reader = known.FreshTopics(kafka, fresh={"made"})
    assert await reader.load("made", partitions=3) == {}
    assert await reader.load("there", partitions=3) == {"ns/a": "1"}
    assert await reader.load("made", partitions=3) == {"ns/a": "1"}  # after a failed publish
    assert kafka.asked == ["there", "made"]
