"""The process's HTTP server: /metrics, /healthz, /readyz, and mounted routes (HTTP SD).

On aiohttp's low-level server (`aiohttp.web.Server`: its HTTP parser, keep-alive and
shutdown logic), not on its `Application`: our routes are a prefix table of pure
callables, so the router, middlewares and signals would only add layers. Scrapers and
probes send one GET at a time and Prometheus polls HTTP SD once a minute, so one request
per connection (`Connection: close`), GET and HEAD only.

Limits, so that no client can hold the process (`HttpSettings`), and how each is kept:
- `max_connections`: connections answered at once, from accept until their socket is
  closed. One more is answered 503 at once, before its request is parsed, and closed once
  the client closes, or after 1 s (`sdstream_http_refused_connections_total`). aiohttp
  has no such cap, so `_Gate` (the `web.Server` subclass asyncio calls once per accepted
  socket) hands beyond it a `_Refusal` protocol instead of a request handler: no parser,
  no task. With TLS the gate counts connections whose handshake is done; handshakes under
  way are bounded by the listen backlog and `ssl_handshake_timeout` (the read timeout).
- `write_timeout_s`: deadline for the client to take each slice (about 1 MiB) of a
  response, and for the last buffered bytes at close. A client that stops reading is cut
  off, its buffered bytes dropped (`sdstream_http_write_timeouts_total`), so stalled
  readers cannot pin connections and bodies; one that reads slowly but steadily gets a
  big answer whole. Bodies are written part by part (`Answer.parts`), never joined;
  parts made as they are taken (an inflated HTTP SD answer, `Answer.size` set) are made
  in a worker thread, one slice at a time.
- Request heads: lines of at most 8 KiB, 100 headers (aiohttp's `max_line_size`,
  `max_field_size`, `max_headers`), else 400; a head not complete within
  `read_timeout_s` closes the connection (aiohttp's keep-alive timer, which also runs
  from accept until the first request).

- `/metrics`: prometheus-client's aiohttp exposition of the injected `CollectorRegistry`
  (OpenMetrics on request, `?name[]=` filters).
- `/healthz`: 200 while the event loop answers.
- `/readyz`: 200 when the injected check returns None, else 503 with its reason.
- Mounted routes: `routes={"/http_sd": http_sd.HttpSd(...)}` answers `/http_sd` and
  `/http_sd/...`; a route is a callable from (path, query, headers) to an answer, or to
  an awaitable of one (a route does long work off the event loop, never on it).

Two optional hooks: `ssl_context` serves TLS with it (whoever made it may load new
certificates into it; new connections use them), and `guard` sees every request before
routing, probes and /metrics included, and may answer it instead (401, 403...).

Every request is counted and timed by route and status (`HttpMetrics`) on the same
registry, the parser's 400s included. Bound to loopback unless `HttpSettings.host` says
otherwise. `stop()` stops accepting, lets connections in flight finish for a grace
period, then cancels them and drops their sockets.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, cast
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler

from schemas.config import HttpSettings
from sdstream import process_metrics

logger = logging.getLogger(__name__)

ReadyCheck = Callable[[], str | None]  # None: ready; else why not
TEXT = "text/plain; charset=utf-8"
_MAX_HEAD_LINE = 8192
_MAX_HEADERS = 100
_LOG_EVERY_S = 10.0  # at most one line per interval about refused or cut connections
_REFUSE_WAIT_S = 1.0  # how long a refused client may take to read its 503 and close
_CANCEL_WAIT_S = 0.1  # at stop, for handlers of dropped connections before cancelling
_CHUNK = 1 << 20  # bytes of a body written before waiting for the socket
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_SERVER = {"Server": "sdstream"}  # not aiohttp's default, which names its and Python's versions
_ROUTE = web.RequestKey("sdstream_route", str)  # the route label, set by our handler
_CUT = web.RequestKey("sdstream_cut", bool)  # the answer was cut off: not counted


class Answer(Protocol):
    """What a route returns (`consumers.sinks.http_sd.PartsReply` is one)."""

    @property
    def status(self) -> int: ...
    @property
    def parts(self) -> Iterable[bytes]:
        """The body, in pieces written one after another (a big HTTP SD document is its
        groups' compressed segments, or those inflated: joining them first would copy
        hundreds of MiB per answer)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def size(self) -> int | None:
        """The body's length when `parts` are made as they are taken (CPU work: the
        server takes them in a worker thread, one slice at a time); None: the server sums
        them, so `parts` must then be a sequence (iterated twice)."""
        ...


