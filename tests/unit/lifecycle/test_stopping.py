"""Stopping a Kafka client is bounded and never hides why the run ended (one helper,
used by producers and consumers alike)."""

from __future__ import annotations

import asyncio

import pytest

from lifecycle import stopping


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


@pytest.mark.parametrize("client", [Hangs(), CancelsItself(), Fails()])
async def test_a_stop_that_hangs_cancels_itself_or_fails_returns(
    client: Hangs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stopping, "STOP_TIMEOUT_S", 0.05)
    async with asyncio.timeout(10):
        await stopping.stop("client", client.stop)


async def test_cancelling_the_stopping_task_still_cancels_it() -> None:
    task = asyncio.create_task(stopping.stop("client", Hangs().stop))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
