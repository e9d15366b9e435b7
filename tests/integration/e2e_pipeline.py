"""The whole pipeline in one test process, and Prometheus's own discovery as the judge.

End-to-end tests need a producer and a consumer they can stop and start again in the
middle of a run (a context manager cannot be restarted), so both are wrapped here as
start/stop handles around the same in-process entry points the component tests use.
The oracle is promtool, run concurrently (each call lasts its whole `--timeout`):
`kubernetes_sd` against the API server, and `http_sd` against our own endpoint, so
the two discoveries are compared by the same Prometheus code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from kubernetes import client
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.runner import Producer
from schemas.config import (
    ConsumerSettings,
    HttpSettings,
    KafkaSettings,
    KubeSettings,
    ProducerSettings,
)
from schemas.sd_config import ScrapeJob
from sdstream import consume
from tests.integration import promtool as oracle
from tests.unit.consumers.sinks.http_client import fetch

Entries = list[dict[str, Any]]
Targets = Counter[oracle.Target]
SdConfig = dict[str, Any]
PARTITIONS = 2  # few partitions: topics are created per test, and faster on 2 cores
# promtool waits out its whole timeout and reports only what it found by then. With 3 s,
# one run on a loaded 2-core machine (load average 12, a dozen promtools side by side)
# failed in its first comparison (not reproduced in 7 runs since): 5 s leaves room.
PROMTOOL_TIMEOUT = "5s"


@dataclass(frozen=True)
class Env:
    """The session's servers, as one fixture: Kafka, the API server and promtool."""

    kafka_bootstrap: str
    kubeconfig: Path
    kube_api: client.ApiClient
    promtool: Path


def producer_settings(
    *,
    cluster: str = "c1",
    bootstrap: str,
    prefix: str,
    kubeconfig: Path,
    namespace: str,
    **fields: Any,
) -> ProducerSettings:
    """A producer of `namespace` on the test servers; `fields` add or replace settings."""
    return ProducerSettings(
        **{
            "cluster": cluster,
            "namespaces": (namespace,),
            "partitions": PARTITIONS,
            "kafka": KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
            "kube": KubeSettings(kubeconfig=kubeconfig),
            "http": HttpSettings(port=0),
            **fields,
        }
    )


def consumer_settings(
    *, bootstrap: str, prefix: str, jobs: Mapping[str, SdConfig], group: str
) -> ConsumerSettings:
    """One job per entry of `jobs` (job name -> one kubernetes_sd_configs entry)."""
    scrape = [{"job_name": name, "kubernetes_sd_configs": [sd]} for name, sd in jobs.items()]
    return ConsumerSettings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        scrape_configs=tuple(ScrapeJob.model_validate(job) for job in scrape),
        http=HttpSettings(port=0),
        group_id=group,
        targets_partitions=PARTITIONS,
    )


async def wait_for(condition: Callable[[], bool], *, what: str, timeout_s: float = 60) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():  # noqa: ASYNC110 - the state of other tasks
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s:.0f}s: {what}") from None


class RunningProducer:
    """`sdstream produce` in-process; `start` returns once every initial list is published."""

    def __init__(self, settings: ProducerSettings) -> None:
        self.settings = settings
        self._task: asyncio.Task[int] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        producer = Producer(self.settings, producer_metrics.create(CollectorRegistry()))
        self._stop = asyncio.Event()
        task = self._task = asyncio.create_task(producer.run(self._stop))
        await wait_for(lambda: producer.readiness.ready or task.done(),
                       what=f"producer {self.settings.cluster} ready")  # fmt: skip
        assert not task.done(), f"producer exited: {task.result()}"

    async def stop(self) -> None:
        """A clean stop, as on SIGTERM: watches stop, buffered records are flushed."""
        if self._task is not None:
            self._stop.set()
            assert await self._task == 0
            self._task = None


