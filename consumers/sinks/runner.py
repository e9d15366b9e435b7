"""Builds the sinks of one process: view, targets reader, HTTP SD route, file SD writer.

The process glue (`sdstream consume`) owns the HTTP server and the task group; this
module only wires the sink pieces together in the one correct order (the HTTP SD cache
is invalidated before file SD yields to its writer thread), so the glue cannot get it
wrong and the integration tests exercise the same wiring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from consumers.sinks import file_sd, http_sd, kafka_targets, sink_metrics, views
from schemas.config import MAX_SHARDS, KafkaSettings


@dataclass(frozen=True)
class Sinks:
    view: views.TargetView
    reader: kafka_targets.TargetsReader
    http: http_sd.HttpSd
    files: file_sd.FileSd | None
    metrics: sink_metrics.SinkMetrics

    @property
    def routes(self) -> Mapping[str, http_sd.HttpSd]:
        """For `sdstream.http.HttpServer(routes=...)`."""
        return {http_sd.PREFIX: self.http}


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
) -> Sinks:
    """Sinks reading `topic` (default `<kafka.topic_prefix>.targets`); `jobs` are the
    configured job names, the only ones served.

    Configured jobs answer `[]` (HTTP SD) and get a `[]` file (file SD) while they have no
    groups, instead of 404 / no file; records of other jobs are skipped and counted
    (`unconfigured_job`): they get no route and no file.
    """
    metrics = sink_metrics.create(registry)
    view = views.TargetView(configured=frozenset(jobs))
    sd = http_sd.HttpSd(
        view,
        ready=lambda: reader.caught_up,
        max_shards=max_shards,
        cache_bytes=cache_bytes,
        metrics=metrics,
    )
    # The HTTP SD cache first: it never yields, so no request renders from a stale cache.
    listeners: list[kafka_targets.Listener] = [sd.update]
    files = None
    if file_sd_dir is not None:
        files = file_sd.FileSd(file_sd_dir, view=view, metrics=metrics, mode=file_sd_mode)
        listeners.append(files.update)
    reader = kafka_targets.TargetsReader(
        kafka, view=view, metrics=metrics, listeners=listeners, retry_s=retry_s, topic=topic
    )
    return Sinks(view, reader, sd, files, metrics)
