"""Peak memory of reading what an object topic holds (`{key: resourceVersion}`), the
producer's step at start and after each publish failure (issue 13, case 7).

Writes --records records of --value-bytes each to one topic, then reads it in separate
child processes: `list` keeps every record, then folds (the reader before the fix);
`fold` is `producers.kafka_known.KafkaKnownReader` (folds each batch as it arrives);
`idle` only imports and starts a consumer (the floor). Figures: each child's VmHWM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import kit
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from producers import known
from producers.kafka_known import KafkaKnownReader
from schemas import events
from schemas.config import KafkaSettings
from schemas.topics import ObjectKey, partition_for

TOPIC = "bench.c1.pods"
PARTITIONS = 6


async def write(bootstrap: str, *, records: int, value_bytes: int) -> None:
    await kit.create_topics(bootstrap, [TOPIC], partitions=PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=kit.CODEC,
                                linger_ms=5)  # fmt: skip
    await producer.start()
    try:
        pad = os.urandom(value_bytes // 2).hex()
        futures = []
        for i in range(records):
            key = ObjectKey(f"ns{i % 10}/pod-{i}")
            value = json.dumps({"resource_version": str(i), "pad": pad}).encode()
            headers = [(events.HEADER_RESOURCE_VERSION, str(i).encode())]
            futures.append(await producer.send(TOPIC, value, key=key.encode(),
                           partition=partition_for(key, PARTITIONS), headers=headers))  # fmt: skip
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_list(bootstrap: str) -> int:
    """The reader before the fix: every record kept, then folded."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        records: list[known.StoredRecord] = []
        while any([await consumer.position(tp) < end[tp] for tp in parts]):
            batch = await consumer.getmany(*parts, timeout_ms=500)
            for tp, rs in batch.items():
                records.extend(known.StoredRecord(r.key, r.value, tuple(r.headers))
                               for r in rs if r.offset < end[tp])  # fmt: skip
        state, _ = known.fold(records)
        return len(state)
    finally:
        await consumer.stop()


async def child_main(role: str, bootstrap: str) -> dict[str, Any]:
    floor = kit.hwm_mb()
    if role == "list":
        keys = await read_list(bootstrap)
    elif role == "fold":
        keys = len(await KafkaKnownReader(KafkaSettings(bootstrap=bootstrap)).load(
            TOPIC, partitions=PARTITIONS))  # fmt: skip
    else:
        keys = 0
    return {"role": role, "keys": keys, "floor_mb": floor}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--value-bytes", type=int, default=4_096)
    parser.add_argument("--small", action="store_true", help="3,000 records")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kit.report(asyncio.run(child_main(args.child[0], json.loads(args.child[1]))))
        return 0
    if args.small:
        args.records = 3_000
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    with kit.devstack() as stack:
        boot = stack.kafka_bootstrap
        asyncio.run(write(boot, records=args.records, value_bytes=args.value_bytes))
        kit.say(f"wrote {args.records} records of {args.value_bytes} bytes")
        rows = [kit.child(me, role, boot) for role in ("idle", "list", "fold", "list", "fold")]
    idle = rows[0]["max_rss_mb"]
    print(kit.table(
        ["reader", "live keys", "peak RSS MiB", "above idle MiB", "CPU s"],
        [[r["role"], r["keys"], f"{r['max_rss_mb']:.0f}", f"{r['max_rss_mb'] - idle:.0f}",
          f"{r['cpu_s']:.1f}"] for r in rows],
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
