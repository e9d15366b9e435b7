"""Hostile HTTP SD requests against the real HTTP server (and the real broker for the sinks).

A client chooses `shards=`, `shard=` and `?cluster=`, how fast it reads and how many
connections it opens. None of that may block the event loop (where /healthz, and in a
combined process the fold's Kafka session, live), grow memory past the cache budget, or
hold connections past the write deadline; each limit hit shows in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from prometheus_client import CollectorRegistry

from consumers.sinks import http_sd, runner
from consumers.sinks.views import TargetView
from schemas.config import MAX_SHARDS, HttpSettings, KafkaSettings
from schemas.targets import TargetGroup
from sdstream import http
from tests.integration.test_sinks import running, targets, upsert
from tests.unit.consumers.sinks.builders import group, key
from tests.unit.consumers.sinks.http_client import fetch

BUDGET = 256 << 10


def _groups(count: int, per_group: int, *, clusters: int = 4) -> list[TargetGroup]:
    """`count` groups of job web over `clusters` clusters, `per_group` targets each."""
    return [
        group("web", f"c{i % clusters}", f"web-{i}",
              *(f"10.{i // 250}.{i % 250}.{t % 250}:{8000 + t // 250}" for t in range(per_group)))
        for i in range(count)
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def served(
    bootstrap: str, prefix: str, settings: HttpSettings, *, budget: int = BUDGET
) -> AsyncIterator[tuple[http.HttpServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    built = runner.build(
        KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        registry=registry,
        jobs=["web"],
        retry_s=0.2,
        cache_bytes=budget,
    )
    server = http.HttpServer(
        settings, registry=registry, ready=built.reader.unready_reason, routes=built.routes
    )
    async with server, running(built.reader):
        yield server, registry


def _value(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name) or 0.0


async def test_huge_shards_are_400_and_healthz_answers_during_hostile_requests(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await targets(kafka_bootstrap, topic_prefix, [upsert(g) for g in _groups(40, 500)])
    settings = HttpSettings(host="127.0.0.1", port=0)
    async with served(kafka_bootstrap, topic_prefix, settings) as (server, registry):
        address = server.address
        huge = await fetch(address, path="/http_sd/web?shards=1000000&shard=0")
        hostile = [
            asyncio.create_task(
                fetch(address, path=f"/http_sd/web?shards={n}&shard={n - 1}&cluster=c{n % 4},x{n}")
            )
            for n in range(MAX_SHARDS - 40, MAX_SHARDS + 1)
        ]
        health = await fetch(address, path="/healthz")
        still_running = sum(not task.done() for task in hostile)
        async with asyncio.timeout(120):
            answers = await asyncio.gather(*hostile)
        whole = await fetch(address, path="/http_sd/web")
        counted_busy = _value(registry, "sdstream_sink_http_sd_busy_total")

    assert (huge.status, orjson.loads(huge.body)) == (
        400,
        {"error": f"shards must be at most {MAX_SHARDS}, got shards=1000000"},
    )
    assert health.status == 200
    assert still_running > 0  # /healthz was answered while hostile answers were rendered
    # Beyond http_sd.MAX_RENDERS renders under way, a miss is told to come back later.
    busy = [a for a in answers if a.status == 503]
    assert {a.status for a in answers} <= {200, 503}
    assert all(a.headers["retry-after"] == "5" for a in busy)
    assert len(busy) == counted_busy
    served_targets = sum(len(orjson.loads(a.body)) for a in answers if a.status == 200)
    assert 0 < served_targets < len(orjson.loads(whole.body))
    assert 0 < _value(registry, "sdstream_sink_http_sd_cache_bytes") <= BUDGET


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_distinct_filters_and_shards_stay_within_the_cache_budget(
    kafka_bootstrap: str, topic_prefix: str, encoding: str
) -> None:
    await targets(kafka_bootstrap, topic_prefix, [upsert(g) for g in _groups(40, 100)])
    settings = HttpSettings(host="127.0.0.1", port=0)
    peak = 0.0
    # Answers are kept as gzip members (a shard's ~1 KiB here): a small budget, to spend.
    budget = 16 << 10
    async with served(kafka_bootstrap, topic_prefix, settings, budget=budget) as (
        server,
        registry,
    ):
        for n in range(1, 121):
            query = f"cluster=c{n % 4},other{n}" + (f"&shards={n}&shard=0" if n % 2 else "")
            answer = await fetch(
                server.address, path=f"/http_sd/web?{query}", headers={"Accept-Encoding": encoding}
            )
            assert answer.status == 200
            peak = max(peak, _value(registry, "sdstream_sink_http_sd_cache_bytes"))
        kept = _value(registry, "sdstream_sink_http_sd_cache_entries")
        evicted = _value(registry, "sdstream_sink_http_sd_cache_evictions_total")

    assert 0 < peak <= budget
    assert evicted > 0
    # odd n: one key per shards=n; even: c0 or c2 alone. An identity client (Prometheus)
    # also leaves the answer's identity body beside it, an entry of its own, while it fits.
    if encoding == "gzip":
        assert kept + evicted == 60 + 2
    else:
        assert 60 + 2 <= kept + evicted <= 2 * (60 + 2)


async def test_made_up_cluster_names_make_no_new_cache_entries(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await targets(kafka_bootstrap, topic_prefix, [upsert(g) for g in _groups(40, 100)])
    settings = HttpSettings(host="127.0.0.1", port=0)
    async with served(kafka_bootstrap, topic_prefix, settings) as (server, registry):
        bodies = set()
        for n in range(100):  # 1400 names each, one changed per request: a new key each
            names = ",".join(f"x{i:x}" for i in range(n, n + 1400))
            answer = await fetch(server.address, path=f"/http_sd/web?cluster=c1,{names}")
            assert answer.status == 200
            bodies.add(answer.body)
        entries = _value(registry, "sdstream_sink_http_sd_cache_entries")
        held = _value(registry, "sdstream_sink_http_sd_cache_bytes")

    assert len(bodies) == 1
    assert len(orjson.loads(bodies.pop())) == 10 * 100  # c1's targets
    assert entries == 1  # made-up names select nothing: one answer, one entry
    assert held < 16 << 10


def _slow_reader_socket() -> socket.socket:
    """A client socket with a small receive window that it will never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


