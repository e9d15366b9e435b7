"""Stopping a Kafka client is bounded and never hides why the run ended, on both sides
(each keeps its own copy of the helper: producers and consumers share nothing)."""

from __future__ import annotations

import asyncio
from types import ModuleType

import pytest

from consumers import kafka_clients as consumer_side
from producers import kafka_clients as producer_side

SIDES = pytest.mark.parametrize(
    "side", [consumer_side, producer_side], ids=["consumers", "producers"]
)


class Hangs:
    async def stop(self) -> None:
        await asyncio.Event().wait()


class CancelsItself:
    """Like aiokafka's consumer without a group, stopped while its first fetches pend."""

    async def stop(self) -> None:
        own = asyncio.create_task(asyncio.sleep(1))
        own.cancel()
        await own


class Fails:
    async def stop(self) -> None:
        raise OSError("connection reset")


@SIDES
@pytest.mark.parametrize("client", [Hangs(), CancelsItself(), Fails()])
async def test_a_stop_that_hangs_cancels_itself_or_fails_returns(
    side: ModuleType, client: Hangs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(side, "STOP_TIMEOUT_S", 0.05)
    async with asyncio.timeout(10):
        await side.stop("client", client.stop)


@SIDES
async def test_cancelling_the_stopping_task_still_cancels_it(side: ModuleType) -> None:
    task = asyncio.create_task(side.stop("client", Hangs().stop))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
