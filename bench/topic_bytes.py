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

`--formats v1,compact` writes each variant once per record format: v1 (`targets.encode`,
the contract) and a compact prototype (targets as columns, see `compact_fields`; session
9, not the contract). `--read ROUNDS` runs no broker: CPU per target to decode each format
as a `--mode serve` replica does and to render it (and checks the compact form decodes to
exactly v1's group). `--floor` runs no broker: zstd CLI lower bounds (`floor`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import lean
import orjson
import varied
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, kafka_targets_topic, kafka_writer
from consumers.compactor.jobs import compile_jobs
from consumers.sinks import sd_json, views
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

# --- A compact record (prototype, session 9; not the contract) -------------------------
# v1 (`targets.encode`) repeats every label name in every target. The compact form keeps
# job, cluster, source and the group labels as they are and stores the targets as
# columns: per label name, the one value every target has, or a list with a value (null:
# the target lacks that label) per target. It decodes to exactly v1's group: the same
# labels, the same targets in the same order, each with the same labels.


def compact_fields(group: Any) -> dict[str, Any]:
    """The compact record of a group (a `TargetGroup`) as a JSON-ready dict."""
    rows = group.targets
    columns: dict[str, Any] = {}
    for name in sorted({n for t in rows for n in t}):
        values = [t.get(name) for t in rows]
        first = values[0]
        columns[name] = first if first is not None and values.count(first) == len(rows) else values
    return {"schema_version": 2, "job": group.job, "cluster": group.cluster,
            "source": group.source, "labels": group.labels, "count": len(rows),
            "columns": columns}  # fmt: skip


def compact(group: Any) -> bytes:
    return orjson.dumps(compact_fields(group), option=orjson.OPT_SORT_KEYS)


def uncompact(raw: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(labels, targets) of a parsed compact record: v1's, label for label."""
    count, columns = raw["count"], raw["columns"]
    names = list(columns)
    cols = [itertools.repeat(c, count) if type(c) is str else c for c in columns.values()]
    rows = zip(*cols, strict=False)
    if all(type(c) is str or None not in c for c in columns.values()):
        return raw["labels"], [dict(zip(names, row, strict=True)) for row in rows]
    return raw["labels"], [
        {n: v for n, v in zip(names, row, strict=True) if v is not None} for row in rows
    ]


def v1(group: Any) -> bytes:
    return targets.encode(group)


FORMATS = {"v1": v1, "compact": compact}


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
    bootstrap: str, topic: str, groups: Groups, variant: Variant, *, churn: bool, encode: Any
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
        await writer.send((key, writer.checked(key, encode(group))) for key, group in groups)
        return time.perf_counter() - started, writer
    finally:
        await writer.stop()


async def rewrite(
    writer: kafka_writer.TargetsWriter, groups: Groups, fraction: float, *, each: int, encode: Any
) -> tuple[int, float]:
    """Rewrite `fraction` of the groups `each` at a time, each send acked before the next;
    how many and in how many seconds."""
    chosen = random.Random(7).sample(groups, int(len(groups) * fraction))
    await writer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(chosen), each):
            await writer.send(
                [(key, writer.checked(key, encode(group))) for key, group in chosen[i : i + each]]
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


def measure(  # noqa: PLR0913 - a bench's row: where, what, how
    stack: Any, topic: str, groups: Groups, variant: Variant, churn: float, each: int,
    *, encode: Any,
) -> list[str]:  # fmt: skip
    """One variant: its row (see `main`)."""
    count = sum(len(g.targets) for _, g in groups)
    saved = kafka_writer.MAX_BATCH_BYTES
    try:
        usage = Usage(stack.pids["kafka"])
        seconds, writer = asyncio.run(
            write(stack.kafka_bootstrap, topic, groups, variant, churn=churn > 0, encode=encode)
        )
        cpu, broker = usage.since()
        disk = lean.disk_bytes(stack.run_dir, topic)
        raw = sum(len(k) + len(writer.checked(k, encode(g)) or b"") for k, g in groups)
        sent = disk if writer.compression else raw
        row = [f"{disk / count:.1f}", f"{disk / 2**20:.2f}", f"{seconds:.1f}", f"{cpu:.1f}",
               f"{broker:.1f}", f"{sent / 2**20:.0f}"]  # fmt: skip
        if churn > 0:
            usage = Usage(stack.pids["kafka"])
            n, took = asyncio.run(rewrite(writer, groups, churn, each=each, encode=encode))
            _, broker = usage.since()
            waited = asyncio.run(compacted(stack.kafka_bootstrap, stack.run_dir, topic))
            after = lean.disk_bytes(stack.run_dir, topic)
            row += [f"{n}", f"{took:.1f}", f"{broker:.1f}", f"{after / count:.1f}",
                    f"{waited:.0f}"]  # fmt: skip
        return row
    finally:
        kafka_writer.MAX_BATCH_BYTES = saved


HEADERS = ["set", "record", "writer", "groups", "targets", "value B/target", "disk B/target",
           "disk MiB", "s to all acked", "CPU s (writer)", "CPU s (broker)",
           "MiB to broker"]  # fmt: skip
CHURN_HEADERS = ["rewritten (--churn-batch at a time)", "s", "CPU s (broker)",
                 "disk B/target after churn + cleaning", "s to cleaned"]  # fmt: skip
READ_HEADERS = ["set", "record", "targets", "decode µs/target", "decode + render µs/target",
                "best of"]  # fmt: skip


def take_v1(key: bytes, value: bytes) -> Any:
    """What a `--mode serve` replica does with a record before rendering it."""
    return views.take(key, value)[1].group


def take_compact(key: bytes, value: bytes) -> Any:
    """The same for a compact record (no model checks: the prototype's reader)."""
    raw = orjson.loads(value)
    labels, rows = uncompact(raw)
    group = targets.Group(raw["source"], labels, rows)
    views._check_key(key.decode(), raw["job"], raw["cluster"], raw["source"])
    return group


READERS = {"v1": take_v1, "compact": take_compact}


def read_costs(groups: Groups, fmt: str, rounds: int) -> tuple[float, float]:
    """CPU seconds (best of `rounds`) to decode every record of `fmt`, and to decode and
    render each into its HTTP SD fragment (`Held.taken`'s render), as a replica does.
    Checks first that each record decodes to exactly the group it was made of."""
    records = [(key.encode(), FORMATS[fmt](group)) for key, group in groups]
    take = READERS[fmt]
    for (_, group), (key, value) in zip(groups, records, strict=True):
        got = take(key, value)
        if (got.labels, got.targets) != (group.labels, group.targets):
            raise SystemExit(f"{fmt}: {key!r} does not decode to its group")
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        started = time.process_time()
        taken = [take(k, v) for k, v in records]
        best[0] = min(best[0], time.process_time() - started)
        started = time.process_time()
        for k, v in records:
            sd_json.http_sd_fragment(take(k, v))
        best[1] = min(best[1], time.process_time() - started)
        del taken
    return best[0], best[1]


def floor(groups: Groups, fmt: str, workdir: Path, *, sample: int = 5000) -> list[str]:
    """Lower bounds from the zstd CLI (`zstd` on PATH), in bytes per target: every record
    (key + value, one a line) as ONE stream at level 19 with a 128 MiB window (`--long=27`:
    repeats anywhere in the set are found, which no batch can do); and `sample` records
    (seeded), each compressed alone at level 19 with a dictionary trained on `sample`
    others (what a record written alone, as after churn, could take at best)."""
    records = [key.encode() + b" " + FORMATS[fmt](group) for key, group in groups]
    count = sum(len(g.targets) for _, g in groups)
    stream = workdir / "all.jsonl"
    stream.write_bytes(b"\n".join(records))
    zstd = ["zstd", "-q", "-T1", "-f"]
    out = subprocess.run([*zstd, "-19", "--long=27", "-c", str(stream)],
                         check=True, capture_output=True).stdout  # fmt: skip
    chosen = random.Random(9).sample(range(len(records)), min(2 * sample, len(records)))
    train, test = workdir / "train", workdir / "test"
    for where, part in ((train, chosen[:sample]), (test, chosen[sample:])):
        where.mkdir()
        for i in part:
            (where / f"{i}.json").write_bytes(records[i])
    dictionary = workdir / "dict"
    subprocess.run([*zstd, "--train", "-r", str(train), "-o", str(dictionary),
                    "--maxdict=112640"], check=True)  # fmt: skip
    alone = 0
    for path in test.iterdir():
        alone += len(subprocess.run([*zstd, "-19", "-D", str(dictionary), "-c", str(path)],
                                    check=True, capture_output=True).stdout)  # fmt: skip
    tested = sum(len(groups[i][1].targets) for i in chosen[sample:])
    return [f"{len(out) / count:.1f}", f"{alone / tested:.1f}", str(len(chosen) - sample)]


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
    parser.add_argument("--formats", default="v1", help="record formats: v1,compact")
    parser.add_argument("--read", type=int, default=0, help="rounds of the read cost, no broker")
    parser.add_argument("--floor", action="store_true", help="zstd lower bounds, no broker")
    args = parser.parse_args()
    PARTITIONS = args.partitions
    variants = {n: v for n, v in VARIANTS.items()
                if not args.only or any(w in n for w in args.only)}  # fmt: skip
    formats = args.formats.split(",")
    sets = {n: g for n, g in SETS.items() if any(w in n for w in args.sets.split(","))}
    print(f"machine: {kit.machine()}\n", flush=True)
    if args.read:
        return read_main(args, sets, formats)
    if args.floor:
        return floor_main(args, sets, formats)
    rows = []
    with kit.devstack() as stack:
        for n, (set_name, gen) in enumerate(sets.items()):
            groups = build(gen, pods=args.pods, slices=args.slices, per_slice=args.per_slice)
            count = sum(len(g.targets) for _, g in groups)
            for f, fmt in enumerate(formats):
                values = sum(len(FORMATS[fmt](g)) for _, g in groups)
                for m, (name, variant) in enumerate(variants.items()):
                    got = measure(stack, f"bytes{n}{f}{m}.targets", groups, variant,
                                  args.churn, args.churn_batch, encode=FORMATS[fmt])  # fmt: skip
                    rows.append([set_name, fmt, name, str(len(groups)), str(count),
                                 f"{values / count:.0f}", *got])  # fmt: skip
                    say(" | ".join(rows[-1]))
    print()
    print(kit.table(HEADERS + (CHURN_HEADERS if args.churn else []), rows))
    return 0


def read_main(args: argparse.Namespace, sets: dict[str, Any], formats: list[str]) -> int:
    rows = []
    for set_name, gen in sets.items():
        groups = build(gen, pods=args.pods, slices=args.slices, per_slice=args.per_slice)
        count = sum(len(g.targets) for _, g in groups)
        for fmt in formats:
            decode, render = read_costs(groups, fmt, args.read)
            rows.append([set_name, fmt, str(count), f"{decode / count * 1e6:.2f}",
                         f"{render / count * 1e6:.2f}", str(args.read)])  # fmt: skip
            say(" | ".join(rows[-1]))
    print()
    print(kit.table(READ_HEADERS, rows))
    return 0


FLOOR_HEADERS = ["set", "record", "targets", "one stream, zstd -19 --long B/target",
                 "each alone, -19 + trained dictionary B/target", "records alone"]  # fmt: skip


def floor_main(args: argparse.Namespace, sets: dict[str, Any], formats: list[str]) -> int:
    rows = []
    for set_name, gen in sets.items():
        groups = build(gen, pods=args.pods, slices=args.slices, per_slice=args.per_slice)
        count = sum(len(g.targets) for _, g in groups)
        for fmt in formats:
            with tempfile.TemporaryDirectory() as workdir:
                rows.append([set_name, fmt, str(count), *floor(groups, fmt, Path(workdir))])
            say(" | ".join(rows[-1]))
    print()
    print(kit.table(FLOOR_HEADERS, rows))
    return 0


def say(line: str) -> None:
    load = os.getloadavg()[0]
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} load {load:.1f} | {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
