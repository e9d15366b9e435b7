"""Stopping the fold's Kafka clients is bounded and never hides why the run ended."""

from __future__ import annotations

import asyncio

import pytest

from consumers.compactor import kafka_loop


class Hangs:
    async def stop(self) -> None:
        await asyncio.Event().wait()


class CancelsItself:
    """Like aiokafka's consumer without a group, stopped before its first loop ran."""

    async def stop(self) -> None:
        own = asyncio.create_task(asyncio.sleep(1))
        own.cancel()
        await own


class Fails:
    async def stop(self) -> None:
        raise OSError("connection reset")


@pytest.mark.parametrize("client", [Hangs(), CancelsItself(), Fails()])
async def test_a_stop_that_hangs_cancels_itself_or_fails_returns(
    client: kafka_loop._Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka_loop, "STOP_TIMEOUT_S", 0.05)
    async with asyncio.timeout(10):
        await kafka_loop._stop("client", client)


async def test_cancelling_the_stopping_task_still_cancels_it() -> None:
    task = asyncio.create_task(kafka_loop._stop("client", Hangs()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
