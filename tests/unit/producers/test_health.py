from __future__ import annotations

from prometheus_client import CollectorRegistry

from producers import health, producer_metrics
from producers.kubeapi import errors
from schemas.topics import Resource

PODS = (Resource.PODS, None)
SERVICES = (Resource.SERVICES, "shop")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_watch_failing_in_a_row_is_stuck_until_it_works() -> None:
    registry = CollectorRegistry()
    watches = health.WatchHealth(producer_metrics.create(registry), clock=Clock())
    bad = errors.Invalid("list pods: HTTP 400: unable to parse requirement", status=400)
    for _ in range(health.STUCK_AFTER - 1):
        watches.failed(PODS, bad)
    assert watches.stuck() == []
    watches.failed(PODS, bad)
    watches.failed(SERVICES, errors.ServerError("boom"))
    assert watches.stuck() == [
        "watch of pods failing (3 tries): list pods: HTTP 400: unable to parse requirement"
    ]
    assert registry.get_sample_value("sdstream_producer_watch_failures", {"resource": "pods"}) == 3

    failing = watches.succeeded(PODS)
    assert failing is not None
    assert failing.count == 3
    assert watches.stuck() == []
    assert registry.get_sample_value("sdstream_producer_watch_failures", {"resource": "pods"}) == 0
    assert watches.succeeded(PODS) is None


def test_the_same_error_is_logged_once_per_backoff_period() -> None:
    clock = Clock()
    watches = health.WatchHealth(clock=clock)
    bad = errors.Invalid("HTTP 400", status=400)
    logged = []
    for second in range(0, 95, 1):
        clock.now = float(second)
        logged.append(watches.failed(PODS, bad) is not None)
    assert [s for s, log in enumerate(logged) if log] == [0, 30, 60, 90]
    clock.now = 91.0
    assert watches.failed(PODS, errors.ServerError("other")) is not None  # another kind: now


def test_clear_forgets_every_watch() -> None:
    registry = CollectorRegistry()
    watches = health.WatchHealth(producer_metrics.create(registry))
    for _ in range(5):
        watches.failed(SERVICES, errors.ServerError("boom"))
    watches.clear()
    assert watches.stuck() == []
    assert (
        registry.get_sample_value("sdstream_producer_watch_failures", {"resource": "services"}) == 0
    )
