"""bench/produce: the producer's initial sync of N pods from a real kube-apiserver into
Kafka, against the floor of a raw paginated LIST of the same pods, in the same run.

    .venv/bin/python bench/produce.py [--pods 50000] [--namespaces 10] [--small]

Starts its own devstack (Kafka + etcd + kube-apiserver) in a temporary run dir, creates
the pods through the API (concurrent POST + status PATCH, as a kubelet would), then runs,
each in a fresh process so its peak RSS is its own:

1. the baseline: GET /api/v1/pods?limit=500 page by page (aiohttp + orjson, no models),
   the least any LIST-based producer must do;
2. the producer (`producers.runner.Producer`, pods only, 6 partitions) from start until
   the initial LIST is published and every record acknowledged by Kafka;
3. the same producer restarted with nothing changed: it reads the topic, LISTs, and
   should write ~0 records;
4. the baseline again, to show how much the API server's own timing moved.

Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import orjson
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.runner import Producer
from schemas.config import HttpSettings, KafkaSettings, KubeSettings, ProducerSettings
from schemas.topics import Resource

PREFIX = "bench"
PARTITIONS = 6


async def list_child(payload: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    items = pages = 0
    async with kit.Kube(payload["kubeconfig"], connections=1) as kube:
        params: dict[str, Any] = {"limit": "500"}
        while True:
            page = orjson.loads(await kube.call("GET", "/api/v1/pods", params=params))
            items += len(page["items"])
            pages += 1
            token = page["metadata"].get("continue")
            if not token:
                break
            params = {"limit": "500", "continue": token}
    return {"seconds": time.perf_counter() - started, "items": items, "pages": pages}


def published(registry: CollectorRegistry) -> int:
    total = 0.0
    for family in registry.collect():
        if family.name == "sdstream_producer_published":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


def sample(registry: CollectorRegistry, name: str) -> int:
    return int(registry.get_sample_value(name, {"resource": "pods"}) or 0)


async def produce_child(payload: dict[str, Any]) -> dict[str, Any]:
    settings = ProducerSettings(
        cluster="bench", resources=(Resource.PODS,), partitions=PARTITIONS,
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=PREFIX),
        kube=KubeSettings(kubeconfig=Path(payload["kubeconfig"])), http=HttpSettings(port=0),
    )  # fmt: skip
    registry = CollectorRegistry()
    producer = Producer(settings, producer_metrics.create(registry))
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(producer.run(stop))
    async with kit.deadline(payload["timeout_s"]):
        while not producer.readiness.ready:
            if task.done():
                raise RuntimeError(f"producer exited with {task.result()}")
            await asyncio.sleep(0.01)
        ready = time.perf_counter() - started
        while published(registry) < payload["expect"]:  # noqa: ASYNC110 - polling a metric
            await asyncio.sleep(0.01)
    acked = time.perf_counter() - started
    stop.set()
    exit_code = await task
    return {
        "ready_s": ready, "acked_s": acked, "exit": exit_code, "published": published(registry),
        "unchanged": sample(registry, "sdstream_producer_reconcile_unchanged_total"),
        "tombstones": sample(registry, "sdstream_producer_reconcile_tombstones_total"),
    }  # fmt: skip


def run_child(role: str, payload: str) -> int:
    data = json.loads(payload)
    result = asyncio.run(list_child(data) if role == "list" else produce_child(data))
    kit.report(result)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--small", action="store_true", help="2,000 pods, for a quick check")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    pods = 2_000 if args.small else args.pods
    print(f"machine: {kit.machine()}\n", flush=True)
    with kit.devstack() as stack:
        created = asyncio.run(kit.create_cluster_objects(
            stack.kubeconfig, pods=pods, namespaces=args.namespaces))  # fmt: skip
        kit.say(f"created {pods} pods in {created:.1f}s ({pods / created:.0f} pods/s)")
        common = {"kubeconfig": stack.kubeconfig, "bootstrap": stack.kafka_bootstrap,
                  "timeout_s": 1800}  # fmt: skip
        me = str(Path(__file__))
        list1 = kit.child(me, "list", common)
        first = kit.child(me, "produce", {**common, "expect": pods})
        list2 = kit.child(me, "list", common)
        again = kit.child(me, "produce", {**common, "expect": 0})
    assert list1["items"] == pods, list1
    print(f"input: {pods} pods in {args.namespaces} namespaces, created through the API in "
          f"{created:.1f}s ({pods / created:.0f} pods/s, 2 requests each)\n")  # fmt: skip
    rows = [
        ("raw paginated LIST, orjson, limit=500 (baseline, 1st)", f"{list1['seconds']:.2f}",
         f"{pods / list1['seconds']:.0f}", "-", f"{list1['max_rss_mb']:.0f}"),
        ("raw paginated LIST (baseline, 2nd)", f"{list2['seconds']:.2f}",
         f"{pods / list2['seconds']:.0f}", "-", f"{list2['max_rss_mb']:.0f}"),
        ("producer initial sync, start to all acked", f"{first['acked_s']:.2f}",
         f"{pods / first['acked_s']:.0f}", str(first["published"]),
         f"{first['max_rss_mb']:.0f}"),
        ("producer restart, nothing changed", f"{again['acked_s']:.2f}",
         f"{pods / again['acked_s']:.0f}", str(again["published"]),
         f"{again['max_rss_mb']:.0f}"),
    ]  # fmt: skip
    print(kit.table(["step", "seconds", "pods/s", "records written", "peak RSS MiB"], rows))
    floor = min(list1["seconds"], list2["seconds"])
    print(f"\nproducer initial sync / LIST floor: {first['acked_s'] / floor:.2f}x "
          f"(ready after {first['ready_s']:.2f}s; CPU {first['cpu_s']:.1f}s); restart: "
          f"{again['unchanged']} unchanged, {again['tombstones']} tombstones, "
          f"{again['published']} written (CPU {again['cpu_s']:.1f}s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
