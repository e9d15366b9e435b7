"""bench/produce: the producer's initial sync of N pods from a real kube-apiserver into
Kafka, against the floor of a raw paginated LIST of the same pods, in the same run.

    .venv/bin/python bench/produce.py [--pods 50000] [--namespaces 10] [--rounds 1]
                                      [--base CHECKOUT] [--small] [--profile] [--cprofile]

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

`--base CHECKOUT` runs another checkout's producer (its own bench/produce.py child, which
writes the `bench` prefix's topic) beside this one (the `new` prefix) in steps 2 and 3, on
the same pods; `--rounds N` repeats steps 1-4 N times on the same pods, deleting the
producers' topics between rounds and alternating which producer goes first.

Prints a Markdown table per round for bench/README.md. `--profile` adds, per producer run,
a timeline from exec to "all acked" (imports, settings, the start stages the producer logs
at debug, each LIST page handed over, the last acks); `--cprofile` the top of a cProfile
(CPU clock) of each child.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import orjson
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.kubeapi.api import Page, Scope, WatchEvent
from producers.runner import Producer
from producers.watcher import ObjectSource
from schemas.config import HttpSettings, KafkaSettings, KubeSettings, ProducerSettings
from schemas.topics import Resource, object_topic

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


def since_exec() -> float:
    """Seconds since this process was exec'd (/proc start time, 10 ms ticks)."""
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


