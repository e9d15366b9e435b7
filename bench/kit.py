"""Shared pieces of the benchmarks: a private devstack, realistic objects, a fast API
writer, bulk object events into Kafka, measured child processes and Markdown tables.

Not a benchmark itself; `bench/produce.py`, `consume.py`, `latency.py` and `scale.py`
import it (`import kit`, as scripts run from `bench/` put this directory on sys.path).
Each measurement that reports a peak RSS runs in its own child process, started with
`child()` or `spawn()`, which calls the script again with `--child ROLE PAYLOAD` and reads
one JSON line from its stdout. IPs in the objects are data only; nothing connects to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402 - after the sys.path line, so `tests` imports too
import orjson  # noqa: E402
import yaml  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from producers import trim  # noqa: E402
from schemas import events  # noqa: E402
from schemas.config import KafkaSettings  # noqa: E402
from schemas.topics import Resource, object_key, object_topic, partition_for  # noqa: E402
from sdstream.devstack import cache, stack  # noqa: E402

Body = dict[str, Any]
READY = [{"type": t, "status": "True"}
         for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]  # fmt: skip
CODEC = KafkaSettings().compression_type()  # the producer's default codec
DROP = trim.DropAnnotations.of(["kubectl.kubernetes.io/last-applied-configuration"])


# machine and load ------------------------------------------------------------------------


def machine() -> str:
    """One line naming the machine and how busy it is now (other test sessions)."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())  # fmt: skip
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python "
            f"{platform.python_version()}; load {load[0]:.2f}/{load[1]:.2f}; "
            f"other pytest sessions: {other_pytest()}")  # fmt: skip


def other_pytest() -> int:
    pgrep = shutil.which("pgrep") or "/usr/bin/pgrep"
    done = subprocess.run([pgrep, "-f", "pytest"], capture_output=True, text=True, check=False)
    return len(done.stdout.split())


# the devstack ----------------------------------------------------------------------------


@contextlib.contextmanager
def devstack(*, clusters: int = 1) -> Iterator[stack.Stack]:
    """Kafka + etcd + kube-apiserver in a fresh temporary run dir, stopped afterwards."""
    signal.signal(signal.SIGTERM, _exit_on_term)  # so `finally` below stops the servers
    run = Path(tempfile.mkdtemp(prefix="sdstream-bench-"))
    started = time.perf_counter()
    running = stack.up(cache.cache_dir(), run / "stack", clusters=clusters)
    say(f"devstack up in {time.perf_counter() - started:.0f}s ({run})")
    try:
        yield running
    finally:
        stack.down_stack(running)
        shutil.rmtree(run, ignore_errors=True)


def _exit_on_term(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# objects -------------------------------------------------------------------------------


def pod_ip(i: int) -> str:
    return f"10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def namespace_of(i: int, namespaces: int) -> str:
    return f"bench-{i % namespaces}"


def pod(i: int, *, namespaces: int, nodes: int = 50) -> Body:
    """A Deployment's pod as the API holds it after the scheduler and kubelet (no status
    here: `pod_status` is written through the status subresource)."""
    app = f"app-{i % 500}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{app}-{i}", "namespace": namespace_of(i, namespaces),
            "labels": {"app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/part-of":
                       "bench", "pod-template-hash": "5d8f7c9b6", "tier": "backend"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                            "kubectl.kubernetes.io/restartedAt": "2026-11-24T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": f"{app}-5d8f7c9b6", "uid": f"uid-rs-{app}",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "nodeName": f"node-{i % nodes}",
            "containers": [
                {"name": "app", "image": "registry.example/app:1.2.3",
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                           {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                 "env": [{"name": "LOG_LEVEL", "value": "info"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                               "limits": {"memory": "256Mi"}}},
                {"name": "proxy", "image": "registry.example/proxy:1.20",
                 "ports": [{"name": "proxy-admin", "containerPort": 15000, "protocol": "TCP"}]},
            ],
        },
    }  # fmt: skip


def pod_status(i: int) -> Body:
    ip, host = pod_ip(i), f"10.1.{(i % 50) >> 8}.{i % 50 + 1}"
    running = {"running": {"startedAt": "2026-11-24T10:00:01Z"}}
    return {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host,
        "hostIPs": [{"ip": host}], "startTime": "2026-11-24T10:00:00Z", "qosClass": "Burstable",
        "conditions": READY,
        "containerStatuses": [
            {"name": c, "ready": True, "started": True, "restartCount": 0, "image": img,
             "imageID": "", "containerID": f"containerd://{i:032x}{n}", "state": running}
            for n, (c, img) in enumerate((("app", "registry.example/app:1.2.3"),
                                          ("proxy", "registry.example/proxy:1.20")))],
    }}  # fmt: skip


def with_status(i: int, *, namespaces: int) -> Body:
    """The pod as a LIST returns it (for events written straight to Kafka)."""
    body = pod(i, namespaces=namespaces)
    body["metadata"]["uid"] = f"uid-pod-{i}"
    body["metadata"]["resourceVersion"] = str(1000 + i)
    return {**body, **pod_status(i)}


def service(j: int, *, namespaces: int) -> Body:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"svc-{j}", "namespace": namespace_of(j, namespaces),
                         "labels": {"app": f"app-{j % 500}"}},
            "spec": {"selector": {"app": f"app-{j % 500}"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                "protocol": "TCP"}]}}  # fmt: skip


