"""The HTTP server over real loopback sockets, with the HTTP SD route mounted."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from consumers.sinks.http_sd import HttpSd
from consumers.sinks.views import TargetView
from schemas.config import HttpSettings
from sdstream import http
from tests.unit.consumers.sinks.builders import group, key
from tests.unit.consumers.sinks.http_client import fetch

WEB = group("web", "east", "web-0", "10.0.0.1:80")
LOOPBACK = HttpSettings(host="127.0.0.1", port=0)
CUT = "sdstream_http_write_timeouts_total"


@dataclass
class App:
    view: TargetView = field(default_factory=TargetView)
    reason: str | None = "reading the targets topic"
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def ready(self) -> str | None:
        return self.reason


@pytest.fixture
async def app() -> AsyncIterator[tuple[App, http.HttpServer]]:
    state = App()
    state.view.apply(key(WEB), WEB)
    sd = HttpSd(state.view, ready=lambda: state.reason is None)
    server = http.HttpServer(
        LOOPBACK, registry=state.registry, ready=state.ready, routes={"/http_sd": sd}
    )
    async with server:
        yield state, server


async def test_healthz_is_ok_at_once(app: tuple[App, http.HttpServer]) -> None:
    _, server = app
    reply = await fetch(server.address, path="/healthz")
    assert (reply.status, reply.body) == (200, b"ok\n")
    assert reply.headers["server"] == "sdstream"  # no library or Python versions


async def test_readyz_and_http_sd_are_503_until_ready(app: tuple[App, http.HttpServer]) -> None:
    state, server = app
    not_yet = await fetch(server.address, path="/readyz")
    sd_not_yet = await fetch(server.address, path="/http_sd/web")
    state.reason = None
    ready = await fetch(server.address, path="/readyz")
    sd_ready = await fetch(server.address, path="/http_sd/web")

    assert (not_yet.status, not_yet.body) == (503, b"reading the targets topic\n")
    assert sd_not_yet.status == 503
    assert sd_not_yet.headers["content-type"] == "application/json"
    assert (ready.status, sd_ready.status) == (200, 200)


async def test_http_sd_answers_with_json_and_an_etag(app: tuple[App, http.HttpServer]) -> None:
    state, server = app
    state.reason = None

    reply = await fetch(server.address, path="/http_sd/web", headers={"Accept": "application/json"})
    again = await fetch(
        server.address, path="/http_sd/web", headers={"If-None-Match": reply.headers["etag"]}
    )

    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.body)
    assert [e["targets"] for e in orjson.loads(reply.body)] == [["10.0.0.1:80"]]
    assert (again.status, again.body, again.headers["etag"]) == (304, b"", reply.headers["etag"])


async def test_unknown_job_404_and_empty_job_200(app: tuple[App, http.HttpServer]) -> None:
    state, server = app
    state.reason = None
    state.view.apply(key(WEB), None)

    unknown = await fetch(server.address, path="/http_sd/nope")
    empty = await fetch(server.address, path="/http_sd/web?cluster=east")

    assert (unknown.status, orjson.loads(unknown.body)["jobs"]) == (404, ["web"])
    assert (empty.status, empty.body, empty.headers["content-type"]) == (
        200,
        b"[]",
        "application/json",
    )


async def test_metrics_expose_the_injected_registry(app: tuple[App, http.HttpServer]) -> None:
    state, server = app
    Counter("sdstream_test_things_total", "Things.", registry=state.registry).inc(3)
    await fetch(server.address, path="/http_sd/web")

    reply = await fetch(server.address, path="/metrics")

    text = reply.body.decode()
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert "sdstream_test_things_total 3.0" in text
    assert 'sdstream_http_requests_total{route="/http_sd",status="503"} 1.0' in text


async def test_openmetrics_on_request(app: tuple[App, http.HttpServer]) -> None:
    _, server = app
    reply = await fetch(
        server.address, path="/metrics", headers={"Accept": "application/openmetrics-text"}
    )
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.body.endswith(b"# EOF\n")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host (RFC 9112)
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: a\r\n" * 100 + b"\r\n", 400),
    ],
)
async def test_bad_requests(app: tuple[App, http.HttpServer], raw: bytes, status: int) -> None:
    _, server = app
    assert (await fetch(server.address, raw)).status == status


async def test_head_has_headers_and_no_body(app: tuple[App, http.HttpServer]) -> None:
    _, server = app
    reply = await fetch(server.address, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (reply.status, reply.headers["content-length"], reply.body) == (200, "3", b"")


async def test_a_failing_route_is_a_500_and_the_server_goes_on() -> None:
    def broken(path: str, **_: object) -> http.Answer:
        raise RuntimeError(path)

    server = http.HttpServer(
        LOOPBACK, registry=CollectorRegistry(), ready=lambda: None, routes={"/x": broken}
    )
    async with server:
        assert (await fetch(server.address, path="/x/y")).status == 500
        assert (await fetch(server.address, path="/readyz")).status == 200


async def test_a_failing_readiness_check_is_not_ready() -> None:
    def check() -> str | None:
        raise RuntimeError("boom")

    async with http.HttpServer(LOOPBACK, registry=CollectorRegistry(), ready=check) as server:
        reply = await fetch(server.address, path="/readyz")
    assert reply.status == 503
    assert b"boom" in reply.body


async def test_stop_lets_a_request_in_flight_finish_and_refuses_new_ones() -> None:
    server = http.HttpServer(LOOPBACK, registry=CollectorRegistry(), ready=lambda: None)
    await server.start()
    address = server.address
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # head not finished yet
    await writer.drain()
    async with asyncio.timeout(5):
        # The server has no event for "accepted"; yield until it took the connection.
        while not server.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0)

    stopping = asyncio.create_task(server.stop(grace_s=5))
    writer.write(b"\r\n")
    await writer.drain()
    answer = await reader.read()
    await stopping
    writer.close()

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address)


async def test_a_stalled_client_is_dropped_after_the_read_timeout() -> None:
    server = http.HttpServer(
        LOOPBACK, registry=CollectorRegistry(), ready=lambda: None, read_timeout_s=0.05
    )
    async with server:
        reader, writer = await asyncio.open_connection(*server.address)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()


@pytest.mark.parametrize(
    "sizes",
    [[], [5], [10, 3 * (1 << 20) + 5, 7], [1000] * 3000, [(1 << 20) - 1, 2, 1 << 20]],
)
def test_a_body_in_parts_goes_out_whole_in_bounded_writes(sizes: list[int]) -> None:
    parts = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    writes = list(http._slices(parts))
    assert b"".join(writes) == b"".join(parts)
    assert all(len(w) < 2 << 20 for w in writes)  # a gathered write stops at the first MiB


async def test_a_plain_route_and_an_async_route_both_answer() -> None:
    def plain(path: str, **_: object) -> http.Reply:
        return http.Reply(200, b"plain\n")

    async def later(path: str, **_: object) -> http.Reply:
        await asyncio.sleep(0)
        return http.Reply(200, b"later\n")

    routes: dict[str, http.Route] = {"/plain": plain, "/later": later}
    server = http.HttpServer(
        LOOPBACK, registry=CollectorRegistry(), ready=lambda: None, routes=routes
    )
    async with server:
        answers = [await fetch(server.address, path=p) for p in ("/plain", "/later")]
    assert [(a.status, a.body) for a in answers] == [(200, b"plain\n"), (200, b"later\n")]


def test_a_flood_of_refusals_is_one_log_line_per_interval() -> None:
    every = http._Every(3600)
    lines = [every.take() for _ in range(5) if every.due()]
    assert (lines, every.pending) == ([1], 4)
    assert every.due() is False
    every.last = float("-inf")
    assert (every.due(), every.take()) == (True, 6)


def _stalled_socket() -> socket.socket:
    """A client socket with a small receive window that it will never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


