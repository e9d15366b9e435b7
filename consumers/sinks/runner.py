"""Builds the sinks of one process: view, targets reader, HTTP SD route, file SD writer.

The process glue (`sdstream consume`) owns the HTTP server and the task group; this
module only wires the sink pieces together in the one correct order (the HTTP SD cache
is invalidated before file SD yields to its writer thread), so the glue cannot get it
wrong and the integration tests exercise the same wiring.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from consumers.monitors import kafka_monitors
from consumers.sinks import (
    file_sd,
    http_sd,
    kafka_targets,
    scrape_configs,
    sink_metrics,
    target_allocator,
    views,
)
from schemas.config import MAX_SHARDS, KafkaSettings
from schemas.monitors import MonitorsSettings

# A GET handler as `sdstream.http` mounts it: (path, query=, headers=) -> reply or awaitable
Route = Callable[..., http_sd.PartsReply | Awaitable[http_sd.PartsReply]]


@dataclass(frozen=True)
class Sinks:
    view: views.TargetView
    reader: kafka_targets.TargetsReader
    http: http_sd.HttpSd
    files: file_sd.FileSd | None
    metrics: sink_metrics.SinkMetrics
    # With `monitors:`: the live monitor jobs (`monitors.live.jobs()`), read by this
    # replica from the monitor and Namespace topics; run it beside `reader`.
    monitors: kafka_monitors.MonitorsReader | None = None

    def unready_reason(self) -> str | None:
        """The targets reader's reason, then the monitor reader's."""
        return self.reader.unready_reason() or (
            self.monitors.unready_reason() if self.monitors is not None else None
        )

    def degraded_reason(self) -> str | None:
        """What /readyz names while ready: the targets reader's refusal, then the monitor
        reader's."""
        return self.reader.degraded_reason() or (
            self.monitors.degraded_reason() if self.monitors is not None else None
        )

    # With `monitors:`: GET /scrape_configs, the Target Allocator's /jobs, both under /ta
    monitor_routes: Mapping[str, Route] = field(default_factory=dict)

    @property
    def routes(self) -> Mapping[str, Route]:
        """For `sdstream.http.HttpServer(routes=...)`."""
        return {http_sd.PREFIX: self.http, **self.monitor_routes}


def build(  # noqa: PLR0913 - keyword-only wiring, each with a default
    kafka: KafkaSettings,
    *,
    registry: CollectorRegistry,
    jobs: Iterable[str] = (),
    file_sd_dir: Path | None = None,
    retry_s: float = 2.0,
    topic: str | None = None,
    file_sd_mode: int = file_sd.MODE,
    max_shards: int = MAX_SHARDS,
    cache_bytes: int = http_sd.DEFAULT_CACHE_BYTES,
    monitors: MonitorsSettings | None = None,
    clusters: Sequence[str] = (),
    cluster_pattern: str = ".*",
    advertised: Callable[[], str] | None = None,
) -> Sinks:
    """Sinks reading `topic` (default `<kafka.topic_prefix>.targets`); `jobs` are the
    configured job names, served with the live jobs of the monitors that `monitors`
    selects in `clusters` (or those matching `cluster_pattern`), if given.

    Configured jobs answer `[]` (HTTP SD) and get a `[]` file (file SD) while they have no
    groups, instead of 404 / no file; records of other jobs are skipped and counted
    (`unconfigured_job`): they get no route and no file.

    With `monitors`, the routes include GET /scrape_configs (each job's http_sd URL based
    on `monitors.scrape_configs.url`, else on `advertised()`, the server's own address)
    and the Target Allocator's /jobs (`/ta/...` too).
    """
    metrics = sink_metrics.create(registry)
    live = None
    if monitors is not None:
        live = kafka_monitors.MonitorsReader(
            kafka, settings=monitors, metrics=metrics, clusters=clusters,
            cluster_pattern=cluster_pattern,
        )  # fmt: skip
    view = views.TargetView(
        configured=frozenset(jobs),
        monitor_jobs=None if live is None else (lambda: live.live.jobs()),
    )
    sd = http_sd.HttpSd(
        view,
        ready=lambda: reader.caught_up and (live is None or live.caught_up),
        max_shards=max_shards,
        cache_bytes=cache_bytes,
        metrics=metrics,
    )
    # The HTTP SD cache first: it never yields, so no request renders from a stale cache.
    listeners: list[kafka_targets.Listener] = [sd.update]
    files = None
    gate = None
    if file_sd_dir is not None:
        files = file_sd.FileSd(file_sd_dir, view=view, metrics=metrics, mode=file_sd_mode)
        if live is None:
            listeners.append(files.update)
        else:
            gate = _FilesGate(files)
            listeners.append(gate.heard_targets)
    reader = kafka_targets.TargetsReader(
        kafka, view=view, metrics=metrics, listeners=listeners, retry_s=retry_s, topic=topic
    )
    if live is None or monitors is None:
        return Sinks(view, reader, sd, files, metrics)
    live.add_listener(sd.update)
    if gate is not None:
        live.add_listener(gate.heard_monitors)
    own = monitors.scrape_configs
    scrape = scrape_configs.ScrapeConfigs(
        scrape_configs.LiveJobs(lambda: live.live.jobs()),  # swapped on a re-read
        ready=lambda: reader.caught_up and live.caught_up,
        url=lambda: own.url or (advertised() if advertised else ""),
        client=own.http_sd,
        disagreeing=metrics.disagreeing,
    )
    live.add_listener(scrape.update)
    sharing = monitors.target_allocator
    ta = target_allocator.TargetAllocator(
        view, sd, ready=lambda: reader.caught_up and live.caught_up,
        collectors=sharing.names() if sharing is not None else (),
    )  # fmt: skip
    routes = _monitor_routes(scrape, ta)
    return Sinks(view, reader, sd, files, metrics, live, routes)


def _monitor_routes(
    scrape: scrape_configs.ScrapeConfigs, ta: target_allocator.TargetAllocator
) -> dict[str, Route]:
    def under_ta(
        path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> http_sd.PartsReply | Awaitable[http_sd.PartsReply]:
        if path == scrape_configs.TA_PREFIX + scrape_configs.ROUTE:
            return scrape(path, query=query, headers=headers)
        return ta(path, query=query, headers=headers)

    return {
        scrape_configs.ROUTE: scrape,
        target_allocator.ROUTE: ta,
        scrape_configs.TA_PREFIX: under_ta,
    }


class _FilesGate:
    """File SD with monitor jobs hears both readers, and writes nothing until both have
    caught up (each tells its listeners once it has, first): what a file holds must be
    the whole answer. Then it writes every job either named, plus the files of monitor
    jobs on disk that are no longer live (emptied: a restart must not leave a vanished
    job's targets in place)."""

    def __init__(self, files: file_sd.FileSd) -> None:
        self._files = files
        self._waiting = {"targets", "monitors"}
        self._pending: set[str] = set()

    async def heard_targets(self, jobs: frozenset[str]) -> None:
        await self._heard("targets", jobs)

    async def heard_monitors(self, jobs: frozenset[str]) -> None:
        await self._heard("monitors", jobs)

    async def _heard(self, source: str, jobs: frozenset[str]) -> None:
        first = bool(self._waiting)
        self._waiting.discard(source)
        self._pending |= jobs
        if self._waiting:
            return
        todo = frozenset(self._pending)
        self._pending.clear()
        if first:
            todo |= self._files.jobs_on_disk(views.MONITOR_JOB_PREFIXES)
        await self._files.update(todo)
