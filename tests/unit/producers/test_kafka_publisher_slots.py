"""A publish cancelled while the producer takes a lone record gives its slot back:
otherwise each cancel leaks one of `max_unacked` until publishing blocks for good."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from producers import kafka_publisher, producer_metrics
from producers.emit import Record
from schemas.config import KafkaSettings
from schemas.events import EventType
from schemas.topics import ObjectKey, Resource


class StuckProducer:
    """`send` never returns (a full buffer, a broker gone): only a cancel ends it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[object]:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def record() -> Record:
    return Record("t", ObjectKey("ns/a"), b"{}", [], 0, Resource.PODS, EventType.ADDED, 0.0, "1")


async def test_a_cancelled_lone_send_gives_its_slot_back() -> None:
    publisher = kafka_publisher.KafkaPublisher(
        KafkaSettings(bootstrap="127.0.0.1:1"),
        metrics=producer_metrics.create(CollectorRegistry()),
        max_unacked=1,
    )
    for _ in range(3):
        stuck = StuckProducer()
        publisher._producer = stuck  # a fake client
        task = asyncio.create_task(publisher.publish([record()]))
        async with asyncio.timeout(5):  # reached only while the one slot is free
            await stuck.entered.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not publisher._slots.locked()
