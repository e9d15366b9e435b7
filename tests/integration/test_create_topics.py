"""`kafka.create_topics: false` against the real broker: nothing is created, every missing
topic is named in one error with the command that creates it (exit 2), and once an
operator has created them the processes run."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.runner import Producer
from schemas.topics import Resource, object_topic, targets_topic
from sdstream import consume
from tests.integration import kafka_helpers
from tests.integration.test_consume import POD_JOB, consumer
from tests.integration.test_consume import settings as consumer_settings
from tests.integration.test_producer import PARTITIONS, running, settings_for
from tests.naming import unique

RESOURCES = (Resource.PODS, Resource.SERVICES)


async def topics(bootstrap: str, prefix: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if t.startswith(f"{prefix}.")}
    finally:
        await admin.close()


async def listed(bootstrap: str, prefix: str, wanted: set[str]) -> None:
    """Until the broker's metadata lists topics created a moment ago (as an operator's
    would be, long before sdstream starts)."""
    async with asyncio.timeout(30):
        while not wanted <= await topics(bootstrap, prefix):  # noqa: ASYNC110 - polling Kafka
            await asyncio.sleep(0.1)


async def test_the_producer_names_every_missing_topic_and_exits_2_then_runs_once_created(
    kafka_bootstrap: str,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = settings_for(
        kafka_bootstrap, kubeconfig, prefix=topic_prefix, namespace=namespace, resources=RESOURCES
    )
    settings = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"create_topics": False})}
    )
    producer = Producer(settings, producer_metrics.create(CollectorRegistry()))

    with caplog.at_level(logging.ERROR):
        assert await producer.run(asyncio.Event()) == 2

    assert await topics(kafka_bootstrap, topic_prefix) == set()
    (line,) = [r.getMessage() for r in caplog.records if "create_topics is false" in r.getMessage()]
    for resource in RESOURCES:
        topic = object_topic(topic_prefix, "c1", resource)
        assert (
            f"kafka-topics.sh --bootstrap-server {kafka_bootstrap} --create --topic {topic} "
            f"--partitions {PARTITIONS} --replication-factor 1 --config cleanup.policy=compact"
        ) in line
    wanted = {object_topic(topic_prefix, "c1", resource) for resource in RESOURCES}
    for topic in wanted:
        await kafka_helpers.create_topic(kafka_bootstrap, topic, partitions=PARTITIONS)
    await listed(kafka_bootstrap, topic_prefix, wanted)
    async with running(settings) as run:
        assert run.producer.readiness.ready


async def test_the_fold_names_its_missing_targets_topic_and_exits_2_then_runs_once_created(
    kafka_bootstrap: str, topic_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = consumer_settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
    config = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"create_topics": False})}
    )

    assert await consume._main(config) == 2

    assert await topics(kafka_bootstrap, topic_prefix) == set()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    topic = targets_topic(topic_prefix)
    assert f"kafka-topics.sh --bootstrap-server {kafka_bootstrap} --create --topic {topic}" in err
    assert "--config max.message.bytes=" in err
    await kafka_helpers.create_topic(kafka_bootstrap, topic, partitions=2)
    await listed(kafka_bootstrap, topic_prefix, {topic})
    async with consumer(config):
        pass  # ready: read the targets topic it did not create


async def test_an_uncompacted_targets_topic_is_named_with_the_command_that_fixes_it(
    kafka_bootstrap: str, topic_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = consumer_settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
    config = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"create_topics": False})}
    )
    topic = targets_topic(topic_prefix)
    await kafka_helpers.create_topic(
        kafka_bootstrap, topic, partitions=2, configs={"cleanup.policy": "delete"}
    )
    await listed(kafka_bootstrap, topic_prefix, {topic})

    assert await consume._main(config) == 2

    err = capsys.readouterr().err
    assert f"--entity-name {topic} --add-config cleanup.policy=compact" in err
