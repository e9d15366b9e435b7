"""bench/kafka_latency: latency from an object event appended to its Kafka topic to the
HTTP SD answer changing, p50/p99, at a steady 2,000 events/s, without the API server.

    .venv/bin/python bench/kafka_latency.py [--rate 2000] [--seconds 10] [--base-pods 1000]
                                            [--small]

`bench/latency.py` measures from an API write, but on 2 cores the API server saturates
near 400 writes/s, so it cannot show what sdstream itself adds at higher rates. Here the
driver writes what a producer would (trimmed pod events, keyed and partitioned as the
producer does, idempotent, acks=all) straight to `<prefix>.<cluster>.pods`, open-loop at a
fixed rate, and `sdstream consume` (job `pods`, one process, as deployed) folds them,
publishes target groups, reads them back and serves them. Each pod goes through: ADDED
with its IP, MODIFIED with a new label 1 s later, a tombstone 1 s after that, each timed
from the moment it is handed to the Kafka client, open loop. A poller in its own process
(so the writer's sends do not slow it) polls `/http_sd/pods` back to back with
If-None-Match and takes a change as seen when the first answer showing it arrives (both
processes read CLOCK_MONOTONIC), so figures include up to one poll round trip. A change
never seen is a state the answer never showed (a pod created and deleted between two
changed answers counts so). The baseline, in the same run, is the Kafka append alone (send
to acknowledged, acks=all).

Bounded in count and time: rate x seconds events (20,000 by default), then SETTLE_S (10 s)
for the poller to see the last ones. Everything shares the machine's cores with the consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import latency  # bench/latency.py: the consumer child, HTTP SD polling and snapshots
from aiokafka import AIOKafkaProducer

from producers import trim
from schemas import events
from schemas.events import EventType
from schemas.topics import Resource, object_key, object_topic, partition_for

PREFIX = latency.PREFIX  # the consumer child reads <PREFIX>.* topics
CLUSTER = "lat"
PARTITIONS = 6
GAP_S = 1.0  # between a pod's three changes
SETTLE_S = 10.0  # after the last send, for the poller to see the last changes


@dataclass
class Run:
    rate: int
    seconds: float
    send_errors: int = 0
    sent: dict[str, float] = field(default_factory=dict)  # "kind ns/name" -> handed to Kafka
    acked: list[float] = field(default_factory=list)
    first: dict[str, float] = field(default_factory=dict)  # "kind ns/name" -> first seen
    polls: int = 0
    polling_s: float = 0.0
    poll_changed: int = 0

    def latencies(self, kind: str = "") -> list[float]:
        return [self.first[k] - t for k, t in self.sent.items()
                if k in self.first and k.startswith(kind)]  # fmt: skip

    def lost(self) -> int:
        return sum(1 for k in self.sent if k not in self.first)


def pod(i: int, *, namespace: str, gen: str) -> kit.Body:
    """Pod i at generation `gen` (its resourceVersion changes with it: the fold skips a
    record at the version it holds)."""
    ip = kit.pod_ip(100_000 + i)
    return {
        "metadata": {"name": f"p-{i}", "namespace": namespace, "uid": f"uid-{i}",
                     "resourceVersion": f"{10 + i}{gen}", "labels": {"gen": gen}},
        "spec": {"nodeName": "node-0", "containers": [
            {"name": "app", "image": "example/app:1",
             "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": kit.READY},
    }  # fmt: skip


def record(obj: kit.Body | None, key: str, kind: EventType) -> dict[str, Any]:
    """send() arguments for one event, as the producer writes it."""
    version = obj["metadata"]["resourceVersion"] if obj else "0"
    value = None if obj is None else events.encode_change(
        type=kind, cluster=CLUSTER, resource=Resource.PODS, resource_version=version,
        observed_at=time.time(), object=trim.trim(Resource.PODS, obj, drop_annotations=kit.DROP),
    )  # fmt: skip
    return {
        "topic": object_topic(PREFIX, CLUSTER, Resource.PODS), "value": value,
        "key": key.encode(), "partition": partition_for(key, PARTITIONS),
        "headers": events.headers(event=kind, cluster=CLUSTER, resource=Resource.PODS,
                                  resource_version=version),
    }  # fmt: skip


def changes(i: int) -> list[tuple[str, dict[str, Any]]]:
    """Pod i's three changes as send() arguments, encoded before the clock starts so the
    driver's own CPU stays out of the way of what is measured."""
    ns = "direct"
    key = object_key(ns, f"p-{i}")
    return [
        ("create", record(pod(i, namespace=ns, gen="0"), key, EventType.ADDED)),
        ("relabel", record(pod(i, namespace=ns, gen="1"), key, EventType.MODIFIED)),
        ("delete", record(None, key, EventType.DELETED)),
    ]


