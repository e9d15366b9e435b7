"""Sink metrics, registered on an injected registry (never the global one).

HTTP request counts and latencies (by route and status, `/http_sd` included) belong to
the server that sees the whole request: `sdstream.http.HttpMetrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from consumers import skips
from consumers.sinks import views


@dataclass(frozen=True)
class SinkMetrics:
    records: Counter  # records of the targets topic applied (tombstones included)
    skipped: Counter  # reason: bad records skipped
    groups: Gauge  # job: live target groups
    targets: Gauge  # job: targets (HTTP SD entries)
    caught_up: Gauge  # 1 once the reader reached the end offsets it saw at start
    file_writes: Counter  # file SD files replaced
    cache_bytes: Gauge  # bytes held by the HTTP SD answer cache
    cache_entries: Gauge  # answers in it
    cache_evictions: Counter  # answers dropped (or not kept) to stay within its budget
    http_sd_busy: Counter  # requests answered 503 because MAX_RENDERS were under way
    kafka_refusals: Counter  # reason: Kafka refused the reader's credentials, TLS or an ACL
    # Monitor jobs whose clusters' monitors set different scrape parameters
    disagreeing: Gauge
    monitor_records: Counter  # topic: monitor and Namespace records read by our own consumer

    def set_job(self, job: str, view: views.TargetView) -> None:
        groups, targets = view.counts(job)
        self.groups.labels(job).set(groups)
        self.targets.labels(job).set(targets)


def create(registry: CollectorRegistry) -> SinkMetrics:
    def counter(name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"sdstream_sink_{name}", doc, labels, registry=registry)

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"sdstream_sink_{name}", doc, labels, registry=registry)

    metrics = SinkMetrics(
        records=counter("records_total", "Records of the targets topic applied."),
        skipped=counter("skipped_records_total", "Bad records skipped, by reason.", "reason"),
        groups=gauge("groups", "Live target groups per job.", "job"),
        targets=gauge("targets", "Targets per job.", "job"),
        caught_up=gauge("caught_up", "1 once the targets topic was read to its end."),
        file_writes=counter("file_sd_writes_total", "File SD files replaced."),
        cache_bytes=gauge("http_sd_cache_bytes", "Bytes held by the HTTP SD answer cache."),
        cache_entries=gauge("http_sd_cache_entries", "Answers in the HTTP SD answer cache."),
        cache_evictions=counter(
            "http_sd_cache_evictions_total",
            "HTTP SD answers dropped, or not kept, to stay within the cache budget.",
        ),
        http_sd_busy=counter(
            "http_sd_busy_total",
            "HTTP SD requests answered 503 because as many renders as allowed were under way.",
        ),
        kafka_refusals=counter(
            "kafka_refusals_total",
            "Kafka refused the targets reader, by reason (authentication, sasl_mechanism, "
            "tls_verify, tls, topic_denied, group_denied, cluster_denied); retried with backoff.",
            "reason",
        ),
        disagreeing=gauge(
            "monitor_jobs_disagreeing",
            "Monitor jobs whose clusters' monitors set different scrape parameters "
            "(/scrape_configs uses the first cluster's by name).",
        ),
        monitor_records=counter(
            "monitor_records_total",
            "Records of the monitor and Namespace topics the sinks' monitor reader read from "
            "Kafka, by topic (none where the fold in the same process hands them over).",
            "topic",
        ),
    )
    for reason in skips.SINK_REASONS:
        metrics.skipped.labels(reason)
    return metrics
