"""Keeping Python's cyclic garbage collector out of a LIST page's bulk work.

A page of 500 pods parses into ~100 dicts and lists per pod, and trimming and encoding it
makes as many again. Every 700 of those set off a young collection, and the objects
surviving into the older generations set off full ones, each rescanning every tracked
object of the process (the Kubernetes client's thousands of classes and functions
among them). None of it finds anything: parsed JSON and trimmed copies hold no
reference cycles, and reference counting frees them. Measured at 10k pods, the
collections took ~40 % of the producer's CPU for its initial sync (bench/README.md,
session 8), more than trimming.

So parsing a page, and trimming and encoding it, run `paused()`: synchronous steps of a
few ms each, between which the collector runs as usual for everyone else's garbage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside one synchronous bulk step (nested or from another
    thread: whoever paused it first turns it back on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
