"""The sinks reader's run() ends with the error that stopped it, within a bound, even
when its groupless consumer's stop() cancels itself or hangs (aiokafka's consumer does
the first when stopped while its first fetches are pending, right after start)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from consumers.sinks import kafka_targets, sink_metrics
from consumers.sinks.views import TargetView
from lifecycle import stopping
from schemas.config import KafkaSettings


class FailsAfterStart:
    """A consumer that starts, then fails at its first request; its stop misbehaves."""

    stop_cancels = True

    def __init__(self, **_: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    def assign(self, _: object) -> None:
        pass

    async def seek_to_beginning(self, *_: object) -> None:
        raise KafkaConnectionError("broker went away")

    async def stop(self) -> None:
        if self.stop_cancels:  # as aiokafka's: a pending fetch task cancelled under it
            own = asyncio.create_task(asyncio.sleep(1))
            own.cancel()
            await own
        await asyncio.Event().wait()


class HangsOnStop(FailsAfterStart):
    stop_cancels = False


async def one_partition(*_: object) -> list[int]:
    return [0]


@pytest.mark.parametrize("consumer", [FailsAfterStart, HangsOnStop])
async def test_a_failure_right_after_start_ends_run_with_that_error(
    consumer: type[FailsAfterStart], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka_targets, "AIOKafkaConsumer", consumer)
    monkeypatch.setattr(kafka_targets, "_partitions", one_partition)
    monkeypatch.setattr(stopping, "STOP_TIMEOUT_S", 0.05)
    reader = kafka_targets.TargetsReader(
        KafkaSettings(bootstrap="127.0.0.1:1"), view=TargetView(),
        metrics=sink_metrics.create(CollectorRegistry()),
    )  # fmt: skip
    async with asyncio.timeout(10):
        with pytest.raises(kafka_targets.TargetsReadFailed, match="broker went away"):
            await reader.run()
