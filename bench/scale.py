"""bench/scale: many clusters' pods folded by one consumer, then by two consumers in one
group, against the raw broker throughput of the same machine, in the same run.

    .venv/bin/python bench/scale.py [--clusters 20] [--pods 5000] [--partitions 6]
                                    [--members 1,2] [--no-java] [--small]
    .venv/bin/python bench/scale.py --clusters 100 --pods 1000 --partitions 4 \
                                    --members 1,2,4 --no-java     # issue 19's sizing run

Starts its own devstack (only its Kafka is used). Synthetic pod events (the producer's
trimmed ObjectEvents, 10 namespaces per cluster) go straight into `<prefix>.<cluster>.pods`
topics, written once; each member count's fold run publishes to a targets topic of its own
(`targets_topic`), so that each starts from an empty one. Measured, each in its own process:

1. aiokafka producer writing the events (idempotent, acks=all, zstd: the producer's
   settings) and a raw aiokafka consumer reading them back (the Python floors);
2. Kafka's own ProducerPerformance and ConsumerPerformance (Java) on a delete-policy topic
   with records of the same average size: the broker's ceiling on this machine. The
   `org.apache.kafka:kafka-tools` jar is fetched once from Maven Central into the
   sdstream cache dir (`<cache>/kafka-tools-<version>/`) with the Maven the devstack
   already uses; its other dependencies are the broker's jars. `--no-java` skips this;
3. `sdstream consume --mode fold` (job `pods`), for each of `--members` (1 and 2 by
   default): that many members of one group started together (eager rebalance
   included), from start until every member is caught up and its first full publish is
   acknowledged (/readyz), each member's peak RSS and CPU. Partitions should divide by
   every member count (the range assignor co-partitions; 4 or 8 for 1, 2 and 4).

A full run (not --small) writes its figures to bench/figures.json for bench/charts.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import Resource, object_topic
from sdstream import consume
from sdstream.devstack import cache, versions
from sdstream.devstack.errors import DevstackError

NAMESPACES = 10
SETTLE_S = 3.0  # a member set counts as done when all are ready and stayed so this long


def clusters(count: int) -> list[str]:
    return [f"c{k:03d}" for k in range(count)]


async def write_prefix(bootstrap: str, prefix: str, names: list[str], *, pods: int,
                       partitions: int) -> kit.Written:  # fmt: skip
    await kit.create_topics(bootstrap, [object_topic(prefix, c, Resource.PODS) for c in names],
                            partitions=partitions)  # fmt: skip
    # request_timeout_ms: on a loaded 2-core machine, hundreds of new partitions may take
    # a while to get leaders; the default 40 s then failed a 100-cluster run's first send.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", compression_type=kit.CODEC, linger_ms=5,
                                request_timeout_ms=180_000)  # fmt: skip
    await producer.start()
    try:
        parts = [await kit.write_events(
            bootstrap, prefix, c, Resource.PODS,
            (kit.with_status(i, namespaces=NAMESPACES) for i in range(pods)),
            partitions=partitions, producer=producer) for c in names]  # fmt: skip
    finally:
        await producer.stop()
    return kit.Written(sum(p.records for p in parts), sum(p.bytes for p in parts),
                       sum(p.seconds for p in parts))  # fmt: skip


# children ---------------------------------------------------------------------------------


async def drain_child(payload: dict[str, Any]) -> dict[str, Any]:
    done = await kit.drain(payload["bootstrap"], payload["topics"])
    return {"seconds": done.seconds, "records": done.records}


async def member_child(payload: dict[str, Any]) -> dict[str, Any]:
    """One fold member; prints {"ready": bool, "t": wall time} on each readiness change."""
    config = ConsumerSettings(
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=payload["prefix"]),
        scrape_configs=(ScrapeJob.model_validate(
            {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}),),
        http=HttpSettings(port=0), group_id=payload["group"], mode="fold",
        targets_partitions=payload["partitions"], targets_topic=payload["targets"],
    )  # fmt: skip
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    address: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(consume.serve(config, on_started=address.set_result))
    where, was = await address, False
    while not stop.is_set():
        try:
            ready = (await kit.get(where, "/readyz"))[0] == 200
        except OSError:  # a starved member's server may reset a probe: not ready, ask again
            ready = False
        if ready != was:
            print(json.dumps({"ready": ready, "t": time.time()}), flush=True)
            was = ready
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return {}


@dataclass
class Member:
    proc: subprocess.Popen[str]
    states: list[tuple[float, bool]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            data = json.loads(line)
            if "ready" in data:
                self.states.append((data["t"], data["ready"]))
            else:
                self.result = data


def run_members(me: str, payload: dict[str, Any], count: int) -> dict[str, Any]:
    """Start `count` members together; seconds until all are ready (and stay so)."""
    started = time.time()
    members = [Member(kit.spawn(me, "member", payload)) for _ in range(count)]
    readers = [threading.Thread(target=m.read, daemon=True) for m in members]
    for reader in readers:
        reader.start()
    deadline = started + payload["timeout_s"]
    try:
        while time.time() < deadline:
            time.sleep(0.1)
            if all(m.states and m.states[-1][1] for m in members):
                last = max(m.states[-1][0] for m in members)
                if time.time() - last >= SETTLE_S:
                    break
        else:
            raise TimeoutError(f"members not ready after {payload['timeout_s']}s")
    finally:
        for m in members:
            m.proc.send_signal(signal.SIGTERM)
        for m, reader in zip(members, readers, strict=True):
            m.proc.wait(timeout=60)
            reader.join(timeout=10)
    return {"seconds": last - started, "members": [m.result for m in members if m.result],
            "lost": sum(1 for m in members if not m.result),
            "unready_flips": sum(1 for m in members for _, r in m.states if not r)}  # fmt: skip


def run_child(role: str, payload: str) -> int:
    data = json.loads(payload)
    work = drain_child(data) if role == "drain" else member_child(data)
    kit.report(asyncio.run(work))
    return 0


# Kafka's Java perf tools --------------------------------------------------------------------


def ensure_kafka_tools() -> Path:
    """The kafka-tools jar, fetched once into the cache dir with Maven (checksums checked)."""
    root = cache.cache_dir()
    home = root / f"kafka-tools-{versions.KAFKA}"
    jar = home / f"kafka-tools-{versions.KAFKA}.jar"
    if not jar.exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DevstackError("mvn not found; it fetches org.apache.kafka:kafka-tools")
        plugin = (f"org.apache.maven.plugins:maven-dependency-plugin:"
                  f"{versions.MAVEN_DEPENDENCY_PLUGIN}")  # fmt: skip
        cache.run_logged(
            [mvn, "-B", "--strict-checksums", f"-Dmaven.repo.local={root / 'm2'}",
             f"{plugin}:copy", f"-Dartifact=org.apache.kafka:kafka-tools:{versions.KAFKA}",
             f"-DoutputDirectory={home}"],
            log=root / "logs" / f"kafka-tools-{versions.KAFKA}-fetch.log",
            what=f"fetching org.apache.kafka:kafka-tools:{versions.KAFKA} from Maven Central",
        )  # fmt: skip
    return jar


def java_perf(bootstrap: str, *, records: int, size: int, partitions: int) -> dict[str, Any]:
    jar = ensure_kafka_tools()
    libs = cache.cache_dir() / f"kafka-{versions.KAFKA}" / "libs"
    java = [shutil.which("java") or "java", "-Xmx512m", "-cp", f"{jar}:{libs}/*"]
    asyncio.run(_create_delete_topic(bootstrap, partitions))
    produced = subprocess.run(
        [*java, "org.apache.kafka.tools.ProducerPerformance", "--topic", "perf",
         "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
         f"compression.type={kit.CODEC}", "enable.idempotence=true"],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    last = produced.stdout.strip().splitlines()[-1]
    match = re.search(r"([\d.]+) records/sec", last)
    consumed = subprocess.run(
        [*java, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
         "--topic", "perf", "--messages", str(records)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    header, row = consumed.stdout.strip().splitlines()[-2:]
    cells = dict(zip([h.strip() for h in header.split(",")],
                     [c.strip() for c in row.split(",")], strict=False))  # fmt: skip
    return {"produce_rps": float(match.group(1)) if match else float("nan"),
            "produce_line": last, "consume_rps": float(cells.get("fetch.nMsg.sec", "nan")),
            "consume_line": row}  # fmt: skip


async def _create_delete_topic(bootstrap: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "delete"}  # the perf tools send null keys
        await admin.create_topics([NewTopic("perf", partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()


def try_java(
    boot: str, *, total: int, wrote: kit.Written, partitions: int
) -> dict[str, Any] | None:
    try:
        size = max(1, wrote.bytes // wrote.records)
        return java_perf(boot, records=max(total, 100_000), size=size, partitions=partitions)
    except (DevstackError, subprocess.SubprocessError, OSError) as exc:
        kit.say(f"Java perf tools unavailable: {exc}")
        return None


def scaling_figures(
    args: argparse.Namespace, runs: dict[int, dict[str, Any]], *, raw: float,
    wrote: kit.Written, java: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """The member-count runs for bench/figures.json (charted by bench/charts.py)."""
    return {
        "clusters": args.clusters, "pods_per_cluster": args.pods,
        "events": args.clusters * args.pods, "partitions": args.partitions,
        "raw_aiokafka_s": raw, "bytes_per_event": wrote.bytes / wrote.records,
        "aiokafka_produce_rps": wrote.records / wrote.seconds, "java": java,
        "runs": [{"members": n, "seconds": run["seconds"],
                  "unready_flips": run["unready_flips"],
                  "rss_mb": [m["max_rss_mb"] for m in run["members"]],
                  "cpu_s": [m["cpu_s"] for m in run["members"]]} for n, run in runs.items()],
    }  # fmt: skip


def summary(runs: dict[int, dict[str, Any]], *, total: int) -> None:
    """Events per CPU-second of one member; per member count: speed-up over the smallest
    count, the largest member's RSS, the RSS slope per pod, and rebalances."""
    base_n = min(runs)
    base = runs[base_n]
    cpu = sum(m["cpu_s"] for m in base["members"])
    print(f"\n{base_n} member(s): {total / cpu:.0f} events per CPU-second")
    rss0 = max(m["max_rss_mb"] for m in base["members"])
    for n, run in runs.items():
        if n == base_n:
            continue
        rss = max(m["max_rss_mb"] for m in run["members"])
        pods_less = total / base_n - total / n
        print(f"{n} members: {base['seconds'] / run['seconds']:.2f}x faster than {base_n}, "
              f"largest member {rss:.0f} MiB ({rss / rss0:.2f} of {base_n}'s), RSS slope "
              f"{(rss0 - rss) * 2**20 / pods_less / 1024:.2f} KiB per pod; readiness flips to "
              f"unready (rebalances): {run['unready_flips']}")  # fmt: skip