class Route(Protocol):
    """A mounted handler of GETs; `path` is still percent-encoded, header names lower case."""

    def __call__(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> Answer | Awaitable[Answer]: ...


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def parts(self) -> Sequence[bytes]:
        return (self.body,)

    @property
    def size(self) -> int | None:
        return None


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head: `path` still percent-encoded, header names lower case."""

    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]


class Guard(Protocol):
    """Decides, for every request before routing, whether it is answered: None lets it
    through, a `Reply` is sent as is (401 with WWW-Authenticate, 403...)."""

    async def check(self, request: Request) -> Reply | None: ...

    async def trusted(self, request: Request) -> bool:
        """Whether `request` carries valid credentials: an open `/readyz` tells others only
        that the process is not ready, not why (the reason names principals, brokers,
        topics and files)."""
        ...


@dataclass
class _Every:
    """Counts events; `due()` says when one line may summarise those since the last."""

    interval_s: float
    pending: int = 0
    last: float = float("-inf")

    def due(self) -> bool:
        self.pending += 1
        return time.monotonic() - self.last >= self.interval_s

    def take(self) -> int:
        taken, self.pending, self.last = self.pending, 0, time.monotonic()
        return taken


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 21\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    b"too many connections\n"
)


class ListenError(Exception):
    """`http.host`/`http.port` cannot be listened on (port in use, unknown host): a
    configuration error, said in one line, naming the settings."""


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter  # route, status
    latency: Histogram  # route, status: request head read to response written
    connections: Gauge  # connections being answered
    refused: Counter  # connections refused beyond max_connections
    write_timeouts: Counter  # responses cut off at write_timeout_s

    @classmethod
    def create(cls, registry: CollectorRegistry) -> HttpMetrics:
        labels = ("route", "status")
        return cls(
            requests=Counter(
                "sdstream_http_requests_total",
                "HTTP requests by route and status.",
                labels,
                registry=registry,
            ),
            latency=Histogram(
                "sdstream_http_request_duration_seconds",
                "HTTP request latency by route and status.",
                labels,
                buckets=_BUCKETS,
                registry=registry,
            ),
            connections=Gauge(
                "sdstream_http_connections", "Connections being answered.", registry=registry
            ),
            refused=Counter(
                "sdstream_http_refused_connections_total",
                "Connections refused with 503 because max_connections were being answered.",
                registry=registry,
            ),
            write_timeouts=Counter(
                "sdstream_http_write_timeouts_total",
                "Responses cut off because the client took no part of them within write_timeout_s.",
                registry=registry,
            ),
        )


class _Refusal(asyncio.Protocol):
    """A connection beyond `max_connections`: 503 without parsing anything. What the
    client sends is dropped until it closes, for at most `_REFUSE_WAIT_S`: closing with
    unread bytes would reset the connection, and the client might see ECONNRESET instead
    of its 503."""

    def __init__(self, refused: Callable[[asyncio.BaseTransport], None]) -> None:
        self._refused = refused
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writing = cast(asyncio.Transport, transport)
        self._refused(transport)
        writing.write(_REFUSED)
        if writing.can_write_eof():  # not over TLS: there the client's close ends it
            writing.write_eof()
        self._timer = asyncio.get_running_loop().call_later(_REFUSE_WAIT_S, writing.abort)

    def data_received(self, data: bytes) -> None:
        pass  # the request is never parsed

    def eof_received(self) -> bool:
        return False  # the client closed: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _Gate(web.Server):
    """aiohttp's low-level server, plus what it lacks: the connection cap (before any
    parsing) and the close deadline. asyncio calls it once per accepted socket for the
    socket's protocol; aiohttp's handlers report their connections made and lost."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        max_connections: int,
        refused: Callable[[asyncio.BaseTransport], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._max = max_connections
        self._refused = refused
        self.live: dict[RequestHandler, asyncio.Transport] = {}
        self.idle = asyncio.Event()
        self.idle.set()
        self._closing: dict[RequestHandler, asyncio.TimerHandle] = {}

    def __call__(self) -> RequestHandler:
        if len(self.live) >= self._max:
            refusal = _Refusal(self._refused)
            return cast(RequestHandler, refusal)  # any protocol will do for asyncio
        return super().__call__()

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.live[handler] = transport
        self.idle.clear()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.live.pop(handler, None)
        timer = self._closing.pop(handler, None)
        if timer is not None:
            timer.cancel()
        if not self.live:
            self.idle.set()

    def close_within(
        self, handler: RequestHandler, seconds: float, cut: Callable[[], None]
    ) -> None:
        """Once answered: `cut()` unless the socket is closed within `seconds` (a client
        that stopped reading keeps the transport's last bytes, and the socket, forever)."""
        if handler in self.live:
            loop = asyncio.get_running_loop()
            self._closing[handler] = loop.call_later(seconds, cut)


class _QuietParser(logging.Filter):
    """aiohttp logs a client's malformed request with a traceback; it is counted (400 in
    `sdstream_http_requests_total`) instead. Anything else aiohttp says goes through."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HttpProcessingError)


_aiohttp_logger = logging.getLogger(__name__ + ".aiohttp")
_aiohttp_logger.addFilter(_QuietParser())


class HttpServer:
    """`async with HttpServer(settings, registry=..., ready=..., routes=...) as server:`."""

    def __init__(  # noqa: PLR0913 - keyword-only collaborators and hooks
        self,
        settings: HttpSettings,
        *,
        registry: CollectorRegistry,
        ready: ReadyCheck,
        routes: Mapping[str, Route] | None = None,
        read_timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        guard: Guard | None = None,
        degraded: ReadyCheck | None = None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._ready = ready
        self._degraded = degraded  # ready, but something to name on /readyz (200)
        self._routes = dict(routes or {})
        self._read_timeout_s = read_timeout_s
        self._ssl_context = ssl_context
        self._guard = guard
        process_metrics.register(registry)
        self._metrics = HttpMetrics.create(registry)
        self._exposition = make_aiohttp_handler(registry, disable_compression=True)
        self._gate: _Gate | None = None
        self._listener: asyncio.Server | None = None
        self._metrics.connections.set_function(lambda: self.in_flight)
        self._refusals = _Every(_LOG_EVERY_S)  # a flood of them is one line per interval
        self._cuts = _Every(_LOG_EVERY_S)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the first listening socket; the port is real even if 0 was set."""
        if self._listener is None or not self._listener.sockets:
            raise RuntimeError("the HTTP server is not started")
        host, port = self._listener.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def in_flight(self) -> int:
        """Connections being answered now (accepted, socket not yet closed)."""
        return len(self._gate.live) if self._gate is not None else 0

    async def start(self) -> None:
        host, port = self._settings.host, self._settings.port
        self._gate = _Gate(
            self._handle,
            max_connections=self._settings.max_connections,
            refused=self._refused,
            keepalive_timeout=self._read_timeout_s,  # also runs from accept to first head
            tcp_keepalive=False,  # one request per connection: no idle ones to probe
            max_line_size=_MAX_HEAD_LINE,
            max_field_size=_MAX_HEAD_LINE,
            max_headers=_MAX_HEADERS,
            access_log_class=_access_counter(self._count),
            access_log=logger,  # not written to: `_count` counts instead
            logger=_aiohttp_logger,
        )
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                self._gate,
                host,
                port,
                ssl=self._ssl_context,
                ssl_handshake_timeout=self._read_timeout_s if self._ssl_context else None,
            )
        except OSError as exc:
            reason = (exc.strerror or str(exc)).rsplit(": ", 1)[-1]
            raise ListenError(
                f"http.host, http.port: cannot listen on {host}:{port}: {reason}"
            ) from exc
        host, port = self.address  # the real port when 0 was set
        scheme = "HTTPS" if self._ssl_context else "HTTP"
        logger.info("Serving %s on %s:%d.", scheme, host, port, extra={"host": host, "port": port})

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop accepting; give connections in flight `grace_s` to finish (a request
        whose head is still arriving is answered), then cancel them and drop their
        sockets."""
        if self._listener is None or self._gate is None:
            return
        self._listener.close()
        if not self._gate.idle.is_set():
            try:
                async with asyncio.timeout(grace_s):
                    await self._gate.idle.wait()
            except TimeoutError:
                logger.warning(
                    "Stopping with %d connections still open after %.1f s.",
                    self.in_flight,
                    grace_s,
                )
        for transport in list(self._gate.live.values()):
            transport.abort()  # a close would wait for a client that may never read
        await self._gate.shutdown(_CANCEL_WAIT_S)  # then cancels handlers still running
        await self._listener.wait_closed()
        self._listener = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _refused(self, transport: asyncio.BaseTransport) -> None:
        self._metrics.refused.inc()
        if self._refusals.due():
            logger.warning(
                "Refused %d connections: %d (max_connections) were being answered.",
                self._refusals.take(),
                self.in_flight,
                extra={"reason": "max_connections", "peer": _peer(transport)},
            )

    def _count(self, request: web.BaseRequest, response: web.StreamResponse, took: float) -> None:
        """Every answer aiohttp wrote, ours and its parser's 400s; not the cut ones."""
        if request.get(_CUT, False):
            return
        route, status = request.get(_ROUTE, "other"), str(response.status)
        self._metrics.requests.labels(route, status).inc()
        self._metrics.latency.labels(route, status).observe(took)

    async def _handle(self, raw: web.BaseRequest) -> web.StreamResponse:
        request = _request(raw)
        route = self._label(request.path)
        raw[_ROUTE] = route
        refused = await self._guard.check(request) if self._guard is not None else None
        answer = refused if refused is not None else await self._dispatch(route, request, raw)
        return await self._send(raw, answer, route)

    def _label(self, path: str) -> str:
        """The route label of `path` in metrics: a fixed set, whatever clients send."""
        if path in ("/metrics", "/healthz", "/readyz"):
            return path
        for prefix in self._routes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix
        return "other"

    async def _dispatch(self, route: str, request: Request, raw: web.BaseRequest) -> Answer:
        if request.method not in ("GET", "HEAD"):
            raw[_ROUTE] = "other"
            return Reply(405, b"GET or HEAD only\n", {"Allow": "GET, HEAD", "Content-Type": TEXT})
        if route == "/metrics":
            return await self._metrics_page(raw)
        if route == "/healthz":
            return Reply(200, b"ok\n", {"Content-Type": TEXT})
        if route == "/readyz":
            return self._readyz(detailed=self._guard is None or await self._guard.trusted(request))
        if route in self._routes:
            return await self._call(self._routes[route], request)
        return Reply(404, b"not found\n", {"Content-Type": TEXT})

    async def _call(self, route: Route, request: Request) -> Answer:
        try:
            answer = route(request.path, query=request.query, headers=request.headers)
            return await answer if inspect.isawaitable(answer) else answer
        except Exception:
            logger.exception("Route failed on %s.", request.path, extra={"path": request.path})
            return Reply(500, b"internal error\n", {"Content-Type": TEXT})

    async def _metrics_page(self, raw: web.BaseRequest) -> Answer:
        page = await self._exposition(cast(web.Request, raw))
        assert isinstance(page, web.Response)  # noqa: S101 - what make_aiohttp_handler makes
        headers = {k: v for k, v in page.headers.items() if k.lower() != "content-length"}
        return Reply(page.status, cast(bytes, page.body), headers)

    def _readyz(self, *, detailed: bool) -> Answer:
        try:
            reason = self._ready()
        except Exception as exc:
            logger.exception("Readiness check failed.")
            reason = f"readiness check failed: {exc!r}"
        if reason is None:
            note = self._degraded() if self._degraded is not None and detailed else None
            said = "ready\n" if note is None else f"ready, degraded: {note}\n"
            return Reply(200, said.encode(), {"Content-Type": TEXT})
        said = f"{reason}\n" if detailed else "not ready (details need credentials)\n"
        return Reply(503, said.encode(), {"Content-Type": TEXT})

    async def _send(self, raw: web.BaseRequest, answer: Answer, route: str) -> web.StreamResponse:
        """Write `answer` slice by slice, each under the write deadline: a deadline on
        progress, so a big answer to a slow but reading client goes out whole, however
        long it takes in all. A client that takes no slice in time is cut off."""
        timeout_s = self._settings.write_timeout_s
        parts = answer.parts if answer.status not in (204, 304) else ()
        made = answer.size is not None  # parts made as taken: off the event loop
        size = answer.size if answer.size is not None else sum(len(part) for part in parts)
        headers = {**_SERVER, **answer.headers}
        if size <= _CHUNK and not made:  # one slice: head and body at once, unwaited
            response = web.Response(status=answer.status, headers=headers)
            response.body = b"".join(parts) if answer.status != 304 else None
            response.force_close()  # one request per connection
            self._close_within(raw)
            return response
        stream = web.StreamResponse(status=answer.status, headers=headers)
        stream.force_close()
        stream.content_length = size
        try:
            async with asyncio.timeout(timeout_s):
                await stream.prepare(raw)
            if raw.method != "HEAD":
                async for piece in _taken(_slices(parts), off_loop=made):
                    async with asyncio.timeout(timeout_s):
                        await stream.write(piece)
            await stream.write_eof()
        except TimeoutError:
            raw[_CUT] = True
            self._cut(raw.protocol, route)
            return stream
        self._close_within(raw)
        return stream

    def _close_within(self, raw: web.BaseRequest) -> None:
        """Once answered, the close has the write deadline too: the client must take what
        the transport still buffers, else the socket is dropped."""
        protocol = raw.protocol
        if self._gate is not None:
            cut = lambda: self._cut(protocol, "closing")  # noqa: E731
            self._gate.close_within(protocol, self._settings.write_timeout_s, cut)

    def _cut(self, protocol: RequestHandler, route: str) -> None:
        """Drop a response the client does not read: a close would wait for it to."""
        transport = protocol.transport
        self._metrics.write_timeouts.inc()
        if self._cuts.due():
            logger.warning(
                "Cut %d responses (the last of %s to %s) not read within %.1f s.",
                self._cuts.take(),
                route,
                _peer(transport),
                self._settings.write_timeout_s,
                extra={"reason": "write_timeout", "route": route, "peer": _peer(transport)},
            )
        if transport is not None:
            transport.abort()


