"""bench/kafka_latency: latency from an object event appended to its Kafka topic to the
HTTP SD answer changing, p50/p99, at a steady 2,000 events/s, without the API server.

    .venv/bin/python bench/kafka_latency.py [--rate 2000] [--seconds 10] [--base-pods 1000]
                                            [--small] [--split] [--json FILE]

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
to acknowledged, acks=all). The poller starts before the driver (its start-up is not
latency) and finds the driven pods by scanning the answer's bytes, not parsing every label.

Stages: the fold's debug logs (`kafka_loop`: each batch fetched and folded, with its
records' CreateTime; each publish step started, shown to the sinks, acked) split each
change into appended -> fetched -> publish step starts -> shown -> seen by the poller,
plus the step's acks (off the path in one process since session 7); each change is matched
to the fold's batches by its acked CreateTime. "Shown -> seen" is split on the poller's
side into: until the poll that saw it was sent, that poll's wait for the answer's first
bytes (the server), and the rest of the body; the poller's CPU is reported. `--split` runs
`--mode fold` and `--mode serve` in two processes with the targets topic in between: there
"shown" is the fold's acks, and "seen" includes the serve process reading the topic.

Bounded in count and time: rate x seconds events (20,000 by default), then SETTLE_S (10 s)
for the poller to see the last ones. Everything shares the machine's cores with the consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import latency  # bench/latency.py: the consumer child, HTTP SD polling and snapshots
from aiokafka import AIOKafkaProducer

from consumers.compactor import kafka_loop
from producers import trim
from schemas import events
from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.events import EventType
from schemas.sd_config import ScrapeJob
from schemas.topics import Resource, object_key, object_topic, partition_for
from sdstream import consume

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
    sent_epoch: dict[str, float] = field(default_factory=dict)  # the same, time.time()
    # Each record's CreateTime (epoch ms) as Kafka acked it: a loaded client stamps it
    # later than `sent_epoch`, and the fold's batches are matched by it.
    stamps: dict[str, int] = field(default_factory=dict)
    acked: list[float] = field(default_factory=list)
    first: dict[str, float] = field(default_factory=dict)  # "kind ns/name" -> first seen
    polls: int = 0
    polling_s: float = 0.0
    poll_changed: int = 0
    parse_ms: tuple[float, float] = (0.0, 0.0)  # p50, p99: the poller's own work per change
    timed: list[list[float]] = field(default_factory=list)  # changed polls: asked, first, read
    poller_cpu_s: float = 0.0

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
        run.sent_epoch[name] = time.time()  # the clock of record timestamps and stage logs
        try:
            future = await producer.send(**args)
            run.stamps[name] = (await future).timestamp
        except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
            run.send_errors += 1
            kit.say(f"send failed: {exc!r}")
            return
        run.acked.append(time.monotonic() - started)


# Each entry's namespace, gen label and pod name: every pod here has all three.
LABELS = [re.compile(b'"%s":"([^"]*)"' % name.encode())
          for name in (latency.NAMESPACE, latency.GEN, latency.NAME)]  # fmt: skip


def direct_pods(body: bytes) -> dict[str, str | None]:
    """`latency.snapshot` of the driven pods, by three scans of the answer's bytes: a full
    parse of every label of every target made the poller, not sdstream, the slowest step
    under load (p50 42 ms, p99 0.4-0.7 s per changed answer at load 4-6)."""
    found = [pattern.findall(body) for pattern in LABELS]
    if len({len(f) for f in found}) != 1:  # some entry lacks one: parse it all
        return {n: g for n, g in latency.snapshot(body).items() if n.startswith("direct/")}
    return {f"direct/{name.decode()}": gen.decode()
            for ns, gen, name in zip(*found, strict=True) if ns == b"direct"}  # fmt: skip


async def timed_get(
    address: tuple[str, int], path: str, *, etag: str
) -> tuple[int, str, bytes, float]:
    """`kit.get`, plus when the answer's first bytes arrived (CLOCK_MONOTONIC): the
    server's time to answer, apart from the body's transfer."""
    reader, writer = await asyncio.open_connection(*address)
    extra = f"If-None-Match: {etag}\r\n" if etag else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
    await writer.drain()
    head = await reader.read(1 << 16)
    first = time.monotonic()
    data = head + await reader.read()
    writer.close()
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    tag = next((v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                if k.lower() == "etag"), "")  # fmt: skip
    return int(lines[0].split()[1]), tag, body, first


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
    etag, polls, changed, began, parsing = "", 0, 0, time.monotonic(), []
    timed: list[tuple[float, float, float]] = []  # changed answers: asked, first bytes, read
    while not stop.is_set():
        await asyncio.sleep(latency.POLL_GAP_S)
        asked = time.monotonic()
        status, tag, body, first_byte = await timed_get(address, "/http_sd/pods", etag=etag)
        now, polls = time.monotonic(), polls + 1
        if polls == 1:
            print(json.dumps({"polling": True}), flush=True)  # the driver starts now
        if status != 200:
            continue
        etag, changed = tag, changed + 1
        timed.append((asked, first_byte, now))
        pods = direct_pods(body)
        parsing.append(time.monotonic() - now)
        if changed == 1 or stop.is_set():  # the scan agrees with a full parse
            assert pods == {n: g for n, g in latency.snapshot(body).items()
                            if n.startswith("direct/")}  # fmt: skip
        for name, gen in pods.items():
            first.setdefault(f"create {name}", now)
            if gen == "1":
                first.setdefault(f"relabel {name}", now)
        for name in present - pods.keys():
            first.setdefault(f"delete {name}", now)
        present = set(pods)
    return {"first": first, "polls": polls, "changed": changed, "timed": timed,
            "polling_s": time.monotonic() - began,
            "parse_p50_ms": kit.percentile(parsing, 0.5) * 1000,
            "parse_p99_ms": kit.percentile(parsing, 0.99) * 1000}  # fmt: skip


class Stages(logging.Handler):
    """The fold's debug stage logs (`stage` in `extra`: when each batch was fetched and
    folded, when each publish step started, was shown to the sinks, was acked)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "stage"):
            self.seen.append({k: v for k, v in vars(record).items()
                              if k == "stage" or k.endswith(("_at", "_ms"))})  # fmt: skip


