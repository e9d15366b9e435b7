"""`sdstream consume` against the real broker: object events in, target groups out on the
targets topic and over HTTP SD, with tombstones, restarts, clusters and poison records."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource, object_topic, partition_for, targets_topic
from sdstream import consume
from tests.integration import events, kafka_helpers
from tests.naming import unique
from tests.unit.consumers.sinks.http_client import fetch

POD_JOB = {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}
NODE_JOB = {"job_name": "nodes", "kubernetes_sd_configs": [{"role": "node"}]}


def pod(ns: str, name: str, ip: str, port: int = 8080) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "app", "image": "app:1", "ports": [{"containerPort": port}]}]},
        "status": {"podIP": ip, "phase": "Running"},
    }  # fmt: skip


def node(name: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}  # fmt: skip


def settings(bootstrap: str, prefix: str, *jobs: dict[str, Any], group: str) -> ConsumerSettings:
    return ConsumerSettings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        scrape_configs=tuple(ScrapeJob.model_validate(j) for j in jobs),
        http=HttpSettings(port=0),
        group_id=group,
        targets_partitions=2,
    )


class Running:
    def __init__(self, address: tuple[str, int], registry: CollectorRegistry) -> None:
        self.address = address
        self.registry = registry

    async def targets(self, job: str, query: str = "") -> list[dict[str, Any]]:
        reply = await fetch(self.address, path=f"/http_sd/{job}{query}")
        assert reply.status == 200, reply
        entries: list[dict[str, Any]] = orjson.loads(reply.body)
        return entries

    async def until(self, job: str, check: Callable[[list[dict[str, Any]]], bool]) -> Any:
        async with asyncio.timeout(60):
            while True:
                reply = await fetch(self.address, path=f"/http_sd/{job}")
                if reply.status == 200 and check(found := orjson.loads(reply.body)):
                    return found
                await asyncio.sleep(0.1)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def consumer(config: ConsumerSettings, *, ready: bool = True) -> AsyncIterator[Running]:
    """`sdstream consume` in this process, once it serves (and, with `ready`, is ready)."""
    registry = CollectorRegistry()
    started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        consume.serve(config, registry=registry, on_started=started.set_result)
    )
    try:
        async with asyncio.timeout(30):
            address = await asyncio.shield(started)
            while ready and (await fetch(address, path="/readyz")).status != 200:  # noqa: ASYNC110 - polling a server
                await asyncio.sleep(0.1)
        yield Running(address, registry)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def addresses(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(a for e in entries for a in e["targets"])


async def records(bootstrap: str, prefix: str) -> list[kafka_helpers.Record]:
    return await kafka_helpers.read_all(bootstrap, targets_topic(prefix))


async def test_events_become_groups_and_deletes_become_tombstones(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.0.1"))
        await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.0.2"))
        config = settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
        async with consumer(config) as running:
            found = await running.until("pods", lambda e: len(e) == 2)
            assert addresses(found) == ["10.244.0.1:8080", "10.244.0.2:8080"]
            assert {e["labels"]["cluster"] for e in found} == {"c1"}
            assert found[0]["labels"]["__meta_kubernetes_pod_name"] in {"web-0", "web-1"}

            await writer.delete("c1", Resource.PODS, "a", "web-0")
            found = await running.until("pods", lambda e: len(e) == 1)
            assert addresses(found) == ["10.244.0.2:8080"]

    written = await records(kafka_bootstrap, topic_prefix)
    by_key = [(r.key, r.value is None) for r in written]
    assert (b"pods/c1/pod/a/web-0", True) in by_key  # the tombstone
    assert sum(1 for k, _ in by_key if k == b"pods/c1/pod/b/web-1") == 1


async def test_a_restart_publishes_nothing_new_and_catches_deletes_made_while_down(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    config = settings(kafka_bootstrap, topic_prefix, POD_JOB, NODE_JOB, group=unique("g"))
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.NODES, node("n1", "10.1.0.1"))
        for i in range(5):
            await writer.put("c1", Resource.PODS, pod(f"ns{i}", f"p{i}", f"10.244.1.{i + 1}"))
        async with consumer(config) as running:
            await running.until("pods", lambda e: len(e) == 5)
        before = await records(kafka_bootstrap, topic_prefix)

        async with consumer(config) as running:
            assert len(await running.targets("pods")) == 5
        assert len(await records(kafka_bootstrap, topic_prefix)) == len(before)

        await writer.delete("c1", Resource.PODS, "ns0", "p0")  # while no consumer runs
        async with consumer(config) as running:
            found = await running.until("pods", lambda e: len(e) == 4)
            assert "10.244.1.1:8080" not in addresses(found)
    after = await records(kafka_bootstrap, topic_prefix)
    assert [(r.key, r.value) for r in after[len(before) :]] == [(b"pods/c1/pod/ns0/p0", None)]


async def test_two_consumer_groups_with_other_jobs_keep_to_their_own_targets_topics(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Team A folds pods, team B nodes, from the same cluster. Sharing one targets topic,
    each group's full sync would tombstone the other's jobs; with `targets_topic` each
    owns its own, and restarts leave the other's groups alone."""
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    team_a = settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("a"))
    team_b = settings(kafka_bootstrap, topic_prefix, NODE_JOB, group=unique("b")).model_copy(
        update={"targets_topic": f"{topic_prefix}-team-b.targets"}
    )
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("c1", Resource.NODES, node("n1", "10.1.0.1"))
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.6.1"))
        async with consumer(team_a) as a, consumer(team_b) as b:
            await a.until("pods", lambda e: len(e) == 1)
            await b.until("nodes", lambda e: len(e) == 1)
        async with consumer(team_a) as a, consumer(team_b) as b:  # full syncs again
            assert addresses(await a.targets("pods")) == ["10.244.6.1:8080"]
            assert len(await b.targets("nodes")) == 1

    a_records = await records(kafka_bootstrap, topic_prefix)
    b_records = await kafka_helpers.read_all(kafka_bootstrap, f"{topic_prefix}-team-b.targets")
    assert [(r.key, r.value is None) for r in a_records] == [(b"pods/c1/pod/a/web-0", False)]
    assert [(r.key, r.value is None) for r in b_records] == [(b"nodes/c1/node/n1", False)]


