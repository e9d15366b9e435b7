"""One vocabulary of skip reasons: the same fault has the same `reason` in the fold and the
sinks, and each side only ever says a reason its metric lists."""

from __future__ import annotations

import orjson
import pytest

from consumers import skips
from consumers.compactor import records
from consumers.sinks import views
from schemas.topics import Resource

# (key, value) faults both topics can carry, and the one reason each must give.
SHARED = [
    (None, b"{}", skips.NO_KEY),
    (b"\xff", b"{}", skips.BAD_KEY),
    (b"shop/web-0", b"{not json", skips.INVALID_JSON),
    (b"shop/web-0", orjson.dumps({"schema_version": 99}), skips.UNKNOWN_SCHEMA_VERSION),
]


def _fold_reason(key: bytes | None, value: bytes) -> str:
    with pytest.raises(skips.BadRecord) as caught:
        records.decode(key, value, "east", Resource.PODS)
    return caught.value.reason


def _sink_reason(key: bytes | None, value: bytes) -> str:
    with pytest.raises(skips.BadRecord) as caught:
        views.decode(key, value)
    return caught.value.reason


@pytest.mark.parametrize(("key", "value", "reason"), SHARED)
def test_the_same_fault_has_the_same_reason_on_both_sides(
    key: bytes | None, value: bytes, reason: str
) -> None:
    assert (_fold_reason(key, value), _sink_reason(key, value)) == (reason, reason)


def test_each_side_lists_the_shared_reasons() -> None:
    shared = {reason for _, _, reason in SHARED} | {skips.KEY_MISMATCH}
    assert shared <= set(skips.FOLD_REASONS)
    assert shared <= set(skips.SINK_REASONS)


def test_one_class_for_both_sides() -> None:
    assert records.BadRecord is skips.BadRecord
