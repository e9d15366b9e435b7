"""`heap.settle` gives freed C heap back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from consumers import heap


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024


@pytest.mark.skipif(heap._TRIM is None or platform.system() != "Linux", reason="glibc only")
def test_settling_returns_freed_heap_below_a_live_block() -> None:
    # 128 MiB in 2 KiB blocks (over pymalloc's 512 bytes: from the C heap), then all but
    # the last freed: the last one pins the heap's top, so plain free() returns nothing.
    blocks = [bytes(2048 - 33) + i.to_bytes(4) for i in range(1 << 16)]
    last = blocks.pop()
    blocks.clear()
    before = rss_mib()

    heap.settle()

    assert before - rss_mib() >= 64
    assert last
