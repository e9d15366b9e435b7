"""bench/monitors: 200 PodMonitors over 50k pods: time from a monitor change to its job's
HTTP SD answer changing (p50/p99), and consumer memory with and without the monitors.

    .venv/bin/python bench/monitors.py [--pods 50000] [--monitors 200] [--changes 40] [--small]

Starts its own devstack (Kafka only is used). The objects are written straight to Kafka
as the producer writes them (trimmed ObjectEvents, keyed and partitioned by namespace):
50k pods (`kit.with_status`: 500 apps in 10 namespaces, three container ports), the 10
Namespaces, and 200 PodMonitors; monitor m lives in app-m's namespace and selects
`app: app-m` on port `metrics`, so each of its jobs has 100 targets (20k in all). Then,
each in its own `sdstream consume` process (fold + sinks, mode all, its own targets
topic), so its peak RSS is its own:

1. **baseline**: the same pods, no `monitors:`, one hand-written job `pods` (role pod,
   keeping the `metrics` port: 50k targets): what the pods cost without monitors;
2. **monitors**: `monitors:` selecting every PodMonitor (`{}` selectors), no static job.
   Once all 200 jobs are served, `--changes` times: one monitor's relabelings are edited
   (a new label on its targets) by writing its new event to Kafka, and the clock runs
   from just before the send until `/http_sd/<job>` answers with a new ETag (polled every
   5 ms with If-None-Match). Then `--changes // 4` monitors are created (until their job
   answers 200 with its 100 targets) and as many deleted (until it answers 404).

RSS is the child's VmHWM (peak) and VmRSS once serving (steady), read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kit  # bench/kit.py; it puts the repository root on sys.path
import orjson
from aiokafka import AIOKafkaProducer

from schemas import events
from schemas.config import ConsumerSettings
from schemas.topics import ObjectKey, Resource, object_topic, partition_for
from sdstream import consume

PREFIX = "benchmon"
CLUSTER = "bench"
PARTITIONS = 6
RESOURCES = (Resource.PODS, Resource.NAMESPACES, Resource.PODMONITORS, Resource.SERVICEMONITORS)
POLL_S = 0.005


def monitor(m: int, *, namespaces: int, rev: int = 0) -> kit.Body:
    """PodMonitor m: app-m's pods (in namespace bench-<m % namespaces>), port metrics."""
    relabelings = [{"action": "replace", "targetLabel": "rev", "replacement": str(rev)}]
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": f"mon-{m}", "namespace": kit.namespace_of(m, namespaces),
                     "uid": f"uid-mon-{m}", "resourceVersion": str(10 + rev),
                     "labels": {"team": f"t{m % 7}"}},
        "spec": {"selector": {"matchLabels": {"app": f"app-{m % 500}"}},
                 "podMetricsEndpoints": [{"port": "metrics", "interval": "30s",
                                          "relabelings": relabelings if rev else []}]},
    }  # fmt: skip


def namespace(n: int) -> kit.Body:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": f"bench-{n}", "uid": f"uid-ns-{n}", "resourceVersion": "1",
                         "labels": {"kubernetes.io/metadata.name": f"bench-{n}"}}}  # fmt: skip


def job_of(m: int, *, namespaces: int) -> str:
    return f"podMonitor/{kit.namespace_of(m, namespaces)}/mon-{m}/0"


async def write_all(bootstrap: str, *, pods: int, monitors: int, ns: int) -> kit.Written:
    topics = [object_topic(PREFIX, CLUSTER, r) for r in RESOURCES]
    await kit.create_topics(bootstrap, topics, partitions=PARTITIONS)
    written = [
        await kit.write_events(bootstrap, PREFIX, CLUSTER, Resource.PODS,
                               (kit.with_status(i, namespaces=ns) for i in range(pods)),
                               partitions=PARTITIONS),
        await kit.write_events(bootstrap, PREFIX, CLUSTER, Resource.NAMESPACES,
                               (namespace(n) for n in range(ns)), partitions=PARTITIONS),
        await kit.write_events(bootstrap, PREFIX, CLUSTER, Resource.PODMONITORS,
                               (monitor(m, namespaces=ns) for m in range(monitors)),
                               partitions=PARTITIONS),
    ]  # fmt: skip
    return kit.Written(sum(w.records for w in written), sum(w.bytes for w in written),
                       sum(w.seconds for w in written))  # fmt: skip


