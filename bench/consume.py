"""bench/consume: fold 50k pods plus 500 EndpointSlices x 100 endpoints from Kafka into
target groups served over HTTP SD, against raw aiokafka reading the same topics and
against promtool discovering the same objects from the API server, in the same run.

    .venv/bin/python bench/consume.py [--pods 50000] [--slices 500] [--per-slice 100]
                                      [--api-pods N] [--promtool-timeout 60] [--small]
                                      [--vmagent-timeout 600] [--no-vmagent]
                                      [--peers-only] [--base CHECKOUT] [--no-promtool]

Starts its own devstack. The objects (pods with status, one Service and one slice per
service, endpoints' targetRefs naming pods) are written straight to Kafka as the
producer would write them (trimmed ObjectEvents, keyed and partitioned by namespace,
zstd), and created through the API server for promtool. Each measurement runs in a
fresh process, so its peak RSS is its own:

1. raw aiokafka, bytes only, then bytes + orjson.loads of each value (the floors);
2. `sdstream consume` (fold + targets topic + HTTP SD, jobs `pods` and `slices`), from
   start until HTTP SD serves every target the fold built; and idle (no topics), to
   separate the fixed cost from the per-object cost;
3. `promtool check service-discovery` per job against the API server, peak RSS via
   wait4(); it always runs for its whole --timeout, so its wall time is not comparable,
   and its RSS includes rendering its JSON output;
4. vmagent (VictoriaMetrics, `bench/vmagent.py`, built from the Go module proxy and
   cached the first time) with both jobs, every target dropped by relabeling so nothing
   is scraped: from start until it discovered as many targets as sdstream's fold built
   for the same objects; peak RSS and CPU. `--no-vmagent` skips it;
5. for equal work beside vmagent, sdstream again on its own copies of the same set with
   every target dropped by the same relabeling (DROP_ALL), until its fold counts them
   all dropped: once with the discovery page on (the default; the fold then keeps every
   discovered group for it), once with it on and keep_dropped_targets 100 per job, and
   once off (vmagent here keeps one dropped target).
   sdstream's seconds count from its exec, as vmagent's do. `--base CHECKOUT` runs
   another checkout's code (a worktree of main) on its own copies beside this one's,
   each kind of run base first, in the same devstack.

Goals: fold at least half the raw aiokafka rate; consumer memory no more than promtool's;
sdstream ahead of vmagent on time to serving and memory. A full run (not --small) writes
its peer figures to bench/figures.json for bench/charts.py.

    .venv/bin/python bench/consume.py --api-pods 2000 --promtool-timeout 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import orjson
import vmagent
import yaml

from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.sd_config import ScrapeJob
from schemas.topics import Resource, object_topic
from sdstream import consume

PREFIX = "bench"
CLUSTER = "bench"
PARTITIONS = 6
JOBS = {"pods": "pod", "slices": "endpointslice"}
SAME = "same"  # prefix of the promtool-sized copy, when --api-pods differs from --pods
DROPPED = "drop"  # prefix of the copies folded with every target dropped (DROP_ALL)
# The runs with every target dropped: the discovery page on (the default: the fold keeps
# every discovered group for it), on with keep_dropped_targets (the fold keeps that many
# dropped targets per job) and off (as vmagent here keeps one dropped target).
KEEP_DROPPED = 100
DROP_RUNS = {
    "dropping all": (True, 0),
    f"dropping all, keep_dropped_targets {KEEP_DROPPED}": (True, KEEP_DROPPED),
    "dropping all, discovery page off": (False, 0),
}
RESOURCES = (Resource.PODS, Resource.SERVICES, Resource.ENDPOINTSLICES)
TOPICS = [object_topic(PREFIX, CLUSTER, r) for r in RESOURCES]


async def write_all(
    bootstrap: str, *, pods: int, slices: int, per_slice: int, ns: int, prefix: str = PREFIX
) -> Any:
    topics = [object_topic(prefix, CLUSTER, r) for r in RESOURCES]
    await kit.create_topics(bootstrap, topics, partitions=PARTITIONS)
    written = [
        await kit.write_events(bootstrap, prefix, CLUSTER, Resource.PODS,
                               (kit.with_status(i, namespaces=ns) for i in range(pods)),
                               partitions=PARTITIONS),
        await kit.write_events(bootstrap, prefix, CLUSTER, Resource.SERVICES,
                               (kit.service(j, namespaces=ns) for j in range(slices)),
                               partitions=PARTITIONS),
        await kit.write_events(bootstrap, prefix, CLUSTER, Resource.ENDPOINTSLICES,
                               (kit.endpointslice(j, per_slice=per_slice, pods=pods,
                                                  namespaces=ns) for j in range(slices)),
                               partitions=PARTITIONS),
    ]  # fmt: skip
    return kit.Written(sum(w.records for w in written), sum(w.bytes for w in written),
                       sum(w.seconds for w in written))  # fmt: skip


async def drain_child(payload: dict[str, Any]) -> dict[str, Any]:
    done = await kit.drain(payload["bootstrap"], TOPICS, parse=payload["parse"])
    return {"seconds": done.seconds, "records": done.records, "bytes": done.bytes}


TARGETS_RE = re.compile(rb'"targets":\[([^\]]*)\]')


def count_targets(body: bytes) -> int:
    """Targets in an HTTP SD body, without building its (large) object graph."""
    return sum(m.count(b",") + 1 for m in TARGETS_RE.findall(body) if m.strip())


def gauge(metrics: bytes, name: str, job: str | None = None, **more: str) -> float:
    pairs = ([f'job="{job}"'] if job else []) + [f'{k}="{v}"' for k, v in more.items()]
    label = "{" + ",".join(pairs) + "}" if pairs else ""
    found = re.search(rf"^{name}{re.escape(label)} (\S+)$".encode(), metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# every target dropped, as vmagent's jobs do (bench/vmagent.py): discovery still runs
DROP_ALL = [{"action": "drop", "source_labels": ["__address__"], "regex": ".*"}]


async def wait_dropped(
    address: tuple[str, int], t0: float, ready: float, expected: dict[str, int]
) -> dict[str, Any]:
    """With DROP_ALL: until the fold counts `expected` targets per job relabeled away
    (discovered and dropped, like vmagent's dropped-target total) and serves none."""
    while True:
        metrics = (await kit.get(address, "/metrics"))[2]
        dropped = {job: int(gauge(metrics, "sdstream_fold_targets_relabeled_away", job,
                                  reason="dropped")) for job in JOBS}  # fmt: skip
        served = {job: count_targets((await kit.get(address, f"/http_sd/{job}"))[2])
                  for job in JOBS}  # fmt: skip
        if dropped == expected and not any(served.values()):
            objects = gauge(metrics, "sdstream_fold_objects")
            return {"ready_s": ready, "served_s": time.time() - t0, "targets": dropped,
                    "objects": objects}  # fmt: skip
        await asyncio.sleep(0.1)


async def wait_served(
    address: tuple[str, int], t0: float, expected: dict[str, int] | None = None
) -> dict[str, Any]:
    """Poll the consumer from outside (its RSS stays its own) until HTTP SD serves every
    target its fold built (or, given `expected`, until the fold dropped that many)."""
    while (await kit.get(address, "/readyz"))[0] != 200:  # noqa: ASYNC110 - polling
        await asyncio.sleep(0.02)
    ready = time.time() - t0
    if expected is not None:
        return await wait_dropped(address, t0, ready, expected)
    tags = {job: "" for job in JOBS}
    served = {job: -1 for job in JOBS}
    while True:
        metrics = (await kit.get(address, "/metrics"))[2]
        built = {job: int(gauge(metrics, "sdstream_fold_targets", job)) for job in JOBS}
        for job in JOBS:
            status, tags[job], body = await kit.get(address, f"/http_sd/{job}", etag=tags[job])
            if status == 200:
                served[job] = count_targets(body)
        if served == built:
            return {"ready_s": ready, "served_s": time.time() - t0, "targets": served,
                    "objects": gauge(metrics, "sdstream_fold_objects")}  # fmt: skip
        await asyncio.sleep(0.1)


STAGES = (("Assigned", "assigned"), ("Caught up:", "caught_up"), ("Built", "built"))


class Stages(logging.Handler):
    """When the fold logged its stages: last assignment, caught up, every group built."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.at: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if "built" in self.at:
            return
        message = str(record.msg)
        for prefix, stage in STAGES:
            if message.startswith(prefix):
                self.at[stage] = record.created  # the last assignment before catching up


async def consume_child(payload: dict[str, Any]) -> dict[str, Any]:
    """`sdstream consume` until SIGTERM; prints its address and start time first, and
    returns when the fold's stages ended (seconds from start)."""
    t0 = time.time()
    stages = Stages()
    fold_log = logging.getLogger("consumers.compactor.kafka_loop")
    fold_log.addHandler(stages)
    fold_log.setLevel(logging.INFO)
    config = ConsumerSettings(
        kafka=KafkaSettings(bootstrap=payload["bootstrap"], topic_prefix=payload["prefix"]),
        scrape_configs=tuple(ScrapeJob.model_validate(
            {"job_name": job, "kubernetes_sd_configs": [{"role": role}],
             **({"relabel_configs": DROP_ALL} if payload.get("drop") else {}),
             "keep_dropped_targets": payload.get("keep", 0)})
            for job, role in JOBS.items()),
        http=HttpSettings(port=0), group_id=f"bench-{uuid.uuid4().hex[:8]}",
        targets_partitions=PARTITIONS, discovery_page=payload.get("page", True),
    )  # fmt: skip

    def started(address: tuple[str, int]) -> None:
        print(json.dumps({"address": list(address), "t0": t0}), flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(consume.serve(config, on_started=started))
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return {f"{stage}_s": at - t0 for stage, at in stages.at.items()}


def fold(
    me: str, payload: dict[str, Any], *, dropped: dict[str, int] | None = None
) -> dict[str, Any]:
    """One `sdstream consume` child until it serves every target (or, given `dropped`,
    with every target dropped by relabeling, until it dropped that many per job).
    `exec_s`: the same moment from the child's exec, imports included, as vmagent's
    time is from its exec."""
    spawned = time.time()
    proc = kit.spawn(me, "consume", {**payload, "drop": dropped is not None})
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        timing = asyncio.run(asyncio.wait_for(
            wait_served(tuple(first["address"]), first["t0"], dropped),
            payload["timeout_s"]))  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    timing["exec_s"] = timing["served_s"] + first["t0"] - spawned
    return {**timing, **json.loads(out.strip().splitlines()[-1])}


def promtool(stack: Any, run: Path, job: str, timeout_s: int) -> dict[str, Any]:
    config = run / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [
        {"job_name": name, "kubernetes_sd_configs": [
            {"role": role, "kubeconfig_file": stack.kubeconfig}],
         "relabel_configs": [{"action": "drop", "source_labels": ["__address__"],
                              "regex": ".*"}]}
        for name, role in JOBS.items()]}))  # fmt: skip
    out = run / f"promtool-{job}.json"
    with out.open("wb") as sink:
        result = kit.run_measured([stack.promtool, "check", "service-discovery", str(config),
                                   job, f"--timeout={timeout_s}s"], stdout=sink)  # fmt: skip
    entries = orjson.loads(out.read_bytes() or b"[]")
    result["targets"] = len(entries)
    out.unlink()
    return result


