"""bench/topic_bytes: bytes per target of the targets topic on the broker's disk (issue 19
goal 3), for the writer's producer settings and topic configs, on two object sets.

    .venv/bin/python bench/topic_bytes.py [--pods 10000] [--slices 100] [--per-slice 100]

bench/lean.py measures the same figure, but only after three consumer processes; this
runs none. For kit's synthetic objects and bench/varied.py's less uniform ones it builds
every target group in-process (the fold's own code, jobs as in bench/consume.py), then
writes them with the fold's `TargetsWriter` to a topic made by the fold's `ensure_topic`,
once per variant (each on its own topic, in one devstack), and reports: records, value
bytes, bytes of log segments on disk per target (each key written once, so this is also
the figure after compaction), and seconds until every record is acked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import lean
import varied
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, kafka_targets_topic, kafka_writer
from consumers.compactor.jobs import compile_jobs
from schemas import targets
from schemas.config import MAX_GROUP_BYTES, KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource, TargetKey

JOBS = {"pods": "pod", "slices": "endpointslice"}
SETS: dict[str, Any] = {"synthetic (kit)": kit, "varied (bench/varied.py)": varied}
# name -> (max batch bytes or None for the writer's, extra topic configs, compression)
Variant = tuple[int | None, dict[str, str], str]
ZSTD9 = {"compression.type": "zstd", "compression.zstd.level": "9"}
VARIANTS: dict[str, Variant] = {
    "this code (1 MiB batches)": (None, {}, "zstd"),
    "2 MiB batches": (2 << 20, {}, "zstd"),
    "4 MiB batches": (4 << 20, {}, "zstd"),
    "4 MiB, topic zstd level 9, producer zstd": (4 << 20, ZSTD9, "zstd"),
    "4 MiB, topic zstd level 9, producer uncompressed": (4 << 20, ZSTD9, "none"),
}


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


async def write(
    bootstrap: str, topic: str, groups: list[tuple[TargetKey, Any]], variant: Variant
) -> float:
    """Seconds from the first send to every ack, with the fold's writer and topic."""
    batch, configs, compression = variant
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix="bytes", compression=compression)
    saved = kafka_writer.MAX_BATCH_BYTES
    if batch is not None:
        kafka_writer.MAX_BATCH_BYTES = batch
    writer = kafka_writer.TargetsWriter(
        kafka, topic=topic, max_group_bytes=MAX_GROUP_BYTES,
        metrics=fold_metrics.create(CollectorRegistry()), skip=lambda *_: None,
    )  # fmt: skip
    try:
        limit = {kafka_targets_topic.MAX_MESSAGE_BYTES: str(writer.topic_limit())}
        await kafka_targets_topic.ensure_topic(kafka, topic, partitions=6,
                                               configs={**limit, **configs})  # fmt: skip
        await writer.start()
        started = time.perf_counter()
        await writer.send((key, writer.value(key, group)) for key, group in groups)
        return time.perf_counter() - started
    finally:
        await writer.stop()
        kafka_writer.MAX_BATCH_BYTES = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--per-slice", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {kit.machine()}\n", flush=True)
    rows = []
    with kit.devstack() as stack:
        for n, (set_name, gen) in enumerate(SETS.items()):
            groups = build(gen, pods=args.pods, slices=args.slices, per_slice=args.per_slice)
            count = sum(len(g.targets) for _, g in groups)
            values = sum(len(targets.encode(g)) for _, g in groups)
            for m, (name, variant) in enumerate(VARIANTS.items()):
                topic = f"bytes{n}{m}.targets"
                seconds = asyncio.run(write(stack.kafka_bootstrap, topic, groups, variant))
                disk = lean.disk_bytes(stack.run_dir, topic)
                rows.append((set_name, name, str(len(groups)), str(count),
                             f"{values / count:.0f}", f"{disk / count:.1f}",
                             f"{disk / 2**20:.2f}", f"{seconds:.2f}"))  # fmt: skip
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(kit.table(["set", "writer", "groups", "targets", "value B/target",
                     "disk B/target", "disk MiB", "s to all acked"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
