"""bcrypt off the event loop, on the real server: while wrong passwords keep a cost-14
hash busy (about a second a check), probes are still answered, and guesses beyond the
queue are refused at once. The client runs in the server's event loop, so it could not
even watch a check run if bcrypt ran on that loop."""

from __future__ import annotations

import asyncio
import base64

import bcrypt
from prometheus_client import CollectorRegistry

from sdstream import guard, http
from tests.unit.consumers.sinks.http_client import fetch
from tests.unit.sdstream.test_http_hooks import LOOPBACK


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


QUEUE = 3  # checks running or waiting: 3 x cost 14 keep bcrypt busy for seconds


async def test_probes_answer_while_wrong_passwords_hit_a_cost_14_hash() -> None:
    costly = (await asyncio.to_thread(bcrypt.hashpw, b"right", bcrypt.gensalt(14))).decode()
    registry = CollectorRegistry()
    metrics = guard.GuardMetrics.create(registry)
    unlimited = guard.CpuBudget(rate=1.0, burst=1e6, now=0.0)  # only the queue limits here
    checks = guard.BasicAuth({"prometheus": costly}, spent=metrics.bcrypt_seconds,
                             budget=unlimited, queue=QUEUE)  # fmt: skip
    checker = guard.AuthGuard(basic=checks, bearer=None, metrics=metrics)
    server = http.HttpServer(LOOPBACK, registry=registry, ready=lambda: None, guard=checker)
    async with server:
        guesses = [
            asyncio.create_task(fetch(server.address, path="/metrics",
                                      headers={"Authorization": basic("prometheus", f"guess{i}")}))
            for i in range(12)
        ]  # fmt: skip
        async with asyncio.timeout(60):
            while not checks.running:  # noqa: ASYNC110 - a check under way, seen from the loop
                await asyncio.sleep(0.01)
        answered = [((await fetch(server.address, path="/healthz")).status, checks.running > 0)
                    for _ in range(10)]  # fmt: skip
        replies = await asyncio.gather(*guesses)
    assert answered == [(200, True)] * 10  # each answered while a check still ran
    statuses = sorted(r.status for r in replies)
    assert statuses.count(401) >= QUEUE
    assert statuses.count(429) >= 1  # the rest were turned away without a bcrypt
    throttled = registry.get_sample_value("sdstream_http_auth_refusals_total",
                                          {"reason": "throttled"})  # fmt: skip
    assert throttled == statuses.count(429)
