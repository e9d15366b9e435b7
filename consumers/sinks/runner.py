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

from consumers.sinks import file_sd, http_sd, kafka_targets
from consumers.sinks import metrics as sink_metrics
from consumers.sinks import view as views
from schemas.config import KafkaSettings


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


def build(
    kafka: KafkaSettings,
    *,
    registry: CollectorRegistry,
    jobs: Iterable[str] = (),
    file_sd_dir: Path | None = None,
    retry_s: float = 2.0,
    topic: str | None = None,
) -> Sinks:
    """Sinks reading `topic` (default `<kafka.topic_prefix>.targets`); `jobs` are the
    configured job names.

    Configured jobs answer `[]` (HTTP SD) and get a `[]` file (file SD) while they have no
    groups, instead of 404 / no file; jobs seen in the topic are known anyway.
    """
    metrics = sink_metrics.create(registry)
    view = views.TargetView(configured=frozenset(jobs))
    sd = http_sd.HttpSd(view, ready=lambda: reader.caught_up)
    # The HTTP SD cache first: it never yields, so no request renders from a stale cache.
    listeners: list[kafka_targets.Listener] = [sd.update]
    files = None
    if file_sd_dir is not None:
        files = file_sd.FileSd(file_sd_dir, view=view, metrics=metrics)
        listeners.append(files.update)
    reader = kafka_targets.TargetsReader(
        kafka, view=view, metrics=metrics, listeners=listeners, retry_s=retry_s, topic=topic
    )
    return Sinks(view, reader, sd, files, metrics)
