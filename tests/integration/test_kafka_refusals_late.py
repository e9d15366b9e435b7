"""Refusals that start while a process runs, or that a process starts under, on the
secured broker (`secure_kafka`): what the fold must not do (tombstone groups of a cluster
it could not read), and what it must survive (credentials, ACLs removed meanwhile)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas import targets
from schemas.targets import TargetGroup
from schemas.topics import Resource, Source, target_key, targets_topic
from sdstream.devstack.kafka_acls import Operation
from tests.integration import acls, events, kafka_helpers
from tests.integration.secure_kafka import SecureKafka
from tests.integration.test_consume import POD_JOB, addresses, consumer, pod
from tests.integration.test_consume import settings as consumer_settings
from tests.integration.test_kafka_refusals import fold_config, no_tracebacks, wait_readyz


async def latest(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    """The targets topic as a reader ends up with it: the last value per key."""
    return {r.key: r.value for r in await kafka_helpers.read_all(bootstrap, topic)
            if r.key is not None}  # fmt: skip


async def until(check: Callable[[], object], *, timeout_s: float = 90) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - polling a process's state
            await asyncio.sleep(0.1)


def synced(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage().startswith("Synced:") for r in caplog.records)


async def test_a_fold_started_while_a_cluster_is_denied_keeps_that_clusters_groups(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The full sync must not tombstone groups built from partitions it could not read;
    once the topic is granted again, the groups follow the topic (a pod deleted meanwhile
    is tombstoned)."""
    caplog.set_level(logging.INFO, logger="consumers.compactor.kafka_loop")
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    for cluster in ("a", "b"):
        await events.create_topics(kafka_bootstrap, topic_prefix, cluster, [Resource.PODS])
    targets = targets_topic(topic_prefix)
    plain = consumer_settings(kafka_bootstrap, topic_prefix, POD_JOB, group=f"{topic_prefix}-fold")
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.PODS, pod("ns", "web-0", "10.244.5.1"))
        await writer.put("b", Resource.PODS, pod("ns", "web-0", "10.244.5.2"))
        await writer.put("b", Resource.PODS, pod("ns", "web-1", "10.244.5.3"))
        async with consumer(plain, ready=False) as running:  # a first run publishes both clusters
            await running.until("pods", lambda e: len(e) == 3)
        b_keys = {k for k, v in (await latest(kafka_bootstrap, targets)).items()
                  if b"/b/" in k and v is not None}  # fmt: skip
        assert len(b_keys) == 2

        await acls.deny(kafka_bootstrap, "fold", f"{topic_prefix}.b.")
        await writer.delete("b", Resource.PODS, "ns", "web-1")  # while b is denied
        before = synced(caplog)
        async with consumer(fold_config(kafka, kafka_bootstrap), ready=False) as running:
            await until(lambda: synced(caplog) > before)
            held = await latest(kafka_bootstrap, targets)
            assert all(held.get(k) is not None for k in b_keys), "b's groups tombstoned"
            found = await running.until("pods", lambda e: len(e) == 3)
            assert addresses(found) == ["10.244.5.1:8080", "10.244.5.2:8080", "10.244.5.3:8080"]

            await acls.undeny(kafka_bootstrap, "fold", f"{topic_prefix}.b.")
            found = await running.until("pods", lambda e: len(e) == 2)
            assert addresses(found) == ["10.244.5.1:8080", "10.244.5.2:8080"]
            await wait_readyz(running, lambda status, _: status == 200)
    no_tracebacks(caplog)


def group_record(name: str, ip: str) -> tuple[bytes, bytes]:
    group = TargetGroup(job="pods", cluster="a", source=f"pod/ns/{name}", labels={},
                        targets=[{"__address__": f"{ip}:8080"}])  # fmt: skip
    key = target_key(group.job, group.cluster, Source(group.source))
    return key.encode(), targets.encode(group)