def endpointslice(j: int, *, per_slice: int, pods: int, namespaces: int) -> Body:
    """Slice j of service svc-j, its endpoints pointing at pods in the same namespace."""
    ns = namespace_of(j, namespaces)
    members = [(j + namespaces * k) % pods for k in range(per_slice)]
    members = [m for m in members if namespace_of(m, namespaces) == ns]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{j}-abcde", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": f"svc-{j}",
                                "endpointslice.kubernetes.io/managed-by": "bench"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [pod_ip(m)],
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "nodeName": f"node-{m % 50}",
                       "targetRef": {"kind": "Pod", "namespace": ns,
                                     "name": f"app-{m % 500}-{m}", "uid": f"uid-pod-{m}"}}
                      for m in members],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }  # fmt: skip


# a small, fast API client ------------------------------------------------------------


class ApiError(RuntimeError):
    pass


class Kube:
    """Raw JSON over one aiohttp session with the kubeconfig's token and CA."""

    def __init__(self, kubeconfig: str, *, connections: int = 32) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        self.server = config["clusters"][0]["cluster"]["server"]
        ca = config["clusters"][0]["cluster"]["certificate-authority"]
        self._token = config["users"][0]["user"]["token"]
        self._ssl = ssl.create_default_context(cafile=ca)
        self._connections = connections
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Kube:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl),
            headers={"Authorization": f"Bearer {self._token}"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(
        self, method: str, path: str, body: Body | None = None, *, params: Body | None = None
    ) -> bytes:
        assert self.session is not None
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, self.server + path, data=data, params=params,
                                        headers={"Content-Type": kind}) as resp:  # fmt: skip
            raw = await resp.read()
            if resp.status >= 400 and not (resp.status == 409 and method == "POST"):
                raise ApiError(f"{method} {path}: {resp.status} {raw[:200]!r}")
            return raw

    async def create_pod(self, i: int, *, namespaces: int) -> None:
        body = pod(i, namespaces=namespaces)
        base = f"/api/v1/namespaces/{body['metadata']['namespace']}/pods"
        await self.call("POST", base, body)
        await self.call("PATCH", f"{base}/{body['metadata']['name']}/status", pod_status(i))


async def bounded(jobs: Iterable[Any], *, concurrency: int) -> None:
    """Await coroutines with at most `concurrency` in flight."""
    pending: set[asyncio.Task[Any]] = set()
    for job in jobs:
        pending.add(asyncio.ensure_future(job))
        if len(pending) >= concurrency:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    for outcome in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


async def create_cluster_objects(
    kubeconfig: str,
    *,
    pods: int,
    namespaces: int,
    slices: int = 0,
    per_slice: int = 0,
    concurrency: int = 48,
) -> float:
    """Namespaces, pods (with status), services and slices; returns seconds taken."""
    started = time.perf_counter()
    async with Kube(kubeconfig, connections=concurrency) as kube:
        for n in range(namespaces):
            await kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}})
        await bounded((kube.create_pod(i, namespaces=namespaces) for i in range(pods)),
                      concurrency=concurrency)  # fmt: skip
        for j in range(slices):
            ns = namespace_of(j, namespaces)
            await kube.call("POST", f"/api/v1/namespaces/{ns}/services",
                            service(j, namespaces=namespaces))  # fmt: skip
        await bounded(
            (kube.call("POST", f"/apis/discovery.k8s.io/v1/namespaces/"
                       f"{namespace_of(j, namespaces)}/endpointslices",
                       endpointslice(j, per_slice=per_slice, pods=pods, namespaces=namespaces))
             for j in range(slices)), concurrency=8,
        )  # fmt: skip
    return time.perf_counter() - started


# object events straight into Kafka ----------------------------------------------------


