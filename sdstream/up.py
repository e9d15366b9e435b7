"""`sdstream up`: the pipeline on an embedded default, until Ctrl-C.

Today it brings up the devstack (real Kafka, etcd, kube-apiserver) and waits;
the producer, consumer and demo workload join it as they land (issue 7).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from sdstream.devstack import cache, stack


def run(*, root: Path, run_dir: Path) -> int:
    current = stack.up(root, run_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print(stack.describe(current), flush=True)
        cache.say("running; Ctrl-C stops everything")
        stop.wait()
    finally:
        cache.say("stopping")
        stack.down_stack(current)
    return 0
