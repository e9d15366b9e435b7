"""bench/latency: end-to-end latency from an API write (pod status with its IP, label
change, delete) to the HTTP SD answer changing, p50/p99, at 100 and 1,000 changes/s.

    .venv/bin/python bench/latency.py [--rates 100,1000] [--seconds 20] [--base-pods 1000]
                                      [--small]

Starts its own devstack, `--base-pods` pods that stay, then the producer (pods only) and
`sdstream consume` (job `pods`), each in its own process, as deployed. The driver (this
process) issues changes open-loop on a fixed schedule, each pod going through: create +
status PATCH (timed from the PATCH, the write that gives it an IP: in a cluster the
kubelet writes it later), a label PATCH ~1 s later, a delete ~1 s after that. It polls
`/http_sd/pods` back to back with If-None-Match (304 when unchanged) and takes a change
as seen when the first response showing it arrives, so figures include up to one poll
round trip. The baseline is the API write itself (its own latency, in the same run).

Everything shares the machine's cores: API server, etcd, Kafka, producer, consumer and
this driver. If the driver cannot issue the target rate, the achieved rate is reported.
Prometheus itself adds up to 5 s (it batches SD updates) and polls HTTP SD every 60 s by
default; these figures are what sdstream adds before that.
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
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import orjson
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.runner import Producer
from schemas.config import (
    ConsumerSettings,
    HttpSettings,
    KafkaSettings,
    KubeSettings,
    ProducerSettings,
)
from schemas.sd_config import ScrapeJob
from schemas.topics import Resource
from sdstream import consume

PREFIX = "lat"
NAME = "__meta_kubernetes_pod_name"
NAMESPACE = "__meta_kubernetes_namespace"
GEN = "__meta_kubernetes_pod_label_gen"
LIFETIME_SLOTS_S = 1.0  # seconds between a pod's create, relabel and delete
POLL_GAP_S = 0.005  # between HTTP SD polls: at most ~200/s, so polling does not starve the rest


# children: producer and consumer, each until SIGTERM ----------------------------------


async def until_term() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


async def producer_child(payload: dict[str, Any]) -> dict[str, Any]:
    settings = ProducerSettings(
        cluster="lat", resources=(Resource.PODS,), partitions=6,
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=PREFIX),
        kube=KubeSettings(kubeconfig=Path(payload["kubeconfig"])), http=HttpSettings(port=0),
    )  # fmt: skip
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    producer = Producer(settings, producer_metrics.create(CollectorRegistry()))
    print(json.dumps({"started": True}), flush=True)
    return {"exit": await producer.run(stop)}


async def consumer_child(payload: dict[str, Any]) -> dict[str, Any]:
    config = ConsumerSettings(
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=PREFIX),
        scrape_configs=(ScrapeJob.model_validate(
            {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}),),
        http=HttpSettings(port=0), group_id=f"lat-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip

    def started(address: tuple[str, int]) -> None:
        print(json.dumps({"address": list(address)}), flush=True)

    task = asyncio.create_task(consume.serve(config, on_started=started))
    await until_term()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return {}


# the driver -----------------------------------------------------------------------------


@dataclass
class Expect:
    pod: str  # namespace/name
    kind: str  # create | relabel | delete
    started: float
    seen: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Phase:
    rate: int
    seconds: float
    namespace: str
    issued: int = 0
    api_errors: int = 0
    queues: dict[str, deque[Expect]] = field(default_factory=dict)
    seen: dict[str, list[float]] = field(default_factory=dict)
    api: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    polls: int = 0
    polling_s: float = 0.0
    poll_changed: int = 0


def satisfied(expect: Expect, pods: dict[str, str | None]) -> bool:
    if expect.kind == "create":
        return expect.pod in pods
    if expect.kind == "relabel":
        return pods.get(expect.pod) == "1"
    return expect.pod not in pods


def snapshot(body: bytes) -> dict[str, str | None]:
    pods: dict[str, str | None] = {}
    for entry in orjson.loads(body):
        labels = entry["labels"]
        pods[f"{labels[NAMESPACE]}/{labels[NAME]}"] = labels.get(GEN)
    return pods


async def poll(address: tuple[str, int], phase: Phase, stop: asyncio.Event) -> None:
    etag, started = "", time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(POLL_GAP_S)
        status, tag, body = await kit.get(address, "/http_sd/pods", etag=etag)
        now = time.monotonic()
        phase.polls += 1
        if status != 200:
            continue
        etag = tag
        phase.poll_changed += 1
        pods = snapshot(body)
        for name in list(phase.queues):
            queue = phase.queues[name]
            while queue and satisfied(queue[0], pods):
                expect = queue.popleft()
                phase.seen.setdefault(expect.kind, []).append(now - expect.started)
                expect.seen.set()
            if not queue:
                del phase.queues[name]
    phase.polling_s = time.monotonic() - started


def pod_body(name: str, namespace: str) -> kit.Body:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"gen": "0"}},
            "spec": {"nodeName": "node-0", "containers": [
                {"name": "app", "image": "example/app:1",
                 "ports": [{"name": "http", "containerPort": 8080}]}]}}  # fmt: skip


async def lifecycle(kube: kit.Kube, phase: Phase, i: int, slots: list[float]) -> None:
    """Create + status, relabel, delete one pod at its three scheduled times; each step
    waits until the previous one was seen, so no state is collapsed by a later one."""
    ns, name = phase.namespace, f"p-{i}"
    base = f"/api/v1/namespaces/{ns}/pods"
    ip = kit.pod_ip(200_000 + i)
    steps: list[tuple[str, Any]] = [
        ("create", None),
        ("relabel", ("PATCH", f"{base}/{name}", {"metadata": {"labels": {"gen": "1"}}})),
        ("delete", ("DELETE", f"{base}/{name}", None)),
    ]
    previous: Expect | None = None
    for (kind, call), at in zip(steps, slots, strict=True):
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        if previous is not None:
            try:
                async with asyncio.timeout(30):
                    await previous.seen.wait()
            except TimeoutError:
                return  # counted as never seen
        try:
            if kind == "create":
                await kube.call("POST", base, pod_body(name, ns))
                call = ("PATCH", f"{base}/{name}/status", {"status": {
                    "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": kit.READY}})  # fmt: skip
            method, path, patch = call
            previous = expect = Expect(f"{ns}/{name}", kind, time.monotonic())
            params = {"gracePeriodSeconds": "0"} if method == "DELETE" else None
            phase.queues.setdefault(expect.pod, deque()).append(expect)
            if kind == "create":
                phase.starts.append(expect.started)
            await kube.call(method, path, patch, params=params)
            phase.api.append(time.monotonic() - expect.started)
            phase.issued += 1
        except kit.ApiError as exc:
            phase.api_errors += 1
            kit.say(f"API error: {exc}")
            phase.queues.pop(f"{ns}/{name}", None)
            return


async def run_phase(kube: kit.Kube, address: tuple[str, int], phase: Phase) -> None:
    await kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": phase.namespace}})
    stop = asyncio.Event()
    poller = asyncio.create_task(poll(address, phase, stop))
    pods = max(1, round(phase.rate * phase.seconds / 3))
    start = time.monotonic() + 0.5
    gap = LIFETIME_SLOTS_S
    tasks = [asyncio.create_task(lifecycle(
        kube, phase, i, [start + 3 * i / phase.rate + k * gap for k in range(3)]))
        for i in range(pods)]  # fmt: skip
    await asyncio.gather(*tasks)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            while phase.queues:  # noqa: ASYNC110 - waiting on the poller
                await asyncio.sleep(0.05)
    stop.set()
    await poller


async def wait_base(address: tuple[str, int], count: int) -> None:
    async with kit.deadline(300):
        while True:
            status, _, body = await kit.get(address, "/http_sd/pods")
            if status == 200 and len(snapshot(body)) >= count:
                return
            await asyncio.sleep(0.2)


async def drive(kubeconfig: str, address: tuple[str, int], phases: list[Phase]) -> None:
    async with kit.Kube(kubeconfig, connections=64) as kube:
        for phase in phases:
            kit.say(f"phase {phase.rate}/s for {phase.seconds:.0f}s")
            await run_phase(kube, address, phase)


def run_child(role: str, payload: str) -> int:
    data = json.loads(payload)
    work = producer_child(data) if role == "producer" else consumer_child(data)
    kit.report(asyncio.run(work))
    return 0


def rows_for(phase: Phase) -> list[tuple[object, ...]]:
    ms = 1000
    rows = []
    ops = sum(len(v) for v in phase.seen.values())
    window = max(phase.starts, default=0) - min(phase.starts, default=0)
    achieved = 3 * (len(phase.starts) - 1) / window if window else 0  # 3 changes per pod
    missed = sum(len(q) for q in phase.queues.values())
    for kind in ("create", "relabel", "delete", "all"):
        values = ([v for vs in phase.seen.values() for v in vs] if kind == "all"
                  else phase.seen.get(kind, []))  # fmt: skip
        rows.append((phase.rate, f"{achieved:.0f}", kind, len(values),
                     f"{kit.percentile(values, 0.5) * ms:.0f}",
                     f"{kit.percentile(values, 0.99) * ms:.0f}",
                     f"{max(values, default=float('nan')) * ms:.0f}",
                     *((missed, phase.api_errors) if kind == "all" else ("", ""))))  # fmt: skip
    rows.append((phase.rate, f"{achieved:.0f}", "API write alone (baseline)", len(phase.api),
                 f"{kit.percentile(phase.api, 0.5) * ms:.0f}",
                 f"{kit.percentile(phase.api, 0.99) * ms:.0f}",
                 f"{max(phase.api, default=float('nan')) * ms:.0f}", "", ""))  # fmt: skip
    assert ops <= phase.issued
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,1000", help="changes per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--base-pods", type=int, default=1000)
    parser.add_argument("--small", action="store_true", help="100 base pods, 5 s per rate")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    if args.small:
        args.seconds, args.base_pods, args.rates = 5.0, 100, "50,200"
    rates = [int(r) for r in args.rates.split(",")]
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    with kit.devstack() as stack:
        asyncio.run(kit.create_cluster_objects(
            stack.kubeconfig, pods=args.base_pods, namespaces=2))  # fmt: skip
        common = {"bootstrap": stack.kafka_bootstrap, "kubeconfig": stack.kubeconfig}
        # Created here, not by the producer: its topic check right after creating can see
        # 0 partitions on a busy broker and exit 2 (seen once on this machine).
        asyncio.run(kit.create_topics(stack.kafka_bootstrap, [f"{PREFIX}.lat.pods"],
                                      partitions=6))  # fmt: skip
        producer = kit.spawn(me, "producer", common)
        consumer = kit.spawn(me, "consumer", common)
        try:
            assert consumer.stdout is not None
            address = tuple(json.loads(consumer.stdout.readline())["address"])
            asyncio.run(wait_base(address, args.base_pods))
            phases = [Phase(rate, args.seconds, f"lat-{rate}") for rate in rates]
            asyncio.run(drive(stack.kubeconfig, address, phases))
        finally:
            usage = {}
            for name, proc in (("producer", producer), ("consumer", consumer)):
                proc.send_signal(signal.SIGTERM)
                out, _ = proc.communicate(timeout=60)
                usage[name] = json.loads(out.strip().splitlines()[-1])
    print(f"input: {args.base_pods} pods standing; each change is one API write; "
          f"{args.seconds:.0f} s per rate\n")  # fmt: skip
    headers = ["target changes/s", "achieved/s", "change", "n", "p50 ms", "p99 ms", "max ms",
               "never seen", "API errors"]  # fmt: skip
    print(kit.table(headers, [row for phase in phases for row in rows_for(phase)]))
    for phase in phases:
        gap = phase.polling_s * 1000 / max(phase.polls, 1)
        print(f"\n{phase.rate}/s: {phase.polls} HTTP SD polls ({phase.poll_changed} changed), "
              f"{gap:.1f} ms per poll on average")  # fmt: skip
    for name, used in usage.items():
        print(f"\n{name}: peak RSS {used['max_rss_mb']:.0f} MiB, CPU {used['cpu_s']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