def settings(bootstrap: str, *, with_monitors: bool) -> dict[str, Any]:
    run = "monitors" if with_monitors else "baseline"
    config: dict[str, Any] = {
        "kafka": {"bootstrap": bootstrap, "topic_prefix": PREFIX},
        "http": {"port": 0}, "group_id": f"bench-{run}-{uuid.uuid4().hex[:6]}",
        "targets_partitions": PARTITIONS, "targets_topic": f"{PREFIX}.targets-{run}",
    }  # fmt: skip
    if with_monitors:
        config["monitors"] = {"pod_monitor_selector": {}, "pod_monitor_namespace_selector": {}}
    else:
        config["scrape_configs"] = [{
            "job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}],
            "relabel_configs": [{"action": "keep", "regex": "metrics",
                                 "source_labels": ["__meta_kubernetes_pod_container_port_name"]}],
        }]  # fmt: skip
    return config


async def consume_child(payload: dict[str, Any]) -> dict[str, Any]:
    """`sdstream consume` until SIGTERM; prints its address first."""
    config = ConsumerSettings.model_validate(payload["config"])

    def started(address: tuple[str, int]) -> None:
        print(json.dumps({"address": list(address)}), flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(consume.serve(config, on_started=started))
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return {}


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def served_counts(address: tuple[str, int]) -> dict[str, int]:
    status, _, body = await kit.get(address, "/http_sd")
    return {j["job"]: j["targets"] for j in orjson.loads(body)} if status == 200 else {}


async def wait_all(address: tuple[str, int], want: dict[str, int]) -> float:
    started, said = time.perf_counter(), 0.0
    while True:
        counts = await served_counts(address)
        if time.perf_counter() - said > 30:
            said = time.perf_counter()
            done = sum(counts.get(job) == n for job, n in want.items())
            kit.say(f"{done}/{len(want)} jobs served ({sum(counts.values())} targets)")
        if all(counts.get(job) == n for job, n in want.items()):
            return time.perf_counter() - started
        await asyncio.sleep(0.1)


async def until(address: tuple[str, int], path: str, done: Any, etag: str = "") -> float:
    """Seconds until `done(status, etag, body)` holds for GET `path`."""
    started = time.perf_counter()
    while True:
        status, tag, body = await kit.get(address, path, etag=etag)
        if done(status, tag, body):
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)


async def send(producer: AIOKafkaProducer, body: kit.Body | None, *, key: str, kind: Resource,
               deleted: bool = False) -> None:  # fmt: skip
    event = events.EventType.DELETED if deleted else events.EventType.ADDED
    value = None if body is None else kit.event_value(CLUSTER, kind, body)
    topic = object_topic(PREFIX, CLUSTER, kind)
    await (await producer.send(
        topic, value, key=key.encode(), partition=partition_for(ObjectKey(key), PARTITIONS),
        headers=events.headers(event=event, cluster=CLUSTER, resource=kind,
                               resource_version="99")))  # fmt: skip


