"""The process's HTTP server: /metrics, /healthz, /readyz, and mounted routes (HTTP SD).

A small HTTP/1.1 server on asyncio streams rather than a framework: scrapers and probes
send one GET at a time and Prometheus polls HTTP SD once a minute, so one request per
connection (`Connection: close`), GET and HEAD only, bounded request heads and a read
timeout are all it needs, and the dependency list stays short.

Limits, so that no client can hold the process (`HttpSettings`):
- `max_connections`: connections answered at once. One more is answered 503 at once,
  before its request is parsed, and closed once the client closes, or after 1 s
  (`sdstream_http_refused_connections_total`).
- `write_timeout_s`: deadline for the client to take each slice (about 1 MiB) of a
  response, and for the last buffered bytes at close. A client that stops reading is cut
  off, its buffered bytes dropped (`sdstream_http_write_timeouts_total`), so stalled
  readers cannot pin connections and bodies; one that reads slowly but steadily gets a
  big answer whole. A connection counts against `max_connections` until its socket is
  closed.

- `/metrics`: exposition of the injected `CollectorRegistry` (OpenMetrics on request).
- `/healthz`: 200 while the event loop answers.
- `/readyz`: 200 when the injected check returns None, else 503 with its reason.
- Mounted routes: `routes={"/http_sd": http_sd.HttpSd(...)}` answers `/http_sd` and
  `/http_sd/...`; a route is a callable from (path, query, headers) to an answer, or to
  an awaitable of one (a route does long work off the event loop, never on it).

Every request is counted and timed by route and status (`HttpMetrics`) on the same
registry. Bound to loopback unless `HttpSettings.host` says otherwise. `stop()` stops
accepting, lets requests in flight finish for a grace period, then cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from schemas.config import HttpSettings

logger = logging.getLogger(__name__)

ReadyCheck = Callable[[], str | None]  # None: ready; else why not
TEXT = "text/plain; charset=utf-8"
_MAX_HEAD_LINE = 8192
_MAX_HEADERS = 100
_LOG_EVERY_S = 10.0  # at most one line per interval about refused or cut connections
_REFUSE_WAIT_S = 1.0  # how long a refused client may take to read its 503 and close
_CHUNK = 1 << 20  # bytes of a body written before waiting for the socket
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Answer(Protocol):
    """What a route returns (`consumers.sinks.http_sd.Reply` is one)."""

    @property
    def status(self) -> int: ...
    @property
    def parts(self) -> Sequence[bytes]:
        """The body, in pieces written one after another (a big HTTP SD document is its
        groups' fragments: joining them first would copy hundreds of MiB per answer)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]: ...


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


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]


class BadRequest(ValueError):
    pass


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


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
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


