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