async def test_two_clusters_feed_one_job_each_with_its_cluster_label(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    for cluster in ("east", "west"):
        await events.create_topics(kafka_bootstrap, topic_prefix, cluster)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("east", Resource.PODS, pod("a", "web-0", "10.244.2.1"))
        await writer.put("west", Resource.PODS, pod("a", "web-0", "10.244.2.1"))
        config = settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
        async with consumer(config) as running:
            found = await running.until("pods", lambda e: len(e) == 2)
            assert sorted(e["labels"]["cluster"] for e in found) == ["east", "west"]
            west = await running.targets("pods", "?cluster=west")
            assert [e["labels"]["cluster"] for e in west] == ["west"]

            await events.create_topics(kafka_bootstrap, topic_prefix, "north")
            await writer.put("north", Resource.PODS, pod("a", "web-0", "10.244.2.1"))
            found = await running.until("pods", lambda e: len(e) == 3)  # picked up live
            assert sorted(e["labels"]["cluster"] for e in found) == ["east", "north", "west"]


async def test_a_deleted_clusters_groups_are_tombstoned(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Deleting a cluster's topics leaves its partitions to nobody; its groups must not stay
    served as stale targets."""
    for cluster in ("east", "west"):
        await events.create_topics(kafka_bootstrap, topic_prefix, cluster)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("east", Resource.PODS, pod("a", "web-0", "10.244.4.1"))
        await writer.put("west", Resource.PODS, pod("a", "web-0", "10.244.4.2"))
        await writer.put("west", Resource.PODS, pod("b", "web-1", "10.244.4.3"))
    config = settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
    async with consumer(config) as running:
        await running.until("pods", lambda e: len(e) == 3)

        await kafka_helpers.delete_topics(
            kafka_bootstrap, [object_topic(topic_prefix, "west", r) for r in Resource]
        )
        found = await running.until("pods", lambda e: len(e) == 1)
        assert [e["labels"]["cluster"] for e in found] == ["east"]

    final = {r.key: r.value for r in await records(kafka_bootstrap, topic_prefix)}
    assert final[b"pods/west/pod/a/web-0"] is None
    assert final[b"pods/west/pod/b/web-1"] is None
    assert final[b"pods/east/pod/a/web-0"] is not None


async def test_two_consumers_in_a_group_publish_what_one_publishes(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    alone_prefix, pair_prefix = f"{topic_prefix}-a", f"{topic_prefix}-b"
    for prefix in (alone_prefix, pair_prefix):
        await events.create_topics(kafka_bootstrap, prefix, "c1")
        async with events.Writer(kafka_bootstrap, prefix) as writer:
            await writer.put("c1", Resource.NODES, node("n1", "10.1.0.1"))
            await writer.put("c1", Resource.NODES, node("n2", "10.1.0.2"))
            for i in range(12):
                await writer.put("c1", Resource.PODS, pod(f"ns{i}", "p", f"10.244.3.{i + 1}"))

    alone = settings(kafka_bootstrap, alone_prefix, POD_JOB, NODE_JOB, group=unique("g"))
    async with consumer(alone) as running:
        await running.until("pods", lambda e: len(e) == 12)
        await running.until("nodes", lambda e: len(e) == 2)
    group = unique("g")
    pair = settings(kafka_bootstrap, pair_prefix, POD_JOB, NODE_JOB, group=group)
    async with consumer(pair) as first, consumer(pair.model_copy(update={"group_id": group})):
        await first.until("pods", lambda e: len(e) == 12)
        await first.until("nodes", lambda e: len(e) == 2)

    def final(rs: list[kafka_helpers.Record]) -> dict[bytes | None, bytes | None]:
        return {r.key: r.value for r in rs}

    one = final(await records(kafka_bootstrap, alone_prefix))
    two = final(await records(kafka_bootstrap, pair_prefix))
    assert one == two
    assert len(one) == 14


async def test_poison_records_are_skipped_and_counted(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await events.create_topics(kafka_bootstrap, topic_prefix, "c1")
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.raw("c1", Resource.PODS, b"x/bad-json", b"{not json")
        future = orjson.dumps({"schema_version": 99, "type": "ADDED", "cluster": "c1",
                               "resource": "pods", "resource_version": "1",
                               "observed_at": 0, "object": {}})  # fmt: skip
        await writer.raw("c1", Resource.PODS, b"x/future", future)
        await writer.put("c1", Resource.PODS, pod("a", "good", "10.244.4.1"))
        # A bad record after a good one of the same key (raw writes go to partition 0)
        # must not replace it.
        assert partition_for(ObjectKey("a/good"), events.PARTITIONS) == 0
        await writer.raw("c1", Resource.PODS, b"a/good", b"{not json")
        config = settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
        async with consumer(config) as running:
            found = await running.until("pods", lambda e: len(e) == 1)
            assert addresses(found) == ["10.244.4.1:8080"]
            assert running.metric("sdstream_fold_records_skipped_total", reason="invalid_json") == 2
            assert (
                running.metric(
                    "sdstream_fold_records_skipped_total", reason="unknown_schema_version"
                )
                == 1
            )
            assert running.metric("sdstream_fold_objects") == 1
            assert running.metric("sdstream_fold_state_bytes") > 0


def test_bad_config_stops_at_start_naming_the_field(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "consumer.yml"
    config.write_text("scrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs:\n"
                      "      - role: pods\n")  # fmt: skip
    assert consume.main(config_file=config, overrides={}) == 2


async def test_kafka_unreachable_at_start_is_retried_and_readyz_says_why(
    topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Kafka may start after the consumer (compose, Kubernetes): no crash, a reason."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"  # a closed port on loopback
    config = settings(nobody, topic_prefix, POD_JOB, group=unique("g"))
    started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(consume.serve(config, on_started=started.set_result))
    try:
        address = await asyncio.wait_for(started, 10)

        def retries() -> int:
            return sum("retrying in" in r.getMessage() for r in caplog.records
                       if r.name.startswith("consumers.compactor"))  # fmt: skip

        async with asyncio.timeout(20):
            while retries() < 2:  # noqa: ASYNC110 - polling the log
                await asyncio.sleep(0.1)
        ready = await fetch(address, path="/readyz")
        assert ready.status == 503
        assert f"cannot reach Kafka at {nobody}" in ready.body.decode()
        metrics = (await fetch(address, path="/metrics")).body.decode()
        assert 'sdstream_build_info{pythonversion="' in metrics  # also when Kafka is down
        assert "process_resident_memory_bytes " in metrics
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
