"""The fold's writes to the targets topic: one idempotent producer, every ack awaited,
and records Kafka would refuse (or refuses) skipped one by one.

Limits: a group whose record exceeds `max_group_bytes` (or what the targets topic takes,
read at start) is not published: its key gets a tombstone, so no stale version is
served, and it is counted and logged (`skip`); a record Kafka refuses anyway is handled
the same way, and the limit drops below it. One group never stops the others.

Compression: the producer compresses with `kafka.compression` (aiokafka's zstd is level 3,
with no option for another). With `targets_zstd_level` the targets topic is created with
`compression.type=zstd` at that level and the writer sends uncompressed, so the broker
compresses each batch at that level (Kafka keeps a batch the producer compressed with the
topic's codec as it was sent, whatever the topic's level). A topic that existed before
with other compression configs is used as it is, with a warning, and the producer
compresses: sending uncompressed to it would store the records uncompressed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

from consumers.compactor import fold_metrics
from consumers.compactor.full_sync import Write
from kafka_access import compacted, kafka_options
from lifecycle import stopping
from schemas import targets
from schemas.config import KafkaSettings
from schemas.topics import TargetKey

logger = logging.getLogger(__name__)

# Room in a record batch beside the largest record (key and value are counted in the
# limit): batch and record framing, and what compressing incompressible bytes adds.
RECORD_OVERHEAD = 1 << 10
MAX_BATCH_BYTES = 1 << 20  # records per batch, so full syncs take few round trips
WINDOW_BYTES = 32 << 20  # record values sent before their acks are awaited
REJECTED = (MessageSizeTooLargeError, RecordListTooLargeError)  # the broker's "too large"
Skip = Callable[[TargetKey, str, str, int], None]  # key, reason, detail, bytes
Handed = Callable[[], Awaitable[None]]  # every record of a send is with the producer
Sent = list[tuple[Write, "asyncio.Future[object]"]]  # records with the producer, their acks
COMPRESSION_TYPE = "compression.type"
ZSTD_LEVEL = "compression.zstd.level"  # KIP-390, Kafka >= 3.8


def broker_zstd(level: int) -> dict[str, str]:
    """The topic configs that have the broker compress every batch with zstd at `level`."""
    return {COMPRESSION_TYPE: "zstd", ZSTD_LEVEL: str(level)}


def broker_compresses(level: int | None, configs: Mapping[str, str]) -> bool:
    """Whether the topic (its `configs` as Kafka describes them) compresses with zstd at
    `level`: only then may the writer send uncompressed. Configs Kafka did not show (no
    DESCRIBE_CONFIGS ACL) are not assumed."""
    return level is not None and all(configs.get(k) == v for k, v in broker_zstd(level).items())


class TargetsWriter:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        max_group_bytes: int,
        metrics: fold_metrics.FoldMetrics,
        skip: Skip,
        zstd_level: int | None = None,
    ) -> None:
        self._kafka = kafka
        self._zstd_level = zstd_level
        self._compression = kafka.compression_type()
        self._topic = topic
        self._max_group_bytes = max_group_bytes
        self._metrics = metrics
        self._skip = skip
        self.record_limit = max_group_bytes  # lowered if the targets topic takes less
        self._producer: AIOKafkaProducer | None = None

    def topic_limit(self) -> int:
        """The max.message.bytes the targets topic is created with."""
        return self._max_group_bytes + RECORD_OVERHEAD

    @property
    def compression(self) -> str | None:
        """The codec its producer compresses with; None: it sends uncompressed."""
        return self._compression

    def topic_configs(self) -> dict[str, str]:
        """The configs the targets topic is created with: the largest record it takes, and
        with `zstd_level` the broker's compression."""
        configs = {compacted.MAX_MESSAGE_BYTES: str(self.topic_limit())}
        return configs if self._zstd_level is None else configs | broker_zstd(self._zstd_level)

    def fit_topic(self, configs: Mapping[str, str]) -> None:
        """Adapt to the targets topic as it is (`configs` as Kafka describes them; it may
        have existed before, made otherwise): the largest record it takes, and who
        compresses. Before `start`."""
        self.limit_records(compacted.max_message_bytes(configs))
        if self._zstd_level is None:
            return
        if broker_compresses(self._zstd_level, configs):
            self._compression = None
            logger.info("Sending to %s uncompressed: the topic compresses with zstd level %d.",
                        self._topic, self._zstd_level, extra={"topic": self._topic})  # fmt: skip
            return
        self._compression = self._kafka.compression_type()
        self._warn_compression(self._zstd_level, configs)

    def _warn_compression(self, level: int, configs: Mapping[str, str]) -> None:
        """The topic compresses otherwise than `level` asks: what it has, and the command."""
        found = {k: configs.get(k, "unknown") for k in broker_zstd(level)}
        wanted = ",".join(f"{k}={v}" for k, v in broker_zstd(level).items())
        logger.warning(
            "%s has %s, not what targets_zstd_level=%d asks: the fold compresses its records"
            " itself (%s). To have the broker compress them at level %d, run: kafka-configs.sh"
            " --bootstrap-server %s --alter --entity-type topics --entity-name %s"
            " --add-config %s", self._topic,
            ", ".join(f"{k}={v}" for k, v in found.items()), level,
            self._kafka.compression, level, self._kafka.bootstrap, self._topic,
            wanted, extra={"topic": self._topic, "problem": "compression"},
        )  # fmt: skip

    def limit_records(self, taken: int | None) -> None:
        """A targets topic that existed before (or was created by hand) may take less than
        `max_group_bytes`: skip what it would refuse rather than have it refused."""
        if taken is None or taken - RECORD_OVERHEAD >= self._max_group_bytes:
            return
        self.record_limit = max(0, taken - RECORD_OVERHEAD)
        logger.warning(
            "%s takes records up to %d bytes (max.message.bytes), less than max_group_bytes"
            " (%d) needs: groups over %d bytes are skipped. Raise its max.message.bytes to"
            " %d to publish them.", self._topic, taken, self._max_group_bytes,
            self.record_limit, self.topic_limit(),
            extra={"topic": self._topic, "max_message_bytes": taken},
        )  # fmt: skip

    async def start(self) -> None:
        self._producer = self._new_producer()
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await stopping.stop("producer", self._producer.stop)

    def _new_producer(self) -> AIOKafkaProducer:
        # Big batches and a short linger: a full sync writes one record per group, and
        # one small batch per round trip (the defaults) made publishing the slowest step.
        # A batch never exceeds the largest record the targets topic takes.
        return AIOKafkaProducer(
            **kafka_options.client_options(self._kafka), enable_idempotence=True, acks="all",
            compression_type=self.compression, linger_ms=5,
            max_batch_size=min(MAX_BATCH_BYTES, self.record_limit),
            max_request_size=self.topic_limit(),
        )  # fmt: skip

    def value(self, key: TargetKey, group: targets.TargetGroup | None) -> bytes | None:
        """The group's record value; None (a tombstone) for no group or one too large."""
        return self.checked(key, None if group is None else targets.encode(group))

    def checked(self, key: TargetKey, value: bytes | None) -> bytes | None:
        """`value`, or None (a tombstone) for no value or one too large."""
        return value if value is not None and self.fits(key, value) else None

    def fits(self, key: TargetKey, value: bytes) -> bool:
        size = len(key) + len(value)
        if size <= self.record_limit:
            return True
        self._skip(key, "too_large", f"{size} bytes, over {self.record_limit}", size)
        return False

    async def send(self, writes: Iterable[Write], *, handed: Handed | None = None) -> int:
        """Send and wait for every ack; how many records were written. `handed` is awaited
        once every record is with the producer, before the last acks. Records the broker
        refuses as too large are skipped (`_resend_alone`), everything else goes on.
        Acks are awaited every `WINDOW_BYTES` of values, so a full sync holds that much
        of its records at a time, not all of them (419 MiB at 50k pods)."""
        written, sent = await self._hand(writes)
        if handed is not None:
            await handed()
        return written + await self.acked(sent)

    async def hand(self, writes: Iterable[Write]) -> Sent:
        """Give every record of `writes` to the producer and return without their acks
        (`acked` awaits them), so the fold can build and show its next round meanwhile.
        Past `WINDOW_BYTES` of values the earlier ones' acks are awaited here, as in `send`."""
        return (await self._hand(writes))[1]

    async def _hand(self, writes: Iterable[Write]) -> tuple[int, Sent]:
        """Records written in the windows acked meanwhile, and the last window's sends."""
        written, size = 0, 0
        sent: Sent = []
        for key, value in writes:
            if size >= WINDOW_BYTES:
                written += await self.acked(sent)
                sent, size = [], 0
            sent.append(((key, value), await self._send_one(key, value)))
            size += len(value or b"")
        return written, sent

    async def acked(self, sent: Sent) -> int:
        """Wait for the acks of what `hand` gave the producer; how many were written.
        Records refused as too large are sent again alone (`_resend_alone`) here, so the
        next round must be handed only once this returned: per key, the topic then gets
        the fold's order."""
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        failed = [(w, r) for (w, _), r in zip(sent, results, strict=True)
                  if isinstance(r, BaseException)]  # fmt: skip
        for ((_, value), _), result in zip(sent, results, strict=True):
            if not isinstance(result, BaseException):
                self._metrics.published.labels("tombstone" if value is None else "group").inc()
        if failed and not any(isinstance(r, REJECTED) for _, r in failed):
            raise failed[0][1]
        if failed:
            await self._restart()
            for write, _ in failed:
                await self._resend_alone(*write)
        return len(sent) - len(failed)

    async def _send_one(self, key: TargetKey, value: bytes | None) -> asyncio.Future[object]:
        assert self._producer is not None  # noqa: S101 - set before publishing starts
        future: asyncio.Future[object] = await self._producer.send(
            self._topic, value, key=key.encode()
        )
        return future

    async def _resend_alone(self, key: TargetKey, value: bytes | None) -> None:
        """A refused batch may have held other records beside the one too large: each is
        sent again on its own, and only one refused alone is skipped."""
        try:
            await (await self._send_one(key, value))
        except REJECTED as exc:
            size = len(key) + len(value or b"")
            self._skip(key, "rejected", f"{size} bytes refused by Kafka: {exc!r}", size)
            # The topic takes less than we read at start: later groups this large are
            # skipped before sending, so neither changes nor full syncs resend them.
            self.record_limit = min(self.record_limit, size - 1)
            await self._restart()
            await (await self._send_one(key, None))
            self._metrics.published.labels("tombstone").inc()
        else:
            self._metrics.published.labels("tombstone" if value is None else "group").inc()

    def options(self) -> dict[str, object]:
        """The client options its producer is built with (to diagnose a refusal)."""
        return kafka_options.client_options(self._kafka)

    async def restart(self) -> None:
        """A new producer: after a refusal, so the password file is read again."""
        await self._restart()

    async def _restart(self) -> None:
        """After a refused batch the idempotent producer's sequence numbers have a gap the
        broker would refuse every later batch of that partition for: start a new one."""
        await self.stop()
        await self.start()
