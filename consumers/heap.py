"""Keeping Python's cyclic garbage collector off the long-lived state.

Catching up creates millions of small dicts, lists and strings that then live as long
as the state (the fold's objects and groups, the sinks' view). CPython rescans every
tracked object at each full collection, and full collections come with every 25% of heap
growth: measured at 50k pods, that was two thirds of the fold's catch-up time. The
state holds no reference cycles (JSON data and frozen records), so after bulk work the
young generations are collected (cheap) and the survivors are moved out of the
collector's reach with `gc.freeze()`. Reference counting still frees them when they are
replaced or deleted.

Only bulk work settles: freezing after every small batch would also pin, again and
again, whatever cyclic garbage of the event loop or the Kafka client happened to be
waiting for a collection at that moment.

A full build creates every group (and parses every object it reads); the collections it
triggered found nothing to free and took a fifth of it, so it runs `paused()` and settles
after. It gives the event loop a turn every few ms, so cyclic garbage of the other tasks
made meanwhile waits for the collection after it: bounded by the build's length.

Settling also hands the C heap's free pages back to the system (`trim`). Bulk work frees
most of what it allocated (records fetched and parsed, groups encoded, batches sent and
read back), but glibc keeps freed memory below the top of its heap: measured at 50k pods
in one process (bench/heap.py), 890 MiB of a 1506 MiB RSS was such free heap, and
`malloc_trim(0)` returned 780 MiB of it (bench/README.md, session 7 one-process memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

BULK = 1000  # records applied in one go that count as bulk work


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def trim() -> None:
    """Give the C heap's free pages back to the system (glibc `malloc_trim(0)`: every
    free page, not only at the heap's top); nothing elsewhere."""
    if _TRIM is not None:
        _TRIM(0)


def settle() -> None:
    """Collect the young generations, freeze everything that survived, and give the
    free heap pages back (`trim`)."""
    gc.collect(1)
    gc.freeze()
    trim()


def settle_after(records: int) -> None:
    """`settle()` when `records` applied in one go were bulk work."""
    if records >= BULK:
        settle()


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside (one synchronous bulk step); settle after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        settle()
