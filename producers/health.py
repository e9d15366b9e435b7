"""Which watches are stuck: consecutive failures per watch, for /readyz, a gauge and logs.

A watch that keeps failing (an API error, an HTTP 400 for a selector the server
rejects, a listing Kafka did not take) retries with backoff forever so that the
other resources go on. Without this it would do so silently, with /readyz at 200.
Here each failure is counted until the watch works again:
`sdstream_producer_watch_failures{resource}` shows the consecutive failures, /readyz
turns 503 naming the resource once a watch failed `STUCK_AFTER` times in a row, and
the same error is logged once per `LOG_EVERY_S` instead of at every try.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from producers.producer_metrics import ProducerMetrics
from schemas.topics import Resource

STUCK_AFTER = 3  # consecutive failures (about 2 s of backoff) before /readyz says so
LOG_EVERY_S = 30.0  # the watcher's longest backoff: at most one line per backoff period

WatchId = tuple[Resource, str | None]  # resource, namespace (None: all namespaces)


@dataclass
class Failing:
    since: float
    count: int = 0
    kind: str = ""  # the last error's class
    error: str = ""  # the last error's message
    logged_at: float = -math.inf


class WatchHealth:
    def __init__(
        self,
        metrics: ProducerMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._failing: dict[WatchId, Failing] = {}

    def failed(self, watch: WatchId, exc: BaseException) -> Failing | None:
        """Count a failure; the watch's state if it should be logged now, else None.

        Logged: the first failure, a failure of another kind, then once per LOG_EVERY_S.
        """
        now = self._clock()
        failing = self._failing.setdefault(watch, Failing(since=now))
        failing.count += 1
        kind = type(exc).__name__
        changed, failing.kind, failing.error = kind != failing.kind, kind, str(exc)
        self._gauge(watch[0])
        if changed or now - failing.logged_at >= LOG_EVERY_S:
            failing.logged_at = now
            return failing
        return None

    def succeeded(self, watch: WatchId) -> Failing | None:
        """The watch works again; how it was failing, if it was (to log the recovery)."""
        failing = self._failing.pop(watch, None)
        if failing is not None:
            self._gauge(watch[0])
        return failing

    def elapsed(self, failing: Failing) -> float:
        return self._clock() - failing.since

    def stuck(self) -> list[str]:
        """One reason per watch that failed STUCK_AFTER times in a row, for /readyz."""
        return [
            f"watch of {_name(watch)} failing ({failing.count} tries): {failing.error}"
            for watch, failing in sorted(self._failing.items(), key=lambda i: _name(i[0]))
            if failing.count >= STUCK_AFTER
        ]

    def clear(self) -> None:
        """Forget every watch (a new term starts its watches afresh)."""
        resources = {watch[0] for watch in self._failing}
        self._failing.clear()
        for resource in resources:
            self._gauge(resource)

    def _gauge(self, resource: Resource) -> None:
        if self._metrics is not None:
            counts = [f.count for w, f in self._failing.items() if w[0] is resource]
            self._metrics.watch_failures.labels(resource.value).set(max(counts, default=0))


def _name(watch: WatchId) -> str:
    resource, namespace = watch
    return f"{resource.value} in {namespace}" if namespace else resource.value