Run = dict[str, Any]
Runs = dict[str, Run]  # "serving all" and each of DROP_RUNS, for one checkout's code
Code = tuple[str, str]  # (label, its bench/consume.py): "" for this checkout, "base"
# promtool per job, sdstream's runs per code (this checkout's last), vmagent
Peers = tuple[dict[str, Run], dict[str, Runs], Run | None]
SERVING = "serving all"


def sdstream_runs(
    stack: Any, args: argparse.Namespace, codes: list[Code], folded: dict[str, Any] | None
) -> dict[str, Runs]:
    """Each code folds its own copy of the API server's set (so no run rewrites another's
    targets topic): serving every target, then dropping every target by the same
    relabeling as vmagent's jobs (DROP_RUNS). Runs of one kind follow each other, base
    first, so a change of load hits both codes alike."""
    api_pods, ns = args.api_pods or args.pods, args.namespaces
    kinds = [(SERVING, None), *DROP_RUNS.items()]
    runs: dict[str, Runs] = {label: {} for label, _ in codes}
    for n, (what, drop) in enumerate(kinds):
        for label, script in codes:
            if what == SERVING and folded is not None and not label:
                runs[label][what] = folded  # the Kafka set is already this size
                continue
            prefix = f"{label or 'this'}{DROPPED if drop is not None else SAME}{n}"
            asyncio.run(write_all(stack.kafka_bootstrap, pods=api_pods, slices=args.slices,
                                  per_slice=args.per_slice, ns=ns, prefix=prefix))  # fmt: skip
            payload = {"bootstrap": stack.kafka_bootstrap, "timeout_s": 1800, "prefix": prefix}
            if drop is None:
                runs[label][what] = fold(script, payload)
            else:
                expected, (page, keep) = runs[label][SERVING]["targets"], drop
                runs[label][what] = fold(script, {**payload, "page": page, "keep": keep},
                                         dropped=expected)  # fmt: skip
            kit.say(f"sdstream {label or 'this checkout'}, {what}: "
                    f"{runs[label][what]['max_rss_mb']:.0f} MiB")  # fmt: skip
    return runs


