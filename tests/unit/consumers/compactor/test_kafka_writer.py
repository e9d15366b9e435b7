"""The targets writer holds a bounded window of records waiting for their acks."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, kafka_writer
from schemas.config import KafkaSettings
from schemas.topics import TargetKey


class AckingProducer:
    """Acks each record on the next turn of the event loop; counts bytes unacked."""

    def __init__(self) -> None:
        self.unacked = 0
        self.most_unacked = 0

    async def send(self, topic: str, value: bytes | None, *, key: bytes) -> asyncio.Future[object]:
        del topic, key
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        size = len(value or b"")
        self.unacked += size
        self.most_unacked = max(self.most_unacked, self.unacked)

        def ack() -> None:
            self.unacked -= size
            future.set_result(None)

        asyncio.get_running_loop().call_soon(ack)
        return future


def test_a_full_sync_holds_a_window_of_records_not_all_of_them() -> None:
    writer = kafka_writer.TargetsWriter(
        KafkaSettings(), topic="t", max_group_bytes=1 << 20,
        metrics=fold_metrics.create(CollectorRegistry()), skip=lambda *_: None,
    )  # fmt: skip
    producer = AckingProducer()
    writer._producer = producer  # type: ignore[assignment]
    value = b"x" * (1 << 20)
    writes = [(TargetKey(f"j/c/pod/ns/p{i}"), value) for i in range(3 * 32)]  # 3 windows

    written = asyncio.run(writer.send(writes))

    assert written == len(writes)
    assert producer.most_unacked <= kafka_writer.WINDOW_BYTES + len(value)


def writer_for(level: int | None, compression: str = "zstd") -> kafka_writer.TargetsWriter:
    return kafka_writer.TargetsWriter(
        KafkaSettings(compression=compression), topic="t", max_group_bytes=1 << 20,
        metrics=fold_metrics.create(CollectorRegistry()), skip=lambda *_: None,
        zstd_level=level,
    )  # fmt: skip


ZSTD9 = {"compression.type": "zstd", "compression.zstd.level": "9"}


def test_a_zstd_level_creates_the_topic_compressing_at_that_level() -> None:
    assert writer_for(9).topic_configs() == {"max.message.bytes": str((1 << 20) + 1024), **ZSTD9}
    assert writer_for(None).topic_configs() == {"max.message.bytes": str((1 << 20) + 1024)}


def test_the_writer_sends_uncompressed_only_to_a_topic_compressing_at_its_level() -> None:
    cases = [
        (9, ZSTD9, None),
        (9, {**ZSTD9, "compression.zstd.level": "3"}, "zstd"),
        (9, {**ZSTD9, "compression.type": "producer"}, "zstd"),
        (9, {}, "zstd"),  # Kafka did not say: never assume
        (None, ZSTD9, "zstd"),  # not asked: the fold compresses, as it always did
    ]
    for level, configs, expected in cases:
        writer = writer_for(level)
        writer.fit_topic(configs)
        assert writer.compression == expected, (level, configs)


def test_a_topic_compressing_otherwise_keeps_the_configured_codec() -> None:
    writer = writer_for(9, compression="lz4")
    writer.fit_topic({"compression.type": "producer"})
    assert writer.compression == "lz4"
    writer = writer_for(None, compression="none")
    writer.fit_topic(ZSTD9)
    assert writer.compression is None


def test_fitting_the_topic_also_limits_records_to_what_it_takes() -> None:
    writer = writer_for(9)
    writer.fit_topic({"max.message.bytes": "5000", **ZSTD9})
    assert writer.record_limit == 5000 - kafka_writer.RECORD_OVERHEAD
    assert writer.compression is None