def _request(raw: web.BaseRequest) -> Request:
    """Our view of aiohttp's request: the path still percent-encoded, the query as
    `parse_qs` gives it, header names in lower case (the last of a repeated one wins)."""
    target = urlsplit(raw.raw_path)
    query = parse_qs(target.query, keep_blank_values=True)
    headers = {name.lower(): value for name, value in raw.headers.items()}
    return Request(raw.method, target.path or "/", query, headers)


def _access_counter(
    count: Callable[[web.BaseRequest, web.StreamResponse, float], None],
) -> type[AbstractAccessLogger]:
    """aiohttp's hook that sees every answer it writes (with the time from the head
    parsed to the answer written), as a class aiohttp instantiates per connection."""

    class Counted(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            count(request, response, time)

    return Counted


async def _taken(
    pieces: Iterator[bytes | memoryview], *, off_loop: bool
) -> AsyncIterator[bytes | memoryview]:
    """`pieces`, each made in a worker thread when `off_loop` (inflating a slice takes a
    few ms: a whole answer's, on the event loop, would stall every other client)."""
    if not off_loop:
        for piece in pieces:
            yield piece
        return

    def take() -> bytes | memoryview | None:
        return next(pieces, None)

    while (made := await asyncio.to_thread(take)) is not None:
        yield made


def _slices(parts: Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """`parts` as writes of about `_CHUNK` bytes: big parts cut, small ones gathered, so
    the transport never buffers a whole body and small fragments cost few writes."""
    gathered: list[bytes] = []
    size = 0
    for part in parts:
        if len(part) >= _CHUNK:
            if gathered:
                yield b"".join(gathered)
                gathered, size = [], 0
            view = memoryview(part)
            for start in range(0, len(view), _CHUNK):
                yield view[start : start + _CHUNK]
            continue
        gathered.append(part)
        size += len(part)
        if size >= _CHUNK:
            yield b"".join(gathered)
            gathered, size = [], 0
    if gathered:
        yield b"".join(gathered)
