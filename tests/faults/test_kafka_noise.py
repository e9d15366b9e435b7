"""Kafka client noise, as a user reads the real processes' stderr:

- a first start against a fresh broker logs no aiokafka WARNING or ERROR before ready
  (no group coordinator yet, new topics without leaders: retried, not worth a warning);
- a broker restart under a running producer and consumer gives a bounded number of
  aiokafka WARNING/ERROR lines (it was ~990 from a consumer, ~320 from a producer), and
  one "stopped after" summary line once the outage is over.

The broker is this module's own (started fresh, restarted here), so the session broker
other tests use is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from sdstream.devstack import build, cache, processes, servers
from tests.faults import cli
from tests.integration import objects
from tests.naming import unique

AIOKAFKA_WARNING = re.compile(r" (WARNING|ERROR|CRITICAL) aiokafka[\w.]*: ")
OUTAGE_LINES_MAX = 20


@dataclass
class Broker:
    home: Path
    run: Path
    port: int
    pid: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.pid = servers.restart_kafka(self.home, self.run, pid=self.pid, broker=self.port)


@pytest.fixture
def fresh_kafka(tmp_path: Path) -> Iterator[Broker]:
    home = build.ensure_kafka(cache.cache_dir())
    port, controller = processes.free_port(), processes.free_port()
    run = tmp_path / "kafka-run"
    broker = Broker(home, run, port, servers.start_kafka(home, run, broker=port,
                                                         controller=controller))  # fmt: skip
    try:
        yield broker
    finally:
        processes.stop(broker.pid)


def noise(lines: list[str]) -> list[str]:
    return [line for line in lines if AIOKAFKA_WARNING.search(line)]


@contextlib.asynccontextmanager
async def within(timeout_s: float, what: str, *processes: cli.Running) -> AsyncIterator[None]:
    """A deadline whose failure shows what the processes said last."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        said = "\n".join(line for p in processes for line in p.lines[-25:])
        raise AssertionError(f"{what} within {timeout_s} s; last lines:\n{said}") from None


async def served(consumer: cli.Running, port: int, name: str) -> None:
    async with within(120, f"pod {name} in HTTP SD", consumer):
        while name.encode() not in await cli.body_of(port, "/http_sd/pods"):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def logged(process: cli.Running, text: str) -> None:
    async with within(60, f"{text!r} logged", process):
        while not any(text in line for line in process.lines):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def restart_under_churn(broker: Broker, api: client.ApiClient, namespace: str) -> None:
    """Restart the broker while pods keep coming (at most 100, one per 0.2 s), so the
    producer has records to send during the outage."""
    restart = asyncio.create_task(asyncio.to_thread(broker.restart))
    for number in range(100):
        objects.create_pod(api, namespace, f"during-{number}", ip="10.244.8.1", node="n")
        if (await asyncio.wait({restart}, timeout=0.2))[0]:
            break
    await restart


async def test_fresh_start_is_quiet_and_a_broker_restart_is_a_few_lines(
    fresh_kafka: Broker, kubeconfig: Path, kube_api: client.ApiClient, namespace: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = {"SDSTREAM_KAFKA_BOOTSTRAP": fresh_kafka.bootstrap}
    config = tmp_path / "consumer.yml"
    config.write_text(yaml.safe_dump({
        "group_id": unique("g"),
        "scrape_configs": [{"job_name": "pods", "kubernetes_sd_configs": [
            {"role": "pod", "namespaces": {"names": [namespace]}}]}],
    }))  # fmt: skip
    produce_port, consume_port = processes.free_port(), processes.free_port()
    producer_env = env | {
        "SDSTREAM_NAMESPACES": json.dumps([namespace]),
        "SDSTREAM_RESOURCES": '["pods"]',
    }  # JSON: main before the fix read no other

    async with (
        cli.running("produce", "--cluster", "c1", "--kubeconfig", str(kubeconfig),
                    "--http-port", str(produce_port), env=producer_env) as producer,
        cli.running("consume", "--config", str(config), "--http-port", str(consume_port),
                    env=env) as consumer,
    ):  # fmt: skip
        await asyncio.gather(producer.ready(produce_port), consumer.ready(consume_port))
        objects.create_pod(kube_api, namespace, "before", ip="10.244.7.1", node="n")
        await served(consumer, consume_port, "before")
        at_start = {p: noise(p.lines) for p in (producer, consumer)}
        marks = {p: len(p.lines) for p in (producer, consumer)}

        await restart_under_churn(fresh_kafka, kube_api, namespace)
        objects.create_pod(kube_api, namespace, "after", ip="10.244.7.2", node="n")
        await served(consumer, consume_port, "after")
        await logged(consumer, "Kafka client errors stopped after")
        during = {p: noise(p.lines[marks[p] :]) for p in (producer, consumer)}

    print(f"aiokafka WARNING+ lines: start producer {len(at_start[producer])}, "
          f"consumer {len(at_start[consumer])}; broker restart producer "
          f"{len(during[producer])}, consumer {len(during[consumer])}")  # fmt: skip
    assert at_start[producer] == [], "\n".join(at_start[producer])
    assert at_start[consumer] == [], "\n".join(at_start[consumer])
    for lines in during.values():
        assert len(lines) < OUTAGE_LINES_MAX, "\n".join(lines)
