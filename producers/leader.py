"""Kubernetes Lease leader election (coordination.k8s.io/v1), as client-go does it.

One replica holds the Lease and renews it every `retry_period_s`; the others
poll it. A Lease counts as expired when its record has not changed for
`lease_duration_s` by the *local* clock (no trust in remote timestamps). A
leader that cannot renew within `renew_deadline_s` raises `LostLease` at once,
so the caller cancels its writers before a standby can take over. On a clean
stop the leader releases the Lease so a standby takes over immediately.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from producers.kubeapi import errors
from producers.kubeapi.api import LEASES, KubeApi
from schemas.config import LeaderSettings
from schemas.objects import KubeObject

logger = logging.getLogger(__name__)


class LostLease(Exception):
    retriable: ClassVar[bool] = True


class LeaseStore(Protocol):
    async def get(self) -> KubeObject | None: ...

    async def create(self, lease: KubeObject) -> KubeObject: ...

    async def replace(self, lease: KubeObject) -> KubeObject: ...


class KubeLeaseStore:
    """One Lease object through the API server; 409 and 404 become None/Conflict."""

    def __init__(self, api: KubeApi, *, namespace: str, name: str) -> None:
        self._api = api
        self._collection = f"{LEASES}/namespaces/{namespace}/leases"
        self._name = name

    async def get(self) -> KubeObject | None:
        try:
            return await self._api.request(
                "GET", f"{self._collection}/{self._name}", verb="get", what="leases"
            )
        except errors.NotFound:
            return None

    async def create(self, lease: KubeObject) -> KubeObject:
        return await self._api.request(
            "POST", self._collection, body=lease, verb="create", what="leases"
        )

    async def replace(self, lease: KubeObject) -> KubeObject:
        path = f"{self._collection}/{self._name}"
        return await self._api.request("PUT", path, body=lease, verb="update", what="leases")


def _micro_time(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Observed:
    record: tuple[Any, ...] | None = None
    at: float = 0.0


class Elector:
    def __init__(
        self,
        store: LeaseStore,
        settings: LeaderSettings,
        *,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._settings = settings
        self.identity = identity
        self._clock = clock
        self._observed = Observed()
        self.is_leader = False

    async def try_acquire_or_renew(self) -> bool:
        """One round: True if we hold the Lease afterwards."""
        try:
            self.is_leader = await self._round()
        except errors.Conflict:
            self.is_leader = False
        return self.is_leader

    async def acquire(self) -> bool:
        """True once we hold the Lease (API errors are logged and retried)."""
        while True:
            try:
                if await self.try_acquire_or_renew():
                    logger.info("Acquired lease as %s.", self.identity, extra={"id": self.identity})
                    return True
            except errors.ApiError as exc:
                logger.warning("Leader election: %s", exc, extra={"error": type(exc).__name__})
            await asyncio.sleep(self._settings.retry_period_s)

    async def hold(self) -> None:
        """Renew until cancelled; LostLease as soon as renewing fails past the deadline."""
        last_renewed = self._clock()
        while True:
            await asyncio.sleep(self._settings.retry_period_s)
            try:
                renewed = await self.try_acquire_or_renew()
            except errors.ApiError as exc:
                logger.warning("Renewing the lease: %s", exc, extra={"error": type(exc).__name__})
                renewed = False
            if renewed:
                last_renewed = self._clock()
            elif (
                not self.is_leader or self._clock() - last_renewed > self._settings.renew_deadline_s
            ):
                self.is_leader = False
                raise LostLease(f"{self.identity} lost the lease")

    async def release(self) -> None:
        """Give the Lease up (holder cleared, 1 s duration) so a standby need not wait."""
        if not self.is_leader:
            return
        lease = await self._store.get()
        if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
            return
        lease["spec"] = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1}
        try:
            await self._store.replace(lease)
        except errors.ApiError as exc:
            logger.warning("Releasing the lease: %s", exc)
        self.is_leader = False

    async def _round(self) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        lease = await self._store.get()
        if lease is None:
            await self._store.create(self._lease({"metadata": self._meta()}, now, transitions=0))
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        if record != self._observed.record:
            self._observed = Observed(record, self._clock())
        duration = spec.get("leaseDurationSeconds") or self._settings.lease_duration_s
        held_by_other = holder not in ("", self.identity)
        if held_by_other and self._clock() - self._observed.at < duration:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        updated = await self._store.replace(self._lease(lease, now, transitions=transitions))
        spec = updated.get("spec") or {}
        self._observed = Observed(
            (self.identity, spec.get("renewTime"), spec.get("leaseDurationSeconds")), self._clock()
        )
        return True

    def _meta(self) -> dict[str, str]:
        return {"name": self._settings.name, "namespace": self._settings.namespace}

    def _lease(self, base: KubeObject, now: datetime.datetime, *, transitions: int) -> KubeObject:
        spec = dict(base.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = _micro_time(now)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=round(self._settings.lease_duration_s),
            renewTime=_micro_time(now),
            leaseTransitions=transitions,
        )
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": base["metadata"],
            "spec": spec,
        }
