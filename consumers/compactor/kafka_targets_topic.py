"""The targets topic as the folding consumer needs it: created, and read once whole.

The sinks tail the same topic (`consumers.sinks.kafka_targets`); the fold only reads it at
a full sync, to write what differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAuthorizationFailedError
from aiokafka.protocol.metadata import MetadataRequest

from kafka_access import compacted, kafka_options, reading, topic_plan
from lifecycle import stopping
from schemas import targets
from schemas.config import KafkaSettings
from schemas.topics import Resource, TargetKey, object_topic

logger = logging.getLogger(__name__)

LEADER_WAIT_S = 10.0
MAX_MESSAGE_BYTES = compacted.MAX_MESSAGE_BYTES
WRITER_CONFIGS = (MAX_MESSAGE_BYTES, "compression.type", "compression.zstd.level")
# Records of the targets topic taken per batch at a full sync, as the sinks' reader takes
# them (`kafka_targets.BATCH_RECORDS`): more were alive at once, inflated, than the digests
# kept (a restart of 300k targets peaked ~80 MiB above a first start; bench/README.md,
# session 9).
READ_RECORDS = 2000


class TopicRefused(RuntimeError):
    """Kafka answered the creation of a topic with an error."""


class TopicUnfit(RuntimeError):
    """With `create_topics: false`, the topic is missing or not compacted; the message
    says what to run (a configuration error: exit 2)."""


async def ensure_topic(
    kafka: KafkaSettings, topic: str, *, partitions: int, configs: Mapping[str, str] | None = None
) -> None:
    """Create the compacted topic (with `configs`) unless it exists; a refusal is
    `TopicRefused` (an ACL refusal is the aiokafka error, chained, for
    `kafka_access.refusals`). With `create_topics: false` nothing is created: a missing or
    uncompacted topic is `TopicUnfit`. A topic whose replication factor or
    min.insync.replicas differs from the settings is used, with a warning naming it."""
    admin = AIOKafkaAdminClient(**kafka_options.client_options(kafka))
    await admin.start()
    try:
        durable = topic_plan.durability_configs(kafka.min_insync_replicas)
        wanted = topic_plan.Wanted(topic, partitions, partitions_matter=False,
                                   configs={**(configs or {}), **durable})  # fmt: skip
        if not kafka.create_topics:
            await _check_unfit(admin, kafka, wanted)
        else:
            answers = await compacted.create(
                admin, {topic: partitions}, replication=kafka.replication_factor,
                configs=wanted.configs,
            )  # fmt: skip
            for name, error in answers.items():
                if error is not None:
                    raise TopicRefused(f"cannot create {name}: {error.message}") from error
            await _wait_for_leaders(admin, [topic])
        await _warn_durability(admin, kafka, topic)
    finally:
        await stopping.stop("admin client", admin.close)


async def _check_unfit(
    admin: AIOKafkaAdminClient, kafka: KafkaSettings, wanted: topic_plan.Wanted
) -> None:
    """The topic as an operator made it: TopicUnfit naming what to run if it is unusable."""
    found: dict[str, topic_plan.Found] = {}
    # Every topic's metadata: naming a missing one would auto-create it on brokers that
    # allow that. A topic we may not describe is not listed, as if missing.
    for meta in await admin.describe_topics(None):
        if meta["topic"] == wanted.name and meta["error_code"] == 0:
            configs = await compacted.configs(admin, [wanted.name])
            found[wanted.name] = topic_plan.Found(
                len(meta["partitions"]), configs.get(wanted.name, {})
            )
    problems = topic_plan.unfit(
        [wanted], found, bootstrap=kafka.bootstrap, replication=kafka.replication_factor
    )
    if problems:
        raise TopicUnfit(topic_plan.message(problems, creating=False))


async def _warn_durability(admin: AIOKafkaAdminClient, kafka: KafkaSettings, topic: str) -> None:
    """Warn if the topic's replication factor or min.insync.replicas is not the settings'."""
    (described,) = await admin.describe_topics([topic])
    configs = await compacted.configs(admin, [topic], only=[topic_plan.MIN_INSYNC])
    found = {topic: topic_plan.Found(len(described["partitions"]), configs.get(topic, {}),
                                     compacted.fewest_replicas(described))}  # fmt: skip
    for line in topic_plan.durability_drift(
        found, replication=kafka.replication_factor, min_insync=kafka.min_insync_replicas,
        bootstrap=kafka.bootstrap,
    ):  # fmt: skip
        logger.warning("Using %s.", line, extra={"topic": topic, "problem": line})


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Until every partition has a leader (at most LEADER_WAIT_S): clients that use a
    topic created a moment ago otherwise log LeaderNotAvailable/NotLeaderForPartition
    warnings while they retry."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LEADER_WAIT_S):
            while not leaders_elected(await admin.describe_topics(topics)):  # noqa: ASYNC110 - polling Kafka
                await asyncio.sleep(0.1)


def leaders_elected(described: list[dict[str, Any]]) -> bool:
    """Whether admin.describe_topics() shows every partition of every topic led."""
    return all(
        meta["error_code"] == 0
        and meta["partitions"]
        and all(p["error_code"] == 0 and p["leader"] >= 0 for p in meta["partitions"])
        for meta in described
    )


async def denied_clusters(
    kafka: KafkaSettings, clusters: Iterable[str], resources: Iterable[Resource]
) -> set[str]:
    """The clusters some of whose object topics Kafka will not even describe to us. Asked
    by name (never created: auto-creation is off in the request), a topic we may not
    describe answers TOPIC_AUTHORIZATION_FAILED whether or not it exists, while listing
    every topic leaves it out as if deleted: such a cluster is denied, not gone."""
    names = {object_topic(kafka.topic_prefix, c, r): c for c in clusters for r in resources}
    if not names:
        return set()
    admin = AIOKafkaAdminClient(**kafka_options.client_options(kafka))
    await admin.start()
    try:
        answer = await admin._send_request(  # describe_topics would let the broker create them
            MetadataRequest(sorted(names), allow_auto_topic_creation=False)
        )
    finally:
        await stopping.stop("admin client", admin.close)
    denied = TopicAuthorizationFailedError.errno
    return {names[t["topic"]] for t in answer.to_object()["topics"]
            if t["error_code"] == denied and t["topic"] in names}  # fmt: skip


async def max_message_bytes(kafka: KafkaSettings, topic: str) -> int | None:
    """The largest record batch the topic accepts (its `max.message.bytes`, or the broker's
    default), or None if Kafka does not say: a topic created before the fold set it, or by
    hand, may take less than the fold would send."""
    return compacted.max_message_bytes(await writer_configs(kafka, topic))


async def writer_configs(kafka: KafkaSettings, topic: str) -> dict[str, str]:
    """The topic's configs the fold's writer adapts to (`TargetsWriter.fit_topic`): its
    largest record batch and its compression, as Kafka describes them (the broker's
    defaults where the topic sets none); empty if Kafka does not say."""
    admin = AIOKafkaAdminClient(**kafka_options.client_options(kafka))
    await admin.start()
    try:
        configs = await compacted.configs(admin, [topic], only=WRITER_CONFIGS)
    finally:
        await stopping.stop("admin client", admin.close)
    return configs.get(topic, {})


async def read_digests(kafka: KafkaSettings, topic: str) -> dict[TargetKey, bytes]:
    """The topic as it is now: a digest of the latest value per key (`targets.digest`),
    unparsed (a value that is not what we would write gets rewritten or tombstoned like
    any other). Digests, not values: at 50k groups the values were ~400 MiB held at once."""
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_options.client_options(kafka),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()  # subscribed at start, so the topic's metadata is loaded
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not tps:
            raise TopicRefused(f"{topic} has no partitions (was it deleted?)")
        consumer.unsubscribe()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        held: dict[TargetKey, bytes] = {}
        async for batch, _ in reading.batches_to_end(consumer, tps, max_records=READ_RECORDS):
            for records in batch.values():
                _apply(held, records)
        return held
    finally:
        await stopping.stop("targets reader", consumer.stop)


def _apply(held: dict[TargetKey, bytes], records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
    for record in records:
        if record.key is None:
            continue
        key = TargetKey(record.key.decode(errors="replace"))
        if record.value is None:
            held.pop(key, None)
        else:
            held[key] = targets.digest(record.value)
