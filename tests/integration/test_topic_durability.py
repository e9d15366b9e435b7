"""Replication factor and min.insync.replicas against the real broker: set on every topic
sdstream creates (object topics by the producer, the targets topic by the fold), and an
existing topic made otherwise is used with a warning naming it, not refused.

The devstack has one broker, so every topic here has one replica; min.insync.replicas=1
set by sdstream is told from the broker's default by where DescribeConfigs says the
value comes from."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.config import KafkaSettings
from schemas.topics import Resource, object_topic, targets_topic
from tests.integration import kafka_helpers
from tests.integration.test_consume import POD_JOB, consumer
from tests.integration.test_consume import settings as consumer_settings
from tests.integration.test_create_topics import listed
from tests.integration.test_producer import PARTITIONS, running, settings_for
from tests.naming import unique

MIN_INSYNC = "min.insync.replicas"
TOPIC_CONFIG = 1  # DescribeConfigs v1+ config_source DYNAMIC_TOPIC_CONFIG


async def min_insync(bootstrap: str, topic: str) -> tuple[str, bool]:
    """The topic's min.insync.replicas and whether the topic itself sets it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, dict.fromkeys([MIN_INSYNC]))
        (response,) = await admin.describe_configs([resource])
    finally:
        await admin.close()
    ((error, _, _, _, entries),) = response.resources
    assert error == 0, response
    ((name, value, _, source, *_),) = entries
    assert name == MIN_INSYNC
    return value, source == TOPIC_CONFIG


def durability(kafka: KafkaSettings, replication: int, insync: int) -> KafkaSettings:
    return kafka.model_copy(
        update={"replication_factor": replication, "min_insync_replicas": insync}
    )


async def test_every_topic_sdstream_creates_carries_min_insync_replicas(
    kafka_bootstrap: str, kubeconfig: Path, namespace: str, topic_prefix: str
) -> None:
    produce = settings_for(kafka_bootstrap, kubeconfig, prefix=topic_prefix,
                           namespace=namespace, resources=(Resource.PODS,))  # fmt: skip
    produce = produce.model_copy(update={"kafka": durability(produce.kafka, 1, 1)})
    consume = consumer_settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
    consume = consume.model_copy(update={"kafka": durability(consume.kafka, 1, 1)})

    async with running(produce), consumer(consume):
        pass

    for topic in (object_topic(topic_prefix, "c1", Resource.PODS), targets_topic(topic_prefix)):
        assert await min_insync(kafka_bootstrap, topic) == ("1", True), topic


async def test_topics_made_otherwise_are_used_with_a_warning_naming_each(
    kafka_bootstrap: str,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator made the topics with one replica; the settings ask for 2 and 2. Kafka
    cannot change a replication factor in place, and the topics work: warn, run."""
    pods, targets = object_topic(topic_prefix, "c1", Resource.PODS), targets_topic(topic_prefix)
    compact = {"cleanup.policy": "compact", MIN_INSYNC: "1"}
    await kafka_helpers.create_topic(kafka_bootstrap, pods, partitions=PARTITIONS, configs=compact)
    await kafka_helpers.create_topic(kafka_bootstrap, targets, partitions=2, configs=compact)
    await listed(kafka_bootstrap, topic_prefix, {pods, targets})
    produce = settings_for(kafka_bootstrap, kubeconfig, prefix=topic_prefix,
                           namespace=namespace, resources=(Resource.PODS,))  # fmt: skip
    produce = produce.model_copy(update={"kafka": durability(produce.kafka, 2, 2)})
    consume = consumer_settings(kafka_bootstrap, topic_prefix, POD_JOB, group=unique("g"))
    consume = consume.model_copy(update={"kafka": durability(consume.kafka, 2, 2)})

    with caplog.at_level(logging.WARNING):
        async with running(produce) as run, consumer(consume):
            assert run.producer.readiness.ready

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for topic in (pods, targets):
        assert f"Using topic {topic} has replication factor 1, not 2" in "\n".join(warnings)
        (line,) = [w for w in warnings if f"topic {topic} has {MIN_INSYNC}=1, not 2" in w]
        assert f"--entity-name {topic} --add-config {MIN_INSYNC}=2" in line