class RunningConsumer:
    """`sdstream consume` in-process (fold and sinks), HTTP on an ephemeral port."""

    def __init__(self, settings: ConsumerSettings) -> None:
        self.settings = settings
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self.registry = CollectorRegistry()  # the running one's (a new one at each start)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self.registry = CollectorRegistry()
        self._task = asyncio.create_task(
            consume.serve(self.settings, registry=self.registry, on_started=started.set_result)
        )
        async with asyncio.timeout(60):
            self.address = await asyncio.shield(started)
            while (await fetch(self.address, path="/readyz")).status != 200:
                assert not self._task.done(), self._task.result()
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def url(self, job: str, query: str = "") -> str:
        return f"http://{self.address[0]}:{self.address[1]}/http_sd/{job}{query}"

    async def entries(self, job: str, query: str = "") -> Entries:
        reply = await fetch(self.address, path=f"/http_sd/{job}{query}")
        assert reply.status == 200, reply
        found: Entries = orjson.loads(reply.body)
        return found


@contextlib.asynccontextmanager
async def running(*handles: RunningProducer | RunningConsumer) -> AsyncIterator[None]:
    """Start the handles in order; stop them in reverse, even when the test fails."""
    started: list[RunningProducer | RunningConsumer] = []
    try:
        for handle in handles:
            await handle.start()
            started.append(handle)
        yield
    finally:
        for handle in reversed(started):
            await handle.stop()


# --- promtool --------------------------------------------------------------------------


async def promtool_sd(promtool: Path, job: Mapping[str, Any], tmp_path: Path) -> Targets:
    """What promtool's `check service-discovery` finds for one job, as comparable targets.
    Async, so several calls (3 s each, mostly idle) run side by side."""
    config = tmp_path / f"prometheus-{uuid.uuid4().hex[:8]}.yml"
    config.write_text(json.dumps({"scrape_configs": [{**job, "job_name": "oracle"}]}))
    proc = await asyncio.create_subprocess_exec(
        promtool, "check", "service-discovery", config, "oracle", f"--timeout={PROMTOOL_TIMEOUT}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return Counter(oracle.comparable(t["discoveredLabels"]) for t in json.loads(out))


async def kubernetes_sd(
    promtool: Path, sd_config: SdConfig, *, kubeconfig: Path, tmp_path: Path
) -> Targets:
    """Prometheus's kubernetes_sd of the API server behind `kubeconfig`."""
    sd = {**sd_config, "kubeconfig_file": str(kubeconfig)}
    return await promtool_sd(promtool, {"kubernetes_sd_configs": [sd]}, tmp_path)


async def http_sd(promtool: Path, url: str, *, tmp_path: Path) -> Targets:
    """Prometheus's http_sd of `url` (our endpoint), without the `__meta_url` label that
    http_sd adds to every target itself."""
    found = await promtool_sd(promtool, {"http_sd_configs": [{"url": url}]}, tmp_path)
    return Counter(
        frozenset((k, v) for k, v in target if k != "__meta_url") for target in found.elements()
    )


async def gather(calls: Mapping[str, Any]) -> dict[str, Targets]:
    """Run awaitables keyed by name side by side; their results by the same names."""
    names = list(calls)
    results = await asyncio.gather(*(calls[n] for n in names))
    return dict(zip(names, results, strict=True))


# --- convergence -------------------------------------------------------------------------


def diff(ours: Targets, expected: Targets) -> str:
    missing, extra = expected - ours, ours - expected
    lines = [f"missing {sorted(t)}" for t in missing] + [f"extra {sorted(t)}" for t in extra]
    return "\n".join(lines[:20])


async def converge(
    consumer: RunningConsumer,
    job: str,
    expected: Targets,
    *,
    query: str = "",
    timeout_s: float = 60,
) -> Entries:
    """Poll our HTTP SD until its targets are `expected`; fail with the difference."""
    entries: Entries = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                reply = await fetch(consumer.address, path=f"/http_sd/{job}{query}")
                if reply.status == 200:
                    entries = orjson.loads(reply.body)
                    if oracle.http_sd_targets(entries) == expected:
                        return entries
                await asyncio.sleep(0.1)
    except TimeoutError:
        ours = oracle.http_sd_targets(entries)
        raise AssertionError(
            f"job {job}{query}: HTTP SD did not reach promtool's discovery within "
            f"{timeout_s:.0f}s:\n{diff(ours, expected)}"
        ) from None


def clusters_of(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    return {entry["labels"].get("cluster", "<none>") for entry in entries}
