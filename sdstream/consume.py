"""`sdstream consume`: fold object topics into target groups and serve them.

One process runs the fold (consumer group over the object topics, publishing to
`<prefix>.targets`) and the sinks (HTTP SD and file SD, read back from that topic), with
/metrics, /healthz and /readyz, and, where the fold runs, the discovery page (`/`,
`/discovery/<job>`: what the fold discovered and what relabeling made of it); `mode`
runs either half alone for scaling. SIGTERM and SIGINT stop it cleanly with exit
status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from consumers.compactor import fold_metrics, folds, jobs, kafka_loop, kafka_targets_topic
from consumers.discovery import route as discovery
from consumers.discovery import source as discovery_source
from consumers.sinks import kafka_targets, local_feed, scrape_configs
from consumers.sinks import runner as sinks_runner
from schemas.config import ConsumerSettings
from sdstream import http, logs, settings, web_config

logger = logging.getLogger(__name__)

Started = Callable[[tuple[str, int]], None]
SWITCH_INTERVAL_S = 0.0005


def build_loop(
    config: ConsumerSettings,
    metrics: fold_metrics.FoldMetrics,
    *,
    feed: kafka_loop.Feed | None = None,
    monitor_feed: kafka_loop.MonitorFeed | None = None,
) -> kafka_loop.FoldLoop:
    views = jobs.compile_jobs(config.scrape_configs, own_namespace=config.own_namespace)
    return kafka_loop.FoldLoop(
        kafka=config.kafka,
        fold=folds.Fold(views, keep_discovered=config.discovery_page),
        metrics=metrics,
        group_id=config.group_id,
        clusters=config.clusters,
        cluster_pattern=config.cluster_pattern,
        targets_partitions=config.targets_partitions,
        max_group_bytes=config.max_group_bytes,
        targets_zstd_level=config.targets_zstd_level,
        targets_topic=config.targets,
        membership=kafka_loop.Membership(
            instance_id=config.group_instance_id,
            session_timeout_s=config.session_timeout_s,
            commit_interval_s=config.commit_interval_s,
        ),
        monitors=config.monitors,
        feed=feed,
        monitor_feed=monitor_feed,
    )


@dataclass(frozen=True)
class Readiness:
    """/readyz of the process: the fold's and the sinks' together, where both run."""

    loop: kafka_loop.FoldLoop | None
    sinks: sinks_runner.Sinks | None

    def from_topic(self) -> bool:
        """One process restarted on a topic a fold published: the sinks serve that last
        answer once read, as a `--mode serve` replica does, until the fold's first sync
        (which then writes and shows what changed meanwhile; after it, a full sync due
        makes the process unready again, as ever)."""
        loop, sinks = self.loop, self.sinks
        return (
            loop is not None and sinks is not None and loop.published_before()
            and not loop.synced_once() and sinks.unready_reason() is None
        )  # fmt: skip

    def unready(self) -> str | None:
        if self.from_topic():
            return None
        return (self.loop.unready_reason() if self.loop else None) or (
            self.sinks.unready_reason() if self.sinks else None
        )

    def degraded(self) -> str | None:
        """What /readyz names while ready; while serving from the topic, what keeps the
        fold from its first sync (a refusal, Kafka away), not its catching up."""
        loop, sinks = self.loop, self.sinks
        return (
            (loop.problem() if loop and self.from_topic() else None)
            or (loop.degraded_reason() if loop else None)
            or (sinks.degraded_reason() if sinks else None)
        )

    def started(self) -> bool:
        """Every part ready (the fold synced too): the start-up's log noise ends here."""
        return self.unready() is None and not self.from_topic()


def _advertised(server: http.HttpServer, *, tls: bool) -> str:
    host, port = server.address
    return scrape_configs.default_url(host, port, tls=tls)


