"""Creating compacted topics reads Kafka's answer as aiokafka errors; configs as text."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import TopicAuthorizationFailedError

from kafka_access import compacted


class Admin:
    """An admin client stand-in answering create_topics with fixed error codes."""

    def __init__(self, codes: dict[str, int]) -> None:
        self.codes = codes
        self.created: list[Any] = []

    async def create_topics(self, new: list[Any]) -> Any:
        self.created.extend(new)
        return SimpleNamespace(topic_errors=[(t.name, self.codes[t.name], None) for t in new])


def test_created_and_existing_topics_are_fine_and_a_refusal_is_its_aiokafka_error() -> None:
    admin = Admin({"made": 0, "there": 36, "denied": 29})
    topics = {"made": 3, "there": 3, "denied": 3}
    limit = {"max.message.bytes": "2048"}
    answers = asyncio.run(compacted.create(admin, topics, replication=1, configs=limit))  # type: ignore[arg-type]
    assert list(answers) == ["made", "there", "denied"]
    assert answers["made"] is None
    assert answers["there"] is None
    assert isinstance(answers["denied"], TopicAuthorizationFailedError)
    assert admin.created[0].topic_configs == {
        "cleanup.policy": "compact", "max.message.bytes": "2048"
    }  # fmt: skip


def test_create_new_names_only_the_topics_it_created() -> None:
    admin = Admin({"made": 0, "there": 36, "denied": 29})
    topics = {"made": 3, "there": 3, "denied": 3}
    answers, made = asyncio.run(compacted.create_new(admin, topics, replication=1))  # type: ignore[arg-type]
    assert made == {"made"}
    assert answers["there"] is None


def test_nothing_to_create_asks_nothing() -> None:
    admin = Admin({})
    assert asyncio.run(compacted.create(admin, {}, replication=1)) == {}  # type: ignore[arg-type]
    assert admin.created == []


def test_max_message_bytes_is_a_number_or_unknown() -> None:
    assert compacted.max_message_bytes({"max.message.bytes": "1048588"}) == 1048588
    assert compacted.max_message_bytes({}) is None
    assert compacted.max_message_bytes({"max.message.bytes": "lots"}) is None