def peers(me: str, stack: Any, args: argparse.Namespace, folded: dict[str, Any] | None) -> Peers:
    """The API server's copy of the objects (--api-pods pods, the slices), discovered by
    promtool per job and by vmagent, and the same objects folded by sdstream from Kafka
    (`folded` when the Kafka set is already that size), serving every target and, for
    equal work beside vmagent, dropping every target by the same relabeling; with
    --base, another checkout's code folds the same set too, in the same run."""
    api_pods, ns = args.api_pods or args.pods, args.namespaces
    if not (args.no_promtool and args.no_vmagent):  # else sdstream alone: Kafka only
        created = asyncio.run(kit.create_cluster_objects(
            stack.kubeconfig, pods=api_pods, namespaces=ns, slices=args.slices,
            per_slice=args.per_slice))  # fmt: skip
        kit.say(f"created {api_pods} pods, {args.slices} services and slices in "
                f"{created:.0f}s")  # fmt: skip
    run = Path(stack.run_dir)
    prom = {} if args.no_promtool else {
        job: promtool(stack, run, job, args.promtool_timeout) for job in JOBS}  # fmt: skip
    codes = [("base", str(args.base / "bench" / "consume.py"))] if args.base else []
    ours = sdstream_runs(stack, args, [*codes, ("", me)], folded)
    first = ours[""][SERVING]["targets"]
    peer = None if args.no_vmagent else vmagent.run(
        stack.kubeconfig, JOBS, expected=sum(first.values()),
        work=run / "vmagent", timeout_s=args.vmagent_timeout)  # fmt: skip
    return prom, ours, peer


