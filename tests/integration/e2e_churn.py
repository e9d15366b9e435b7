"""Steady churn in one namespace, remembered, so a test can tell what must have survived.

Restart tests need changes that keep coming while a component is down, and a record of
every object's life (created, deleted, when) to check afterwards that each delete reached
the targets topic. The churn creates, relabels and deletes pods, keeps one Endpoints and
one EndpointSlice listing the live pods, and every few steps replaces an extra Endpoints +
EndpointSlice pair (so those kinds are deleted too).

It deletes only objects the pipeline has already published (`observe`, called before
each step, reports the sources our HTTP SD serves, and nothing while it is down): an
object created and deleted while a component is down is legitimately never published,
and would make "every delete has a tombstone" unprovable. Deletes of published objects
go on during every restart, which is the point.

API calls run in a worker thread: the kubernetes client blocks, and the producer and
consumer share this event loop. Names are never reused, so a key's last record on a
topic belongs to one object.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from tests.integration import objects

MERGE = "application/merge-patch+json"
PORT = {"name": "http", "port": 8080, "protocol": "TCP"}
Observe = Callable[[], Awaitable[set[str]]]


@dataclass
class Life:
    """One object's life, by its Prometheus group source (`pod/ns/name`, ...)."""

    source: str
    created: float  # time.monotonic()
    deleted: float | None = None


class Churn:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        *,
        observe: Observe,
        pace_s: float = 0.1,
        seed: int = 7,
    ) -> None:
        self.api, self.ns = api, namespace
        self.observe, self.pace_s = observe, pace_s
        self.observed: set[str] = set()  # sources ever served by HTTP SD
        self.steps = 0
        self.lives: dict[str, Life] = {}
        self.live_pods: dict[str, str] = {}  # name -> IP
        self.error: BaseException | None = None
        self._rng = random.Random(seed)
        self._pods = 0
        self._extra: str | None = None
        self._core = client.CoreV1Api(api)
        self._disc = client.DiscoveryV1Api(api)

    # --- driving -----------------------------------------------------------------------

    def setup(self) -> None:
        """The Service, Endpoints and EndpointSlice the churn keeps up to date."""
        objects.create_service(self.api, self.ns, "churn", ports=[PORT], selector={"app": "c"})
        objects.create_endpoints(self.api, self.ns, "churn", subsets=[])
        objects.create_endpointslice(
            self.api, self.ns, "churn-x", service="churn", endpoints=[], ports=[PORT]
        )
        self._born(f"endpoints/{self.ns}/churn")
        self._born(f"endpointslice/{self.ns}/churn-x")
        for _ in range(4):
            self._create_pod()
        self._sync_endpoints()

    async def run(self, stop: asyncio.Event) -> None:
        """One step every `pace_s` until `stop` is set; an error is kept for `advance`."""
        try:
            while not stop.is_set():
                self.observed |= await self.observe()
                await asyncio.to_thread(self._step)
                self.steps += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.pace_s)  # the pacing itself
        except Exception as exc:
            self.error = exc
            raise

    async def advance(self, steps: int, *, timeout_s: float = 60) -> None:
        """Wait until `steps` more steps are done."""
        target = self.steps + steps
        async with asyncio.timeout(timeout_s):
            while self.steps < target:
                assert self.error is None, f"churn failed: {self.error!r}"
                await asyncio.sleep(0.05)

    def deleted(self) -> list[Life]:
        return [life for life in self.lives.values() if life.deleted is not None]

    def created_since(self, moment: float) -> set[str]:
        """Names of pods created after `moment` (monotonic)."""
        prefix = f"pod/{self.ns}/"
        return {source.removeprefix(prefix) for source, life in self.lives.items()
                if source.startswith(prefix) and life.created > moment}  # fmt: skip

    # --- one step ----------------------------------------------------------------------

    def _step(self) -> None:
        old = [name for name in self.live_pods if f"pod/{self.ns}/{name}" in self.observed]
        roll = self._rng.random()
        if len(self.live_pods) < 4 or roll < 0.4:
            self._create_pod()
        elif roll < 0.65:
            name = self._rng.choice(sorted(self.live_pods))
            labels = {"rev": str(self.steps)}
            self._core.patch_namespaced_pod(
                name, self.ns, {"metadata": {"labels": labels}}, _content_type=MERGE
            )
        elif old:
            name = self._rng.choice(sorted(old))
            objects.delete_pod(self.api, self.ns, name)
            del self.live_pods[name]
            self._died(f"pod/{self.ns}/{name}")
        else:
            self._create_pod()
        self._sync_endpoints()
        if self.steps % 8 == 0 and self._extra_published():
            self._replace_extra()

    def _create_pod(self) -> None:
        n = self._pods
        self._pods += 1
        name, ip = f"p{n}", f"10.244.{20 + n // 250}.{n % 250 + 1}"
        self._born(f"pod/{self.ns}/{name}")
        objects.create_pod(self.api, self.ns, name, ip=ip, node="node-1", labels={"app": "c"})
        self.live_pods[name] = ip

    def _sync_endpoints(self) -> None:
        pods = sorted(self.live_pods.items())
        refs = [{"kind": "Pod", "namespace": self.ns, "name": name} for name, _ in pods]
        addresses = [{"ip": ip, "targetRef": ref} for (_, ip), ref in zip(pods, refs, strict=True)]
        subsets: list[dict[str, Any]] = [{"addresses": addresses, "ports": [PORT]}] if pods else []
        self._core.patch_namespaced_endpoints(
            "churn", self.ns, {"subsets": subsets}, _content_type=MERGE
        )
        endpoints = [{"addresses": [ip], "conditions": {"ready": True}, "targetRef": ref}
                     for (_, ip), ref in zip(pods, refs, strict=True)]  # fmt: skip
        self._disc.patch_namespaced_endpoint_slice(
            "churn-x", self.ns, {"endpoints": endpoints}, _content_type=MERGE
        )

    def _extra_published(self) -> bool:
        kinds = ("endpoints", "endpointslice")
        return self._extra is None or all(
            f"{kind}/{self.ns}/{self._extra}" in self.observed for kind in kinds
        )

    def _replace_extra(self) -> None:
        name = f"extra-{self.steps}"
        ip = f"10.244.99.{self.steps % 250 + 1}"
        self._born(f"endpoints/{self.ns}/{name}")
        self._born(f"endpointslice/{self.ns}/{name}")
        objects.create_endpoints(
            self.api, self.ns, name, subsets=[{"addresses": [{"ip": ip}], "ports": [PORT]}]
        )
        objects.create_endpointslice(self.api, self.ns, name, service=name, ports=[PORT],
                                     endpoints=[{"addresses": [ip]}])  # fmt: skip
        if self._extra is not None:
            self._core.delete_namespaced_endpoints(self._extra, self.ns)
            self._disc.delete_namespaced_endpoint_slice(self._extra, self.ns)
            self._died(f"endpoints/{self.ns}/{self._extra}")
            self._died(f"endpointslice/{self.ns}/{self._extra}")
        self._extra = name

    def _born(self, source: str) -> None:
        self.lives[source] = Life(source, created=time.monotonic())

    def _died(self, source: str) -> None:
        self.lives[source].deleted = time.monotonic()
