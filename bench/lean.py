"""bench/lean: issue 19 goals 1-3 on bench/consume.py's workload, without promtool.

    .venv/bin/python bench/lean.py [--pods 50000] [--slices 500] [--per-slice 100]
                                   [--base CHECKOUT] [--check-bodies] [--small]

Starts its own devstack, writes the objects straight to Kafka (as bench/consume.py does),
then, each in a fresh process (its peak RSS its own), polled from this one:

1. `sdstream consume` in the default one-process mode on a new targets topic: start until
   HTTP SD answers and the sinks hold every target the fold built (goal 1: <= 3 s;
   goal 2: <= 1.5 KiB peak RSS per served target);
1b. the same one process restarted, as a user's restart is: the same group id (its
   committed offsets are progress markers only: the fold reads from 0, rebuilds every
   group, and its full sync writes only what differs, here nothing) and the targets topic
   run 1 left, now current: start until it serves every target, and also until /readyz
   says 200 and until the fold has published its full sync (`sdstream_fold_targets`);
2. `--mode serve` against that now current topic: start until it holds them (goal 1: <= 2 s);
3. the one-process run once more, measuring what its structures hold once serving (a
   deep `sys.getsizeof` walk of a sample, each object counted once, in the order fold
   state, fold groups, dependency index, served view, answer cache);
4. each targets topic on the broker's disk: bytes of its log segments, its records and
   distinct keys (each key written once: compaction has nothing to drop, so these are the
   bytes after compaction), zstd (goal 3: half of today's).

`--profile DIR` instead runs only 1 and 2 (each code), each child under cProfile with a
CPU-time clock from start until it serves every target, and prints where that CPU went
(`STAGES`: Kafka client, zstd, parsing, validation, rendering, deflate, digests, the
fold's catch-up and builds, encoding); the profiles stay in DIR for pstats.

`--starts` runs only 1, 1b and 2 (no breakdown, no topic bytes).

`--base` runs 1, 1b and 2 with another checkout's code first (its own topic), in the same
devstack. "Serving" is read from the sinks' gauges once `/http_sd` answers, not by
fetching the answers: on a loaded machine, reading two ~290 MiB bodies per poll took
longer than the server waits for a slow reader (`--check-bodies` fetches them once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import pstats
import signal
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import consume as bench_consume  # bench/consume.py: the same workload
import kit  # bench/kit.py; it puts the repository root on sys.path
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.sd_config import ScrapeJob
from sdstream import consume

JOBS = bench_consume.JOBS
PREFIX = bench_consume.PREFIX
PARTITIONS = bench_consume.PARTITIONS


def new_group() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


def settings(payload: dict[str, Any]) -> ConsumerSettings:
    return ConsumerSettings(
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=PREFIX),
        scrape_configs=tuple(ScrapeJob.model_validate(
            {"job_name": job, "kubernetes_sd_configs": [{"role": role}]})
            for job, role in JOBS.items()),
        http=HttpSettings(port=0), group_id=payload.get("group") or new_group(),
        targets_partitions=PARTITIONS, mode=payload["mode"],
        targets_topic=payload.get("topic"),
    )  # fmt: skip


async def served(
    address: tuple[str, int], want: int | None, deadline_s: float, *, check: bool = False
) -> tuple[float, int]:
    """Poll until HTTP SD answers (its index: 200 once the sinks caught up) and the sinks
    hold `want` targets (None: what the fold built, once ready); when (time()). Then one
    fetch of each job's whole answer checks the count (not timed: on a loaded machine
    reading two ~200 MiB bodies in Python takes longer than the server waits for a
    reader, so fetching them in every poll never ends)."""
    async with asyncio.timeout(deadline_s):
        while True:
            if want is None and (await kit.get(address, "/readyz"))[0] == 200:
                metrics = (await kit.get(address, "/metrics"))[2]
                built = [bench_consume.gauge(metrics, "sdstream_fold_targets", j) for j in JOBS]
                want = int(sum(built))
            if want is not None and (await kit.get(address, "/http_sd"))[0] == 200:
                metrics = (await kit.get(address, "/metrics"))[2]
                held = sum(bench_consume.gauge(metrics, "sdstream_sink_targets", j) for j in JOBS)
                if held == want:
                    at = time.time()
                    break
            await asyncio.sleep(0.05)
        for job in JOBS if check else ():
            status, _, body = await kit.get(address, f"/http_sd/{job}")
            found = bench_consume.count_targets(body) if status == 200 else -1
            held = int(bench_consume.gauge((await kit.get(address, "/metrics"))[2],
                                           "sdstream_sink_targets", job))  # fmt: skip
            if found != held:
                kit.say(f"/http_sd/{job}: {found} targets read, {held} held (body cut?)")
    return at, want


async def restarted(address: tuple[str, int], want: int, deadline_s: float) -> dict[str, float]:
    """When (time()) a restarted process serves all `want` targets (HTTP SD answers, the
    sinks hold them), answers /readyz with 200, and its fold has published its full sync
    (the fold's gauges count `want`): polled until all three."""
    at: dict[str, float] = {}
    async with asyncio.timeout(deadline_s):
        while len(at) < 3:
            metrics = (await kit.get(address, "/metrics"))[2]
            if "serving" not in at and (await kit.get(address, "/http_sd"))[0] == 200:
                held = sum(bench_consume.gauge(metrics, "sdstream_sink_targets", j) for j in JOBS)
                if held == want:
                    at["serving"] = time.time()
            if "ready" not in at and (await kit.get(address, "/readyz"))[0] == 200:
                at["ready"] = time.time()
            built = sum(bench_consume.gauge(metrics, "sdstream_fold_targets", j) for j in JOBS)
            if "fold" not in at and built == want:
                at["fold"] = time.time()
            await asyncio.sleep(0.05)
    return at


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024


def deep_size(roots: list[object], seen: set[int]) -> int:
    """Bytes of everything reachable from `roots` not in `seen` (then added to it);
    classes, modules and functions are not followed."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


BUILT: dict[str, Any] = {}


def capture() -> None:
    """Keep what `consume.serve` builds (loop, sinks), for `breakdown`; the walk starts
    from those (from the loop as a whole it would reach the event loop and everything)."""
    build_loop, build_sinks = consume.build_loop, consume.sinks_runner.build

    def loop(*args: Any, **kwargs: Any) -> Any:
        BUILT["loop"] = build_loop(*args, **kwargs)
        return BUILT["loop"]

    def sinks(*args: Any, **kwargs: Any) -> Any:
        BUILT["sinks"] = build_sinks(*args, **kwargs)
        return BUILT["sinks"]

    consume.build_loop = loop  # type: ignore[assignment]
    consume.sinks_runner.build = sinks  # type: ignore[assignment]


SAMPLE = 50


def sampled(table: dict[Any, Any], seen: set[int], *, every: int = SAMPLE) -> float:
    """MiB held by `table`'s values, from a deep walk of one value in `every`, scaled
    (a walk of all of them takes minutes on a loaded machine)."""
    values = list(table.values())[::every]
    walked = deep_size(values, seen) * len(table) / max(1, len(values))
    return (walked + sys.getsizeof(table)) / 2**20


def as_held(groups: Any) -> dict[Any, Any]:
    """The groups as the fold holds them (packed since session 7), not decoded."""
    return dict(groups.packed()) if hasattr(groups, "packed") else groups


def breakdown() -> dict[str, float]:
    """MiB held by the consumer's structures, each object counted once, in this order;
    groups, objects and served fragments sampled (`sampled`)."""
    seen: set[int] = set()
    out: dict[str, float] = {}
    if "loop" in BUILT:
        fold = BUILT["loop"].fold
        out["fold state (objects)"] = sum(
            sampled(table, seen) for c in fold.clusters.values() for table in c.objects.values()
        )
        # Since session 7 the fold holds groups packed (`packed.Groups`): walk those.
        groups, discovered = as_held(fold.groups), as_held(fold.discovered)
        out["fold groups"] = sampled(groups, seen)
        own = {k: g for k, g in discovered.items() if groups.get(k) is not g}
        out["fold discovered (beyond groups)"] = sampled(own, seen)
        out["fold dependency index"] = deep_size([fold.deps, fold.pending], seen) / 2**20
    if "sinks" in BUILT:
        view = BUILT["sinks"].view
        out["served view (held groups: HTTP SD fragments, deflated since session 7)"] = (
            sum(sampled(groups, seen) for groups in view._by_job.values())
            + deep_size([view._job_of], seen) / 2**20
        )
        out["answer cache"] = deep_size([BUILT["sinks"].http], seen) / 2**20
    return out


async def consume_child(payload: dict[str, Any]) -> dict[str, Any]:
    """`sdstream consume` until SIGTERM, polled from outside (the parent reads the big
    HTTP SD bodies, so they count in neither this process's RSS nor its CPU). Prints its
    address and start time first; in breakdown mode, once the fold has published and the
    sinks hold every target, a line with the breakdown."""
    t0 = time.time()
    if payload.get("restart"):  # what the fold says of its start (stderr: the bench's log)
        logging.basicConfig(level=logging.WARNING, format="child: %(name)s: %(message)s")
        logging.getLogger("consumers.compactor.kafka_loop").setLevel(logging.INFO)
    if payload.get("breakdown"):
        capture()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def started(address: tuple[str, int]) -> None:
        print(json.dumps({"address": list(address), "t0": t0}), flush=True)

    task = asyncio.create_task(consume.serve(settings(payload), on_started=started))
    if payload.get("breakdown"):
        await held_all(payload["targets"])
        print(json.dumps({"rss_serving_mb": rss_mb(), "breakdown": breakdown()}), flush=True)
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return {}


async def held_all(want: int) -> None:
    """Until the fold has published (ready) and the sinks' view holds `want` targets."""
    while True:
        loop, sinks = BUILT.get("loop"), BUILT.get("sinks")
        ready = loop is not None and sinks is not None and loop.ready()
        if ready and sum(sinks.view.counts(job)[1] for job in JOBS) == want:
            return
        await asyncio.sleep(0.05)


# Runs a script's child under cProfile with a CPU clock (wall time on a loaded machine is
# mostly waiting), whatever code it is (a --base checkout's lean.py knows no profiling).
PROFILED = """
import cProfile, os, runpy, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
profile = cProfile.Profile(time.process_time)
profile.enable()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
finally:
    profile.disable()
    profile.dump_stats(out)
"""


def spawn(me: str, payload: dict[str, Any]) -> subprocess.Popen[str]:
    if not payload.get("profile"):
        return kit.spawn(me, "consume", payload)
    argv = [sys.executable, "-c", PROFILED, payload["profile"], me, "--child", "consume"]
    return subprocess.Popen([*argv, json.dumps(payload)], stdout=subprocess.PIPE, text=True)


# (stage, how, keys): "own" sums the time spent in functions themselves whose file or
# name holds a key; "cum" sums the cumulative time of the functions named `file:function`.
STAGES: list[tuple[str, str, tuple[str, ...]]] = [
    ("Kafka client (aiokafka: fetch, record batches, produce)", "own", ("aiokafka/",)),
    ("zstd (cramjam)", "own", ("cramjam",)),
    ("sinks: take records read (`apply_records`, all below)", "cum",
     ("sinks/views.py:apply_records",)),
    ("  orjson parse (every caller)", "own", ("orjson.loads",)),
    ("  pydantic validation (every caller)", "own", ("validate_python",)),
    ("  render HTTP SD fragments", "cum", ("sinks/sd_json.py:http_sd_fragment",)),
    ("  deflate + CRC", "cum", ("sinks/deflated.py:piece",)),
    ("  digest of a record (every caller)", "cum", ("schemas/targets.py:digest",)),
    ("sinks: the fold's own writes (`TargetView.put`)", "cum", ("sinks/views.py:put",)),
    ("fold: catch-up (folding object records)", "cum", ("compactor/kafka_loop.py:_fold",)),
    ("fold: building groups", "cum", ("compactor/folds.py:rebuilding",)),
    ("fold: encoding records", "cum", ("schemas/targets.py:encode",)),
]  # fmt: skip


def stage_seconds(path: str) -> tuple[float, list[tuple[str, float]]]:
    """Total profiled CPU and each `STAGES` figure, from a profile's stats."""
    stats: dict[tuple[str, int, str], Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    out = []
    for name, how, keys in STAGES:
        if how == "own":
            got = sum(
                v[2] for (f, _, fn), v in stats.items() if any(k in f or k in fn for k in keys)
            )
        else:
            got = sum(
                v[3]
                for (f, _, fn), v in stats.items()
                if any(f.endswith(k.split(":")[0]) and fn == k.split(":")[1] for k in keys)
            )
        out.append((name, got))
    return total, out


def profiled(codes: list[tuple[str, str, str]], common: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    want, rows = None, []
    for mode in ("all", "serve"):
        for name, script, topic in codes:
            path = out / f"{name.replace(' ', '-')}-{mode}.prof"
            got = measured(script, {**common, "mode": mode, "topic": topic, "targets": want,
                                    "profile": str(path)})  # fmt: skip
            want = got["targets"]
            rows.append((f"{name}, --mode {mode}", got, stage_seconds(str(path))))
            print(f"{name}, --mode {mode}: served in {got['served_s']:.2f} s, "
                  f"CPU {got['cpu_s']:.1f} s (profiled)", flush=True)  # fmt: skip
    print("\nCPU seconds by stage (cProfile, CPU clock, start to serving every target):")
    names = [n for n, _, _ in STAGES]
    print(kit.table(["stage", *(r[0] for r in rows)],
                    [("profiled CPU, all", *(f"{r[2][0]:.2f}" for r in rows)),
                     *((n, *(f"{r[2][1][i][1]:.2f}" for r in rows)) for i, n in enumerate(names))]),
          flush=True)  # fmt: skip


def measured(me: str, payload: dict[str, Any]) -> dict[str, Any]:
    proc = spawn(me, payload)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        address = tuple(first["address"])
        times: dict[str, float] = {}
        if payload.get("restart"):
            want = payload["targets"]
            times = asyncio.run(restarted(address, want, payload["timeout_s"]))
            at = times["serving"]
        else:
            at, want = asyncio.run(served(address, payload.get("targets"), payload["timeout_s"],
                                          check=payload["check"]))  # fmt: skip
        steady = proc_rss_mb(proc.pid)  # once serving, before any answer is asked for
        extra = json.loads(proc.stdout.readline()) if payload.get("breakdown") else {}
        if payload.get("requests"):
            extra["requests"] = asyncio.run(request_costs(address, proc.pid))
            extra["rss_after_requests_mb"] = proc_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    usage = json.loads(out.strip().splitlines()[-1])
    since = {f"{k}_s": t - first["t0"] for k, t in times.items()}
    return {"served_s": at - first["t0"], "targets": want, "rss_serving_mb": steady,
            **since, **extra, **usage}  # fmt: skip


def proc_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BIG_JOB = "pods"  # 250k of the 300k targets
REQUESTS = 3  # of each kind, after one that renders the answer (a cache miss)


async def request_costs(address: tuple[Any, ...], pid: int) -> dict[str, Any]:
    """The server's CPU seconds per GET of the big job's whole answer, with
    `Accept-Encoding: gzip` and without, and the bytes sent: the body is read in chunks
    and dropped (never held here), so the client costs the server nothing but reading."""
    url = f"http://{address[0]}:{address[1]}/http_sd/{BIG_JOB}"
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(
        auto_decompress=False, timeout=aiohttp.ClientTimeout(total=900)
    ) as session:
        for name, headers in (("first (renders)", {}), ("gzip", {"Accept-Encoding": "gzip"}),
                              ("identity", {"Accept-Encoding": "identity"})):  # fmt: skip
            costs, walls = [], []
            for _ in range(1 if name.startswith("first") else REQUESTS):
                cpu, t0 = proc_cpu_s(pid), time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    sent = 0
                    async for chunk in response.content.iter_chunked(1 << 20):
                        sent += len(chunk)
                    encoding = response.headers.get("Content-Encoding", "identity")
                walls.append(time.perf_counter() - t0)
                costs.append(proc_cpu_s(pid) - cpu)
            out[name] = {"cpu_s": sorted(costs)[len(costs) // 2], "wall_s": min(walls),
                         "bytes": sent, "encoding": encoding}  # fmt: skip
    return out


async def topic_records(bootstrap: str, topic: str) -> tuple[int, int, int]:
    """(records, distinct keys, value bytes) of a topic, read whole."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()  # subscribed at start: the topic's metadata is loaded
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.unsubscribe()
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        keys: set[bytes] = set()
        count = size = 0
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    count += 1
                    size += len(r.value or b"")
                    keys.add(r.key or b"")
        return count, len(keys), size
    finally:
        await consumer.stop()


def disk_bytes(run_dir: str, topic: str) -> int:
    data = Path(run_dir) / "kafka" / "data"
    return sum(f.stat().st_size for d in data.glob(f"{topic}-*") for f in d.glob("*.log"))


def run_child(role: str, payload: str) -> int:
    del role  # one kind of child
    kit.report(asyncio.run(consume_child(json.loads(payload))))
    return 0


def row(name: str, got: dict[str, Any]) -> None:
    """One measured run, printed as soon as it is done (a later one may not finish)."""
    per_target = got["max_rss_mb"] * 2**20 / got["targets"]
    steady = got["rss_serving_mb"] * 2**20 / got["targets"]
    print(f"| {name} | {got['served_s']:.2f} | {got['max_rss_mb']:.0f} | {got['cpu_s']:.1f} | "
          f"{per_target:.0f} | {got['rss_serving_mb']:.0f} | {steady:.0f} |",
          flush=True)  # fmt: skip
    for kind, cost in got.get("requests", {}).items():
        print(f"|   GET /http_sd/{BIG_JOB}, {kind}: server CPU {cost['cpu_s']:.2f} s, wall "
              f"{cost['wall_s']:.2f} s, {cost['bytes'] / 2**20:.1f} MiB sent "
              f"({cost['encoding']}) | | | | | | |", flush=True)  # fmt: skip
    if "ready_s" in got:
        print(f"|   /readyz 200 after {got['ready_s']:.2f} s, the fold's full sync published "
              f"after {got['fold_s']:.2f} s | | | | | | |", flush=True)  # fmt: skip
    if "rss_after_requests_mb" in got:
        print(f"|   RSS after those requests: {got['rss_after_requests_mb']:.0f} MiB | | | | | | |",
              flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--small", action="store_true", help="2,000 pods, 20 slices")
    parser.add_argument("--base", type=Path, help="a checkout of the code to compare "
                        "with: its runs go first, each on its own targets topic")  # fmt: skip
    parser.add_argument(
        "--check-bodies",
        action="store_true",
        help="fetch each whole answer once serving, to check its count",
    )
    parser.add_argument("--profile", type=Path, help="only runs 1 and 2, profiled; "
                        "where their CPU went, profiles kept in this directory")  # fmt: skip
    parser.add_argument("--starts", action="store_true", help="only the start rows: one "
                        "process new and restarted, --mode serve")  # fmt: skip
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    if args.small:
        args.pods, args.slices = 2_000, 20
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    codes = [("this code", me, "lean.targets")]
    if args.base:
        codes.insert(0, ("base", str(args.base / "bench" / "lean.py"), "base.targets"))
    with kit.devstack() as stack:
        boot = stack.kafka_bootstrap
        wrote = asyncio.run(bench_consume.write_all(
            boot, pods=args.pods, slices=args.slices, per_slice=args.per_slice,
            ns=args.namespaces))  # fmt: skip
        print(f"input: {wrote.records} records, {wrote.bytes / 2**20:.1f} MiB\n", flush=True)
        common = {"bootstrap": boot, "timeout_s": 900, "check": args.check_bodies}
        if args.profile:
            profiled(codes, common, args.profile)
            return 0
        print(
            "| run | seconds to serving all | peak RSS MiB | CPU s | bytes/target (peak) "
            "| RSS once serving MiB | bytes/target (serving) |"
        )
        print("|---|---|---|---|---|---|---|", flush=True)
        want = None
        groups = {topic: new_group() for _, _, topic in codes}
        for name, script, topic in codes:  # each on a new targets topic: a first start
            got = measured(script, {**common, "mode": "all", "topic": topic, "targets": want,
                                    "group": groups[topic]})  # fmt: skip
            want = got["targets"]
            row(f"{name}: consume, one process, new targets topic", got)
        for name, script, topic in codes:  # what a user's restart is: same group, same topic
            got = measured(script, {**common, "mode": "all", "topic": topic, "targets": want,
                                    "group": groups[topic], "restart": True})  # fmt: skip
            row(f"{name}: consume, one process, restarted (targets topic current)", got)
        for name, script, topic in codes:
            got = measured(script, {**common, "mode": "serve", "topic": topic, "targets": want,
                                    "requests": not args.starts})  # fmt: skip
            row(f"{name}: consume --mode serve, targets topic current", got)
        if args.starts:
            return 0
        sized = measured(me, {**common, "mode": "all", "topic": "sized.targets",
                              "targets": want, "breakdown": True})  # fmt: skip
        row("this code: consume, one process, new targets topic (measuring what it holds)", sized)
        print(f"\nbreakdown once serving (RSS then {sized['rss_serving_mb']:.0f} MiB):")
        print(kit.table(["structure", "MiB", "bytes/target"],
                        [(k, f"{v:.1f}", f"{v * 2**20 / want:.0f}")
                         for k, v in sized["breakdown"].items()]), flush=True)  # fmt: skip
        for _, _, topic in codes:
            records, keys, values = asyncio.run(topic_records(boot, topic))
            on_disk = disk_bytes(stack.run_dir, topic)
            print(f"\ntargets topic {topic}: {records} records, {keys} keys, "
                  f"{values / 2**20:.1f} MiB of values ({values / want:.0f} bytes/target); "
                  f"{on_disk / 2**20:.1f} MiB on disk = {on_disk / want:.1f} bytes/target",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