async def create_topics(bootstrap: str, names: Sequence[str], *, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact"}
        response = await admin.create_topics(
            [NewTopic(n, partitions, 1, topic_configs=configs) for n in names]
        )
        bad = [e for _, e, *_ in response.topic_errors if e not in (0, 36)]
        assert not bad, response
    finally:
        await admin.close()


def event_value(cluster: str, resource: Resource, obj: Body) -> bytes:
    """What the producer writes: the trimmed object in an ObjectEvent."""
    version = obj["metadata"].get("resourceVersion", "1")
    return events.encode(events.ObjectEvent(
        type=events.EventType.ADDED, cluster=cluster, resource=resource,
        resource_version=version, observed_at=time.time(),
        object=trim.trim(resource, obj, drop_annotations=DROP),
    ))  # fmt: skip


@dataclass
class Written:
    records: int
    bytes: int
    seconds: float


async def write_events(  # noqa: PLR0913 - a topic's parts, then the records
    bootstrap: str,
    prefix: str,
    cluster: str,
    resource: Resource,
    objs: Iterable[Body],
    *,
    partitions: int,
    producer: AIOKafkaProducer | None = None,
) -> Written:
    """Object events keyed and partitioned as the producer does, sent without waiting on
    each one (the producer pipelines them too), compressed like the producer's default."""
    own = producer is None
    if producer is None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                    acks="all", compression_type=CODEC, linger_ms=5)  # fmt: skip
        await producer.start()
    topic = object_topic(prefix, cluster, resource)
    started = time.perf_counter()
    futures, size = [], 0
    try:
        for obj in objs:
            key = object_key(obj["metadata"].get("namespace"), obj["metadata"]["name"])
            value = event_value(cluster, resource, obj)
            size += len(value)
            futures.append(await producer.send(
                topic, value, key=key.encode(), partition=partition_for(key, partitions),
                headers=events.headers(event=events.EventType.ADDED, cluster=cluster,
                                       resource=resource, resource_version="1"),
            ))  # fmt: skip
        await asyncio.gather(*futures)
    finally:
        if own:
            await producer.stop()
    return Written(len(futures), size, time.perf_counter() - started)


async def drain(bootstrap: str, topics: Sequence[str], *, parse: bool = False) -> Written:
    """Raw aiokafka: read every record of `topics` to the end offsets (the floor)."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()  # subscribed at start: the topics' metadata is loaded
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.unsubscribe()
        started = time.perf_counter()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        count = size = 0
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                count += len(records)
                for record in records:
                    size += len(record.value or b"")
                    if parse and record.value is not None:
                        orjson.loads(record.value)
        return Written(count, size, time.perf_counter() - started)
    finally:
        await consumer.stop()


# child processes ------------------------------------------------------------------------


def child(script: str, role: str, payload: Body, *, timeout_s: float = 3600) -> Body:
    """Run `script --child role payload` and return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, script, "--child", role, json.dumps(payload)],
        stdout=subprocess.PIPE, text=True, check=True, timeout=timeout_s,
    )  # fmt: skip
    result: Body = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spawn(script: str, role: str, payload: Body) -> subprocess.Popen[str]:
    """Like `child`, but running: read its stdout lines, stop it with SIGTERM."""
    return subprocess.Popen(
        [sys.executable, script, "--child", role, json.dumps(payload)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def hwm_mb(pid: int | str = "self") -> float:
    """Peak RSS (VmHWM) of a process's current image, in MiB; 0 if it is gone.

    Not getrusage's ru_maxrss: Linux folds the pre-exec image's high-water mark (the
    forking parent's) into it at exec, so a child of a big parent would report at least
    the parent's peak.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def usage() -> Body:
    """This process's peak RSS and CPU time, for a child's final JSON line."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"max_rss_mb": hwm_mb(), "cpu_s": ru.ru_utime + ru.ru_stime}


def report(result: Body) -> None:
    print(json.dumps({**result, **usage()}), flush=True)


def run_measured(argv: Sequence[str], *, stdout: Any = subprocess.DEVNULL) -> Body:
    """Run a foreign program to its end: wall time, CPU, and peak RSS. The peak is
    wait4's ru_maxrss when that exceeds our own peak (then it can only be the child's),
    else the last VmHWM polled every 20 ms (a lower bound)."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=stdout, stderr=subprocess.PIPE)
    polled = 0.0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        polled = max(polled, hwm_mb(proc.pid))
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    mine, peak = hwm_mb(), ru.ru_maxrss / 1024
    return {"seconds": time.perf_counter() - started, "cpu_s": ru.ru_utime + ru.ru_stime,
            "max_rss_mb": peak if peak > mine else polled,
            "rss_method": "wait4" if peak > mine else "VmHWM polled", "exit": proc.returncode,
            "stderr": (proc.stderr.read() if proc.stderr else b"")[-500:].decode()}  # fmt: skip


# HTTP polling -------------------------------------------------------------------------------


async def get(address: tuple[str, int], path: str, *, etag: str = "") -> tuple[int, str, bytes]:
    """(status, etag, body) of one GET; the server closes each connection."""
    reader, writer = await asyncio.open_connection(*address)
    extra = f"If-None-Match: {etag}\r\n" if etag else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    tag = next((v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                if k.lower() == "etag"), "")  # fmt: skip
    return int(lines[0].split()[1]), tag, body


@contextlib.asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    async with asyncio.timeout(seconds):
        yield


# recorded figures ---------------------------------------------------------------------------

FIGURES = Path(__file__).with_name("figures.json")


def record_figures(section: str, data: Body) -> None:
    """Replace `section` of bench/figures.json (what bench/charts.py draws) with `data`,
    stamped with the time and the machine line (its load included)."""
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    when = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    figures[section] = {"when": when, "machine": machine(), **data}
    FIGURES.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    say(f"recorded {section} in {FIGURES}")


# output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
