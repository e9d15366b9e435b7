"""`sdstream produce`: the watch producer's process wiring (signals, HTTP endpoints).

cli.py calls `main(settings)` with the loaded ProducerSettings; everything else
lives in `producers.runner`. SIGTERM/SIGINT stop the watches, flush what Kafka
has not yet acknowledged, and exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from producers import metrics as producer_metrics
from producers.runner import Producer
from schemas.config import HttpSettings, ProducerSettings

logger = logging.getLogger(__name__)


def main(settings: ProducerSettings) -> int:
    """Run the producer until SIGTERM or SIGINT; the exit status."""
    return asyncio.run(run(settings))


async def run(settings: ProducerSettings, *, registry: CollectorRegistry | None = None) -> int:
    registry = registry or CollectorRegistry()
    producer = Producer(settings, producer_metrics.create(registry))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await serve(settings.http, registry=registry, ready=lambda: producer.readiness.ready)
    try:
        return await producer.run(stop)
    finally:
        server.close()
        await server.wait_closed()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


# --- /metrics, /healthz, /readyz: a few lines of HTTP/1.0 on asyncio streams ---------------


async def serve(
    http: HttpSettings, *, registry: CollectorRegistry, ready: Callable[[], bool]
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            while (await reader.readline()).strip():
                pass
            path = line.split()[1].decode() if len(line.split()) > 1 else "/"
            status, ctype, body = _respond(path, registry=registry, ready=ready)
            head = f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, http.host, http.port)
    logger.info("Serving /metrics, /healthz and /readyz on %s:%d.", http.host, http.port)
    return server


def _respond(
    path: str, *, registry: CollectorRegistry, ready: Callable[[], bool]
) -> tuple[str, str, bytes]:
    path = path.split("?", 1)[0]
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)
    if path == "/healthz":
        return "200 OK", "text/plain", b"ok\n"
    if path == "/readyz":
        if ready():
            return "200 OK", "text/plain", b"ready\n"
        return "503 Service Unavailable", "text/plain", b"initial lists not yet published\n"
    return "404 Not Found", "text/plain", b"not found\n"
