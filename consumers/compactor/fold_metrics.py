"""Fold metrics, registered on an injected registry (tests pass a fresh one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class FoldMetrics:
    events: Counter
    skipped: Counter
    build_errors: Counter
    published: Counter
    groups_skipped: Counter
    groups: Gauge
    targets: Gauge
    left_out: Gauge
    objects: Gauge
    state_bytes: Gauge
    lag: Gauge
    caught_up: Gauge
    kafka_refusals: Counter  # reason: Kafka refused our credentials, TLS or an ACL
    offset_commits: Counter
    offset_commit_failures: Counter  # reason: the aiokafka error's name, or TimeoutError
    rebalances: Counter
    revoke_unacked: Counter  # revocations that gave partitions up with writes unacked
    unread: Gauge  # topic: partitions denied and not read since
    monitor_jobs: Gauge
    monitors_rejected: Gauge


def create(registry: CollectorRegistry) -> FoldMetrics:
    return FoldMetrics(
        events=Counter("sdstream_fold_events", "Object records folded.",
                       ["cluster", "resource"], registry=registry),
        skipped=Counter("sdstream_fold_records_skipped", "Bad object records skipped.",
                        ["reason"], registry=registry),
        build_errors=Counter("sdstream_fold_build_errors", "Groups whose build failed.",
                             ["job"], registry=registry),
        published=Counter("sdstream_fold_published", "Target-group records written.",
                          ["kind"], registry=registry),
        groups_skipped=Counter("sdstream_fold_groups_skipped",
                               "Target groups not published (their key gets a tombstone).",
                               ["job", "reason"], registry=registry),
        groups=Gauge("sdstream_fold_groups", "Target groups held, by job.", ["job"],
                     registry=registry),
        targets=Gauge("sdstream_fold_targets", "Targets held, by job.", ["job"],
                      registry=registry),
        left_out=Gauge("sdstream_fold_targets_relabeled_away",
                       "Discovered targets not served after relabel_configs, by job: "
                       "reason=dropped (a keep/drop/keepequal/dropequal rule) or invalid "
                       "(no __address__, one with '/', or a label named \"\").",
                       ["job", "reason"], registry=registry),
        objects=Gauge("sdstream_fold_objects", "Objects held in the fold state.",
                      registry=registry),
        state_bytes=Gauge("sdstream_fold_state_bytes",
                          "Bytes of object records held in the fold state, deflated "
                          "(objects are parsed only while a build reads them).",
                          registry=registry),
        lag=Gauge("sdstream_fold_partition_lag", "Records behind the end offset.",
                  ["topic", "partition"], registry=registry),
        caught_up=Gauge("sdstream_fold_caught_up", "1 once every partition caught up.",
                        registry=registry),
        kafka_refusals=Counter("sdstream_fold_kafka_refusals",
                               "Kafka refused the fold's clients, by reason (authentication, "
                               "sasl_mechanism, tls_verify, tls, topic_denied, group_denied, "
                               "cluster_denied); each is retried with backoff.",
                               ["reason"], registry=registry),
        offset_commits=Counter("sdstream_fold_offset_commits",
                               "Commits of the group's offsets (progress markers for lag "
                               "tools; never used to resume).", registry=registry),
        offset_commit_failures=Counter("sdstream_fold_offset_commit_failures",
                                       "Offset commits that failed, by error; tried again at "
                                       "the next interval, the fold goes on.",
                                       ["reason"], registry=registry),
        rebalances=Counter("sdstream_fold_rebalances",
                           "Partition assignments this member received from the group "
                           "(the first one included).", registry=registry),
        revoke_unacked=Counter("sdstream_fold_revoked_unacked",
                               "Revocations that gave the partitions up before the acks of "
                               "the fold's writes came in (waited for up to 10 s).",
                               registry=registry),
        unread=Gauge("sdstream_fold_unread_partitions",
                     "Partitions of an object topic Kafka denies the fold (by topic, so by "
                     "cluster): their groups keep their last published version.",
                     ["topic"], registry=registry),
        monitor_jobs=Gauge("sdstream_fold_monitor_jobs",
                           "Monitor endpoint jobs built (one per job and cluster), from the "
                           "monitors the `monitors:` section selects.", registry=registry),
        monitors_rejected=Gauge("sdstream_fold_monitors_rejected",
                                "Selected monitors that make no job (the operator would "
                                "reject them), by cluster.", ["cluster"], registry=registry),
    )  # fmt: skip
