"""The watch producer against the real kube-apiserver and the real Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.kubeapi import auth, errors
from producers.kubeapi.api import Page, Scope, WatchEvent
from producers.runner import Producer
from producers.watcher import ObjectSource
from schemas import events
from schemas.config import (
    KubeSettings,
    LeaderSettings,
    ProducerSettings,
)
from schemas.topics import ObjectKey, Resource, object_topic, partition_for
from tests.integration import e2e_pipeline as e2e
from tests.integration import kafka_helpers, objects
from tests.naming import unique

NAMESPACED = (
    Resource.PODS,
    Resource.SERVICES,
    Resource.ENDPOINTS,
    Resource.ENDPOINTSLICES,
    Resource.INGRESSES,
)
PARTITIONS = 3
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def settings_for(
    kafka_bootstrap: str,
    kubeconfig: Path,
    *,
    prefix: str,
    namespace: str,
    resources: tuple[Resource, ...] = NAMESPACED,
) -> ProducerSettings:
    return e2e.producer_settings(
        bootstrap=kafka_bootstrap,
        prefix=prefix,
        kubeconfig=kubeconfig,
        namespace=namespace,
        resources=resources,
        partitions=PARTITIONS,
    )


@dataclass
class Running:
    producer: Producer
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def running(settings: ProducerSettings, **seams: Any) -> AsyncIterator[Running]:
    registry = CollectorRegistry()
    producer = Producer(settings, producer_metrics.create(registry), **seams)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        await wait_for(lambda: producer.readiness.ready or task.done())
        assert not task.done(), task.result()
        yield Running(producer, registry)
    finally:
        stop.set()
        assert await task == 0


async def wait_for(condition: Callable[[], bool], *, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110  # state of other tasks and processes
            await asyncio.sleep(0.05)


async def records_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[kafka_helpers.Record]], bool],
    *,
    timeout_s: float = 30,
) -> list[kafka_helpers.Record]:
    async with asyncio.timeout(timeout_s):
        while not done(records := await kafka_helpers.read_all(bootstrap, topic)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return records


def header(record: kafka_helpers.Record, name: str) -> str:
    return dict(record.headers)[name].decode()


def keys(records: list[kafka_helpers.Record]) -> list[str]:
    return [r.key.decode() for r in records if r.key is not None]


def seed(api: client.ApiClient, namespace: str) -> None:
    node = unique("node")
    objects.create_node(api, node, address="10.1.0.11")
    objects.create_pod(api, namespace, "web-0", ip="10.244.1.7", node=node)
    objects.create_service(
        api, namespace, "web", ports=[{"name": "http", "port": 80, "protocol": "TCP"}]
    )
    objects.create_endpointslice(
        api,
        namespace,
        "web-abc",
        service="web",
        endpoints=[{"addresses": ["10.244.1.7"], "conditions": {"ready": True}}],
        ports=[{"name": "http", "port": 8080, "protocol": "TCP"}],
    )
    objects.create_ingress(api, namespace, "web", spec={"rules": [{"host": "web.example.com"}]})


async def test_initial_list_is_published_with_keys_partitions_and_headers(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    seed(kube_api, namespace)
    core = client.CoreV1Api(kube_api)
    core.patch_namespaced_service(
        "web", namespace, {"metadata": {"annotations": {LAST_APPLIED: "{}", "keep": "me"}}}
    )
    settings = settings_for(kafka_bootstrap, kubeconfig, prefix=topic_prefix, namespace=namespace)

    async with running(settings) as run:
        assert run.sample("sdstream_producer_ready", resource="pods") == 1

    for resource, name in [
        (Resource.PODS, "web-0"),
        (Resource.SERVICES, "web"),
        (Resource.ENDPOINTSLICES, "web-abc"),
        (Resource.INGRESSES, "web"),
    ]:
        topic = object_topic(topic_prefix, "c1", resource)
        (record,) = await kafka_helpers.read_all(kafka_bootstrap, topic)
        key = f"{namespace}/{name}"
        assert record.key == key.encode()
        assert record.partition == partition_for(ObjectKey(key), PARTITIONS)
        assert header(record, events.HEADER_EVENT) == "ADDED"
        assert header(record, events.HEADER_CLUSTER) == "c1"
        assert header(record, events.HEADER_RESOURCE) == resource.value
        assert header(record, events.HEADER_SCHEMA) == str(events.SCHEMA_VERSION)
        assert record.value is not None
        event = events.decode(record.value)
        assert (event.cluster, event.resource, event.type) == ("c1", resource, "ADDED")
        assert event.resource_version == header(record, events.HEADER_RESOURCE_VERSION)
        assert event.object["metadata"]["name"] == name
        assert "managedFields" not in event.object["metadata"]
    (svc,) = await kafka_helpers.read_all(
        kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.SERVICES)
    )
    assert svc.value is not None
    assert events.decode(svc.value).object["metadata"]["annotations"] == {"keep": "me"}
    endpoints = await kafka_helpers.read_all(
        kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.ENDPOINTS)
    )
    assert endpoints == []


async def test_add_update_delete_give_records_and_a_tombstone(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    settings = settings_for(
        kafka_bootstrap,
        kubeconfig,
        prefix=topic_prefix,
        namespace=namespace,
        resources=(Resource.PODS,),
    )
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    node = unique("node")
    objects.create_node(kube_api, node, address="10.1.0.12")

    async with running(settings):
        objects.create_pod(kube_api, namespace, "a", ip="10.244.2.1", node=node)
        client.CoreV1Api(kube_api).patch_namespaced_pod(
            "a", namespace, {"metadata": {"labels": {"tier": "web"}}}
        )
        objects.delete_pod(kube_api, namespace, "a")
        records = await records_until(
            kafka_bootstrap, topic, lambda rs: any(r.value is None for r in rs)
        )

    kinds = [header(r, events.HEADER_EVENT) for r in records]
    assert kinds[0] == "ADDED"
    assert kinds[-1] == "DELETED"
    assert set(kinds[1:-1]) <= {"MODIFIED"}
    assert set(keys(records)) == {f"{namespace}/a"}
    labelled = [
        r for r in records if r.value and events.decode(r.value).object["metadata"].get("labels")
    ]
    assert labelled, "the label change was published"
    assert records[-1].value is None
    assert header(records[-1], events.HEADER_RESOURCE) == "pods"
    versions = [int(header(r, events.HEADER_RESOURCE_VERSION)) for r in records]
    assert versions == sorted(versions)


async def test_a_restart_with_nothing_changed_writes_nothing_and_deletes_are_not_lost(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    seed(kube_api, namespace)
    settings = settings_for(kafka_bootstrap, kubeconfig, prefix=topic_prefix, namespace=namespace)
    topics = [object_topic(topic_prefix, "c1", r) for r in NAMESPACED]

    async def all_records() -> list[kafka_helpers.Record]:
        return [r for t in topics for r in await kafka_helpers.read_all(kafka_bootstrap, t)]

    async with running(settings):
        pass
    first = await all_records()
    async with running(settings) as run:
        assert run.sample("sdstream_producer_reconcile_unchanged_total", resource="pods") == 1
    assert len(await all_records()) == len(first)

    objects.delete_pod(kube_api, namespace, "web-0")  # while the producer is down
    client.NetworkingV1Api(kube_api).delete_namespaced_ingress("web", namespace)
    objects.create_pod(kube_api, namespace, "web-1", ip="10.244.1.8", node="n")
    async with running(settings) as run:
        assert run.sample("sdstream_producer_reconcile_tombstones_total", resource="pods") == 1
    new = [r for r in await all_records() if r not in first]
    assert sorted((r.key, r.value is None) for r in new) == sorted(
        [
            (f"{namespace}/web-0".encode(), True),
            (f"{namespace}/web".encode(), True),
            (f"{namespace}/web-1".encode(), False),
        ]
    )


class ExpiresOnce:
    """A fault seam: the first watch of each resource fails with 410 Gone."""

    def __init__(self, inner: ObjectSource) -> None:
        self.inner = inner
        self.expired: set[Resource] = set()

    def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        return self.inner.pages(resource, scope)

    async def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        if resource not in self.expired:
            self.expired.add(resource)
            raise errors.Expired("too old resource version", status=410)
        async for event in self.inner.watch(resource, scope, since=since, timeout_s=timeout_s):
            yield event


async def test_410_gone_relists_and_goes_on(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    settings = settings_for(
        kafka_bootstrap,
        kubeconfig,
        prefix=topic_prefix,
        namespace=namespace,
        resources=(Resource.PODS,),
    )
    async with running(settings, wrap_source=ExpiresOnce) as run:
        await wait_for(
            lambda: (
                run.sample("sdstream_producer_relists_total", resource="pods", reason="expired")
                == 1
            )
        )
        objects.create_pod(kube_api, namespace, "after", ip="10.244.3.1", node="n")
        records = await records_until(
            kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.PODS), lambda rs: bool(rs)
        )
    assert set(keys(records)) == {f"{namespace}/after"}


class ListFailsMidwayOnce:
    """A fault seam: the first LIST fails with 410 Gone (an expired continue token)
    after its first page; the watch never expires."""

    def __init__(self, inner: ObjectSource) -> None:
        self.inner = inner
        self.failed = False

    async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        async for page in self.inner.pages(resource, scope):
            yield page
            if not self.failed:
                self.failed = True
                raise errors.Expired("the provided continue parameter is too old", status=410)

    def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(resource, scope, since=since, timeout_s=timeout_s)


async def test_a_list_failing_midway_tombstones_nothing_and_the_relist_does(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    for name in ("p0", "p1", "p2", "p3"):
        objects.create_pod(kube_api, namespace, name, ip="10.244.4.1", node="n")
    settings = settings_for(
        kafka_bootstrap, kubeconfig, prefix=topic_prefix, namespace=namespace,
        resources=(Resource.PODS,),
    ).model_copy(update={"page_size": 1})  # fmt: skip
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    async with running(settings):
        pass
    first = await kafka_helpers.read_all(kafka_bootstrap, topic)
    objects.delete_pod(kube_api, namespace, "p2")  # while the producer is down
    async with running(settings, wrap_source=ListFailsMidwayOnce) as run:
        assert run.sample("sdstream_producer_relists_total", resource="pods", reason="expired") == 1
        assert run.sample("sdstream_producer_lists_total", resource="pods") == 1
        assert run.sample("sdstream_producer_reconcile_tombstones_total", resource="pods") == 1
        assert run.sample("sdstream_producer_reconcile_unchanged_total", resource="pods") == 3
    new = (await kafka_helpers.read_all(kafka_bootstrap, topic))[len(first) :]
    assert [(r.key, r.value) for r in new] == [(f"{namespace}/p2".encode(), None)]


async def test_a_forbidden_resource_is_a_clear_error_and_the_others_go_on(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = unique("limited")
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_cluster_role(
        {
            "metadata": {"name": user},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": user},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": user,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )

    async def as_limited_user(kube: KubeSettings) -> Any:
        api = await auth.connect(kube)
        api.set_default_header("Impersonate-User", user)
        return api

    settings = settings_for(
        kafka_bootstrap,
        kubeconfig,
        prefix=topic_prefix,
        namespace=namespace,
        resources=(Resource.PODS, Resource.SERVICES),
    )
    registry = CollectorRegistry()
    producer = Producer(settings, producer_metrics.create(registry), connect=as_limited_user)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        await wait_for(
            lambda: (
                registry.get_sample_value(
                    "sdstream_producer_errors_total", {"resource": "services", "kind": "Forbidden"}
                )
                is not None
            )
        )
        objects.create_pod(kube_api, namespace, "p", ip="10.244.4.1", node="n")
        records = await records_until(
            kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.PODS), lambda rs: bool(rs)
        )
        assert set(keys(records)) == {f"{namespace}/p"}
        assert not producer.readiness.ready
    finally:
        stop.set()
        assert await task == 0
    forbidden = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage()]
    assert forbidden
    assert "'list'" in forbidden[0]
    assert "'services'" in forbidden[0]


async def test_an_existing_topic_that_is_not_compacted_is_a_clear_error(
    kafka_bootstrap: str,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    await kafka_helpers.create_topic(
        kafka_bootstrap, topic, partitions=PARTITIONS, configs={"cleanup.policy": "delete"}
    )
    settings = settings_for(
        kafka_bootstrap,
        kubeconfig,
        prefix=topic_prefix,
        namespace=namespace,
        resources=(Resource.PODS,),
    )
    producer = Producer(settings, producer_metrics.create(CollectorRegistry()))

    assert await producer.run(asyncio.Event()) == 2
    assert any("cleanup.policy='delete'" in r.getMessage() for r in caplog.records)


async def test_one_leader_writes_and_a_standby_takes_over(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    base = settings_for(
        kafka_bootstrap,
        kubeconfig,
        prefix=topic_prefix,
        namespace=namespace,
        resources=(Resource.PODS,),
    )
    settings = base.model_copy(
        update={
            "leader": LeaderSettings(
                enabled=True,
                namespace=namespace,
                name="producer",
                lease_duration_s=3,
                renew_deadline_s=2,
                retry_period_s=0.2,
            )
        }
    )
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    registries = [CollectorRegistry(), CollectorRegistry()]
    a, b = (
        Producer(settings, producer_metrics.create(r), identity=i)
        for r, i in zip(registries, "ab", strict=True)
    )
    stops = [asyncio.Event(), asyncio.Event()]

    def leading(i: int) -> bool:
        return registries[i].get_sample_value("sdstream_producer_leader") == 1

    task_a = asyncio.create_task(a.run(stops[0]))
    await wait_for(lambda: leading(0) and a.readiness.ready)
    task_b = asyncio.create_task(b.run(stops[1]))
    await wait_for(lambda: b.readiness.standby)
    assert b.readiness.ready  # a healthy standby
    objects.create_pod(kube_api, namespace, "one", ip="10.244.5.1", node="n")
    await records_until(kafka_bootstrap, topic, lambda rs: bool(rs))
    assert not leading(1)

    stops[0].set()
    assert await task_a == 0  # releases the lease on the way out
    await wait_for(lambda: leading(1) and b.readiness.ready, timeout_s=10)
    objects.create_pod(kube_api, namespace, "two", ip="10.244.5.2", node="n")
    records = await records_until(kafka_bootstrap, topic, lambda rs: f"{namespace}/two" in keys(rs))
    assert set(keys(records)) == {f"{namespace}/one", f"{namespace}/two"}

    # Someone else takes the lease: b stops writing and stands by again.
    client.CoordinationV1Api(kube_api).patch_namespaced_lease(
        "producer", namespace, {"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 60}}
    )
    await wait_for(lambda: not leading(1), timeout_s=10)
    count = len(await kafka_helpers.read_all(kafka_bootstrap, topic))
    objects.create_pod(kube_api, namespace, "three", ip="10.244.5.3", node="n")
    stops[1].set()
    assert await task_b == 0
    assert len(await kafka_helpers.read_all(kafka_bootstrap, topic)) == count


async def test_kafka_unreachable_is_retried_with_backoff_until_stopped(
    kubeconfig: Path, namespace: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"  # a closed port on loopback
    settings = settings_for(
        nobody, kubeconfig, prefix=topic_prefix, namespace=namespace, resources=(Resource.PODS,)
    )
    producer = Producer(settings, producer_metrics.create(CollectorRegistry()))
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    await wait_for(lambda: sum("retrying in" in r.getMessage() for r in caplog.records) >= 2)
    assert not producer.readiness.ready
    stop.set()
    async with asyncio.timeout(10):
        assert await task == 0


class SeenPages:
    """A seam that counts the LIST pages the producer received."""

    def __init__(self, inner: ObjectSource, seen: list[Page]) -> None:
        self.inner = inner
        self.seen = seen

    async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        async for page in self.inner.pages(resource, scope):
            self.seen.append(page)
            yield page

    def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(resource, scope, since=since, timeout_s=timeout_s)


@contextlib.asynccontextmanager
async def kafka_later(kafka_bootstrap: str) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A loopback bootstrap address that refuses connections until the event is set, then
    forwards them to the broker (whose metadata then names the broker's own address)."""
    host, port = kafka_bootstrap.rsplit(":", 1)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    opened = asyncio.Event()
    pipes: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        for task in (pipe(reader, up_writer), pipe(up_reader, writer)):
            pipes.add(asyncio.create_task(task))

    async def serve() -> None:
        await opened.wait()
        server = await asyncio.start_server(forward, sock=sock)
        async with server:
            await asyncio.Future()  # until cancelled

    server = asyncio.create_task(serve())
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", opened
    finally:
        for task in [server, *pipes]:
            task.cancel()
        await asyncio.gather(server, *pipes, return_exceptions=True)
        sock.close()