async def consumer_child(payload: dict[str, Any]) -> dict[str, Any]:
    """`sdstream consume --mode <mode>` (job `pods`) until SIGTERM, the fold's stage logs
    kept."""
    stages = Stages()
    fold_log = logging.getLogger(kafka_loop.__name__)
    fold_log.setLevel(logging.DEBUG)
    fold_log.addHandler(stages)
    config = ConsumerSettings(
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=PREFIX),
        scrape_configs=(ScrapeJob.model_validate(
            {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]}),),
        http=HttpSettings(port=0), group_id=f"lat-{uuid.uuid4().hex[:8]}",
        mode=payload.get("mode", "all"), targets_topic=payload.get("targets"),
    )  # fmt: skip

    def started(address: tuple[str, int]) -> None:
        print(json.dumps({"address": list(address)}), flush=True)

    task = asyncio.create_task(consume.serve(config, on_started=started))
    await latency.until_term()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    result: dict[str, Any] = {}
    return {**result, "stages": stages.seen, "clock_offset": time.time() - time.monotonic()}


def breakdown(run: Run, stages: list[dict[str, Any]], offset: float) -> dict[str, list[float]]:
    """Each change's time per stage (ms): appended -> fetched by the fold (the first batch
    whose newest record is at least as new), -> the publish step that followed started,
    -> shown to the sinks, -> first seen by the poller; and that step's acks."""
    folds = sorted((s for s in stages if s["stage"] == "fold"), key=lambda s: s["fetched_at"])
    steps = sorted((s for s in stages if s["stage"] == "publish"),
                   key=lambda s: s["started_at"])  # fmt: skip
    newest = list(itertools.accumulate((f["newest_ms"] for f in folds), max))
    starts = [s["started_at"] for s in steps]
    names = ("fetched", "to step", "to shown", "to seen", "to asked", "answering", "reading",
             "shown", "acked")  # fmt: skip
    reads = [t[2] for t in run.timed]
    out: dict[str, list[float]] = {k: [] for k in names}
    for name, sent in run.sent_epoch.items():
        i = bisect.bisect_left(newest, run.stamps.get(name, sent * 1000 - 1))
        j = bisect.bisect_left(starts, folds[i]["folded_at"]) if i < len(folds) else len(steps)
        if j >= len(steps) or name not in run.first:
            continue
        fold, step, seen = folds[i], steps[j], run.first[name] + offset
        k = bisect.bisect_left(reads, run.first[name])
        asked, first_byte, _ = (t + offset for t in run.timed[k]) if k < len(reads) else [seen] * 3
        for key, ms in (("fetched", fold["fetched_at"] - sent),
                        ("to step", step["started_at"] - fold["folded_at"]),
                        ("to shown", step["shown_at"] - step["started_at"]),
                        ("to seen", seen - step["shown_at"]),
                        ("to asked", asked - step["shown_at"]),
                        ("answering", first_byte - asked),
                        ("reading", seen - first_byte),
                        ("shown", step["shown_at"] - sent),
                        ("acked", step["acked_at"] - step["shown_at"])):  # fmt: skip
            out[key].append(ms * 1000)
    return out


