"""End to end, restarts in the middle of churn: the producer, the consumer, then the Kafka
broker itself, while pods, Endpoints and EndpointSlices keep changing. Nothing is lost.

"Nothing lost" is checked two ways once the churn stops:
- every pod, Endpoints and EndpointSlice deleted during the run (the churn deletes only
  what HTTP SD served already) ends in a tombstone for its group on the targets topic: a
  stale group would keep a dead target scraped forever;
- the final HTTP SD snapshot equals promtool's kubernetes_sd of the final API server
  state, for every job, also as promtool's http_sd reads it.
Each restart ends when a pod created after it shows up in HTTP SD: the pipeline as a
whole has recovered, clients reconnected included. No fixed sleeps; the churn's own pacing
is the only timer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from kubernetes import client

from schemas.topics import targets_topic
from sdstream.devstack import processes, stack
from tests.integration import e2e_pipeline as e2e
from tests.integration import kafka_helpers
from tests.integration.e2e_churn import Churn, Observe
from tests.naming import unique

JOB_OF_KIND = {"pod": "pods", "endpoints": "endpoints", "endpointslice": "slices"}
NAME_LABEL = {"pods": "__meta_kubernetes_pod_name", "endpoints": "__meta_kubernetes_endpoints_name",
              "slices": "__meta_kubernetes_endpointslice_name"}  # fmt: skip


@dataclass(frozen=True)
class Window:
    what: str
    start: float  # stop began
    back: float  # started again
    end: float  # a pod created after `back` reached HTTP SD


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


async def recovered(consumer: e2e.RunningConsumer, churn: Churn, since: float) -> None:
    """Until a pod created after `since` is in our HTTP SD: the whole pipeline works."""

    def fresh(entries: e2e.Entries) -> bool:
        names = {e["labels"].get("__meta_kubernetes_pod_name") for e in entries}
        return bool(names & churn.created_since(since))

    async def seen() -> bool:
        try:
            return fresh(await consumer.entries("pods"))
        except (AssertionError, OSError):  # 503 while catching up, refused while starting
            return False

    async with asyncio.timeout(120):
        while not await seen():
            await churn.advance(1)


async def restart_each(
    producer: e2e.RunningProducer,
    consumer: e2e.RunningConsumer,
    stack_: stack.Stack,
    churn: Churn,
) -> list[Window]:
    """Restart the producer, the consumer and the broker in turn, with churn before,
    during and after each; the windows during which each was down or recovering."""
    windows: list[Window] = []
    await churn.advance(20)
    # (a) the producer: a clean stop, churn meanwhile, a new producer re-lists
    start = time.monotonic()
    await producer.stop()
    await churn.advance(15)
    await producer.start()
    back = time.monotonic()
    await recovered(consumer, churn, back)
    windows.append(Window("producer", start, back, time.monotonic()))
    await churn.advance(20)
    # (b) the consumer (same group): rebuilds from the topics, reconciles the targets topic
    start = time.monotonic()
    await consumer.stop()
    await churn.advance(15)
    await consumer.start()
    back = time.monotonic()
    await recovered(consumer, churn, back)
    windows.append(Window("consumer", start, back, time.monotonic()))
    await churn.advance(20)
    # (c) the broker, in place: producer and consumer must reconnect by themselves
    start, old_pid = time.monotonic(), stack_.pids["kafka"]
    await asyncio.to_thread(stack.restart_kafka, stack_)
    assert stack_.pids["kafka"] != old_pid
    back = time.monotonic()
    await recovered(consumer, churn, back)
    windows.append(Window("kafka", start, back, time.monotonic()))
    await churn.advance(20)
    return windows


def observer(consumer: e2e.RunningConsumer, namespace: str) -> Observe:
    """The sources our HTTP SD serves now; nothing while the consumer is down."""

    async def observe() -> set[str]:
        sources: set[str] = set()
        for job, label in NAME_LABEL.items():
            kind = next(k for k, j in JOB_OF_KIND.items() if j == job)
            try:
                entries = await consumer.entries(job)
            except (AssertionError, OSError):  # 503 while catching up, refused while down
                continue
            sources |= {f"{kind}/{namespace}/{e['labels'][label]}" for e in entries}
        return sources

    return observe


def check_tombstones(
    records: list[kafka_helpers.Record], churn: Churn, windows: list[Window]
) -> None:
    last = {r.key.decode(): r.value for r in records if r.key is not None}
    deleted = churn.deleted()
    for life in deleted:
        key = f"{JOB_OF_KIND[life.source.split('/')[0]]}/c1/{life.source}"
        assert key in last, f"{key}: served by HTTP SD, yet not on the targets topic"
        assert last[key] is None, f"{key}: deleted, but its group is still on the topic"
    kinds = {life.source.split("/")[0] for life in deleted}
    assert kinds == set(JOB_OF_KIND), "every kind must have been deleted"
    during = {w.what: sum(1 for life in deleted if w.start <= (life.deleted or 0) <= w.end)
              for w in windows}  # fmt: skip
    assert all(during.values()), f"deletes during each restart: {during}"
    spans = ", ".join(f"{w.what} down {w.back - w.start:.1f}s + recovery {w.end - w.back:.1f}s"
                      for w in windows)  # fmt: skip
    print(f"{churn.steps} steps, {len(churn.lives)} objects, {len(deleted)} deleted "
          f"(during restarts: {during}); {spans}")  # fmt: skip


async def test_restarts_in_the_middle_of_churn_lose_nothing(
    env: e2e.Env,
    stack_: stack.Stack,
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    mine = {"names": [namespace]}
    sd_configs = {"pods": {"role": "pod", "namespaces": mine},
                  "endpoints": {"role": "endpoints", "namespaces": mine},
                  "slices": {"role": "endpointslice", "namespaces": mine}}  # fmt: skip
    producer = e2e.RunningProducer(e2e.producer_settings(
        cluster="c1", bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
        kubeconfig=env.kubeconfig, namespace=namespace))  # fmt: skip
    consumer = e2e.RunningConsumer(e2e.consumer_settings(
        bootstrap=env.kafka_bootstrap, prefix=topic_prefix, jobs=sd_configs,
        group=unique("g")))  # fmt: skip
    churn = Churn(env.kube_api, namespace, observe=observer(consumer, namespace))
    churn.setup()
    stop = asyncio.Event()

    async with e2e.running(producer, consumer):
        task = asyncio.create_task(churn.run(stop))
        try:
            windows = await restart_each(producer, consumer, stack_, churn)
        finally:
            stop.set()
            await task

        expected = await e2e.gather({
            job: e2e.kubernetes_sd(env.promtool, sd, kubeconfig=env.kubeconfig,
                                   tmp_path=tmp_path)
            for job, sd in sd_configs.items()
        })  # fmt: skip
        for job, targets in expected.items():
            assert targets, job
            await e2e.converge(consumer, job, targets, timeout_s=90)
        via_http = await e2e.gather({
            job: e2e.http_sd(env.promtool, consumer.url(job), tmp_path=tmp_path)
            for job in sd_configs
        })  # fmt: skip
        for job, targets in via_http.items():
            assert targets == expected[job], f"{job}:\n{e2e.diff(targets, expected[job])}"

    records = await kafka_helpers.read_all(env.kafka_bootstrap, targets_topic(topic_prefix))
    check_tombstones(records, churn, windows)


async def test_restart_kafka_keeps_its_port_topics_and_records(
    stack_: stack.Stack, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """`devstack.stack.restart_kafka`: a new process on the same port and data directory,
    storage not re-formatted, so what was written before is still there."""
    topic = f"{topic_prefix}.kept"
    await kafka_helpers.create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"value", key=b"key")
    finally:
        await producer.stop()
    old_pid = stack_.pids["kafka"]

    await asyncio.to_thread(stack.restart_kafka, stack_)

    assert stack_.pids["kafka"] != old_pid
    assert not processes.alive(old_pid)
    assert stack_.kafka_bootstrap == kafka_bootstrap
    assert stack.load(Path(stack_.run_dir)) == stack_  # the state file knows the new pid
    records = await kafka_helpers.read_all(kafka_bootstrap, topic)
    assert [(r.key, r.value) for r in records] == [(b"key", b"value")]
