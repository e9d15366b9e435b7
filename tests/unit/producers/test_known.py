from __future__ import annotations

from producers import known
from schemas import events


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