async def _ask(sock: socket.socket, address: tuple[str, int], path: str) -> None:
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, address)
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


async def _until(condition: Callable[[], bool]) -> None:
    """Poll `condition()` every 5 ms until true (the caller holds the deadline)."""
    while not condition():  # noqa: ASYNC110 - server state that no event announces
        await asyncio.sleep(0.005)


def _big(size: int) -> http.Route:
    def big(path: str, **_: object) -> http.Reply:
        return http.Reply(200, b"x" * size)

    return big


async def test_a_connection_counts_against_max_connections_until_it_is_closed() -> None:
    registry = CollectorRegistry()
    settings = HttpSettings(host="127.0.0.1", port=0, max_connections=1, write_timeout_s=0.5)
    routes = {"/big": _big(16 << 20)}
    server = http.HttpServer(settings, registry=registry, ready=lambda: None, routes=routes)
    with _stalled_socket() as stuck:
        async with server, asyncio.timeout(30):
            await _ask(stuck, server.address, "/big")
            await _until(lambda: server.in_flight == 1)
            extra = await fetch(server.address, path="/healthz")
            await _until(lambda: server.in_flight == 0)  # cut at the write timeout
            after = await fetch(server.address, path="/healthz")

    assert extra.status == 503
    assert after.status == 200
    assert registry.get_sample_value("sdstream_http_refused_connections_total") == 1
    assert registry.get_sample_value("sdstream_http_write_timeouts_total") == 1