def peer_rows(api_pods: int, found: Peers) -> list[tuple[str, ...]]:
    """Table rows: sdstream on the API server's set (serving all, dropping all) per code,
    promtool per job, vmagent. sdstream's seconds: from its exec (from its own start)."""
    prom, ours, peer = found
    return [
        *((f"sdstream{f' ({label})' if label else ''} consume, {api_pods} pods (promtool's "
           f"set), {what}: exec to " + ("HTTP SD serving all" if what == SERVING else
                                        "all dropped (relabeling as vmagent's)"),
           f"{run['exec_s']:.2f} ({run['served_s']:.2f})", "-",
           json.dumps(run["targets"]) + ("" if what == SERVING else " dropped"),
           f"{run['max_rss_mb']:.0f}", f"{run['cpu_s']:.1f}")
          for label, runs in ours.items() for what, run in runs.items()),
        *((f"promtool check service-discovery {job} ({api_pods} pods in API; RSS by "
           f"{p['rss_method']})",
           f"{p['seconds']:.0f} (= timeout)", "-", str(p["targets"]),
           f"{p['max_rss_mb']:.0f}", f"{p['cpu_s']:.1f}") for job, p in prom.items()),
        *([(f"vmagent {vmagent.VERSION}: start to every target discovered (and dropped "
            f"by relabeling; {api_pods} pods in API)", f"{peer['seconds']:.2f}", "-",
            str(peer["targets"]), f"{peer['max_rss_mb']:.0f}", f"{peer['cpu_s']:.1f}")]
          if peer else []),
    ]  # fmt: skip


def peers_summary(args: argparse.Namespace, found: Peers) -> None:
    """The guard's verdict and the ratios; records the figures on a full run."""
    prom, ours, peer = found
    if peer:
        print(f"vmagent: guard {peer['guard']} (all must be 0), sockets seen with a "
              f"non-loopback peer: {peer['foreign_peers'] or 'none'}")  # fmt: skip
    for label, runs in ours.items():
        for what, run in runs.items():
            name = f"sdstream{f' ({label})' if label else ''} {what}"
            if peer:
                print(f"vmagent / {name}: time (both from exec) "
                      f"{peer['seconds'] / run['exec_s']:.2f}, peak RSS "
                      f"{peer['max_rss_mb'] / run['max_rss_mb']:.2f}, CPU "
                      f"{peer['cpu_s'] / run['cpu_s']:.2f} (above 1: sdstream ahead)")  # fmt: skip
            base = ours.get("base", {}).get(what)
            if label == "" and base:
                print(f"{name} / base: peak RSS "
                      f"{run['max_rss_mb'] / base['max_rss_mb']:.2f}, CPU "
                      f"{run['cpu_s'] / base['cpu_s']:.2f}, time (from exec) "
                      f"{run['exec_s'] / base['exec_s']:.2f} (below 1: ahead of base)")  # fmt: skip
    if not args.small and not args.no_promtool:
        kit.record_figures("peers", peers_figures(args.api_pods or args.pods, found))
    for job, p in prom.items():
        if p["exit"] != 0:
            print(f"promtool {job} exited {p['exit']}: {p['stderr']}")


