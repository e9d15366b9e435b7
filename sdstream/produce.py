"""`sdstream produce`: the watch producer's process wiring (signals, HTTP endpoints).

cli.py calls `main(settings)` with the loaded ProducerSettings; `run` is the same
without signal handling, for `sdstream up`. Settings that cannot work (Kubernetes
access, the HTTP address, the web config file) are found before anything starts: one line
on stderr, exit 2. Everything else lives in `producers.runner`. SIGTERM/SIGINT stop the
watches, flush what Kafka has not yet acknowledged, and exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.kubeapi import auth
from producers.runner import Producer
from schemas.config import ProducerSettings
from sdstream import http, logs, web_config


def main(settings: ProducerSettings) -> int:
    """Run the producer until SIGTERM or SIGINT; the exit status."""
    try:
        return asyncio.run(_main(settings))
    except (auth.KubeConfigError, http.ListenError, web_config.SettingsError) as exc:
        print(f"sdstream produce: {exc}", file=sys.stderr)
        return 2


async def _main(settings: ProducerSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await run(settings, stop=stop)


async def run(
    settings: ProducerSettings, *, stop: asyncio.Event, registry: CollectorRegistry | None = None
) -> int:
    """Run until `stop` is set; serves /metrics, /healthz and /readyz meanwhile."""
    registry = registry or CollectorRegistry()
    security = web_config.build(settings.http, registry=registry)  # SettingsError: nothing runs
    client = await auth.connect(settings.kube)  # KubeConfigError before anything starts

    async def connected(_: Any) -> Any:
        return client

    producer = Producer(settings, producer_metrics.create(registry), connect=connected)

    unready = producer.readiness.reason
    try:
        server = http.HttpServer(
            settings.http, registry=registry, ready=unready,
            ssl_context=security.ssl_context, guard=security.guard,
        )  # fmt: skip
        await server.start()
    except BaseException:
        await client.close()
        raise
    started = asyncio.create_task(logs.started_when(lambda: unready() is None))
    try:
        return await producer.run(stop)  # closes the client
    finally:
        started.cancel()
        await server.stop()
