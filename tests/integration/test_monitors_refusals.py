"""Monitor and Namespace topics Kafka denies, on the secured broker (`secure_kafka`): the
fold forgets what it read from a denied partition before reading it again (a monitor
deleted meanwhile, its tombstone compacted away, loses its job), and a sink's monitor
reader follows the readiness policy of docs/RELIABILITY.md (ready, degraded; the denied
cluster's jobs kept as last known; everything else served)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from schemas.config import ConsumerSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource, object_topic, targets_topic
from sdstream.devstack.kafka_acls import Operation
from tests.integration import acls, events, kafka_helpers
from tests.integration.secure_kafka import SecureKafka
from tests.integration.test_consume import addresses, consumer
from tests.integration.test_kafka_refusals import fold_config, no_tracebacks, wait_readyz
from tests.integration.test_kafka_refusals_late import latest
from tests.unit.consumers.sinks.http_client import fetch

NS = "team"
JOB = "podMonitor/{ns}/{name}/0"


def pod_monitor(name: str, ns: str = NS) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "podMetricsEndpoints": [{"port": "m"}]}}  # fmt: skip


def pod(name: str, ip: str, ns: str = NS) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i:1",
                 "ports": [{"name": "m", "containerPort": 9090, "protocol": "TCP"}]}]},
        "status": {"podIP": ip, "phase": "Running"},
    }  # fmt: skip


def namespace(name: str = NS) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"m": "on"}}}


def monitors_config(kafka_config: ConsumerSettings, *, mode: str) -> ConsumerSettings:
    on = {"matchLabels": {"m": "on"}}
    monitors = MonitorsSettings.model_validate({
        "pod_monitor_selector": {}, "pod_monitor_namespace_selector": on})  # fmt: skip
    return kafka_config.model_copy(update={"monitors": monitors, "mode": mode})


async def setup_topics(bootstrap: str, prefix: str, cluster: str) -> None:
    await events.create_topics(bootstrap, prefix, cluster, [Resource.PODS, Resource.NAMESPACES])
    await kafka_helpers.create_topic(
        bootstrap, object_topic(prefix, cluster, Resource.PODMONITORS),
        partitions=events.PARTITIONS, configs=kafka_helpers.FAST_COMPACTION,
    )  # fmt: skip


async def compact_away(
    bootstrap: str, writer: events.Writer, cluster: str, key: bytes, ns: str = NS
) -> None:
    """Until compaction removed `key`'s tombstone too; new monitors in the same namespace
    (so the same partition) roll segments, so the cleaner gets to the old ones."""
    topic = object_topic(writer.prefix, cluster, Resource.PODMONITORS)
    async with asyncio.timeout(90):
        for rolled in itertools.count():
            held = {r.key for r in await kafka_helpers.read_all(bootstrap, topic)}
            if key not in held:
                return
            await writer.put(cluster, Resource.PODMONITORS, pod_monitor(f"roll-{rolled % 3}", ns))
            await asyncio.sleep(0.2)


def live_keys(held: dict[bytes, bytes | None], job: str) -> set[bytes]:
    quoted = job.replace("/", "%2F").encode()
    return {k for k, v in held.items() if k.startswith(quoted + b"/") and v is not None}


async def test_a_monitor_deleted_while_its_topic_was_denied_loses_its_job_in_the_fold(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Denied longer than delete.retention.ms, the fold never sees the monitor's
    tombstone: re-reading the partition into what it held kept the job and its groups.
    In one process (mode all) the sinks, fed by the fold's read, drop the job too."""
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    await setup_topics(kafka_bootstrap, topic_prefix, "a")
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    config = monitors_config(fold_config(kafka, kafka_bootstrap), mode="all")
    targets = targets_topic(topic_prefix)
    kept, deleted = JOB.format(ns=NS, name="kept"), JOB.format(ns=NS, name="gone")
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.NAMESPACES, namespace())
        await writer.put("a", Resource.PODS, pod("web-0", "10.244.11.1"))
        for name in ("kept", "gone"):
            await writer.put("a", Resource.PODMONITORS, pod_monitor(name))
        async with consumer(config, ready=False) as running:
            async with asyncio.timeout(60):
                while not live_keys(await latest(kafka_bootstrap, targets), deleted):  # noqa: ASYNC110 - polling Kafka
                    await asyncio.sleep(0.2)

            monitors_topic = object_topic(topic_prefix, "a", Resource.PODMONITORS)
            await acls.deny(kafka_bootstrap, "fold", monitors_topic)
            await wait_readyz(running, lambda _, body: f"topic {monitors_topic}" in body)
            await writer.delete("a", Resource.PODMONITORS, NS, "gone")
            await compact_away(kafka_bootstrap, writer, "a", f"{NS}/gone".encode())

            await acls.undeny(kafka_bootstrap, "fold", monitors_topic)
            rolled = JOB.format(ns=NS, name="roll-0")
            async with asyncio.timeout(90):  # the roll monitors' jobs: read again
                while not live_keys(held := await latest(kafka_bootstrap, targets), rolled):  # noqa: ASYNC110 - polling Kafka
                    await asyncio.sleep(0.2)
            await wait_readyz(running, lambda status, body: status == 200 and "denied" not in body)
            held = await latest(kafka_bootstrap, targets)
            assert live_keys(held, kept)
            assert not live_keys(held, deleted), "the deleted monitor's job kept its groups"
            async with asyncio.timeout(30):  # the sinks: the job is unknown (404)
                while (await fetch(running.address, path=f"/http_sd/{deleted}")).status != 404:  # noqa: ASYNC110 - polling a server
                    await asyncio.sleep(0.1)
            assert len(await running.targets(kept)) == 1
    no_tracebacks(caplog)


