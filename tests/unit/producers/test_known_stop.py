"""Reading the known state ends with the error that stopped it, within a bound, even when
its groupless consumer's stop() cancels itself (aiokafka's does, stopped right after
start) or hangs: the runner must see PublishFailed and retry, not a cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import IllegalStateError

from lifecycle import stopping
from producers import kafka_known
from producers.emit import PublishFailed
from schemas.config import KafkaSettings


class FailsAfterStart:
    """A consumer that starts, then refuses its assignment; its stop misbehaves."""

    stop_cancels = True

    def __init__(self, **_: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    def assign(self, _: object) -> None:
        raise IllegalStateError("assign refused")

    async def stop(self) -> None:
        if self.stop_cancels:  # as aiokafka's: a task of its own cancelled under it
            own = asyncio.create_task(asyncio.sleep(1))
            own.cancel()
            await own
        await asyncio.Event().wait()


class HangsOnStop(FailsAfterStart):
    stop_cancels = False


@pytest.mark.parametrize("consumer", [FailsAfterStart, HangsOnStop])
async def test_a_failure_right_after_start_ends_load_with_that_error(
    consumer: type[FailsAfterStart], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka_known, "AIOKafkaConsumer", consumer)
    monkeypatch.setattr(stopping, "STOP_TIMEOUT_S", 0.05)
    reader = kafka_known.KafkaKnownReader(KafkaSettings(bootstrap="127.0.0.1:1"))
    async with asyncio.timeout(10):
        with pytest.raises(PublishFailed, match="assign refused"):
            await reader.load("t.pods", partitions=1)
