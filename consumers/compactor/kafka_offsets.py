"""The fold's committed offsets: progress markers for lag tooling, never a resume point.

kafka-consumer-groups, Burrow and kminion measure a group's lag as end offset minus the
offset it committed. The fold rebuilds its state from the compacted topics at every start
and for every gained partition (`kafka_loop` seeks gained partitions to the beginning
whatever is committed), so what it commits only says how far its published target groups
reflect each partition: the positions folded before the last publish step that finished.

Commits run in their own task, every `interval_s` (each within COMMIT_TIMEOUT_S) and once
more at shutdown (within FINAL_COMMIT_TIMEOUT_S). A commit that fails (a rebalance under
way, the coordinator moving, Kafka away) is counted by reason and tried again at the next
tick; the fold never waits for one. One failure (a rebalance makes one) is logged at INFO,
a second in a row as a warning, later ones at DEBUG until a line says commits work again:
an outage is not a line every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

logger = logging.getLogger(__name__)

COMMIT_TIMEOUT_S = 10.0  # longest wait for one commit
# At shutdown, before the group consumer stops: short, so that with every client's own
# stop bound the process still ends within a pod's 30 s termination grace period.
FINAL_COMMIT_TIMEOUT_S = 3.0


class OffsetCommitter:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        interval_s: float,
        commits: Counter,
        failures: Counter,
    ) -> None:
        self._consumer = consumer
        self._interval_s = interval_s
        self._commits = commits
        self._failures = failures
        self._marked: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._failing = 0  # consecutive failures

    def mark(self, positions: Mapping[TopicPartition, int]) -> None:
        """Positions whose records the targets topic now reflects (published and acked)."""
        self._marked.update(positions)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.commit()

    async def commit(self, timeout_s: float = COMMIT_TIMEOUT_S) -> None:
        """Commit marked positions of assigned partitions that moved; never raises a Kafka
        error or a timeout (counted, logged, tried again next time)."""
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in self._marked.items()
                   if tp in assigned and self._committed.get(tp) != offset}  # fmt: skip
        self._marked = {tp: o for tp, o in self._marked.items() if tp in assigned}
        if not offsets:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._consumer.commit(offsets)
        except (KafkaError, TimeoutError) as exc:
            self._failed(exc)
            return
        self._committed.update(offsets)
        self._commits.inc()
        if self._failing:
            logger.info("Committing offsets works again after %d failures.", self._failing,
                        extra={"failures": self._failing})  # fmt: skip
            self._failing = 0

    def _failed(self, exc: BaseException) -> None:
        reason = type(exc).__name__
        self._failures.labels(reason).inc()
        self._failing += 1
        log = {1: logger.info, 2: logger.warning}.get(self._failing, logger.debug)
        log("Cannot commit the fold's offsets (progress markers for lag tools; the fold goes "
            "on): %r; trying again in %.0f s.", exc, self._interval_s,
            extra={"reason": reason, "failures": self._failing})  # fmt: skip
