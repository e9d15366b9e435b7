"""Producer metrics, registered on an injected registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class ProducerMetrics:
    events: Counter  # resource, type: watch events handled (incl. BOOKMARK)
    published: Counter  # resource, type: records handed to Kafka (ADDED/MODIFIED/DELETED)
    lists: Counter  # resource
    relists: Counter  # resource, reason (expired, error, publish)
    watch_restarts: Counter  # resource, reason (timeout, expired, error)
    reconcile_tombstones: Counter  # resource
    reconcile_unchanged: Counter  # resource
    skipped: Counter  # resource, reason (untrimmable, unserialisable, too_large, rejected)
    errors: Counter  # resource, kind (exception class)
    publish_latency: Histogram  # per batch: from send to broker ack
    lag: Histogram  # per batch: from the producer seeing its first API event to the broker ack
    ready: Gauge  # resource: 1 once the initial list is published
    leader: Gauge  # 1 while this replica holds the lease
    leader_election: Gauge  # 1 when leader election is on
    watch_failures: Gauge  # resource: consecutive failures of its watch, 0 when it works
    kafka_refusals: Counter  # reason: Kafka refused our credentials, TLS or an ACL


def create(registry: CollectorRegistry) -> ProducerMetrics:
    def counter(name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"sdstream_producer_{name}", doc, labels, registry=registry)

    def histogram(name: str, doc: str) -> Histogram:
        return Histogram(
            f"sdstream_producer_{name}", doc, buckets=_LATENCY_BUCKETS, registry=registry
        )

    return ProducerMetrics(
        events=counter(
            "watch_events_total", "Watch events by resource and type.", "resource", "type"
        ),
        published=counter(
            "published_total", "Records written by resource and type.", "resource", "type"
        ),
        lists=counter("lists_total", "Completed LISTs.", "resource"),
        relists=counter("relists_total", "LISTs after the first, by reason.", "resource", "reason"),
        watch_restarts=counter(
            "watch_restarts_total", "Watches reopened, by reason.", "resource", "reason"
        ),
        reconcile_tombstones=counter(
            "reconcile_tombstones_total", "Tombstones for objects gone while unwatched.", "resource"
        ),
        reconcile_unchanged=counter(
            "reconcile_unchanged_total", "Listed objects the topic already held.", "resource"
        ),
        skipped=counter(
            "skipped_objects_total",
            "Objects not published: untrimmable, unserialisable, too_large (over "
            "max_record_bytes), rejected (by Kafka).",
            "resource",
            "reason",
        ),
        errors=counter("errors_total", "Errors by resource and kind.", "resource", "kind"),
        kafka_refusals=counter(
            "kafka_refusals_total",
            "Kafka refused a client, by reason: authentication, sasl_mechanism, tls_verify, "
            "tls, topic_denied, group_denied, cluster_denied (each is retried with backoff).",
            "reason",
        ),
        publish_latency=histogram(
            "publish_latency_seconds", "Kafka send to broker ack, per batch."
        ),
        lag=histogram(
            "lag_seconds", "API event seen to Kafka ack, per batch (its earliest event)."
        ),
        ready=Gauge(
            "sdstream_producer_ready",
            "1 once the resource's initial list is published.",
            ["resource"],
            registry=registry,
        ),
        leader=Gauge(
            "sdstream_producer_leader", "1 while this replica holds the lease.", registry=registry
        ),
        leader_election=Gauge(
            "sdstream_producer_leader_election",
            "1 when this producer runs Lease leader election (sdstream_producer_leader says "
            "whether it holds the Lease); 0 when it publishes without election.",
            registry=registry,
        ),
        watch_failures=Gauge(
            "sdstream_producer_watch_failures",
            "Consecutive failures of the resource's watch (list or watch), 0 once it works; "
            "/readyz is 503 from 3 on.",
            ["resource"],
            registry=registry,
        ),
    )
