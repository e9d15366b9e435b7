"""`targets_zstd_level` against the real broker: the fold creates its targets topic with
the broker compressing at that level and sends uncompressed; a targets topic that existed
with other compression configs is used as it is (never altered), with a warning naming
the command that changes it, and the fold compresses its records itself."""

from __future__ import annotations

import logging

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.config import ConsumerSettings
from schemas.topics import Resource, targets_topic
from tests.integration import events, kafka_helpers
from tests.integration.test_consume import POD_JOB, addresses, consumer, pod, settings
from tests.naming import unique

TOPIC_CONFIG = 1  # DescribeConfigs v1+ config_source DYNAMIC_TOPIC_CONFIG
COMPRESSION = ("compression.type", "compression.zstd.level")


async def compression(bootstrap: str, topic: str) -> dict[str, tuple[str, bool]]:
    """The topic's compression configs: value, and whether the topic itself sets it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, dict.fromkeys(COMPRESSION))
        (response,) = await admin.describe_configs([resource])
    finally:
        await admin.close()
    ((error, _, _, _, entries),) = response.resources
    assert error == 0, response
    return {name: (value, source == TOPIC_CONFIG) for name, value, _, source, *_ in entries}


def leveled(bootstrap: str, prefix: str, level: int) -> ConsumerSettings:
    config = settings(bootstrap, prefix, POD_JOB, group=unique("g"))
    return config.model_copy(update={"targets_zstd_level": level})


async def served_pods(bootstrap: str, prefix: str, config: ConsumerSettings) -> None:
    """Two pods in, both served; both groups on the targets topic, readable."""
    await events.create_topics(bootstrap, prefix, "c1")
    async with events.Writer(bootstrap, prefix) as writer:
        await writer.put("c1", Resource.PODS, pod("a", "web-0", "10.244.0.1"))
        await writer.put("c1", Resource.PODS, pod("b", "web-1", "10.244.0.2"))
        async with consumer(config) as running:
            found = await running.until("pods", lambda e: len(e) == 2)
            assert addresses(found) == ["10.244.0.1:8080", "10.244.0.2:8080"]
    written = await kafka_helpers.read_all(bootstrap, targets_topic(prefix))
    assert sorted(r.key for r in written if r.value) == [
        b"pods/c1/pod/a/web-0", b"pods/c1/pod/b/web-1"
    ]  # fmt: skip


async def test_the_fold_creates_its_targets_topic_compressed_by_the_broker(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="consumers.compactor.kafka_writer"):
        await served_pods(kafka_bootstrap, topic_prefix, leveled(kafka_bootstrap, topic_prefix, 9))

    assert await compression(kafka_bootstrap, targets_topic(topic_prefix)) == {
        "compression.type": ("zstd", True), "compression.zstd.level": ("9", True)
    }  # fmt: skip
    topic = targets_topic(topic_prefix)
    said = [r.getMessage() for r in caplog.records]
    assert f"Sending to {topic} uncompressed: the topic compresses with zstd level 9." in said


async def test_a_targets_topic_made_otherwise_is_used_as_it_is_with_a_warning(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator made the targets topic without compression configs: the fold leaves it
    so, says how to change it, and compresses its records itself (sending them
    uncompressed would store them uncompressed)."""
    topic = targets_topic(topic_prefix)
    await kafka_helpers.create_topic(
        kafka_bootstrap, topic, partitions=2, configs={"cleanup.policy": "compact"}
    )
    before = await compression(kafka_bootstrap, topic)
    assert before["compression.type"] == ("producer", False)

    with caplog.at_level(logging.INFO, logger="consumers.compactor.kafka_writer"):
        await served_pods(kafka_bootstrap, topic_prefix, leveled(kafka_bootstrap, topic_prefix, 9))

    assert await compression(kafka_bootstrap, topic) == before
    said = [r.getMessage() for r in caplog.records]
    (line,) = [s for s in said if "not what targets_zstd_level=9 asks" in s]
    assert f"{topic} has compression.type=producer, compression.zstd.level=3" in line
    assert "the fold compresses its records itself (zstd)" in line
    assert f"--entity-name {topic} --add-config compression.type=zstd,compression.zstd.level=9" in (
        line
    )
    assert not [s for s in said if s.startswith(f"Sending to {topic} uncompressed")]
