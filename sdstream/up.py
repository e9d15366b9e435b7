"""`sdstream up`: the whole pipeline on one machine, until Ctrl-C.

Starts the devstack (real Kafka, and one etcd + kube-apiserver per cluster), writes a
demo workload into each API server, runs one producer per cluster and one consumer with
example jobs for all six roles, serves HTTP SD and writes file SD, and prints where
everything is. `--churn RATE` keeps changing the workload so updates can be watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from schemas.config import (
    ConsumerSettings,
    HttpSettings,
    KafkaSettings,
    KubeSettings,
    ProducerSettings,
)
from schemas.sd_config import ScrapeJob
from schemas.topics import targets_topic
from sdstream import consume, demo, produce
from sdstream.devstack import cache, stack

logger = logging.getLogger(__name__)
PREFIX = "sdstream"
EXAMPLE_JOBS = """
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        attach_metadata: {node: true, namespace: true, deployment: true, cronjob: true}
  - job_name: services
    kubernetes_sd_configs: [{role: service}]
  - job_name: endpoints
    kubernetes_sd_configs: [{role: endpoints}]
  - job_name: endpointslices
    kubernetes_sd_configs: [{role: endpointslice, attach_metadata: {node: true}}]
  - job_name: ingresses
    kubernetes_sd_configs: [{role: ingress}]
  - job_name: nodes
    kubernetes_sd_configs: [{role: node}]
"""


def say(message: str) -> None:
    cache.say(message, who="sdstream up")


@dataclass(frozen=True)
class Options:
    root: Path
    run_dir: Path
    clusters: int = 1
    churn: float = 0.0
    http_port: int = 8081
    kafka: str | None = None  # use this broker instead of the devstack's
    kubeconfigs: tuple[Path, ...] = ()  # use these clusters instead of the devstack's


def jobs() -> tuple[ScrapeJob, ...]:
    loaded = yaml.safe_load(EXAMPLE_JOBS)["scrape_configs"]
    return tuple(ScrapeJob.model_validate(job) for job in loaded)


def run(options: Options) -> int:
    running = None
    if options.kafka is None:
        running = stack.up(options.root, options.run_dir, clusters=options.clusters)
    try:
        if running is None:
            bootstrap, configs = options.kafka or "", list(options.kubeconfigs)
        else:
            bootstrap, configs = running.kafka_bootstrap, [Path(k) for k in running.kubeconfigs]
        return asyncio.run(_pipeline(options, bootstrap, configs, workload=running is not None))
    finally:
        if running is not None:
            say("stopping the devstack")
            stack.down_stack(running)


async def _pipeline(
    options: Options, bootstrap: str, kubeconfigs: list[Path], *, workload: bool
) -> int:
    kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix=PREFIX)
    workloads = []
    if workload:
        for number, path in enumerate(kubeconfigs, start=1):
            made = demo.Workload(demo.connect(str(path)), seed=number)
            count = await asyncio.to_thread(made.create)
            say(f"demo workload: {count} objects in cluster dev-{number}")
            workloads.append(made)
    producers = [
        ProducerSettings(cluster=f"dev-{number}", partitions=3, kafka=kafka,
                         kube=KubeSettings(kubeconfig=path), http=HttpSettings(port=0))
        for number, path in enumerate(kubeconfigs, start=1)
    ]  # fmt: skip
    file_sd = options.run_dir / "file_sd"
    consumer = ConsumerSettings(kafka=kafka, scrape_configs=jobs(), file_sd_dir=file_sd,
                                http=HttpSettings(port=options.http_port))  # fmt: skip
    (options.run_dir / "consumer.yml").write_text(EXAMPLE_JOBS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    registry = CollectorRegistry()
    status = 0
    try:
        await _serve(producers, consumer, registry=registry, stop=stop, workloads=workloads,
                     churn_rate=options.churn, bootstrap=bootstrap, file_sd=file_sd)  # fmt: skip
    except* ProducerFailed as failed:
        for error in failed.exceptions:
            say(str(error))
        status = 1
    return status


class ProducerFailed(RuntimeError):
    """A producer stopped with an error: the demo would show stale or no targets."""


async def _producer(settings: ProducerSettings, stop: asyncio.Event) -> None:
    status = await produce.run(settings, stop=stop)
    if status != 0 and not stop.is_set():
        raise ProducerFailed(f"the producer of {settings.cluster} exited with status {status}")


async def _serve(  # noqa: PLR0913 - the pipeline's parts, all keyword-only
    producers: list[ProducerSettings],
    consumer: ConsumerSettings,
    *,
    registry: CollectorRegistry,
    stop: asyncio.Event,
    workloads: list[demo.Workload],
    churn_rate: float,
    bootstrap: str,
    file_sd: Path,
) -> None:
    started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    async with asyncio.TaskGroup() as tasks:
        for settings in producers:
            tasks.create_task(_producer(settings, stop))
        served = tasks.create_task(
            consume.serve(consumer, registry=registry, on_started=started.set_result)
        )
        address = await started
        say("waiting for the first snapshot (producers listed, consumer caught up)")
        await _ready(address, path="/http_sd/pods" if workloads else "/readyz")
        _describe(address, bootstrap, file_sd, producers)
        churn = tasks.create_task(_churn(workloads, churn_rate)) if churn_rate else None
        await stop.wait()
        say("stopping producers and consumer")
        served.cancel()
        if churn is not None:
            churn.cancel()


async def _ready(address: tuple[str, int], *, path: str) -> None:
    """Poll our own endpoint until it answers 200 with something in it, so the printed
    URLs already show the demo's targets (the producers' topics appear a little after the
    consumer starts, and an empty fold is ready too)."""
    while True:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: up\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        head, _, body = answer.partition(b"\r\n\r\n")
        if b" 200 " in head.split(b"\r\n", 1)[0] and body.strip() not in (b"", b"[]"):
            return
        await asyncio.sleep(0.2)


async def _churn(workloads: list[demo.Workload], rate: float) -> None:
    changes = 0
    while True:
        for made in workloads:
            with contextlib.suppress(demo.DemoError):
                await asyncio.to_thread(made.step)
                changes += 1
        if changes % max(1, int(rate * 10)) == 0:
            say(f"churn: {changes} changes so far")
        await asyncio.sleep(1 / rate)


def _describe(address: tuple[str, int], bootstrap: str, file_sd: Path,
              producers: list[ProducerSettings]) -> None:  # fmt: skip
    host, port = address
    lines = [
        "",
        "sdstream is up. Ctrl-C stops everything.",
        f"  HTTP SD:   http://{host}:{port}/http_sd/<job>  (jobs: "
        + ", ".join(job.job_name for job in jobs())
        + ")",
        f"             http://{host}:{port}/http_sd/pods?cluster=dev-1",
        f"             http://{host}:{port}/http_sd/pods?shards=2&shard=0  (one of 2 scrapers)",
        f"  page:      http://{host}:{port}/  (jobs, clusters, each target's labels)",
        f"  readiness: http://{host}:{port}/readyz    metrics: http://{host}:{port}/metrics",
        f"  file SD:   {file_sd}/<job>.json",
        f"  Kafka:     {bootstrap}  topics {PREFIX}.<cluster>.<resource>, {targets_topic(PREFIX)}",
        f"  clusters:  {', '.join(p.cluster for p in producers)}",
        f"  watch:     kcat -b {bootstrap} -C -t {targets_topic(PREFIX)} -o beginning -f '%k\\n'",
        f"  try:       curl -s http://{host}:{port}/http_sd/pods | python3 -m json.tool",
        "",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)