async def test_the_list_starts_before_kafka_and_deletes_while_down_still_get_tombstones(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    for i in range(3):
        objects.create_pod(kube_api, namespace, f"web-{i}", ip=f"10.244.6.{i}", node="n")
    settings = settings_for(
        kafka_bootstrap, kubeconfig, prefix=topic_prefix, namespace=namespace,
        resources=(Resource.PODS,),
    )  # fmt: skip
    topic = object_topic(topic_prefix, "c1", Resource.PODS)
    async with running(settings):
        pass
    first = await kafka_helpers.read_all(kafka_bootstrap, topic)
    objects.delete_pod(kube_api, namespace, "web-0")  # while the producer is down

    seen: list[Page] = []
    async with kafka_later(kafka_bootstrap) as (bootstrap, opened):
        later = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap})}
        )
        producer = Producer(
            later,
            producer_metrics.create(registry := CollectorRegistry()),
            wrap_source=lambda inner: SeenPages(inner, seen),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(producer.run(stop))
        try:
            await wait_for(lambda: bool(seen) or task.done())  # Kafka still refuses us
            assert not producer.readiness.ready
            assert [o["metadata"]["name"] for o in seen[0].items] == ["web-1", "web-2"]
            opened.set()
            await wait_for(lambda: producer.readiness.ready or task.done())
            tombstones = "sdstream_producer_reconcile_tombstones_total"
            assert registry.get_sample_value(tombstones, {"resource": "pods"}) == 1
        finally:
            stop.set()
            assert await task == 0
    new = [r for r in await kafka_helpers.read_all(kafka_bootstrap, topic) if r not in first]
    assert [(r.key, r.value) for r in new] == [(f"{namespace}/web-0".encode(), None)]
