"""Stopping a Kafka client at the end of a run: bounded, and never hiding why it ended.

Every Kafka client here is stopped in a `finally`, so whatever ended the run (an error
right after start, a cancellation, Kafka gone) must reach the caller as it is. Two
things stood in the way:

- a stop can hang (aiokafka waits on a broker that is gone), so a start-up failure
  became a hang: each stop gets STOP_TIMEOUT_S, then the client is left behind, logged;
- aiokafka's consumer without a group, stopped while its first fetch tasks are pending
  (right after start), raises CancelledError from stop(): escaping the `finally`, it
  replaced the error that ended the run by a cancellation, which the process's task
  group ignores (the consumer then sat at /readyz 503 for ever). Only a cancellation
  of the stopping task itself goes on.

A stop that fails is logged, not raised: the next client still stops, and the run's own
error goes on. No aiokafka import: a client is anything with an async stop or close.
Its own package, importing nothing of ours, so producers and consumers (which may not
import each other) share this one copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0  # longest wait for one Kafka client to stop


async def stop(name: str, stopping: Callable[[], Awaitable[None]]) -> None:
    """Run `stopping` (a client's stop or close) within STOP_TIMEOUT_S; never raises but
    for a cancellation of the calling task."""
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await _stop_once(name, stopping)
    except TimeoutError:
        logger.warning("Stopping the %s took over %.0f s; left behind.", name, STOP_TIMEOUT_S,
                       extra={"client": name})  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - logged; the error that stopped the run goes on
        logger.warning("Stopping the %s failed: %r.", name, exc, extra={"client": name})


async def _stop_once(name: str, stopping: Callable[[], Awaitable[None]]) -> None:
    try:
        await stopping()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        logger.debug("Stopping the %s: its own task was cancelled.", name, extra={"client": name})