def peers_only(me: str, args: argparse.Namespace) -> int:
    """--peers-only: the API server's set alone (no 50k-pod Kafka runs)."""
    with kit.devstack() as stack:
        found = peers(me, stack, args, None)
    headers = ["step", "seconds", "records/s", "targets", "peak RSS MiB", "CPU s"]
    print(kit.table(headers, peer_rows(args.api_pods or args.pods, found)))
    print()
    peers_summary(args, found)
    return 0


def peers_figures(api_pods: int, found: Peers) -> dict[str, Any]:
    """The peers comparison for bench/figures.json (charted by bench/charts.py); seconds
    from each process's exec; sdstream's rows are this checkout's."""
    prom, ours, peer = found
    mine = ours[""]
    targets = sum(mine[SERVING]["targets"].values())
    rows = [
        {
            "name": f"sdstream {what}",
            "seconds": run["exec_s"],
            "rss_mb": run["max_rss_mb"],
            "cpu_s": run["cpu_s"],
            "targets": sum(run["targets"].values()),
            "process": "both jobs",
        }
        for what, run in mine.items()
    ]
    rows += [
        {
            "name": f"promtool {job}",
            "seconds": None,
            "timeout_s": p["seconds"],
            "rss_mb": p["max_rss_mb"],
            "cpu_s": p["cpu_s"],
            "targets": p["targets"],
            "process": f"job {job} alone",
        }
        for job, p in prom.items()
    ]
    if peer:
        rows.append(
            {
                "name": f"vmagent {vmagent.VERSION}",
                "seconds": peer["seconds"],
                "rss_mb": peer["max_rss_mb"],
                "cpu_s": peer["cpu_s"],
                "targets": peer["targets"],
                "process": "both jobs",
            }
        )
    return {"api_pods": api_pods, "targets": targets, "rows": rows}