# main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--pods", type=int, default=5_000, help="per cluster")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--no-java", action="store_true", help="skip Kafka's Java perf tools")
    parser.add_argument(
        "--members",
        default="1,2",
        help="member counts to run, each in "
        "a group of its own over its own copy of the events (e.g. 1,2,4)",
    )
    parser.add_argument("--small", action="store_true", help="4 clusters x 500 pods")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    if args.small:
        args.clusters, args.pods = 4, 500
    names = clusters(args.clusters)
    total = args.clusters * args.pods
    counts = [int(n) for n in args.members.split(",")]
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    with kit.devstack() as stack:
        boot = stack.kafka_bootstrap
        # written once; each member count publishes to a fresh targets topic of its own
        wrote = asyncio.run(write_prefix(boot, "scale", names, pods=args.pods,
                                         partitions=args.partitions))  # fmt: skip
        kit.say(f"wrote {wrote.records} events in {wrote.seconds:.0f}s")
        outs = [f"out{n}x{k}.targets" for k, n in enumerate(counts)]
        topics = [object_topic("scale", c, Resource.PODS) for c in names]
        common = {"bootstrap": boot, "timeout_s": 1800, "partitions": args.partitions,
                  "prefix": "scale"}  # fmt: skip
        raw = kit.child(me, "drain", {**common, "topics": topics})
        runs = {n: run_members(me, {**common, "targets": out,
                                    "group": f"g-{uuid.uuid4().hex[:6]}"}, n)
                for n, out in zip(counts, outs, strict=True)}  # fmt: skip
        raw2 = kit.child(me, "drain", {**common, "topics": topics})
        published = {t: asyncio.run(kit.drain(boot, [t])).records for t in outs}
        java = None if args.no_java else try_java(boot, total=total, wrote=wrote,
                                                  partitions=args.partitions)  # fmt: skip
    print(f"input: {args.clusters} clusters x {args.pods} pods = {total} pod events, "
          f"{args.partitions} partitions per topic, {wrote.bytes / wrote.records:.0f} B per "
          f"value uncompressed; targets topic records after the runs: {published}\n")  # fmt: skip
    rows: list[tuple[object, ...]] = [
        (f"aiokafka producer (idempotent, acks=all, {kit.CODEC}) writing the events",
         f"{wrote.seconds:.2f}", f"{wrote.records / wrote.seconds:.0f}", "-", "-"),
        ("raw aiokafka consumer, all pod topics", f"{raw['seconds']:.2f}",
         f"{total / raw['seconds']:.0f}", f"{raw['max_rss_mb']:.0f}", f"{raw['cpu_s']:.1f}"),
        ("raw aiokafka consumer, again", f"{raw2['seconds']:.2f}",
         f"{total / raw2['seconds']:.0f}", f"{raw2['max_rss_mb']:.0f}",
         f"{raw2['cpu_s']:.1f}"),
    ]  # fmt: skip
    if java is not None:
        rows += [(f"Kafka ProducerPerformance (Java, acks=all, {kit.CODEC})", "-",
                  f"{java['produce_rps']:.0f}", "-", "-"),
                 ("Kafka ConsumerPerformance (Java)", "-", f"{java['consume_rps']:.0f}", "-",
                  "-")]  # fmt: skip
    for count, run in runs.items():
        label = "1 member" if count == 1 else f"{count} members, one group"
        for n, member in enumerate(run["members"]):
            rows.append((f"sdstream fold, {label}: member {n + 1}, start to caught up + "
                         "first full publish", f"{run['seconds']:.2f}",
                         f"{total / run['seconds']:.0f}", f"{member['max_rss_mb']:.0f}",
                         f"{member['cpu_s']:.1f}"))  # fmt: skip
    print(kit.table(["step", "seconds", "records/s", "peak RSS MiB", "CPU s"], rows))
    summary(runs, total=total)
    if not args.small:
        floor = min(raw["seconds"], raw2["seconds"])
        kit.record_figures("scaling", scaling_figures(args, runs, raw=floor, wrote=wrote,
                                                      java=java))  # fmt: skip
    if java is not None:
        print(f"\nJava: {java['produce_line']}\nJava consumer: {java['consume_line']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
