"""The discovery page's routes: `GET /` (jobs, clusters, readiness, lag) and
`GET /discovery/<job>?q=&state=&page=` (a job's targets, discovered and final labels).

Mounted on the process's HTTP server like HTTP SD, so the same auth and TLS apply.
A request takes a snapshot of the fold on the event loop (dict copies), then builds and
renders the page in one worker thread: a job page walks and relabels every target of
the job (for the search and the counts), which for a big job takes long enough to stall
the loop. At most `MAX_RENDERS` pages are built or queued at once; one more is answered
503 with Retry-After (`sdstream_discovery_page_busy_total`), so a crowd of page views
never queues unbounded work, and /healthz, /readyz and the Kafka clients keep the loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol
from urllib.parse import unquote

from prometheus_client import CollectorRegistry, Counter

from consumers.discovery import html, rows, source
from consumers.sinks.http_sd import PartsReply

logger = logging.getLogger(__name__)

ROOT = "/"
MAX_RENDERS = 4  # pages being built or waiting for the thread
_BUSY_RETRY_S = 5


class Source(Protocol):
    def jobs(self) -> Sequence[str]: ...
    def snapshot(self) -> source.Snapshot: ...


def _reply(status: int, body: bytes, extra: Mapping[str, str] | None = None) -> PartsReply:
    return PartsReply(status, (body,), {**html.HEADERS, **(extra or {})})


class DiscoveryPage:
    """Mount as `{ROOT: page, html.PREFIX: page}`."""

    def __init__(
        self,
        data: Source,
        *,
        registry: CollectorRegistry | None = None,
        page_size: int = rows.PAGE_SIZE,
        max_renders: int = MAX_RENDERS,
    ) -> None:
        self._data = data
        self._page_size = page_size
        self._max_renders = max_renders
        self._running = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="discovery-page")
        self._busy = Counter(
            "sdstream_discovery_page_busy",
            f"Discovery page requests answered 503: {max_renders} pages being built.",
            registry=registry,
        )

    @property
    def routes(self) -> Mapping[str, DiscoveryPage]:
        return {ROOT: self, html.PREFIX: self}

    def __call__(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> PartsReply | Awaitable[PartsReply]:
        if path in (ROOT, html.PREFIX, html.PREFIX + "/"):
            return self._render(lambda snap: html.overview(source.overview(snap)))
        job = unquote(path.removeprefix(html.PREFIX + "/"))
        if not path.startswith(html.PREFIX + "/") or job not in self._data.jobs():
            return _reply(404, html.message("Not found", "No such job."))
        try:
            wanted = rows.parse_query(query)
        except rows.BadQuery as exc:
            return _reply(400, html.message("Bad request", str(exc)))
        size = self._page_size
        return self._render(
            lambda snap: html.job_page(
                rows.select(source.job_targets(snap, job), wanted, page_size=size),
                source.disagreement(snap.monitor_jobs, job),
            )
        )

    async def _render(self, build: Callable[[source.Snapshot], bytes]) -> PartsReply:
        if self._running >= self._max_renders:
            self._busy.inc()
            text = "Too many pages being built; retry in a few seconds."
            return _reply(503, html.message("Busy", text), {"Retry-After": str(_BUSY_RETRY_S)})
        snapshot = self._data.snapshot()  # on the loop: the fold changes under a thread
        loop = asyncio.get_running_loop()
        work = self._pool.submit(_without_gc, build, snapshot)
        self._running += 1  # until the thread is done, even if the request goes away
        work.add_done_callback(lambda _: _call_soon(loop, self._release))
        return _reply(200, await asyncio.wrap_future(work))

    def _release(self) -> None:
        self._running -= 1

    def close(self) -> None:
        """At shutdown: drop queued renders (the one running finishes; the interpreter
        waits for the pool's thread at exit)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _without_gc(build: Callable[[source.Snapshot], bytes], snapshot: source.Snapshot) -> bytes:
    """Build with the cyclic collector paused: a page allocates a dict per target, which
    set off full collections that held the GIL, and so the event loop, for up to ~50 ms
    at 50k pods (the page's garbage has no cycles: reference counting frees it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return build(snapshot)
    finally:
        if was_enabled:
            gc.enable()
            # The pause is process-wide: collect what the youngest generation gathered
            # meanwhile (cheap: the page's own objects are already freed), so renders
            # back to back never let cyclic garbage from other threads pile up.
            gc.collect(0)


def _call_soon(loop: asyncio.AbstractEventLoop, call: Callable[[], None]) -> None:
    """From the worker thread; the loop may be closed at shutdown, then nothing waits."""
    try:
        loop.call_soon_threadsafe(call)
    except RuntimeError:
        return
