"""Compacted topics as both sides make and read them: created with aiokafka's error types
(a topic that exists already is not a refusal), and their configs read, among them
`max.message.bytes`, the largest record batch a topic takes.

What each side makes of that limit stays its own: the producer keeps a margin that
grows with the limit (`producers.emit.fitting`), the fold a fixed 1 KiB
(`consumers.compactor.kafka_loop.RECORD_OVERHEAD`), each checked by its own tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, NoError, TopicAlreadyExistsError, for_code

COMPACTED = {"cleanup.policy": "compact"}
MAX_MESSAGE_BYTES = "max.message.bytes"


async def create(
    admin: AIOKafkaAdminClient,
    topics: Mapping[str, int],
    *,
    replication: int,
    configs: Mapping[str, str] | None = None,
) -> dict[str, KafkaError | None]:
    """Create `topics` (name -> partitions) compacted, with `configs`. Kafka's answer per
    topic, in order: None if it was created or exists, else the aiokafka error it stands
    for (an ACL refusal is TopicAuthorizationFailedError, for `refusals`)."""
    answers, _ = await create_new(admin, topics, replication=replication, configs=configs)
    return answers


async def create_new(
    admin: AIOKafkaAdminClient,
    topics: Mapping[str, int],
    *,
    replication: int,
    configs: Mapping[str, str] | None = None,
) -> tuple[dict[str, KafkaError | None], frozenset[str]]:
    """`create`'s answers, and the topics this call created: empty, unlike one that
    another client created first (TopicAlreadyExists)."""
    if not topics:
        return {}, frozenset()
    new = [NewTopic(name, count, replication, topic_configs={**COMPACTED, **(configs or {})})
           for name, count in topics.items()]  # fmt: skip
    response = await admin.create_topics(new)
    answers: dict[str, KafkaError | None] = {}
    made: set[str] = set()
    for name, code, *_ in response.topic_errors:
        error = for_code(code)
        answers[name] = None if error in (NoError, TopicAlreadyExistsError) else error(name)
        if error is NoError:
            made.add(name)
    return answers, frozenset(made)


async def configs(
    admin: AIOKafkaAdminClient, topics: Iterable[str], *, only: Iterable[str] | None = None
) -> dict[str, dict[str, str]]:
    """Each topic's configs (`only` those named, if given); a topic whose configs we may
    not read (e.g. no DESCRIBE_CONFIGS ACL) is left out: unknown, not wrong."""
    wanted = None if only is None else dict.fromkeys(only)
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in topics]
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources) if resources else ():
        for error, _, _, name, entries in response.resources:
            if error == 0:
                found[str(name)] = {str(e[0]): str(e[1]) for e in entries if e[1] is not None}
    return found


def max_message_bytes(configs: Mapping[str, str]) -> int | None:
    """The topic's `max.message.bytes` (the broker's default unless the topic sets its
    own), or None if Kafka did not say."""
    value = configs.get(MAX_MESSAGE_BYTES, "")
    return int(value) if value.isdigit() else None


def fewest_replicas(described: Mapping[str, Any]) -> int | None:
    """The fewest replicas of any partition of one admin.describe_topics() entry (the
    topic's replication factor), or None if it shows no partitions."""
    counts = [len(p["replicas"]) for p in described.get("partitions") or ()]
    return min(counts) if counts else None
