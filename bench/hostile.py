"""bench/hostile: what one hostile object and 50 hostile HTTP requests cost everyone else.

    .venv/bin/python bench/hostile.py [--pods 20000] [--slices 200] [--per-slice 100]
                                      [--rounds 3] [--hostile 50] [--seconds 20]

Starts its own devstack and writes the same workload twice, straight to Kafka as the
producer would (pods with status, a Service and an EndpointSlice per service):

1. **Fold, clean vs hostile.** The hostile copy adds an Endpoints object with 1000
   addresses x 60 ports (a ~10 MB target group) and one with 8 pods carrying ~240 KB of
   annotations each (a ~1.9 MB group). A fresh `sdstream consume` (jobs pods, slices,
   endpoints) runs on each copy, in alternating rounds, from start until HTTP SD serves
   every target of the `pods` and `slices` jobs: wall time, CPU and peak RSS. Each measured
   run is a restart with its targets topic current (a first run per copy is not
   measured), so both pay the same for topic creation. Goal: the hostile run within 10 %
   of the clean one (before the robustness work, the fold
   crashed on the big group instead).
2. **HTTP SD under hostile requests.** Against one consumer serving the clean copy, a
   normal scraper fetches `/http_sd/slices` and a prober `/healthz`, one request at a
   time, each from its own process, first quietly, then while `--hostile` bounded
   hostile clients run from a third process: huge and ever-different
   `?shards=`, ever-different `?cluster=` filters, slow readers that ask for the biggest
   document and never read it, and oversized request heads. Each client keeps one
   request in flight and sends at most two a second; a last phase lets the same clients
   flood (each next request as soon as the last is answered). Goal: the normal scraper's
   p99 within 2x of the quiet figure with the bounded clients.

Nothing connects anywhere but loopback; the IPs in the objects are data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import orjson

from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import Resource, object_topic
from sdstream import consume

CLUSTER = "bench"
PARTITIONS = 6
JOBS = {"pods": "pod", "slices": "endpointslice", "endpoints": "endpoints"}
SERVED = ("pods", "slices")  # the jobs whose every target must be served
RESOURCES = (Resource.PODS, Resource.SERVICES, Resource.ENDPOINTSLICES, Resource.ENDPOINTS)


# workload ------------------------------------------------------------------------------


def big_endpoints(namespace: str) -> list[tuple[Resource, kit.Body]]:
    """A Service and an Endpoints object with 1000 addresses x 60 ports."""
    addresses = [{"ip": f"10.200.{i >> 8}.{i & 255}"} for i in range(1000)]
    ports = [{"name": f"p{p}", "port": 9000 + p, "protocol": "TCP"} for p in range(60)]
    meta = {"name": "big", "namespace": namespace, "resourceVersion": "7"}
    return [
        (Resource.SERVICES, {"metadata": meta, "spec": {"ports": ports[:1]}}),
        (Resource.ENDPOINTS, {"metadata": meta,
                              "subsets": [{"addresses": addresses, "ports": ports}]}),
    ]  # fmt: skip


def fat_pods(namespace: str) -> list[tuple[Resource, kit.Body]]:
    """8 pods with ~240 KB of annotations each, behind one Endpoints object."""
    pods = []
    for i in range(8):
        body = kit.with_status(900_000 + i, namespaces=1)
        body["metadata"].update(name=f"fat-{i}", namespace=namespace,
                                annotations={"note": "x" * 240_000})  # fmt: skip
        pods.append(body)
    addresses = [{"ip": p["status"]["podIP"],
                  "targetRef": {"kind": "Pod", "namespace": namespace,
                                "name": p["metadata"]["name"]}} for p in pods]  # fmt: skip
    meta = {"name": "fat", "namespace": namespace, "resourceVersion": "8"}
    return [
        *((Resource.PODS, p) for p in pods),
        (Resource.SERVICES, {"metadata": meta, "spec": {"ports": [{"name": "http",
                                                                   "port": 80}]}}),
        (Resource.ENDPOINTS, {"metadata": meta, "subsets": [
            {"addresses": addresses, "ports": [{"name": "http", "port": 8080}]}]}),
    ]  # fmt: skip


async def write_copy(bootstrap: str, prefix: str, args: argparse.Namespace, *,
                     hostile: bool) -> int:  # fmt: skip
    ns = args.namespaces
    await kit.create_topics(bootstrap, [object_topic(prefix, CLUSTER, r) for r in RESOURCES],
                            partitions=PARTITIONS)  # fmt: skip
    parts: dict[Resource, list[kit.Body]] = {
        Resource.PODS: [kit.with_status(i, namespaces=ns) for i in range(args.pods)],
        Resource.SERVICES: [kit.service(j, namespaces=ns) for j in range(args.slices)],
        Resource.ENDPOINTSLICES: [
            kit.endpointslice(j, per_slice=args.per_slice, pods=args.pods, namespaces=ns)
            for j in range(args.slices)],
        Resource.ENDPOINTS: [],
    }  # fmt: skip
    if hostile:
        for resource, body in [*big_endpoints("bench-0"), *fat_pods("bench-1")]:
            parts[resource].append(body)
    records = 0
    for resource, objs in parts.items():
        written = await kit.write_events(bootstrap, prefix, CLUSTER, resource, objs,
                                         partitions=PARTITIONS)  # fmt: skip
        records += written.records
    return records


# the consumer ----------------------------------------------------------------------------


async def consume_child(payload: dict[str, Any]) -> dict[str, Any]:
    """`sdstream consume` until SIGTERM; prints its address and start time first."""
    t0 = time.time()
    config = ConsumerSettings(
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=payload["prefix"]),
        scrape_configs=tuple(ScrapeJob.model_validate(
            {"job_name": job, "kubernetes_sd_configs": [{"role": role}]})
            for job, role in JOBS.items()),
        http=HttpSettings(port=0), group_id=f"bench-{uuid.uuid4().hex[:8]}",
        targets_partitions=PARTITIONS,
    )  # fmt: skip

    def started(address: tuple[str, int]) -> None:
        print(json.dumps({"address": list(address), "t0": t0}), flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(consume.serve(config, on_started=started))
    done, _ = await asyncio.wait([task, asyncio.create_task(stop.wait())],
                                 return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    crashed = task in done and task.exception() is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return {"crashed": crashed}


def targets_of(body: bytes) -> int:
    return sum(len(group["targets"]) for group in orjson.loads(body))


async def wait_served(
    address: tuple[str, int], t0: float, expected: dict[str, int], proc: Any
) -> float | None:
    """Seconds from start until HTTP SD serves at least `expected` targets for each job;
    None if the consumer exited first (it crashed)."""
    while proc.poll() is None:
        served = {}
        for job in expected:
            with contextlib.suppress(OSError):
                status, _, body = await kit.get(address, f"/http_sd/{job}")
                served[job] = targets_of(body) if status == 200 else -1
        if all(served.get(job, -1) >= n for job, n in expected.items()):
            return time.time() - t0  # the hostile copy has 8 more pods (24 targets)
        await asyncio.sleep(0.05)
    return None


@contextlib.contextmanager
def consumer(me: str, payload: dict[str, Any]) -> Any:
    proc = kit.spawn(me, "consume", payload)
    try:
        assert proc.stdout is not None
        yield proc, json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        proc.result = json.loads(out.strip().splitlines()[-1])  # type: ignore[attr-defined]


def fold_run(me: str, payload: dict[str, Any], expected: dict[str, int]) -> dict[str, Any]:
    with consumer(me, payload) as (proc, first):
        served_s = asyncio.run(asyncio.wait_for(
            wait_served(tuple(first["address"]), first["t0"], expected, proc), 600))  # fmt: skip
        metrics = b""
        if served_s is not None:
            metrics = asyncio.run(kit.get(tuple(first["address"]), "/metrics"))[2]
    skipped = [line.decode() for line in metrics.splitlines()
               if b"skipped_total" in line and not line.startswith(b"#")
               and not line.rstrip().endswith(b" 0.0")]  # fmt: skip
    return {"served_s": served_s, **proc.result, "skipped": skipped}


# HTTP under hostile requests ----------------------------------------------------------------


async def timed_get(address: tuple[str, int], path: str) -> float:
    started = time.perf_counter()
    status, _, _ = await kit.get(address, path)
    assert status == 200, (path, status)
    return time.perf_counter() - started


async def scraper(address: tuple[str, int], path: str, until: float) -> list[float]:
    took = []
    while time.monotonic() < until and len(took) < 10_000:
        took.append(await timed_get(address, path))
    return took


async def raw(address: tuple[str, int], request: bytes, *, read: bool) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request)
        await writer.drain()
        if read:
            await reader.read()
        else:
            await asyncio.sleep(3600)  # a slow reader: ask, never read (cancelled at the end)
    except OSError:
        pass
    finally:
        writer.close()


async def hostile_client(
    address: tuple[str, int], kind: int, i: int, until: float, *, pause_s: float,
    sent: list[int],
) -> None:  # fmt: skip
    """One hostile client: one request in flight at a time, a new one at most every
    `pause_s` (0: as fast as the server answers), until `until` or 200 requests."""
    while time.monotonic() < until and sent[i] < 200:
        n = sent[i] * 50 + i
        path = {
            0: "/http_sd/pods?shards=1000000&shard=0",
            1: f"/http_sd/pods?shards={2 + n % 1000}&shard=0",
            2: f"/http_sd/pods?cluster=nope-{n}",
            3: "/http_sd/pods",
            4: "/http_sd/pods",
        }[kind]
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\n"
        if kind == 4:
            head += "X-Big: " + "a" * 100_000 + "\r\n"
        began = time.monotonic()
        sent[i] += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await raw(address, (head + "\r\n").encode(), read=kind != 3)
        if kind == 3:
            return  # a slow reader holds its one connection until the end
        await asyncio.sleep(max(0.0, pause_s - (time.monotonic() - began)))


async def attack(address: tuple[str, int], *, hostile: int, seconds: float,
                 pause_s: float) -> int:  # fmt: skip
    until = time.monotonic() + seconds
    sent = [0] * hostile
    attackers = [asyncio.create_task(hostile_client(address, i % 5, i, until,
                                                    pause_s=pause_s, sent=sent))
                 for i in range(hostile)]  # fmt: skip
    await asyncio.sleep(seconds)
    for task in attackers:
        task.cancel()
    await asyncio.gather(*attackers, return_exceptions=True)
    return sum(sent)


def http_phase(
    me: str, address: tuple[str, int], *, hostile: int, seconds: float, pause_s: float = 0.5
) -> Any:
    """The normal scraper, the prober and the attackers each in their own process, as
    they would be on their own machines (here they share the two cores)."""
    common = {"address": list(address), "seconds": seconds}
    procs = {
        "healthz": kit.spawn(me, "scrape", {**common, "path": "/healthz"}),
        "doc": kit.spawn(me, "scrape", {**common, "path": "/http_sd/slices"}),
    }
    if hostile:
        procs["attack"] = kit.spawn(me, "attack", {**common, "hostile": hostile,
                                                   "pause_s": pause_s})  # fmt: skip
    done = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=seconds + 120)
        done[name] = json.loads(out.strip().splitlines()[-1])
    return {"healthz": done["healthz"]["took"], "doc": done["doc"]["took"],
            "hostile_requests": done.get("attack", {}).get("sent", 0)}  # fmt: skip


def summarize(values: list[float]) -> str:
    return (f"{len(values)} requests, p50 {kit.percentile(values, 0.5) * 1000:.1f} ms, "
            f"p99 {kit.percentile(values, 0.99) * 1000:.1f} ms")  # fmt: skip


# main ---------------------------------------------------------------------------------------


def run_child(role: str, payload: str) -> int:
    data = json.loads(payload)
    if role == "consume":
        kit.report(asyncio.run(consume_child(data)))
        return 0
    address = tuple(data.get("address", ()))
    if role == "scrape":
        until = time.monotonic() + data["seconds"]
        kit.report({"took": asyncio.run(scraper(address, data["path"], until))})
    else:
        sent = asyncio.run(attack(address, hostile=data["hostile"], seconds=data["seconds"],
                                  pause_s=data["pause_s"]))  # fmt: skip
        kit.report({"sent": sent})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20_000)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hostile", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    rows = []
    with kit.devstack() as stack:
        boot = stack.kafka_bootstrap
        for prefix, hostile in (("clean", False), ("hostile", True)):
            records = asyncio.run(write_copy(boot, prefix, args, hostile=hostile))
            kit.say(f"wrote {records} records to {prefix}")
        # the slices job's target count: from a first clean run's own answer
        with consumer(me, {"bootstrap": boot, "prefix": "clean"}) as (_, first):
            address = tuple(first["address"])
            expected = asyncio.run(asyncio.wait_for(count_served(address), 600))
            quiet = http_phase(me, address, hostile=0, seconds=args.seconds)
            loud = http_phase(me, address, hostile=args.hostile, seconds=args.seconds)
            flood = http_phase(me, address, hostile=args.hostile, seconds=args.seconds,
                               pause_s=0.0)  # fmt: skip
            after = http_phase(me, address, hostile=0, seconds=args.seconds / 2)
        kit.say(f"serving {expected}")
        # Every measured run is a restart with its targets topic current: the clean one was
        # made by the consumer above, the hostile one by this first, unmeasured run.
        if args.rounds:
            first = fold_run(me, {"bootstrap": boot, "prefix": "hostile"}, expected)
            kit.say(f"hostile warm-up: {first['served_s'] or 0:.2f}s")
        results: dict[str, list[dict[str, Any]]] = {"clean": [], "hostile": []}
        for r in range(args.rounds):
            for prefix in ("clean", "hostile") if r % 2 == 0 else ("hostile", "clean"):
                run = fold_run(me, {"bootstrap": boot, "prefix": prefix}, expected)
                results[prefix].append(run)
                kit.say(f"round {r} {prefix}: {run['served_s'] or 0:.2f}s, "
                        f"{run['max_rss_mb']:.0f} MiB, {run['cpu_s']:.1f} CPU-s")  # fmt: skip
    for prefix, runs in results.items():
        for i, run in enumerate(runs):
            served = "never" if run["served_s"] is None else f"{run['served_s']:.2f}"
            rows.append((f"{prefix}, run {i + 1}", served,
                         f"{run['cpu_s']:.1f}", f"{run['max_rss_mb']:.0f}",
                         "yes" if run["crashed"] else "no"))  # fmt: skip
    print(f"workload: {args.pods} pods, {args.slices} services + EndpointSlices x "
          f"{args.per_slice}; served {json.dumps(expected)}; hostile copy adds a 1000x60 "
          "Endpoints and 8 pods x 240 KB annotations behind one Endpoints\n")  # fmt: skip
    if args.rounds:
        print_fold(rows, results)
    http_rows = [
        ("quiet", summarize(quiet["healthz"]), summarize(quiet["doc"]), 0),
        (f"{args.hostile} hostile clients, each one request in flight, <= 2/s",
         summarize(loud["healthz"]), summarize(loud["doc"]), loud["hostile_requests"]),
        (f"{args.hostile} hostile clients flooding (next request as soon as answered)",
         summarize(flood["healthz"]), summarize(flood["doc"]), flood["hostile_requests"]),
        ("quiet again", summarize(after["healthz"]), summarize(after["doc"]), 0),
    ]  # fmt: skip
    print(kit.table(["phase", "/healthz", "/http_sd/slices", "hostile requests sent"],
                    http_rows))  # fmt: skip
    for key, name in (("healthz", "/healthz"), ("doc", "/http_sd/slices")):
        ratio = kit.percentile(loud[key], 0.99) / kit.percentile(quiet[key], 0.99)
        flooded = kit.percentile(flood[key], 0.99) / kit.percentile(quiet[key], 0.99)
        print(f"{name}: p99 with hostile clients / quiet p99 = {ratio:.2f} (goal <= 2); "
              f"flooding: {flooded:.2f}")  # fmt: skip
    return 0


def print_fold(rows: list[tuple[object, ...]], results: dict[str, list[dict[str, Any]]]) -> None:
    print(kit.table(["fold: start to serving pods + slices", "seconds", "CPU s",
                     "peak RSS MiB", "crashed"], rows))  # fmt: skip
    best = {p: min(run["served_s"] or float("inf") for run in runs)
            for p, runs in results.items()}  # fmt: skip
    median = {p: statistics.median(run["served_s"] or float("inf") for run in runs)
              for p, runs in results.items()}  # fmt: skip
    rss = {p: max(run["max_rss_mb"] for run in runs) for p, runs in results.items()}
    print(f"\nhostile / clean start to serving, median: "
          f"{median['hostile'] / median['clean']:.2f}, best: {best['hostile'] / best['clean']:.2f}"
          f" (goal <= 1.10); peak RSS: {rss['hostile'] / rss['clean']:.2f}")  # fmt: skip
    for line in results["hostile"][-1]["skipped"]:
        print(f"  hostile run /metrics: {line}")
    print()


async def count_served(address: tuple[str, int]) -> dict[str, int]:
    """Targets served per job once the consumer is ready and the counts stop moving."""
    last: dict[str, int] = {}
    while True:
        if (await kit.get(address, "/readyz"))[0] == 200:
            now = {}
            for job in SERVED:
                status, _, body = await kit.get(address, f"/http_sd/{job}")
                now[job] = targets_of(body) if status == 200 else -1
            if now == last and all(v > 0 for v in now.values()):
                return now
            last = now
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