def run_child(role: str, payload: str) -> int:
    data = json.loads(payload)
    work = drain_child(data) if role == "drain" else consume_child(data)
    kit.report(asyncio.run(work))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--api-pods", type=int, help="pods created in the API server for "
                        "promtool (default: --pods); slices then point at these only")  # fmt: skip
    parser.add_argument("--promtool-timeout", type=int, default=60)
    parser.add_argument(
        "--vmagent-timeout",
        type=int,
        default=600,
        help="seconds vmagent may take to discover every target",
    )
    parser.add_argument("--no-vmagent", action="store_true", help="skip vmagent (built "
                        "from the Go module proxy the first time, ~1 min)")  # fmt: skip
    parser.add_argument(
        "--peers-only",
        action="store_true",
        help="only the API server's "
        "set: sdstream vs promtool vs vmagent (skips the --pods Kafka runs)",
    )
    parser.add_argument("--base", type=Path, help="a checkout of the code to compare "
                        "(a worktree of main): its sdstream runs beside this one's")  # fmt: skip
    parser.add_argument("--no-promtool", action="store_true", help="skip promtool (a "
                        "quick look; figures are then not recorded)")  # fmt: skip
    parser.add_argument("--small", action="store_true", help="2,000 pods, 20 slices")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(*args.child)
    if args.small:
        args.pods, args.slices, args.promtool_timeout = 2_000, 20, 10
    api_pods = args.api_pods or args.pods
    ns = args.namespaces
    print(f"machine: {kit.machine()}\n", flush=True)
    me = str(Path(__file__))
    if args.peers_only:
        return peers_only(me, args)
    with kit.devstack() as stack:
        boot = stack.kafka_bootstrap
        wrote = asyncio.run(write_all(boot, pods=args.pods, slices=args.slices,
                                      per_slice=args.per_slice, ns=ns))  # fmt: skip
        kit.say(f"wrote {wrote.records} events ({wrote.bytes / 2**20:.0f} MiB) in "
                f"{wrote.seconds:.1f}s")  # fmt: skip
        common = {"bootstrap": boot, "timeout_s": 1800, "prefix": PREFIX}
        raw = kit.child(me, "drain", {**common, "parse": False})
        parsed = kit.child(me, "drain", {**common, "parse": True})
        folded = fold(me, common)
        restarted = fold(me, common)  # the targets topic is current: nothing to write
        idle = fold(me, {**common, "prefix": "empty"})
        raw2 = kit.child(me, "drain", {**common, "parse": False})
        found = peers(me, stack, args, folded if api_pods == args.pods else None)
    records = wrote.records
    print(f"input: {args.pods} pods in {ns} namespaces, {args.slices} services, "
          f"{args.slices} EndpointSlices x {args.per_slice} endpoints = {records} records, "
          f"{wrote.bytes / 2**20:.1f} MiB of values (before compression), written by aiokafka at "
          f"{records / wrote.seconds:.0f} records/s; API server: {api_pods} pods\n")  # fmt: skip

    def rate(seconds: float) -> str:
        return f"{records / seconds:.0f}"

    catch_up = folded["caught_up_s"] - folded["assigned_s"]
    build = folded["built_s"] - folded["caught_up_s"]
    rows = [
        ("raw aiokafka consumer, bytes only (baseline)", f"{raw['seconds']:.2f}",
         rate(raw["seconds"]), "-", f"{raw['max_rss_mb']:.0f}", f"{raw['cpu_s']:.1f}"),
        ("raw aiokafka consumer, again", f"{raw2['seconds']:.2f}", rate(raw2["seconds"]), "-",
         f"{raw2['max_rss_mb']:.0f}", f"{raw2['cpu_s']:.1f}"),
        ("raw aiokafka + orjson.loads (baseline)", f"{parsed['seconds']:.2f}",
         rate(parsed["seconds"]), "-", f"{parsed['max_rss_mb']:.0f}",
         f"{parsed['cpu_s']:.1f}"),
        ("sdstream consume: start to HTTP SD serving all", f"{folded['served_s']:.2f}",
         rate(folded["served_s"]), json.dumps(folded["targets"]),
         f"{folded['max_rss_mb']:.0f}", f"{folded['cpu_s']:.1f}"),
        ("sdstream fold: assigned to caught up (records read, decoded, folded into state)",
         f"{catch_up:.2f}", rate(catch_up), "-", "-", "-"),
        ("sdstream fold: caught up to every group built", f"{build:.2f}", "-",
         str(sum(folded["targets"].values())), "-", "-"),
        ("sdstream consume restarted (targets topic current): start to HTTP SD serving all",
         f"{restarted['served_s']:.2f}", rate(restarted["served_s"]),
         json.dumps(restarted["targets"]), f"{restarted['max_rss_mb']:.0f}",
         f"{restarted['cpu_s']:.1f}"),
        ("sdstream consume, idle (no topics)", "-", "-", "-", f"{idle['max_rss_mb']:.0f}",
         f"{idle['cpu_s']:.1f}"),
        *(row for row in peer_rows(api_pods, found)  # ours serving all: shown above
          if not row[0].startswith("sdstream consume") or SERVING not in row[0]
          or found[1][""][SERVING] is not folded),
    ]  # fmt: skip
    headers = ["step", "seconds", "records/s", "targets", "peak RSS MiB", "CPU s"]
    print(kit.table(headers, rows))
    floor = min(raw["seconds"], raw2["seconds"])
    per_object = (folded["max_rss_mb"] - idle["max_rss_mb"]) * 2**20 / records
    prom, same = found[0], found[1][""][SERVING]
    prom_rss = max((p["max_rss_mb"] for p in prom.values()), default=float("nan"))
    print(
        f"\nfold (catch-up) rate / raw rate: {floor / catch_up:.2f} (goal >= 0.5); "
        f"start to serving rate / raw rate: {floor / folded['served_s']:.2f}; "
        f"ready (fold published, sinks caught up) at {folded['ready_s']:.2f}s; "
        f"{folded['objects']:.0f} objects held; "
        f"{records / folded['cpu_s']:.0f} records per CPU-second; "
        f"~{per_object / 1024:.1f} KiB RSS per object above idle; consumer RSS / max "
        f"promtool RSS, same objects: {same['max_rss_mb'] / prom_rss:.2f} (goal <= 1)"
    )
    peers_summary(args, found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
