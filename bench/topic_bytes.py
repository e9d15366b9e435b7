"""bench/topic_bytes: bytes per target of the targets topic on the broker's disk (issue 19
goal 3), for the writer's producer settings and topic configs, on two object sets.

    .venv/bin/python bench/topic_bytes.py [--pods 10000] [--slices 100] [--per-slice 100]

bench/lean.py measures the same figure, but only after three consumer processes; this
runs none. For kit's synthetic objects and bench/varied.py's less uniform ones it builds
every target group in-process (the fold's own code, jobs as in bench/consume.py), then
writes them with the fold's `TargetsWriter` to a topic made by the fold's `ensure_topic`,
once per variant (each on its own topic, in one devstack), and reports: records, value
bytes, bytes of log segments on disk per target (each key written once, so this is also
the figure after compaction), and seconds until every record is acked; the CPU seconds
of this process (building every record, the producer's compression) and of the broker
while writing, and about the bytes sent to the broker (the bytes on disk when the
producer compresses, as the broker keeps its batches; keys and values when it sends
uncompressed).

`--churn F` then rewrites a fraction F of the groups one by one, each acked before the
next (a changed group as the fold publishes it when changes come one at a time: a batch
of one record), rolls each partition's segment and waits for the log cleaner to compact
what it replaced, and reports the disk bytes per target again: the steady state after
churn (the bench topics roll a segment every `SEGMENT_MS`; any dirty bytes get cleaned).
The rewritten values are the same bytes (what a record of that size compresses to alone
is what counts); `--churn-batch K` rewrites them K at a time instead (one publish of K
changed groups, spread over the partitions by key). `--partitions N`: the topics' partition
count (the fold's default: 6). `--only WORD` runs the variants whose name holds WORD.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import lean
import varied
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, kafka_targets_topic, kafka_writer
from consumers.compactor.jobs import compile_jobs
from schemas import targets
from schemas.config import MAX_GROUP_BYTES, KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource, TargetKey

JOBS = {"pods": "pod", "slices": "endpointslice"}
SETS: dict[str, Any] = {"synthetic (kit)": kit, "varied (bench/varied.py)": varied}
# name -> (max batch bytes or None for the writer's, the fold's targets_zstd_level)
Variant = tuple[int | None, int | None]
VARIANTS: dict[str, Variant] = {
    "this code (1 MiB batches, fold zstd)": (None, None),
    "2 MiB batches": (2 << 20, None),
    "4 MiB batches": (4 << 20, None),
    "1 MiB, targets_zstd_level=9 (broker)": (None, 9),
    "4 MiB, targets_zstd_level=3 (broker)": (4 << 20, 3),
    "4 MiB, targets_zstd_level=6 (broker)": (4 << 20, 6),
    "4 MiB, targets_zstd_level=9 (broker)": (4 << 20, 9),
}
PARTITIONS = 6  # --partitions
SEGMENT_MS = 3000
CLEAN_WAIT_S = 120
CHURN_TOPIC_CONFIGS = {"segment.ms": str(SEGMENT_MS), "min.cleanable.dirty.ratio": "0"}
Groups = list[tuple[TargetKey, Any]]


def build(gen: Any, *, pods: int, slices: int, per_slice: int) -> list[tuple[TargetKey, Any]]:
    jobs = [ScrapeJob.model_validate({"job_name": j, "kubernetes_sd_configs": [{"role": r}]})
            for j, r in JOBS.items()]  # fmt: skip
    fold = folds.Fold(compile_jobs(jobs))

    def put(resource: Resource, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        fold.apply("bench", resource, ObjectKey(f"{meta['namespace']}/{meta['name']}"), body)

    for i in range(pods):
        put(Resource.PODS, gen.with_status(i, namespaces=10))
    for j in range(slices):
        put(Resource.SERVICES, gen.service(j, namespaces=10))
        put(Resource.ENDPOINTSLICES,
            gen.endpointslice(j, per_slice=per_slice, pods=pods, namespaces=10))  # fmt: skip
    fold.rebuild()
    return list(fold.groups.items())


class Usage:
    """CPU seconds of this process and of the broker."""

    def __init__(self, broker: int) -> None:
        self._broker = broker
        self._start = self._now()

    def _now(self) -> tuple[float, float, int]:
        stat = Path(f"/proc/{self._broker}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return time.process_time(), (int(stat[11]) + int(stat[12])) / tick

    def since(self) -> tuple[float, float]:
        now = self._now()
        return now[0] - self._start[0], now[1] - self._start[1]


async def write(
    bootstrap: str, topic: str, groups: Groups, variant: Variant, *, churn: bool
) -> tuple[float, kafka_writer.TargetsWriter]:
    """Seconds from the first send to every ack, with the fold's writer and topic (as the
    fold makes it: `ensure_topic` with the writer's configs, then `fit_topic`)."""
    batch, level = variant
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix="bytes")
    if batch is not None:
        kafka_writer.MAX_BATCH_BYTES = batch
    writer = kafka_writer.TargetsWriter(
        kafka, topic=topic, max_group_bytes=MAX_GROUP_BYTES,
        metrics=fold_metrics.create(CollectorRegistry()), skip=lambda *_: None, zstd_level=level,
    )  # fmt: skip
    configs = writer.topic_configs() | (CHURN_TOPIC_CONFIGS if churn else {})
    await kafka_targets_topic.ensure_topic(kafka, topic, partitions=PARTITIONS, configs=configs)
    writer.fit_topic(await kafka_targets_topic.writer_configs(kafka, topic))
    await writer.start()
    try:
        started = time.perf_counter()
        await writer.send((key, writer.value(key, group)) for key, group in groups)
        return time.perf_counter() - started, writer
    finally:
        await writer.stop()