async def _slow_reader(address: tuple[str, int], path: str) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = _slow_reader_socket()
    await loop.sock_connect(sock, address)
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: slow\r\n\r\n".encode())
    return sock


async def _read_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    with contextlib.suppress(ConnectionError):
        while chunk := await loop.sock_recv(sock, 1 << 20):
            received += chunk
    return bytes(received)


async def _until(condition: Callable[[], bool]) -> None:
    """Poll `condition()` every 10 ms until true (the caller holds the deadline)."""
    while not condition():  # noqa: ASYNC110 - server state that no event announces
        await asyncio.sleep(0.01)


async def test_slow_readers_are_cut_and_extra_connections_refused() -> None:
    view = TargetView(configured=frozenset({"web"}))
    for g in _groups(60, 1000):
        view.apply(key(g), g)
    registry = CollectorRegistry()
    sd = http_sd.HttpSd(view, ready=lambda: True)
    settings = HttpSettings(host="127.0.0.1", port=0, max_connections=3, write_timeout_s=5)
    server = http.HttpServer(
        settings, registry=registry, ready=lambda: None, routes={"/http_sd": sd}
    )
    slow: list[socket.socket] = []
    try:
        async with server, asyncio.timeout(120):
            address = server.address
            slow += [await _slow_reader(address, "/http_sd/web") for _ in range(2)]
            await _until(lambda: server.in_flight == 2)
            normal = await fetch(address, path="/http_sd/web")  # the third slot
            slow.append(await _slow_reader(address, "/http_sd/web"))
            await _until(lambda: server.in_flight == 3)
            extra = await _refused_or_closed(address)
            refused = _value(registry, "sdstream_http_refused_connections_total")
            await _until(lambda: _value(registry, "sdstream_http_write_timeouts_total") == 3)
            cut = [await _read_all(sock) for sock in slow]
            after = await fetch(address, path="/http_sd/web")
    finally:
        for sock in slow:
            sock.close()

    body = len(normal.body)
    assert normal.status == 200
    assert body > 8 << 20  # more than the socket buffers hold: a reader that stops blocks us
    assert int(normal.headers["content-length"]) == body
    assert extra in (b"", b"HTTP/1.1 503 Service Unavailable")
    assert refused == 1
    assert all(len(data) < body for data in cut)  # cut off mid-answer, not served whole
    assert (after.status, after.body) == (200, normal.body)
    assert server.in_flight == 0


async def _refused_or_closed(address: tuple[str, int]) -> bytes:
    """What a connection beyond the cap gets before the server closes it, without sending
    anything: the 503 status line, or nothing."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        data = await reader.read()
    except ConnectionError:
        data = b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return data.split(b"\r\n", 1)[0]


async def _read_slowly(address: tuple[str, int], path: str) -> bytes:
    """A client on a slow link: 128 KiB every 20 ms (each 1 MiB slice in about 160 ms)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: slow\r\n\r\n".encode())
        received = bytearray()
        while chunk := await loop.sock_recv(sock, 128 << 10):
            received += chunk
            await asyncio.sleep(0.02)  # the link's pace, not a wait for a condition
    return bytes(received)


async def test_a_slow_but_steady_reader_gets_a_big_answer_past_the_write_timeout() -> None:
    view = TargetView(configured=frozenset({"web"}))
    for g in _groups(120, 1000):
        view.apply(key(g), g)
    registry = CollectorRegistry()
    sd = http_sd.HttpSd(view, ready=lambda: True)
    settings = HttpSettings(host="127.0.0.1", port=0, write_timeout_s=1)
    server = http.HttpServer(
        settings, registry=registry, ready=lambda: None, routes={"/http_sd": sd}
    )
    async with server, asyncio.timeout(120):
        whole = await fetch(server.address, path="/http_sd/web")
        slow = await _read_slowly(server.address, "/http_sd/web")

    assert len(whole.body) > 16 << 20  # over 2 s at the slow client's pace
    assert slow.endswith(b"\r\n\r\n" + whole.body)
    assert _value(registry, "sdstream_http_write_timeouts_total") == 0
