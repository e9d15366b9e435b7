"""`sdstream produce`: the watch producer's process wiring (signals, HTTP endpoints).

cli.py calls `main(settings)` with the loaded ProducerSettings; `run` is the same
without signal handling, for `sdstream up`. Everything else lives in
`producers.runner`. SIGTERM/SIGINT stop the watches, flush what Kafka has not yet
acknowledged, and exit 0.
"""

from __future__ import annotations

import asyncio
import signal

from prometheus_client import CollectorRegistry

from producers import metrics as producer_metrics
from producers.runner import Producer
from schemas.config import ProducerSettings
from sdstream import http


def main(settings: ProducerSettings) -> int:
    """Run the producer until SIGTERM or SIGINT; the exit status."""
    return asyncio.run(_main(settings))


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
    producer = Producer(settings, producer_metrics.create(registry))

    async with http.HttpServer(settings.http, registry=registry, ready=producer.readiness.reason):
        return await producer.run(stop)