def stage_rows(run: Run, used: dict[str, Any]) -> list[tuple[object, ...]]:
    by_stage = breakdown(run, used["stages"], used["clock_offset"])
    labels = {"fetched": "appended -> fetched by the fold",
              "to step": "folded -> publish step starts",
              "to shown": "step: rebuild, hand to producer, show",
              "to seen": "shown -> seen by the poller",
              "to asked": "  of which: shown -> the poll that saw it sent (< 0: already waiting)",
              "answering": "  of which: poll sent -> answer's first bytes (the server)",
              "reading": "  of which: first bytes -> answer read (transfer)",
              "shown": "appended -> shown (what the fold adds)",
              "acked": "(off the path) shown -> targets topic acked"}  # fmt: skip
    return [(labels[k], len(v), *(f"{kit.percentile(v, q):.0f}" for q in (0.5, 0.9, 0.99)),
             f"{max(v, default=float('nan')):.0f}") for k, v in by_stage.items()]  # fmt: skip


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


def observe(pollers: list[subprocess.Popen[str]], runs: list[Run], *, settle_s: float) -> None:
    """Let the pollers see the last changes (at most `settle_s`), stop them, read their logs."""
    time.sleep(settle_s)  # the bench's own pacing, not a test
    for poller in pollers:
        poller.send_signal(signal.SIGTERM)
    for poller, run in zip(pollers, runs, strict=True):
        out, _ = poller.communicate(timeout=60)
        seen = json.loads(out.strip().splitlines()[-1])
        run.first, run.polls = seen["first"], seen["polls"]
        run.poll_changed, run.polling_s = seen["changed"], seen["polling_s"]
        run.parse_ms = seen["parse_p50_ms"], seen["parse_p99_ms"]
        run.timed, run.poller_cpu_s = seen.get("timed", []), seen["cpu_s"]


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
    parser.add_argument(
        "--split",
        action="store_true",
        help="`--mode fold` and `--mode serve` in two processes, the targets topic in between",
    )
    parser.add_argument(
        "--base",
        type=Path,
        help="a checkout to compare with, in the same "
        "run: its consumer and poller run beside ours on the same events",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (for charts)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, payload = args.child
        work = poller_child if role == "poller" else consumer_child
        kit.report(asyncio.run(work(json.loads(payload))))
        return 0
    if args.small:
        args.seconds, args.base_pods, args.rate = 5.0, 100, 500
    print(f"machine: {kit.machine()}\n", flush=True)
    codes = [("this checkout", Path(__file__), None)]
    if args.base:  # first, so neither is favoured by starting last
        codes.insert(
            0, ("base", args.base / "bench" / "kafka_latency.py", f"{PREFIX}.targets-base")
        )
    run = Run(args.rate, args.seconds)
    runs = [dataclasses.replace(run) for _ in codes]
    with kit.devstack() as stack:
        topic = object_topic(PREFIX, CLUSTER, Resource.PODS)
        asyncio.run(kit.create_topics(stack.kafka_bootstrap, [topic], partitions=PARTITIONS))
        asyncio.run(base(stack.kafka_bootstrap, args.base_pods))
        common = {"bootstrap": stack.kafka_bootstrap, "kubeconfig": stack.kubeconfig}
        modes = ["fold", "serve"] if args.split else ["all"]
        children = [[kit.spawn(str(script), "consumer", {**common, "mode": m, "targets": t})
                     for m in modes] for _, script, t in codes]  # fmt: skip
        pollers: list[subprocess.Popen[str]] = []
        try:
            for procs in children:
                address = [json.loads(readline(p))["address"] for p in procs][-1]  # it serves
                asyncio.run(latency.wait_base((address[0], address[1]), args.base_pods))
                # this checkout's poller for every consumer: the same measuring stick
                pollers.append(kit.spawn(__file__, "poller", {"address": address}))
            for poller in pollers:
                readline(poller)  # polling: its start-up is not counted as latency
            kit.say(f"{args.rate} events/s for {args.seconds:.0f}s")
            asyncio.run(drive(stack.kafka_bootstrap, run))
            for other in runs:
                other.sent, other.sent_epoch, other.stamps = run.sent, run.sent_epoch, run.stamps
                other.acked, other.send_errors = run.acked, run.send_errors
            observe(pollers, runs, settle_s=SETTLE_S)
        finally:
            for proc in [p for procs in children for p in procs] + pollers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            used = [json.loads(procs[0].communicate(timeout=60)[0].strip().splitlines()[-1])
                    for procs in children]  # each fold's stages and CPU  # fmt: skip
            for proc in [p for procs in children for p in procs[1:]]:
                proc.communicate(timeout=60)
    print(f"input: {args.base_pods} pods standing; events written straight to {topic} "
          f"({PARTITIONS} partitions); {args.seconds:.0f} s at the rate; "
          f"{'--mode fold + --mode serve' if args.split else 'one process'}\n")  # fmt: skip
    for (name, script, _), one, use in zip(codes, runs, used, strict=True):
        report(f"{name} ({script.parent.parent})", one, use)
    if args.json:
        args.json.write_text(json.dumps(figures(runs[-1]), indent=1))
    return 0


def readline(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


def report(name: str, run: Run, used: dict[str, Any]) -> None:
    headers = ["target events/s", "achieved/s", "change", "n", "p50 ms", "p99 ms", "max ms",
               "never seen", "send errors"]  # fmt: skip
    print(f"### {name}\n\n{kit.table(headers, rows_for(run))}")
    gap = run.polling_s * 1000 / max(run.polls, 1)
    trips = [(read - asked) * 1000 for asked, _, read in run.timed]
    trip = kit.percentile(trips, 0.5), kit.percentile(trips, 0.99)
    print(
        f"\n{run.polls} HTTP SD polls ({run.poll_changed} changed), {gap:.1f} ms per poll on "
        f"average, parsing a changed answer p50 {run.parse_ms[0]:.1f} ms, p99 "
        f"{run.parse_ms[1]:.1f} ms, changed answer asked -> read p50 {trip[0]:.1f} ms, p99 "
        f"{trip[1]:.1f} ms, poller CPU {run.poller_cpu_s:.1f}s; consumer: peak RSS "
        f"{used['max_rss_mb']:.0f} MiB, CPU {used['cpu_s']:.1f}s\n"
    )
    print(kit.table(["stage (ms)", "n", "p50", "p90", "p99", "max"], stage_rows(run, used)))
    print()


if __name__ == "__main__":
    sys.exit(main())
