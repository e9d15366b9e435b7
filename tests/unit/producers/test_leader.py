from __future__ import annotations

import copy
from dataclasses import dataclass

from producers import leader
from producers.kubeapi import errors
from schemas.config import LeaderSettings
from schemas.objects import KubeObject

SETTINGS = LeaderSettings(enabled=True, lease_duration_s=15, renew_deadline_s=10, retry_period_s=2)


@dataclass
class MemoryLeaseStore:
    """A Lease with the API server's optimistic concurrency (resourceVersion)."""

    lease: KubeObject | None = None
    version: int = 0

    async def get(self) -> KubeObject | None:
        return copy.deepcopy(self.lease)

    async def create(self, lease: KubeObject) -> KubeObject:
        if self.lease is not None:
            raise errors.Conflict("exists", status=409)
        return self._store(lease)

    async def replace(self, lease: KubeObject) -> KubeObject:
        assert self.lease is not None
        if lease["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise errors.Conflict("conflict", status=409)
        return self._store(lease)

    def _store(self, lease: KubeObject) -> KubeObject:
        self.version += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_first_candidate_creates_the_lease_and_the_second_waits() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    a = leader.Elector(store, SETTINGS, identity="a", clock=clock)
    b = leader.Elector(store, SETTINGS, identity="b", clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "a"
    assert store.lease["spec"]["leaseDurationSeconds"] == 15


async def test_a_standby_takes_over_once_the_lease_stops_changing_for_its_duration() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    a = leader.Elector(store, SETTINGS, identity="a", clock=clock)
    b = leader.Elector(store, SETTINGS, identity="b", clock=clock)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # observes a's record now
    clock.now += 14
    assert not await b.try_acquire_or_renew()
    clock.now += 2  # 16 s without a renewal: expired by b's own clock
    assert await b.try_acquire_or_renew()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1
    assert not await a.try_acquire_or_renew()
    assert not a.is_leader


async def test_renewals_keep_a_standby_out() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    a = leader.Elector(store, SETTINGS, identity="a", clock=clock)
    b = leader.Elector(store, SETTINGS, identity="b", clock=clock)
    await a.try_acquire_or_renew()
    for _ in range(10):
        clock.now += 5
        # renewTime has microseconds; make each renewal a visible change
        store.lease["spec"]["renewTime"] = f"t{clock.now}"  # type: ignore[index]
        assert not await b.try_acquire_or_renew()


async def test_release_lets_a_standby_in_at_once() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    a = leader.Elector(store, SETTINGS, identity="a", clock=clock)
    b = leader.Elector(store, SETTINGS, identity="b", clock=clock)
    await a.try_acquire_or_renew()
    await a.release()
    assert await b.try_acquire_or_renew()


async def test_a_concurrent_write_is_a_lost_round_not_an_error() -> None:
    store, clock = MemoryLeaseStore(), Clock()
    a = leader.Elector(store, SETTINGS, identity="a", clock=clock)
    await a.try_acquire_or_renew()
    original = store.replace

    async def racing(lease: KubeObject) -> KubeObject:
        raise errors.Conflict("raced", status=409)

    store.replace = racing  # type: ignore[method-assign]
    assert not await a.try_acquire_or_renew()
    store.replace = original  # type: ignore[method-assign]