class Timeline(logging.Handler):
    """(seconds since exec, what) for the producer's log lines and LIST pages."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.zero = time.time() - since_exec()
        self.marks: list[tuple[float, str]] = []

    def mark(self, what: str) -> None:
        self.marks.append((time.time() - self.zero, what))

    def emit(self, record: logging.LogRecord) -> None:
        self.marks.append((record.created - self.zero, record.getMessage()[:90]))


@dataclass
class TimedSource:
    """The producer's object source, marking each LIST page's arrival on the timeline."""

    source: ObjectSource
    timeline: Timeline

    async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        self.timeline.mark(f"LIST {resource} asked for")
        n = 0
        async for page in self.source.pages(resource, scope):
            n += 1
            if n <= 2 or len(page.items) < 500:  # the first pages and the last
                self.timeline.mark(f"LIST page {n} in ({len(page.items)} items)")
            yield page

    def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        return self.source.watch(resource, scope, since=since, timeout_s=timeout_s)


async def produce_child(payload: dict[str, Any]) -> dict[str, Any]:
    timeline = Timeline()
    timeline.mark("imports done")
    if payload.get("profile"):
        logging.getLogger("producers").addHandler(timeline)
        logging.getLogger("producers").setLevel(logging.DEBUG)
    settings = ProducerSettings(
        cluster="bench", resources=(Resource.PODS,), partitions=PARTITIONS,
        kafka=KafkaSettings(bootstrap=payload["bootstrap"],
                            topic_prefix=payload.get("prefix", PREFIX)),
        kube=KubeSettings(kubeconfig=Path(payload["kubeconfig"])), http=HttpSettings(port=0),
    )  # fmt: skip
    registry = CollectorRegistry()
    producer = Producer(settings, producer_metrics.create(registry))
    if payload.get("profile"):
        producer.wrap_source = lambda source: TimedSource(source, timeline)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(producer.run(stop))
    async with kit.deadline(payload["timeout_s"]):
        while not producer.readiness.ready:
            if task.done():
                raise RuntimeError(f"producer exited with {task.result()}")
            await asyncio.sleep(0.01)
        ready = time.perf_counter() - started
        timeline.mark("ready (last page handed over, listing finished)")
        while published(registry) < payload["expect"]:  # noqa: ASYNC110 - polling a metric
            await asyncio.sleep(0.01)
    acked = time.perf_counter() - started
    timeline.mark("all acked")
    stop.set()
    exit_code = await task
    return {
        "ready_s": ready, "acked_s": acked, "exit": exit_code, "published": published(registry),
        "unchanged": sample(registry, "sdstream_producer_reconcile_unchanged_total"),
        "tombstones": sample(registry, "sdstream_producer_reconcile_tombstones_total"),
        "timeline": [(round(t, 3), what) for t, what in timeline.marks],
    }  # fmt: skip


def run_child(role: str, payload: str) -> int:
    data = json.loads(payload)
    profile = cProfile.Profile(time.process_time) if data.get("cprofile") else None
    if profile is not None:
        profile.enable()
    result = asyncio.run(list_child(data) if role == "list" else produce_child(data))
    if profile is not None:
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(30)
        result["profile"] = text.getvalue()
    kit.report(result)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--base", type=Path, help="a checkout whose producer runs beside "
                        "this one's, on the same pods")  # fmt: skip
    parser.add_argument("--small", action="store_true", help="2,000 pods, for a quick check")
    parser.add_argument("--profile", action="store_true", help="per producer run: a start "
                        "timeline, on stderr")  # fmt: skip
    parser.add_argument("--cprofile", action="store_true", help="per run: the top of a CPU "
                        "profile (cProfile, CPU clock), on stderr; slows the runs")  # fmt: skip
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    pods = 2_000 if args.small else args.pods
    print(f"machine: {kit.machine()}\n", flush=True)
    codes = [Code("new", str(Path(__file__)), "new")]
    if args.base:  # its produce.py writes the "bench" prefix, whatever the payload says
        codes.insert(0, Code("base", str(args.base / "bench" / "produce.py"), PREFIX))
    with kit.devstack() as stack:
        created = asyncio.run(kit.create_cluster_objects(
            stack.kubeconfig, pods=pods, namespaces=args.namespaces))  # fmt: skip
        kit.say(f"created {pods} pods in {created:.1f}s ({pods / created:.0f} pods/s)")
        print(f"input: {pods} pods in {args.namespaces} namespaces, created through the API "
              f"in {created:.1f}s ({pods / created:.0f} pods/s, 2 requests each)\n")  # fmt: skip
        common = {"kubeconfig": stack.kubeconfig, "bootstrap": stack.kafka_bootstrap,
                  "timeout_s": 1800, "profile": args.profile,
                  "cprofile": args.cprofile}  # fmt: skip
        for n in range(args.rounds):
            order = codes if n % 2 == 0 else codes[::-1]
            one_round(n + 1, order, common, pods=pods)
            asyncio.run(delete_topics(stack.kafka_bootstrap, [
                object_topic(c.prefix, "bench", Resource.PODS) for c in codes]))  # fmt: skip
    return 0


@dataclass(frozen=True)
class Code:
    name: str
    script: str
    prefix: str


def one_round(n: int, codes: list[Code], common: dict[str, Any], *, pods: int) -> None:
    me = str(Path(__file__))
    loads = [f"{os.getloadavg()[0]:.1f}"]
    list1 = kit.child(me, "list", common)
    assert list1["items"] == pods, list1
    first = {
        c.name: kit.child(c.script, "produce", {**common, "expect": pods, "prefix": c.prefix})
        for c in codes
    }
    list2 = kit.child(me, "list", common)
    again = {
        c.name: kit.child(c.script, "produce", {**common, "expect": 0, "prefix": c.prefix})
        for c in codes
    }
    loads.append(f"{os.getloadavg()[0]:.1f}")
    for c in codes:
        for step, x in (("initial sync", first[c.name]), ("restart", again[c.name])):
            show_profile(f"{c.name} producer, {step}", x)
    floor = min(list1["seconds"], list2["seconds"])
    rss = max(list1["max_rss_mb"], list2["max_rss_mb"])
    rows = [(f"raw paginated LIST, orjson, limit=500 ({i})", f"{x['seconds']:.2f}", "-",
             f"{x['cpu_s']:.1f}", "-", f"{x['max_rss_mb']:.0f}", "-")
            for i, x in (("1st", list1), ("2nd", list2))]  # fmt: skip
    for c in codes:
        for step, x in (("initial sync, start to all acked", first[c.name]),
                        ("restart, nothing changed", again[c.name])):  # fmt: skip
            rows.append((f"{c.name} producer: {step}", f"{x['acked_s']:.2f}",
                         f"{x['acked_s'] / floor:.2f}x", f"{x['cpu_s']:.1f}",
                         str(x["published"]), f"{x['max_rss_mb']:.0f}",
                         f"{x['max_rss_mb'] / rss:.2f}x"))  # fmt: skip
    print(
        f"round {n} ({time.strftime('%H:%M', time.gmtime())} UTC, load "
        f"{' -> '.join(loads)}; other pytest sessions: {kit.other_pytest()})\n"
    )
    print(kit.table(["step", "seconds", "/ faster LIST", "CPU s", "records written",
                     "peak RSS MiB", "/ LIST's RSS"], rows))  # fmt: skip
    print(flush=True)


def show_profile(title: str, result: dict[str, Any]) -> None:
    """The run's timeline (seconds since exec) and CPU profile, on stderr."""
    if "timeline" not in result:  # a base checkout without the timeline
        return
    lines = [f"{t:8.3f}  {what}" for t, what in result["timeline"]]
    lines.append(f"{result['acked_s']:8.3f}  (from Producer.run to all acked)")
    kit.say(f"{title}: timeline, s since exec\n" + "\n".join(lines))
    if "profile" in result:
        kit.say(result["profile"])


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete the producers' topics and wait until the broker no longer lists them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
        async with kit.deadline(120):
            while set(names) & set(await admin.list_topics()):  # noqa: ASYNC110 - polling
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


if __name__ == "__main__":
    sys.exit(main())
