"""bench/http_server: the HTTP server on aiohttp vs the hand-written one it replaced, and
TLS vs plain on the new one, serving HTTP SD for a 50k-pod job.

    .venv/bin/python bench/http_server.py [--pods 50000] [--requests 24] [--clients 2]
                                          [--probes 2000] [--rounds 2] [--small]

Each server runs in a process of its own (so the clients do not share its GIL), with
the same synthetic target groups (one per pod, two targets, the labels a pod role
builds) in a `TargetView` behind the real `HttpSd` route, in three configurations:

- `old`: today's server before the move, `sdstream/http.py` at 0964bc7 (`git show`),
  loaded as a module of its own;
- `new`: `sdstream.http` on aiohttp, plain;
- `new+tls`: the same with a self-signed certificate made by the openssl CLI.

Per configuration, in alternating rounds: `--requests` whole-job documents fetched by
`--clients` concurrent clients (each a fresh connection, read to the end; the first
request of each server renders the answer, and is not measured, so every measured one
is served from the cache: the server's own cost), then `--probes` `/healthz` requests
by 8 concurrent clients (connection set-up dominates: TLS handshakes show here).
Throughput, p50/p99 latency and the server process's CPU seconds per request; the
bodies are checked to be the same bytes on every server. Loopback only; every loop is
bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kit

ROOT = Path(__file__).resolve().parents[1]
OLD = "0964bc7"  # the last commit of the hand-written server
JOB = "pods"
CONFIGS = ("old", "new", "new+tls")


def groups(pods: int) -> list[Any]:
    """One group per pod, labelled as the pod role labels them, two container ports."""
    from schemas.targets import TargetGroup

    built = []
    for i in range(pods):
        ns, name, ip = (
            f"ns-{i % 100}",
            f"app-{i}",
            f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
        )
        labels = {
            "__meta_kubernetes_namespace": ns,
            "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_pod_ip": ip,
            "__meta_kubernetes_pod_uid": f"uid-{i}",
            "__meta_kubernetes_pod_node_name": f"node-{i % 50}",
            "__meta_kubernetes_pod_host_ip": "10.250.0.1",
            "__meta_kubernetes_pod_ready": "true",
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_controller_kind": "ReplicaSet",
            "__meta_kubernetes_pod_controller_name": f"app-{i % 500}-abc",
            "__meta_kubernetes_pod_label_app": f"app-{i % 500}",
            "__meta_kubernetes_pod_labelpresent_app": "true",
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
            "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape": "true",
            "cluster": "bench",
        }
        targets = [
            {"__address__": f"{ip}:{port}",
             "__meta_kubernetes_pod_container_name": "app",
             "__meta_kubernetes_pod_container_image": "example/app:1",
             "__meta_kubernetes_pod_container_port_name": port_name,
             "__meta_kubernetes_pod_container_port_number": str(port),
             "__meta_kubernetes_pod_container_port_protocol": "TCP",
             "__meta_kubernetes_pod_container_init": "false",
             "__meta_kubernetes_pod_container_id": f"containerd://{i:x}"}
            for port_name, port in (("http", 8080), ("metrics", 9090))
        ]  # fmt: skip
        built.append(
            TargetGroup(job=JOB, cluster="bench", source=f"pod/{ns}/{name}", labels=labels,
                        targets=targets)
        )  # fmt: skip
    return built


def old_module(where: Path) -> ModuleType:
    """`sdstream/http.py` as it was at `OLD`, as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{OLD}:sdstream/http.py"],  # noqa: S607
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    path = where / "old_http.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("old_http", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def serve(config: str, pods: int, pki: str | None, where: Path) -> None:
    """The server child: build the view, serve, print the port, stop when stdin closes,
    then print its CPU seconds."""
    from prometheus_client import CollectorRegistry

    from consumers.sinks.http_sd import HttpSd
    from consumers.sinks.views import TargetView
    from schemas.config import HttpSettings
    from tests.unit.consumers.sinks.builders import key

    view = TargetView(configured=frozenset({JOB}))
    for group in groups(pods):
        view.apply(key(group), group)
    route = HttpSd(view, ready=lambda: True)
    settings = HttpSettings(host="127.0.0.1", port=0, max_connections=256)
    kwargs: dict[str, Any] = {}
    if config == "old":
        module = old_module(where)
    else:
        from sdstream import http as module

        if pki is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*pki.split(","))
            kwargs["ssl_context"] = context
    server = module.HttpServer(
        settings, registry=CollectorRegistry(), ready=lambda: None, routes={"/http_sd": route},
        **kwargs,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    async with server:
        cpu_start = _cpu()
        print(json.dumps({"port": server.address[1]}), flush=True)
        # One line per line the parent writes, until it closes stdin: CPU so far.
        while await loop.run_in_executor(None, sys.stdin.readline):
            print(json.dumps({"cpu_s": _cpu() - cpu_start, "rss_mb": kit.hwm_mb()}), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    seconds: float
    latencies: list[float]
    bytes: int
    digest: str


async def _get(port: int, path: str, tls: ssl.SSLContext | None) -> tuple[float, bytes]:
    """One GET on a fresh connection, read to the end: (seconds, whole answer)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls, limit=1 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    took = time.perf_counter() - started
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path}: {data[:80]!r}")
    return took, data


async def load(port: int, path: str, count: int, clients: int, tls: ssl.SSLContext | None) -> Run:
    """`count` GETs of `path` by `clients` concurrent clients, one connection each."""
    todo = iter(range(count))
    latencies: list[float] = []
    sizes: list[int] = []
    digests: set[str] = set()

    async def client() -> None:
        for n in todo:
            took, data = await _get(port, path, tls)
            body = memoryview(data)[data.index(b"\r\n\r\n") + 4 :]
            latencies.append(took)
            sizes.append(len(body))
            if n < 2:  # the first two: hashing every 100 MiB body would load the client
                digests.add(hashlib.sha256(body).hexdigest())

    started = time.perf_counter()
    async with asyncio.timeout(600):
        await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    if len(digests) != 1:
        raise RuntimeError(f"{path}: different bodies")
    return Run(seconds, latencies, sum(sizes), digests.pop())


@dataclass
class Child:
    process: subprocess.Popen[str]
    port: int


def start(config: str, pods: int, pki: tuple[Path, Path] | None, where: Path) -> Child:
    args = [sys.executable, __file__, "--serve", config, "--pods", str(pods), "--dir", str(where)]
    if config == "new+tls" and pki is not None:
        args += ["--pki", f"{pki[0]},{pki[1]}"]
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"{config}: the server did not start")
    return Child(process, json.loads(line)["port"])


def used(child: Child) -> dict[str, float]:
    """The server's CPU seconds since it started serving, and its peak RSS."""
    assert child.process.stdin is not None
    assert child.process.stdout is not None
    child.process.stdin.write("cpu\n")
    child.process.stdin.flush()
    result: dict[str, float] = json.loads(child.process.stdout.readline())
    return result


def stop(child: Child) -> None:
    assert child.process.stdin is not None
    child.process.stdin.close()
    child.process.wait(timeout=60)


def make_pki(where: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("bench/http_server: the openssl CLI makes the certificate")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_floor_ms(cert: Path, key: Path, size: int) -> float:
    """CPU ms to encrypt `size` bytes in 1 MiB writes with OpenSSL through Python's ssl
    (a server and a client `SSLObject` over memory BIOs, default contexts, as in the
    measured run): what TLS must add to a document, whatever the server."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    sending = server.wrap_bio(s_in, s_out, server_side=True)
    receiving = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    for _ in range(10):  # the handshake, a flight at a time
        for side in (receiving, sending):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    piece = b"x" * (1 << 20)
    started = time.process_time()
    for _ in range(size // len(piece)):
        sending.write(piece)
        s_out.read()
    return (time.process_time() - started) * 1000


@dataclass
class Totals:
    docs: list[Run]
    probes: list[Run]
    doc_cpu_s: float = 0.0
    probe_cpu_s: float = 0.0
    rss_mb: float = 0.0


async def measure(
    config: str, args: argparse.Namespace, pki: tuple[Path, Path], where: Path
) -> tuple[Run, Run, dict[str, float]]:
    child = start(config, args.pods, pki, where)
    tls = ssl.create_default_context(cafile=pki[0]) if config == "new+tls" else None
    try:
        path = f"/http_sd/{JOB}"
        await load(child.port, path, 1, 1, tls)  # renders the answer once: not measured
        before = used(child)
        docs = await load(child.port, path, args.requests, args.clients, tls)
        middle = used(child)
        probes = await load(child.port, "/healthz", args.probes, 8, tls)
        after = used(child)
    finally:
        stop(child)
    cpu = {"docs": middle["cpu_s"] - before["cpu_s"], "probes": after["cpu_s"] - middle["cpu_s"],
           "rss_mb": after["rss_mb"]}  # fmt: skip
    return docs, probes, cpu


def row(config: str, totals: Totals) -> list[object]:
    docs = [x for run in totals.docs for x in run.latencies]
    probes = [x for run in totals.probes for x in run.latencies]
    doc_s = sum(run.seconds for run in totals.docs)
    mib = sum(run.bytes for run in totals.docs) / 2**20
    probe_s = sum(run.seconds for run in totals.probes)
    return [
        config,
        f"{len(docs) / doc_s:.2f}",
        f"{mib / doc_s:.0f}",
        f"{kit.percentile(docs, 0.5) * 1000:.0f}",
        f"{kit.percentile(docs, 0.99) * 1000:.0f}",
        f"{len(probes) / probe_s:.0f}",
        f"{kit.percentile(probes, 0.5) * 1000:.1f}",
        f"{kit.percentile(probes, 0.99) * 1000:.1f}",
        f"{totals.doc_cpu_s / len(docs) * 1000:.1f}",
        f"{totals.probe_cpu_s / len(probes) * 1000:.2f}",
        f"{totals.rss_mb:.0f}",
    ]


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        where = Path(tmp)
        pki = make_pki(where)
        totals = {c: Totals([], []) for c in CONFIGS}
        digests: set[str] = set()
        load_before = os.getloadavg()
        for round_ in range(args.rounds):
            order = CONFIGS if round_ % 2 == 0 else tuple(reversed(CONFIGS))
            for config in order:
                print(f"round {round_ + 1}: {config}...", file=sys.stderr)
                docs, probes, cpu = await measure(config, args, pki, where)
                digests.add(docs.digest)
                total = totals[config]
                total.docs.append(docs)
                total.probes.append(probes)
                total.doc_cpu_s += cpu["docs"]
                total.probe_cpu_s += cpu["probes"]
                total.rss_mb = max(total.rss_mb, cpu["rss_mb"])
        load_after = os.getloadavg()
        doc_bytes = totals["new"].docs[0].bytes // len(totals["new"].docs[0].latencies)
        floor = min(tls_floor_ms(*pki, doc_bytes) for _ in range(3))
    if len(digests) != 1:
        raise SystemExit("bench/http_server: the servers answered different documents")
    size = doc_bytes / 2**20
    print(f"{kit.machine()}\nload average before {load_before[0]:.1f}, after "
          f"{load_after[0]:.1f}; {args.pods} pods = {2 * args.pods} targets, one document "
          f"of {size:.1f} MiB (same sha256 on every server); {args.rounds} rounds x "
          f"{args.requests} documents by {args.clients} clients, {args.probes} /healthz "
          "by 8 clients\n")  # fmt: skip
    headers = ["server", "documents/s", "MiB/s", "doc p50 ms", "doc p99 ms", "/healthz/s",
               "probe p50 ms", "probe p99 ms", "server CPU ms/doc", "server CPU ms/probe",
               "server peak MiB"]  # fmt: skip
    print(kit.table(headers, [row(c, totals[c]) for c in CONFIGS]))
    rate = {c: float(row(c, totals[c])[1]) for c in CONFIGS}
    cpu = {c: float(row(c, totals[c])[8]) for c in CONFIGS}
    print(f"\nTLS vs plain, new server: documents/s {rate['new'] / rate['new+tls']:.2f}x "
          f"slower, server CPU per document {cpu['new+tls'] / cpu['new']:.2f}x (goal within "
          f"1.5x); new vs old: documents/s {rate['new'] / rate['old']:.2f}x, server CPU per "
          f"document {cpu['new'] / cpu['old']:.2f}x (goal: no slower)")  # fmt: skip
    best = (cpu["new"] + floor) / cpu["new"]
    print(f"TLS floor: encrypting one document with OpenSSL through Python's ssl alone takes "
          f"{floor:.0f} ms CPU, so TLS can be no better than {best:.2f}x the plain server's "
          "CPU per document")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="a quick check of the script")
    parser.add_argument("--serve", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.pods, args.pki, Path(args.dir)))
        return 0
    if args.small:
        args.pods, args.requests, args.probes, args.rounds = 2000, 6, 200, 1
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