async def rewrite(
    writer: kafka_writer.TargetsWriter, groups: Groups, fraction: float, *, each: int = 1
) -> tuple[int, float]:
    """Rewrite `fraction` of the groups `each` at a time, each send acked before the next;
    how many and in how many seconds."""
    chosen = random.Random(7).sample(groups, int(len(groups) * fraction))
    await writer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(chosen), each):
            await writer.send(
                [(key, writer.value(key, group)) for key, group in chosen[i : i + each]]
            )
        return len(chosen), time.perf_counter() - started
    finally:
        await writer.stop()


async def compacted(bootstrap: str, run_dir: str, topic: str) -> float:
    """Roll each partition's segment (one small record each, after SEGMENT_MS) and wait
    for the cleaner to have compacted everything before it; seconds waited."""
    started = time.perf_counter()
    await asyncio.sleep(SEGMENT_MS / 1000 + 0.5)  # a bench: the roll needs the segment's age
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        rolled = {}
        for p in range(PARTITIONS):
            sent = await producer.send_and_wait(topic, b"", key=b"bench/roll", partition=p)
            rolled[p] = sent.offset
    finally:
        await producer.stop()
    checkpoint = Path(run_dir) / "kafka" / "data" / "cleaner-offset-checkpoint"
    cleaned: dict[int, int] = {}
    try:
        async with asyncio.timeout(CLEAN_WAIT_S):
            while not all(cleaned.get(p, -1) >= o for p, o in rolled.items()):
                await asyncio.sleep(0.5)
                lines = checkpoint.read_text().splitlines()[2:] if checkpoint.exists() else []
                cleaned = {int(p): int(o) for t, p, o in (x.split() for x in lines) if t == topic}
    except TimeoutError:
        print(f"{topic}: not cleaned after {CLEAN_WAIT_S} s: rolled at {rolled}, cleaned to "
              f"{cleaned}", flush=True)  # fmt: skip
        data = Path(run_dir) / "kafka" / "data"
        for d in sorted(data.glob(f"{topic}-*")):
            print(d.name, sorted((f.name, f.stat().st_size) for f in d.iterdir()), flush=True)
    return time.perf_counter() - started


def measure(
    stack: Any, topic: str, groups: Groups, variant: Variant, churn: float, each: int
) -> list[str]:
    """One variant: its row (see `main`)."""
    count = sum(len(g.targets) for _, g in groups)
    saved = kafka_writer.MAX_BATCH_BYTES
    try:
        usage = Usage(stack.pids["kafka"])
        seconds, writer = asyncio.run(
            write(stack.kafka_bootstrap, topic, groups, variant, churn=churn > 0)
        )
        cpu, broker = usage.since()
        disk = lean.disk_bytes(stack.run_dir, topic)
        raw = sum(len(k) + len(writer.value(k, g) or b"") for k, g in groups)
        sent = disk if writer.compression else raw
        row = [f"{disk / count:.1f}", f"{disk / 2**20:.2f}", f"{seconds:.1f}", f"{cpu:.1f}",
               f"{broker:.1f}", f"{sent / 2**20:.0f}"]  # fmt: skip
        if churn > 0:
            usage = Usage(stack.pids["kafka"])
            n, took = asyncio.run(rewrite(writer, groups, churn, each=each))
            _, broker = usage.since()
            waited = asyncio.run(compacted(stack.kafka_bootstrap, stack.run_dir, topic))
            after = lean.disk_bytes(stack.run_dir, topic)
            row += [f"{n}", f"{took:.1f}", f"{broker:.1f}", f"{after / count:.1f}",
                    f"{waited:.0f}"]  # fmt: skip
        return row
    finally:
        kafka_writer.MAX_BATCH_BYTES = saved


HEADERS = ["set", "writer", "groups", "targets", "value B/target", "disk B/target",
           "disk MiB", "s to all acked", "CPU s (writer)", "CPU s (broker)",
           "MiB to broker"]  # fmt: skip
CHURN_HEADERS = ["rewritten (--churn-batch at a time)", "s", "CPU s (broker)",
                 "disk B/target after churn + cleaning", "s to cleaned"]  # fmt: skip


def main() -> int:
    global PARTITIONS  # a bench's one knob, read by write() and compacted()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--churn", type=float, default=0.0, help="fraction rewritten after")
    parser.add_argument("--churn-batch", type=int, default=1, help="groups per rewrite")
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    parser.add_argument("--only", action="append", help="variants whose name holds this")
    parser.add_argument("--sets", default="synthetic,varied", help="which object sets")
    args = parser.parse_args()
    PARTITIONS = args.partitions
    variants = {n: v for n, v in VARIANTS.items()
                if not args.only or any(w in n for w in args.only)}  # fmt: skip
    print(f"machine: {kit.machine()}\n", flush=True)
    rows = []
    with kit.devstack() as stack:
        for n, (set_name, gen) in enumerate(SETS.items()):
            if not any(w in set_name for w in args.sets.split(",")):
                continue
            groups = build(gen, pods=args.pods, slices=args.slices, per_slice=args.per_slice)
            count = sum(len(g.targets) for _, g in groups)
            values = sum(len(targets.encode(g)) for _, g in groups)
            for m, (name, variant) in enumerate(variants.items()):
                got = measure(
                    stack, f"bytes{n}{m}.targets", groups, variant, args.churn, args.churn_batch
                )
                rows.append([set_name, name, str(len(groups)), str(count),
                             f"{values / count:.0f}", *got])  # fmt: skip
                print(
                    f"{time.strftime('%H:%M:%S', time.gmtime())} load "
                    f"{os.getloadavg()[0]:.1f} | " + " | ".join(rows[-1]),
                    flush=True,
                )
    print()
    print(kit.table(HEADERS + (CHURN_HEADERS if args.churn else []), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