async def write(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


async def test_the_sinks_reader_back_from_a_refusal_forgets_groups_whose_tombstones_are_gone(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Denied longer than delete.retention.ms, the reader never sees a deleted group's
    tombstone: reading the topic again into the old view kept serving the group."""
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    topic = targets_topic(topic_prefix)
    await kafka_helpers.create_topic(kafka_bootstrap, topic, partitions=1,
                                     configs=kafka_helpers.FAST_COMPACTION)  # fmt: skip
    kept, deleted = group_record("web-0", "10.244.6.1"), group_record("web-1", "10.244.6.2")
    await write(kafka_bootstrap, topic, [kept, deleted])
    kafka = secure_kafka.settings("sink", "scram", topic_prefix=topic_prefix)
    config = fold_config(kafka, kafka_bootstrap).model_copy(update={"mode": "serve"})
    async with consumer(config, ready=False) as running:
        await running.until("pods", lambda e: len(e) == 2)

        await acls.deny(kafka_bootstrap, "sink", topic)
        await wait_readyz(running, lambda status, body: "access to topic" in body)
        await write(kafka_bootstrap, topic, [(deleted[0], None)])
        rolled = 0
        async with asyncio.timeout(90):  # until compaction has removed the tombstone too
            while deleted[0] in {
                r.key for r in await kafka_helpers.read_all(kafka_bootstrap, topic)
            }:
                rolled += 1  # new records roll segments, so the cleaner gets to the old ones
                await write(
                    kafka_bootstrap, topic, [group_record(f"roll-{rolled % 3}", "10.244.6.9")]
                )
                await asyncio.sleep(0.2)

        await acls.undeny(kafka_bootstrap, "sink", topic)
        found = await running.until(
            "pods", lambda e: any("10.244.6.9:8080" in x["targets"] for x in e)
        )
        assert "10.244.6.2:8080" not in addresses(found)
        assert "10.244.6.1:8080" in addresses(found)
    no_tracebacks(caplog)


async def test_a_fold_denied_writing_its_targets_topic_keeps_serving_and_catches_up_when_allowed(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The targets topic's WRITE ACL removed under a running fold: counted, named, retried;
    once granted again the topic holds exactly the fold's groups (none lost)."""
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    await events.create_topics(kafka_bootstrap, topic_prefix, "a", [Resource.PODS])
    topic = targets_topic(topic_prefix)
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.PODS, pod("ns", "web-0", "10.244.7.1"))
        async with consumer(fold_config(kafka, kafka_bootstrap), ready=False) as running:
            await running.until("pods", lambda e: len(e) == 1)
            await acls.revoke(kafka_bootstrap, "fold", topic, Operation.WRITE)
            await writer.put("a", Resource.PODS, pod("ns", "web-1", "10.244.7.2"))
            await writer.delete("a", Resource.PODS, "ns", "web-0")
            body = await wait_readyz(running, lambda status, body: "access to topic" in body)
            assert f"topic {topic}" in body
            assert running.metric("sdstream_fold_kafka_refusals_total", reason="topic_denied") >= 1
            found = await running.targets("pods")  # the last published state, still served
            assert addresses(found) == ["10.244.7.1:8080"]

            await secure_kafka.grant(topic_prefix, clusters=("a",))
            found = await running.until("pods", lambda e: addresses(e) == ["10.244.7.2:8080"])
            await wait_readyz(running, lambda status, body: status == 200 and "denied" not in body)
        live = {k for k, v in (await latest(kafka_bootstrap, topic)).items() if v is not None}
        assert live == {b"pods/a/pod/ns/web-1"}
    no_tracebacks(caplog)


async def test_a_fold_whose_password_stops_working_keeps_serving_and_resumes_when_fixed(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Credentials that fail after start (the password rotated on one side only): new
    clients are refused; the fold names it, keeps serving and resumes once fixed."""
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    await events.create_topics(kafka_bootstrap, topic_prefix, "a", [Resource.PODS])
    password = tmp_path / "password"
    shutil.copyfile(secure_kafka.password_file("fold"), password)
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix,
                                  sasl_password_file=password)  # fmt: skip
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.PODS, pod("ns", "web-0", "10.244.8.1"))
        async with consumer(fold_config(kafka, kafka_bootstrap), ready=False) as running:
            await running.until("pods", lambda e: len(e) == 1)
            password.write_text("Wr0ng-Pa55w0rd\n")
            # A new cluster: a rebalance and a full sync, which needs new connections.
            await events.create_topics(kafka_bootstrap, topic_prefix, "b", [Resource.PODS])
            await writer.put("b", Resource.PODS, pod("ns", "web-0", "10.244.8.2"))
            body = await wait_readyz(running, lambda status, body: "SASL authentication" in body)
            assert "SASL user 'fold'" in body
            assert (
                running.metric("sdstream_fold_kafka_refusals_total", reason="authentication") >= 1
            )
            assert addresses(await running.targets("pods")) == ["10.244.8.1:8080"]

            shutil.copyfile(secure_kafka.password_file("fold"), password)  # fixed
            found = await running.until("pods", lambda e: len(e) == 2)
            assert addresses(found) == ["10.244.8.1:8080", "10.244.8.2:8080"]
            await wait_readyz(running, lambda status, body: status == 200 and "SASL" not in body)
    no_tracebacks(caplog)
    assert "Wr0ng" not in caplog.text


async def test_a_cluster_whose_topics_vanish_from_the_folds_metadata_is_not_taken_for_deleted(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """READ and DESCRIBE removed on cluster b's topics under a running fold: they leave its
    metadata, the group rebalances, and b's groups have no owner; asked by name, b is
    denied, not deleted, so its groups are not tombstoned as orphans."""
    caplog.set_level(logging.INFO, logger="consumers.compactor.kafka_loop")
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    for cluster in ("a", "b"):
        await events.create_topics(kafka_bootstrap, topic_prefix, cluster, [Resource.PODS])
    topic = targets_topic(topic_prefix)
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.PODS, pod("ns", "web-0", "10.244.9.1"))
        await writer.put("b", Resource.PODS, pod("ns", "web-0", "10.244.9.2"))
        async with consumer(fold_config(kafka, kafka_bootstrap), ready=False) as running:
            await running.until("pods", lambda e: len(e) == 2)
            before = synced(caplog)
            for operation in (Operation.READ, Operation.DESCRIBE):
                await acls.deny(kafka_bootstrap, "fold", f"{topic_prefix}.b.", operation)
            await until(lambda: synced(caplog) > before)  # the rebalance's full sync
            live = {k for k, v in (await latest(kafka_bootstrap, topic)).items() if v is not None}
            assert b"pods/b/pod/ns/web-0" in live
            assert len(await running.targets("pods")) == 2

            for operation in (Operation.READ, Operation.DESCRIBE):
                await acls.undeny(kafka_bootstrap, "fold", f"{topic_prefix}.b.", operation)
            await writer.put("b", Resource.PODS, pod("ns", "web-1", "10.244.9.3"))
            found = await running.until("pods", lambda e: len(e) == 3)
            assert "10.244.9.3:8080" in addresses(found)
    no_tracebacks(caplog)