async def test_a_sink_denied_one_clusters_monitor_topic_is_ready_degraded_and_keeps_its_jobs(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A serving replica (`--mode serve`, principal `sink`) whose monitor topic of cluster
    b is denied: before it first caught up, /readyz is 503 naming the refusal only if
    nothing else is left to read; it becomes ready, degraded (the refusal named and
    counted), serves cluster a's jobs as they change and keeps b's last known jobs; once
    granted, b's topic is read again and a monitor deleted meanwhile loses its job."""
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    for cluster in ("a", "b"):
        await setup_topics(kafka_bootstrap, topic_prefix, cluster)
        for read in (Resource.PODMONITORS, Resource.NAMESPACES):  # a monitor jobs' sink reads
            for operation in (Operation.READ, Operation.DESCRIBE):
                topic = object_topic(topic_prefix, cluster, read)
                await acls.allow(kafka_bootstrap, "sink", topic, operation)
    fold_kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    sink_kafka = secure_kafka.settings("sink", "scram", topic_prefix=topic_prefix)
    fold = monitors_config(fold_config(fold_kafka, kafka_bootstrap), mode="fold")
    serve = monitors_config(fold_config(sink_kafka, kafka_bootstrap), mode="serve")
    job = {c: JOB.format(ns=NS, name=f"pm-{c}") for c in ("a", "b")}
    b_topic = object_topic(topic_prefix, "b", Resource.PODMONITORS)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        for cluster, ip in (("a", "10.244.12.1"), ("b", "10.244.12.2")):
            await writer.put(cluster, Resource.NAMESPACES, namespace())
            await writer.put(cluster, Resource.PODS, pod("web-0", ip))
            await writer.put(cluster, Resource.PODMONITORS, pod_monitor(f"pm-{cluster}"))
            await writer.put(cluster, Resource.PODMONITORS, pod_monitor("gone"))
        async with consumer(fold, ready=False), consumer(serve, ready=False) as sink:
            for cluster, ip in (("a", "10.244.12.1"), ("b", "10.244.12.2")):
                found = await sink.until(job[cluster], lambda e: len(e) == 1)
                assert addresses(found) == [f"{ip}:9090"]

            await acls.deny(kafka_bootstrap, "sink", b_topic)
            body = await wait_readyz(sink, lambda status, body: b_topic in body)
            assert body.startswith("ready, degraded:")
            assert sink.metric("sdstream_sink_kafka_refusals_total", reason="topic_denied") >= 1
            await writer.put("a", Resource.PODMONITORS, pod_monitor("pm-a2"))  # a flows
            await sink.until(JOB.format(ns=NS, name="pm-a2"), lambda e: len(e) == 1)
            assert len(await sink.targets(job["b"])) == 1  # b's last known job stays
            await writer.delete("b", Resource.PODMONITORS, NS, "gone")
            await compact_away(kafka_bootstrap, writer, "b", f"{NS}/gone".encode())

            await acls.undeny(kafka_bootstrap, "sink", b_topic)
            await sink.until(JOB.format(ns=NS, name="roll-0") + "?cluster=b", lambda e: True)
            await wait_readyz(sink, lambda status, body: status == 200 and b_topic not in body)
            gone = JOB.format(ns=NS, name="gone")
            assert addresses(await sink.targets(gone, "?cluster=b")) == []
            assert len(await sink.targets(job["b"])) == 1
    no_tracebacks(caplog)
