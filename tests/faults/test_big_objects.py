"""One object too large for a Kafka record (issue 13, case 2).

A pod whose container `image` is 1.2 MiB (the API server caps annotations at 256 KiB,
not images) used to make the producer re-list pods with backoff forever: no other pod
of the cluster was published, and /readyz said 200. Now it is skipped and counted, the
stream goes on, it is published once it shrinks, and nothing of it remains once deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from kubernetes import client
from prometheus_client import CollectorRegistry

from schemas import events
from schemas.config import HttpSettings, ProducerSettings
from schemas.topics import Resource, object_topic
from sdstream import produce
from tests.integration import e2e_pipeline as e2e
from tests.integration import kafka_helpers, objects
from tests.integration.test_producer_process import free_port, get

HUGE_IMAGE = "registry.example.com/" + "x" * (1_200 * 1024) + ":1"  # 1.2 MiB
TOO_LARGE = b'sdstream_producer_skipped_objects_total{reason="too_large",resource="pods"}'


@contextlib.asynccontextmanager
async def producing(settings: ProducerSettings) -> AsyncIterator[int]:
    """`sdstream produce` in-process (HTTP included); its port, once /readyz says 200."""
    stop = asyncio.Event()
    task = asyncio.create_task(produce.run(settings, stop=stop, registry=CollectorRegistry()))
    try:
        async with asyncio.timeout(60):
            while not task.done():
                with contextlib.suppress(OSError):
                    if (await get(settings.http.port, "/readyz"))[0] == 200:
                        break
                await asyncio.sleep(0.2)
        assert not task.done(), task.result()
        yield settings.http.port
    finally:
        stop.set()
        async with asyncio.timeout(30):
            assert await task == 0


async def latest_until(
    bootstrap: str, topic: str, done: Callable[[dict[str, bytes | None]], bool]
) -> dict[str, bytes | None]:
    """The topic as compaction leaves it (latest value per key), once `done` holds."""
    async with asyncio.timeout(30):
        while True:
            records = await kafka_helpers.read_all(bootstrap, topic)
            latest = {r.key.decode(): r.value for r in records if r.key is not None}
            if done(latest):
                return latest
            await asyncio.sleep(0.2)


def image(value: bytes | None) -> str:
    assert value is not None
    return str(events.decode(value).object["spec"]["containers"][0]["image"])


def set_image(api: client.ApiClient, namespace: str, name: str, value: str) -> None:
    patch = {"spec": {"containers": [{"name": "app", "image": value}]}}
    client.CoreV1Api(api).patch_namespaced_pod(name, namespace, patch)


def pods_producer(
    kafka_bootstrap: str, kubeconfig: Path, namespace: str, topic_prefix: str
) -> ProducerSettings:
    return e2e.producer_settings(
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        kubeconfig=kubeconfig,
        namespace=namespace,
        resources=(Resource.PODS,),
        http=HttpSettings(port=free_port()),
    )


async def test_a_pod_too_large_for_kafka_is_skipped_and_the_rest_flows(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    settings = pods_producer(kafka_bootstrap, kubeconfig, namespace, topic_prefix)
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    huge, a, b = (f"{namespace}/{n}" for n in ("huge", "a", "b"))
    big = objects.container("app", ("http", 8080, "TCP")) | {"image": HUGE_IMAGE}
    objects.create_pod(kube_api, namespace, "huge", ip="10.244.9.1", node="n", containers=[big])
    objects.create_pod(kube_api, namespace, "a", ip="10.244.9.2", node="n")

    async with producing(settings) as port:
        await latest_until(kafka_bootstrap, topic, lambda t: a in t)
        objects.create_pod(kube_api, namespace, "b", ip="10.244.9.3", node="n")
        objects.delete_pod(kube_api, namespace, "a")
        latest = await latest_until(kafka_bootstrap, topic, lambda t: b in t and t[a] is None)
        assert huge not in latest
        _, metrics = await get(port, "/metrics")
        assert TOO_LARGE + b" 1.0" in metrics
        assert (await get(port, "/readyz"))[0] == 200

        set_image(kube_api, namespace, "huge", "example/app:2")  # shrinks: published
        latest = await latest_until(kafka_bootstrap, topic, lambda t: t.get(huge) is not None)
        assert image(latest[huge]) == "example/app:2"

        set_image(kube_api, namespace, "huge", HUGE_IMAGE)  # grows again: no stale record
        await latest_until(kafka_bootstrap, topic, lambda t: huge in t and t[huge] is None)
        _, metrics = await get(port, "/metrics")
        assert TOO_LARGE + b" 2.0" in metrics

        set_image(kube_api, namespace, "huge", "example/app:3")
        await latest_until(kafka_bootstrap, topic, lambda t: t.get(huge) is not None)
        objects.delete_pod(kube_api, namespace, "huge")
        latest = await latest_until(kafka_bootstrap, topic, lambda t: t[huge] is None)

    assert {key for key, value in latest.items() if value is not None} == {b}


async def test_a_topic_with_a_lower_max_message_bytes_lowers_the_record_limit(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    """Kafka refusing a record would wedge the idempotent producer's partition
    (OutOfOrderSequenceNumber for every later record): the producer reads each topic's
    max.message.bytes at start and skips what would not fit, before sending it."""
    settings = pods_producer(kafka_bootstrap, kubeconfig, namespace, topic_prefix)
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    limits = {"cleanup.policy": "compact", "max.message.bytes": "20000"}
    await kafka_helpers.create_topic(kafka_bootstrap, topic, partitions=2, configs=limits)
    noisy = objects.container("app") | {"image": os.urandom(30_000).hex()}  # zstd can't shrink
    objects.create_pod(kube_api, namespace, "big", ip="10.244.9.4", node="n", containers=[noisy])
    objects.create_pod(kube_api, namespace, "a", ip="10.244.9.5", node="n")

    async with producing(settings) as port:
        objects.create_pod(kube_api, namespace, "b", ip="10.244.9.6", node="n")
        done = {f"{namespace}/a", f"{namespace}/b"}
        latest = await latest_until(kafka_bootstrap, topic, lambda t: done <= set(t))
        assert f"{namespace}/big" not in latest
        _, metrics = await get(port, "/metrics")
        assert TOO_LARGE + b" 1.0" in metrics
        assert b'relists_total{reason="publish",resource="pods"}' not in metrics
        assert b"sdstream_producer_errors_total{" not in metrics


async def set_topic_configs(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()


async def counted(port: int, sample: bytes) -> float:
    """The value of `sample` (name and labels) on /metrics, 0 while absent."""
    for line in (await get(port, "/metrics"))[1].splitlines():
        if line.startswith(sample + b" "):
            return float(line.split()[-1])
    return 0.0


async def metric_until(port: int, sample: bytes) -> None:
    async with asyncio.timeout(60):
        while not await counted(port, sample):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_a_topic_limit_lowered_at_run_time_restarts_the_kafka_producer(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    """The broker refuses a record: counted, then a new Kafka producer (the refused batch
    broke the old one's sequence) that knows the new limit and skips it before sending."""
    settings = pods_producer(kafka_bootstrap, kubeconfig, namespace, topic_prefix)
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    objects.create_pod(kube_api, namespace, "a", ip="10.244.9.7", node="n")

    async with producing(settings) as port:
        await latest_until(kafka_bootstrap, topic, lambda t: f"{namespace}/a" in t)
        limits = {"cleanup.policy": "compact", "max.message.bytes": "20000"}
        await set_topic_configs(kafka_bootstrap, topic, limits)
        noisy = objects.container("app") | {"image": os.urandom(30_000).hex()}
        objects.create_pod(kube_api, namespace, "big", ip="10.244.9.8", node="n",
                           containers=[noisy])  # fmt: skip
        # Counted (once per record of it sent before the restart), then skipped before
        # sending by the new producer's listing.
        await metric_until(
            port, b'sdstream_producer_skipped_objects_total{reason="rejected",resource="pods"}'
        )
        await metric_until(port, TOO_LARGE)

        objects.create_pod(kube_api, namespace, "c", ip="10.244.9.9", node="n")
        latest = await latest_until(kafka_bootstrap, topic, lambda t: f"{namespace}/c" in t)
        assert f"{namespace}/big" not in latest