async def serve(
    config: ConsumerSettings,
    *,
    registry: CollectorRegistry | None = None,
    on_started: Started | None = None,
) -> None:
    """Run until cancelled."""
    # HTTP SD renders (serve) and discovery pages (fold) run in a thread: the event loop,
    # back from each socket call, waits for the GIL up to this interval (5 ms by default)
    # while a render holds it.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    registry = registry or CollectorRegistry()
    security = web_config.build(config.http, registry=registry)  # SettingsError: nothing runs
    metrics = fold_metrics.create(registry) if config.mode in ("all", "fold") else None
    sinks = None
    tls = security.ssl_context is not None

    def advertised() -> str:  # the listening address; no answer is served before it is known
        return _advertised(server, tls=tls)

    if config.mode in ("all", "serve"):
        names = [job.job_name for job in config.scrape_configs]
        sinks = sinks_runner.build(
            config.kafka, registry=registry, jobs=names, file_sd_dir=config.file_sd_dir,
            topic=config.targets, file_sd_mode=config.file_sd_permissions,
            max_shards=config.http_sd_max_shards, cache_bytes=config.http_sd_cache_bytes,
            monitors=config.monitors, clusters=config.clusters,
            cluster_pattern=config.cluster_pattern, advertised=advertised,
        )  # fmt: skip
    # One process: the sinks take the fold's writes as they are sent (`local_feed`).
    feed = local_feed.LocalFeed(sinks.view, sinks.reader) if sinks is not None else None
    # One process: the fold's table consumer reads the monitor topics for the sinks too.
    shared = sinks.monitors if sinks is not None and metrics is not None else None
    if shared is not None:
        shared.feed_from_fold()
    loop = (
        build_loop(config, metrics, feed=feed, monitor_feed=shared) if metrics is not None else None
    )

    ready = Readiness(loop, sinks)
    unready, degraded = ready.unready, ready.degraded

    routes: dict[str, http.Route] = dict(sinks.routes) if sinks else {}
    page = None
    if loop is not None and metrics is not None and config.discovery_page:
        data = discovery_source.FoldSource(
            loop.fold, lag=metrics.lag, prefix=config.kafka.topic_prefix, unready=unready,
            monitor_jobs=loop.monitors.jobs if loop.monitors is not None else None,
        )  # fmt: skip
        page = discovery.DiscoveryPage(data, registry=registry)
        routes.update(page.routes)
    server = http.HttpServer(
        config.http, registry=registry, ready=unready, routes=routes,
        ssl_context=security.ssl_context, guard=security.guard, degraded=degraded,
    )  # fmt: skip
    try:
        async with server as srv:
            if on_started is not None:
                on_started(srv.address)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(logs.started_when(ready.started), name="started")
                if loop is not None:
                    tasks.create_task(loop.run(), name="fold")
                if sinks is not None:
                    tasks.create_task(sinks.reader.run(), name="sinks")
                    if sinks.monitors is not None and not sinks.monitors.fed:
                        tasks.create_task(sinks.monitors.run(), name="monitor jobs")
    finally:
        if page is not None:
            page.close()  # queued page renders would hold the exit


async def _main(config: ConsumerSettings) -> int:
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - always set inside asyncio.run
    running = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(sig, task.cancel)
    status = 0
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await serve(config)
    except* (http.ListenError, settings.SettingsError) as bad:  # nothing started: one line
        print(f"sdstream consume: {bad.exceptions[0]}", file=sys.stderr)
        status = 2
    except* kafka_targets_topic.TopicUnfit as unfit:  # create_topics false: what to create
        print(f"sdstream consume: {unfit.exceptions[0]}", file=sys.stderr)
        status = 2
    except* (kafka_loop.FoldFailed, kafka_targets.TargetsReadFailed) as failed:
        for error in failed.exceptions:
            logger.error("Stopping: %s", error)  # noqa: TRY400 - one line: Kafka said why
        status = 1
    if status != 2:
        logger.info("Stopped.")
    return status


def main(*, config_file: Path | None, overrides: dict[str, object]) -> int:
    try:
        config = settings.load(settings.ConsumerAppSettings, config_file=config_file, **overrides)
        jobs.compile_jobs(config.scrape_configs, own_namespace=config.own_namespace)
    except (settings.SettingsError, jobs.JobConfigError) as exc:
        print(f"sdstream consume: {exc}", file=sys.stderr)
        return 2
    if not config.scrape_configs and config.monitors is None:
        logger.warning("No scrape_configs and no monitors: nothing is published or served.")
    for job in config.scrape_configs:
        for sd_config in job.kubernetes_sd_configs:
            if sd_config.watching_fields:
                logger.info("Job %s: %s are handled by the producer, ignored here.",
                            job.job_name, ", ".join(sd_config.watching_fields))  # fmt: skip
        if job.ignored_keys:
            logger.info("Job %s: %s are not applied by sdstream (the scraper applies them).",
                        job.job_name, ", ".join(job.ignored_keys))  # fmt: skip
    return asyncio.run(_main(config))