async def changes(address: tuple[str, int], bootstrap: str, args: argparse.Namespace) -> Any:
    ns, found = args.namespaces, {"edit": [], "create": [], "delete": []}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", compression_type=kit.CODEC, linger_ms=0)  # fmt: skip
    await producer.start()
    try:
        for k in range(args.changes):
            m = (k * 7) % args.monitors
            path = "/http_sd/" + quote(job_of(m, namespaces=ns), safe="")
            _, tag, _ = await kit.get(address, path)
            body = monitor(m, namespaces=ns, rev=k + 1)
            key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
            t0 = time.perf_counter()
            await send(producer, body, key=key, kind=Resource.PODMONITORS)
            await until(address, path, lambda s, t, b, old=tag: s == 200 and t != old, etag=tag)
            found["edit"].append(time.perf_counter() - t0)
            kit.say(f"edit {k}: {found['edit'][-1] * 1000:.0f} ms")
        extra = range(args.monitors, args.monitors + max(1, args.changes // 4))
        for m in extra:
            path = "/http_sd/" + quote(job_of(m, namespaces=ns), safe="")
            body = monitor(m, namespaces=ns)
            key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
            t0 = time.perf_counter()
            await send(producer, body, key=key, kind=Resource.PODMONITORS)
            await until(address, path, lambda s, t, b: s == 200 and b'"targets":["' in b)
            found["create"].append(time.perf_counter() - t0)
        for m in extra:
            path = "/http_sd/" + quote(job_of(m, namespaces=ns), safe="")
            key = f"{kit.namespace_of(m, ns)}/mon-{m}"
            t0 = time.perf_counter()
            await send(producer, None, key=key, kind=Resource.PODMONITORS, deleted=True)
            await until(address, path, lambda s, t, b: s == 404)
            found["delete"].append(time.perf_counter() - t0)
    finally:
        await producer.stop()
    return found


def run(me: str, bootstrap: str, args: argparse.Namespace, *, with_monitors: bool) -> Any:
    payload = {"config": settings(bootstrap, with_monitors=with_monitors)}
    proc = kit.spawn(me, "consume", payload)
    try:
        assert proc.stdout is not None
        address = tuple(json.loads(proc.stdout.readline())["address"])
        per_job = args.pods // 500
        want = ({job_of(m, namespaces=args.namespaces): per_job for m in range(args.monitors)}
                if with_monitors else {"pods": args.pods})  # fmt: skip
        t0 = time.perf_counter()
        asyncio.run(asyncio.wait_for(wait_all(address, want), 1800))  # type: ignore[arg-type]
        result: dict[str, Any] = {"served_s": time.perf_counter() - t0,
                                  "steady_rss_mb": rss_mb(proc.pid),
                                  "load": kit.machine().rsplit("; load ", 1)[1]}  # fmt: skip
        kit.say(
            f"{'monitors' if with_monitors else 'baseline'}: all served in "
            f"{result['served_s']:.1f}s"
        )
        if with_monitors:
            result["latency"] = asyncio.run(changes(address, bootstrap, args))  # type: ignore[arg-type]
            result["after_rss_mb"] = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    return {**result, **json.loads(out.strip().splitlines()[-1])}


def quantiles(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {kit.percentile(ms, 0.5):.0f} ms, p99 {kit.percentile(ms, 0.99):.0f} ms, "
            f"max {max(ms):.0f} ms (n={len(ms)})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--small", action="store_true", help="5,000 pods, 20 monitors")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kit.report(asyncio.run(consume_child(json.loads(args.child[1]))))
        return 0
    if args.small:
        args.pods, args.monitors, args.changes = 5_000, 20, 12
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    with kit.devstack() as stack:
        boot = stack.kafka_bootstrap
        wrote = asyncio.run(write_all(boot, pods=args.pods, monitors=args.monitors,
                                      ns=args.namespaces))  # fmt: skip
        kit.say(f"wrote {wrote.records} events in {wrote.seconds:.1f}s")
        baseline = run(me, boot, args, with_monitors=False)
        kit.say(f"baseline: {baseline}")
        monitored = run(me, boot, args, with_monitors=True)
        kit.say(f"monitors: {json.dumps(monitored)}")
    print(f"\ninput: {args.pods} pods in {args.namespaces} namespaces, {args.monitors} "
          f"PodMonitors ({args.pods // 500} targets each), {wrote.records} records\n")  # fmt: skip
    rows = [
        ("without monitors: job `pods`", f"{baseline['served_s']:.1f} s",
         f"{baseline['max_rss_mb']:.0f}", f"{baseline['steady_rss_mb']:.0f}", baseline["load"]),
        (f"{args.monitors} PodMonitor jobs", f"{monitored['served_s']:.1f} s",
         f"{monitored['max_rss_mb']:.0f}", f"{monitored['steady_rss_mb']:.0f}",
         monitored["load"]),
    ]  # fmt: skip
    print(kit.table(["consumer", "start to all served", "peak RSS MiB", "steady RSS MiB",
                     "load 1m/5m"], rows))  # fmt: skip
    lat = monitored["latency"]
    print(f"\nmonitor edited -> its /http_sd answer changed: {quantiles(lat['edit'])}")
    print(f"monitor created -> its job served:            {quantiles(lat['create'])}")
    print(f"monitor deleted -> its job 404:               {quantiles(lat['delete'])}")
    print(f"RSS after the changes: {monitored['after_rss_mb']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