class HttpServer:
    """`async with HttpServer(settings, registry=..., ready=..., routes=...) as server:`."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        registry: CollectorRegistry,
        ready: ReadyCheck,
        routes: Mapping[str, Route] | None = None,
        read_timeout_s: float = 10.0,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._ready = ready
        self._routes = dict(routes or {})
        self._read_timeout_s = read_timeout_s
        self._metrics = HttpMetrics.create(registry)
        self._server: asyncio.Server | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._metrics.connections.set_function(lambda: len(self._in_flight))
        self._refusals = _Every(_LOG_EVERY_S)  # a flood of them is one line per interval
        self._cuts = _Every(_LOG_EVERY_S)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the first listening socket; the port is real even if 0 was set."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTP server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def in_flight(self) -> int:
        """Connections being answered now."""
        return len(self._in_flight)

    async def start(self) -> None:
        host, port = self._settings.host, self._settings.port
        try:
            self._server = await asyncio.start_server(
                self._connection, host, port, limit=_MAX_HEAD_LINE
            )
        except OSError as exc:
            reason = (exc.strerror or str(exc)).rsplit(": ", 1)[-1]
            raise ListenError(
                f"http.host, http.port: cannot listen on {host}:{port}: {reason}"
            ) from exc
        host, port = self.address  # the real port when 0 was set
        logger.info("Serving HTTP on %s:%d.", host, port, extra={"host": host, "port": port})

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop accepting; give requests in flight `grace_s` to finish, then cancel them."""
        if self._server is None:
            return
        self._server.close()
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

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

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._in_flight) >= self._settings.max_connections:
            await self._refuse(reader, writer)
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._exchange(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or stalled: nothing to answer
        finally:
            try:
                await self._close(writer)
            finally:  # counted until its socket is gone: max_connections holds
                if task is not None:
                    self._in_flight.discard(task)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        """Close, waiting at most `write_timeout_s` for the client to take what the
        transport still buffers (up to its low-water mark), then drop it."""
        closed = False
        writer.close()
        try:
            async with asyncio.timeout(self._settings.write_timeout_s):
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            closed = True
        except TimeoutError:
            self._cut(writer, "closing")
        finally:
            if not closed:  # timed out or cancelled (stop): nothing may wait for the peer
                writer.transport.abort()

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """503 without parsing the request. The request is read and dropped until the
        client closes, for at most `_REFUSE_WAIT_S`: closing with unread bytes would reset
        the connection, and the client might see ECONNRESET instead of its 503."""
        self._metrics.refused.inc()
        if self._refusals.due():
            logger.warning(
                "Refused %d connections: %d (max_connections) were being answered.",
                self._refusals.take(),
                len(self._in_flight),
                extra={"reason": "max_connections", "peer": _peer(writer)},
            )
        writer.write(_REFUSED)
        try:
            async with asyncio.timeout(_REFUSE_WAIT_S):
                writer.write_eof()
                while await reader.read(_MAX_HEAD_LINE):
                    pass
        except (TimeoutError, OSError):
            writer.transport.abort()
            return
        writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._read_timeout_s):
                request = await read_request(reader)
        except BadRequest as exc:
            request, route = None, "other"
            answer: Answer = Reply(400, f"{exc}\n".encode(), {"Content-Type": TEXT})
        started = time.perf_counter()
        if request is not None:
            route, answer = await self._dispatch(request)
        head_only = request is not None and request.method == "HEAD"
        try:
            await _send(
                writer, answer, head_only=head_only, timeout_s=self._settings.write_timeout_s
            )
        except TimeoutError:
            self._cut(writer, route)
            raise
        status = str(answer.status)
        self._metrics.requests.labels(route, status).inc()
        self._metrics.latency.labels(route, status).observe(time.perf_counter() - started)

    def _cut(self, writer: asyncio.StreamWriter, route: str) -> None:
        """Drop a response the client does not read: `close()` would wait for it to."""
        self._metrics.write_timeouts.inc()
        if self._cuts.due():
            logger.warning(
                "Cut %d responses (the last of %s to %s) not read within %.1f s.",
                self._cuts.take(),
                route,
                _peer(writer),
                self._settings.write_timeout_s,
                extra={"reason": "write_timeout", "route": route, "peer": _peer(writer)},
            )
        writer.transport.abort()

    async def _dispatch(self, request: Request) -> tuple[str, Answer]:
        """(route label, answer) for a parsed request."""
        if request.method not in ("GET", "HEAD"):
            allow = {"Allow": "GET, HEAD", "Content-Type": TEXT}
            return "other", Reply(405, b"GET or HEAD only\n", allow)
        if request.path == "/metrics":
            return request.path, self._metrics_page(request)
        if request.path == "/healthz":
            return request.path, Reply(200, b"ok\n", {"Content-Type": TEXT})
        if request.path == "/readyz":
            return request.path, self._readyz()
        for prefix, route in self._routes.items():
            if request.path == prefix or request.path.startswith(prefix + "/"):
                return prefix, await self._call(route, request)
        return "other", Reply(404, b"not found\n", {"Content-Type": TEXT})

    async def _call(self, route: Route, request: Request) -> Answer:
        try:
            answer = route(request.path, query=request.query, headers=request.headers)
            return await answer if inspect.isawaitable(answer) else answer
        except Exception:
            logger.exception("Route failed on %s.", request.path, extra={"path": request.path})
            return Reply(500, b"internal error\n", {"Content-Type": TEXT})

    def _metrics_page(self, request: Request) -> Answer:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Reply(200, encoder(self._registry), {"Content-Type": content_type})

    def _readyz(self) -> Answer:
        try:
            reason = self._ready()
        except Exception as exc:
            logger.exception("Readiness check failed.")
            reason = f"readiness check failed: {exc!r}"
        if reason is None:
            return Reply(200, b"ready\n", {"Content-Type": TEXT})
        return Reply(503, f"{reason}\n".encode(), {"Content-Type": TEXT})


async def read_request(reader: asyncio.StreamReader) -> Request:
    """Parse a request head (the body of a GET is never read). Raises BadRequest."""
    line = await _line(reader)
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest(f"malformed request line {line[:100]!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    count = 0
    while header := await _line(reader):
        count += 1
        if count > _MAX_HEADERS:
            raise BadRequest("too many headers")
        name, colon, value = header.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(f"malformed header {header[:100]!r}")
        headers[name.lower()] = value.strip()
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    return Request(method, url.path or "/", query, headers)


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head line too long") from exc
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise BadRequest("request head cut short") from exc
        raise
    return raw.decode("latin-1").rstrip("\r\n")


async def _send(
    writer: asyncio.StreamWriter, answer: Answer, *, timeout_s: float, head_only: bool = False
) -> None:
    """Write `answer`; TimeoutError when the client takes no slice of it (about `_CHUNK`
    bytes) within `timeout_s`: a deadline on progress, so a big answer to a slow but
    reading client goes out whole, however long it takes in all."""
    parts = answer.parts if answer.status not in (204, 304) else ()
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in answer.headers.items()]
    if answer.status != 304:
        lines.append(f"Content-Length: {sum(len(part) for part in parts)}")
    lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        for piece in _slices(parts):
            writer.write(piece)
            async with asyncio.timeout(timeout_s):
                await writer.drain()
    async with asyncio.timeout(timeout_s):
        await writer.drain()


def _slices(parts: Sequence[bytes]) -> Iterator[bytes | memoryview]:
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