async def lifecycle(
    producer: AIOKafkaProducer, run: Run, steps: list[tuple[str, dict[str, Any]]],
    slots: list[float],
) -> None:  # fmt: skip
    """Send a pod's changes at their slots (open loop: the poller is another process)."""
    for (kind, args), at in zip(steps, slots, strict=True):
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        name = f"{kind} {args['key'].decode()}"
        started = run.sent[name] = time.monotonic()  # CLOCK_MONOTONIC: one clock per machine
        try:
            future = await producer.send(**args)
            await future
        except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
            run.send_errors += 1
            kit.say(f"send failed: {exc!r}")
            return
        run.acked.append(time.monotonic() - started)


async def poller_child(payload: dict[str, Any]) -> dict[str, Any]:
    """Poll the HTTP SD answer back to back until SIGTERM; when each change was first seen.

    A process of its own, so the writer's sends and acks do not slow the polling (in one
    process the polls fell to one per ~0.5 s at 2,000 events/s on this machine).
    """
    address = (payload["address"][0], payload["address"][1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    first: dict[str, float] = {}
    present: set[str] = set()
    etag, polls, changed, began = "", 0, 0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(latency.POLL_GAP_S)
        status, tag, body = await kit.get(address, "/http_sd/pods", etag=etag)
        now, polls = time.monotonic(), polls + 1
        if status != 200:
            continue
        etag, changed = tag, changed + 1
        pods = {n: g for n, g in latency.snapshot(body).items() if n.startswith("direct/")}
        for name, gen in pods.items():
            first.setdefault(f"create {name}", now)
            if gen == "1":
                first.setdefault(f"relabel {name}", now)
        for name in present - pods.keys():
            first.setdefault(f"delete {name}", now)
        present = set(pods)
    return {"first": first, "polls": polls, "changed": changed,
            "polling_s": time.monotonic() - began}  # fmt: skip


async def base(bootstrap: str, count: int) -> None:
    objs = [pod(50_000 + i, namespace="base", gen="0") for i in range(count)]
    await kit.write_events(bootstrap, PREFIX, CLUSTER, Resource.PODS, objs,
                           partitions=PARTITIONS)  # fmt: skip


async def drive(bootstrap: str, run: Run) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", compression_type=kit.CODEC, linger_ms=2,
                                max_batch_size=256 * 2**10)  # as sdstream's producer  # fmt: skip
    await producer.start()
    try:
        pods = [changes(i) for i in range(max(1, round(run.rate * run.seconds / 3)))]
        start = time.monotonic() + 0.5
        tasks = [asyncio.create_task(lifecycle(
            producer, run, steps, [start + 3 * i / run.rate + k * GAP_S for k in range(3)]))
            for i, steps in enumerate(pods)]  # fmt: skip
        await asyncio.gather(*tasks)
    finally:
        await producer.stop()


def observe(poller: subprocess.Popen[str], run: Run, *, settle_s: float) -> None:
    """Let the poller see the last changes (at most `settle_s`), stop it, read its log."""
    time.sleep(settle_s)  # the bench's own pacing, not a test
    poller.send_signal(signal.SIGTERM)
    out, _ = poller.communicate(timeout=60)
    seen = json.loads(out.strip().splitlines()[-1])
    run.first, run.polls = seen["first"], seen["polls"]
    run.poll_changed, run.polling_s = seen["changed"], seen["polling_s"]


def rows_for(run: Run) -> list[tuple[object, ...]]:
    ms = 1000
    creates = [t for k, t in run.sent.items() if k.startswith("create")]
    window = max(creates, default=0) - min(creates, default=0)
    achieved = 3 * (len(creates) - 1) / window if window else 0
    rows: list[tuple[object, ...]] = []
    for kind in ("create", "relabel", "delete", ""):
        values = run.latencies(kind)
        rows.append((run.rate, f"{achieved:.0f}", kind or "all", len(values),
                     f"{kit.percentile(values, 0.5) * ms:.0f}",
                     f"{kit.percentile(values, 0.99) * ms:.0f}",
                     f"{max(values, default=float('nan')) * ms:.0f}",
                     *((run.lost(), run.send_errors) if not kind else ("", ""))))  # fmt: skip
    rows.append((run.rate, f"{achieved:.0f}", "Kafka append alone, to acked (baseline)",
                 len(run.acked), f"{kit.percentile(run.acked, 0.5) * ms:.0f}",
                 f"{kit.percentile(run.acked, 0.99) * ms:.0f}",
                 f"{max(run.acked, default=float('nan')) * ms:.0f}", "", ""))  # fmt: skip
    return rows


def figures(run: Run) -> dict[str, Any]:
    """Every measured latency and its percentiles, for bench/charts.py."""
    samples = sorted(round(v * 1000, 2) for v in run.latencies())
    quantiles = {"50": 0.5, "90": 0.9, "99": 0.99, "99.9": 0.999}
    percentiles = {k: kit.percentile(samples, q) for k, q in quantiles.items()}
    return {
        "when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        "load": Path("/proc/loadavg").read_text().strip(), "rate_per_s": run.rate,
        "changes": len(run.sent), "lost": run.lost(),
        "samples_ms": samples,
        "percentiles_ms": {**percentiles, "max": max(samples, default=float("nan"))},
        "note": "object events appended straight to the pods topic (acks=all) -> the HTTP SD "
        "answer showing the change, polled back to back (bench/kafka_latency.py)",
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--base-pods", type=int, default=1000)
    parser.add_argument("--small", action="store_true", help="100 base pods, 500/s for 5 s")
    parser.add_argument("--json", type=Path, help="also write the figures here (for charts)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, payload = args.child
        if role != "poller":
            return latency.run_child(role, payload)
        kit.report(asyncio.run(poller_child(json.loads(payload))))
        return 0
    if args.small:
        args.seconds, args.base_pods, args.rate = 5.0, 100, 500
    print(f"machine: {kit.machine()}\n", flush=True)
    run = Run(args.rate, args.seconds)
    with kit.devstack() as stack:
        topic = object_topic(PREFIX, CLUSTER, Resource.PODS)
        asyncio.run(kit.create_topics(stack.kafka_bootstrap, [topic], partitions=PARTITIONS))
        asyncio.run(base(stack.kafka_bootstrap, args.base_pods))
        common = {"bootstrap": stack.kafka_bootstrap, "kubeconfig": stack.kubeconfig}
        consumer = kit.spawn(str(Path(latency.__file__)), "consumer", common)
        try:
            assert consumer.stdout is not None
            address = json.loads(consumer.stdout.readline())["address"]
            asyncio.run(latency.wait_base((address[0], address[1]), args.base_pods))
            poller = kit.spawn(__file__, "poller", {"address": address})
            kit.say(f"{args.rate} events/s for {args.seconds:.0f}s")
            asyncio.run(drive(stack.kafka_bootstrap, run))
            observe(poller, run, settle_s=SETTLE_S)
        finally:
            consumer.send_signal(signal.SIGTERM)
            out, _ = consumer.communicate(timeout=60)
            used = json.loads(out.strip().splitlines()[-1])
    print(f"input: {args.base_pods} pods standing; events written straight to {topic} "
          f"({PARTITIONS} partitions); {args.seconds:.0f} s at the rate\n")  # fmt: skip
    headers = ["target events/s", "achieved/s", "change", "n", "p50 ms", "p99 ms", "max ms",
               "never seen", "send errors"]  # fmt: skip
    print(kit.table(headers, rows_for(run)))
    if args.json:
        args.json.write_text(json.dumps(figures(run), indent=1))
    gap = run.polling_s * 1000 / max(run.polls, 1)
    print(
        f"\n{run.polls} HTTP SD polls ({run.poll_changed} changed), {gap:.1f} ms per poll on "
        f"average; consumer: peak RSS {used['max_rss_mb']:.0f} MiB, CPU {used['cpu_s']:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