async def test_a_close_the_client_never_lets_finish_is_cut_at_the_write_timeout() -> None:
    """An answer the transport took whole (under its high-water mark, so written and
    counted) but the client never reads: the socket cannot close, and is dropped."""
    registry = CollectorRegistry()
    settings = HttpSettings(host="127.0.0.1", port=0, write_timeout_s=0.05)
    server = http.HttpServer(settings, registry=registry, ready=lambda: None)

    def small_send_buffers(path: str, **_: object) -> http.Reply:
        for transport in server._gate.live.values() if server._gate else ():
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return http.Reply(200, b"x" * (48 << 10))  # more than both kernels hold

    server._routes["/stuck"] = small_send_buffers
    with _stalled_socket() as stuck:
        async with server, asyncio.timeout(30):
            await _ask(stuck, server.address, "/stuck")
            await _until(
                lambda: bool(registry.get_sample_value("sdstream_http_write_timeouts_total"))
            )
            await _until(lambda: server.in_flight == 0)

    answered = registry.get_sample_value(
        "sdstream_http_requests_total", {"route": "/stuck", "status": "200"}
    )
    assert answered == 1  # written whole, then cut at close, not mid-answer
    assert registry.get_sample_value(CUT) == 1


async def test_a_client_taking_each_slice_in_time_gets_a_big_answer_whole() -> None:
    body_size = 20 * http._CHUNK
    registry = CollectorRegistry()
    # The whole answer takes ~2 s, twice the deadline; each slice ~0.1 s, a tenth of it
    # (a wide margin: under load the reader's sleeps stretch).
    settings = HttpSettings(host="127.0.0.1", port=0, write_timeout_s=1.0)
    routes = {"/big": _big(body_size)}
    server = http.HttpServer(settings, registry=registry, ready=lambda: None, routes=routes)
    loop = asyncio.get_running_loop()
    received = bytearray()
    with socket.socket() as sock:
        sock.setblocking(False)
        async with server, asyncio.timeout(30):
            await _ask(sock, server.address, "/big")
            while chunk := await loop.sock_recv(sock, 256 << 10):
                received += chunk
                await asyncio.sleep(0.025)  # the link's pace: 20 MiB take ~2 s

    assert received.endswith(b"\r\n\r\n" + b"x" * body_size)
    assert not registry.get_sample_value("sdstream_http_write_timeouts_total")


async def test_a_refused_client_that_sent_its_request_reads_its_503() -> None:
    settings = HttpSettings(host="127.0.0.1", port=0, max_connections=1)
    async with http.HttpServer(
        settings, registry=CollectorRegistry(), ready=lambda: None
    ) as server:
        _, holder = await asyncio.open_connection(*server.address)  # a head never finished
        async with asyncio.timeout(5):
            while not server.in_flight:  # noqa: ASYNC110 - no event for "accepted"
                await asyncio.sleep(0)
        answers = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 4096)
            await writer.drain()
            try:
                async with asyncio.timeout(5):
                    answers.append((await reader.read()).split(b"\r\n", 1)[0])
            except ConnectionResetError:
                answers.append(b"reset")
            writer.close()
        holder.close()

    assert set(answers) == {b"HTTP/1.1 503 Service Unavailable"}


async def test_stop_does_not_wait_past_its_grace_for_a_client_that_stopped_reading() -> None:
    settings = HttpSettings(host="127.0.0.1", port=0, write_timeout_s=3600)
    routes = {"/big": _big(16 << 20)}
    server = http.HttpServer(
        settings, registry=CollectorRegistry(), ready=lambda: None, routes=routes
    )
    with _stalled_socket() as stuck:
        await server.start()
        async with asyncio.timeout(30):
            await _ask(stuck, server.address, "/big")
            await _until(lambda: server.in_flight == 1)
            await server.stop(grace_s=0.05)  # the write deadline is an hour away

    assert server.in_flight == 0


async def test_a_malformed_request_is_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    async with http.HttpServer(LOOPBACK, registry=registry, ready=lambda: None) as server:
        answers = [await fetch(server.address, raw) for raw in (b"garbage\r\n\r\n",
                   b"GET / HTTP/1.1\r\nno colon\r\n\r\n")]  # fmt: skip

    assert [a.status for a in answers] == [400, 400]
    bad = registry.get_sample_value(
        "sdstream_http_requests_total", {"route": "other", "status": "400"}
    )
    assert bad == 2
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
