"""What the discovery page reads: a snapshot of the fold, taken on the event loop.

The fold is mutated by the event loop, so the page never walks it from its render
thread: `FoldSource.snapshot()` copies what a page needs (the discovered groups' index,
per-job served counts, per-cluster object counts and lag, readiness) in one go, on the
loop. The copies are shallow (groups are immutable and shared), so a snapshot costs a
dict copy. `overview` and `job_targets` then turn a snapshot into page data, in the
render thread.

A monitor job is made from each cluster's copy of its monitor: its views read one cluster
each, with that copy's rules, so the page explains each target with its own cluster's
rules (`relabeling` keys them by cluster) and lists the clusters whose copies set
different scrape parameters (`disagreements`; /scrape_configs uses the first cluster's).

Lag per cluster is the sum, over the cluster's object-topic partitions this consumer
reads, of the fold's `sdstream_fold_partition_lag` gauge: records between its position
and the partition's high-water mark at the fold's last position check (every poll,
~0.2 s apart while reading). It counts records, not seconds: 0 means every record the
broker had is folded, not that the producer is current with its API server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Gauge

from consumers.compactor import folds, packed
from consumers.compactor.jobs import JobView
from consumers.discovery import html, rows
from consumers.monitors.select import MonitorJob
from consumers.relabel import engine
from consumers.sinks import scrape_configs
from schemas.targets import TargetGroup
from schemas.topics import TargetKey, parse_object_topic

Relabeling = tuple[rows.Relabel, Sequence[str]]  # how a job relabels; its rules described
Relabelings = Mapping[str | None, Relabeling]  # by cluster; None: every cluster
MonitorJobs = Mapping[str, Mapping[str, MonitorJob]]  # job -> cluster -> its copy


@dataclass(frozen=True, slots=True)
class Snapshot:
    unready: str | None
    jobs: Sequence[str]  # configured, in config order
    discovered: Mapping[TargetKey, TargetGroup]
    served: Mapping[str, int]  # targets per job after relabeling
    objects: Mapping[str, int]  # per cluster
    lag: Mapping[str, int]  # per cluster
    relabeling: Mapping[str, Relabelings]  # jobs with relabel_configs
    monitor_jobs: MonitorJobs = field(default_factory=dict)  # the live ones (immutable)
    # Per job, dropped targets keep_dropped_targets left out of `discovered` (counted only).
    not_kept: Mapping[str, int] = field(default_factory=dict)


def overview(snapshot: Snapshot) -> html.Overview:
    """Per job and per cluster counts (walks every discovered group once)."""
    groups: dict[str, int] = {}
    targets: dict[str, int] = {}
    clusters: dict[str, set[str]] = {}
    per_cluster: dict[str, int] = {}
    for job, cluster, count in _summaries(snapshot.discovered):
        groups[job] = groups.get(job, 0) + 1
        targets[job] = targets.get(job, 0) + count
        clusters.setdefault(job, set()).add(cluster)
        per_cluster[cluster] = per_cluster.get(cluster, 0) + 1
    jobs = [
        html.JobSummary(job, sorted(clusters.get(job, ())), groups.get(job, 0),
                        targets.get(job, 0) + snapshot.not_kept.get(job, 0),
                        snapshot.served.get(job, 0))
        for job in snapshot.jobs
    ]  # fmt: skip
    names = sorted({*snapshot.objects, *snapshot.lag, *per_cluster})
    return html.Overview(
        snapshot.unready,
        jobs,
        [html.ClusterSummary(name, snapshot.objects.get(name, 0), per_cluster.get(name, 0),
                             snapshot.lag.get(name)) for name in names],
        disagreements(snapshot),
    )  # fmt: skip


def disagreements(snapshot: Snapshot) -> list[html.Disagreement]:
    """The monitor jobs whose clusters' copies set different scrape parameters."""
    return [
        found
        for job in snapshot.monitor_jobs
        if (found := disagreement(snapshot.monitor_jobs, job)) is not None
    ]


def disagreement(monitor_jobs: MonitorJobs, job: str) -> html.Disagreement | None:
    by_cluster: Mapping[str, Mapping[str, Any]] = {
        cluster: copy.scrape for cluster, copy in monitor_jobs.get(job, {}).items()
    }
    keys = scrape_configs.differing(by_cluster)
    if not keys:
        return None
    values = {
        cluster: {key: _shown(params, key) for key in keys}
        for cluster, params in sorted(by_cluster.items())
    }
    return html.Disagreement(job, keys, min(by_cluster), values)


def _shown(params: Mapping[str, Any], key: str) -> str:
    return orjson.dumps(params[key]).decode() if key in params else "(not set)"


def _summaries(found: Mapping[TargetKey, TargetGroup]) -> Iterator[tuple[str, str, int]]:
    """(job, cluster, targets) of each group; the fold's packed groups are not decoded."""
    if isinstance(found, packed.Groups):
        return ((g.job, g.cluster, g.count) for g in found.packed().values())
    return ((g.job, g.cluster, len(g.targets)) for g in found.values())


def _jobs(found: Mapping[TargetKey, TargetGroup]) -> Iterator[tuple[TargetKey, str]]:
    """(key, job) of each group; the fold's packed groups are not decoded."""
    if isinstance(found, packed.Groups):
        return ((key, g.job) for key, g in found.packed().items())
    return ((key, g.job) for key, g in found.items())


def job_targets(snapshot: Snapshot, job: str) -> rows.JobTargets:
    """The job's discovered groups, sorted by key, and how the job relabels them."""
    found = snapshot.discovered
    # Keys sorted alone: one sort is one C call holding the GIL, and tuples compare slower.
    keys = sorted(key for key, of in _jobs(found) if of == job)
    groups = [(str(key), found[key]) for key in keys]
    relabelings = snapshot.relabeling.get(job, {})
    relabel, rules = relabelings.get(None, (rows.as_discovered, ()))
    by_cluster = {c: how for c, how in relabelings.items() if c is not None}
    not_kept = snapshot.not_kept.get(job, 0)
    return rows.JobTargets(job, groups, relabel, rules, by_cluster, not_kept)


def lag_by_cluster(lag: Gauge, prefix: str) -> dict[str, int]:
    """The fold's per-partition lag gauge, summed per cluster."""
    found: dict[str, int] = {}
    for metric in lag.collect():
        for sample in metric.samples:
            parsed = parse_object_topic(prefix, sample.labels.get("topic", ""))
            if parsed is not None:
                found[parsed[0]] = found.get(parsed[0], 0) + int(sample.value)
    return found


def relabeling(views: Sequence[JobView]) -> dict[str, dict[str | None, Relabeling]]:
    """How each job with relabel_configs relabels, per cluster its views read (None: a
    view reading every cluster): the engine's `process`, exactly as the fold applies it,
    and each rule as written. A configured job's views share its rules; a monitor job
    has one view per cluster, with that cluster's copy of the monitor."""
    found: dict[str, dict[str | None, Relabeling]] = {}
    for view in views:
        if not view.rules:
            continue
        mine = found.setdefault(view.job, {})
        for cluster in sorted(view.clusters) if view.clusters is not None else (None,):
            if cluster not in mine:
                mine[cluster] = (_process(view.rules, keep_meta=view.keep_meta,
                                          defaults=view.defaults),
                                 [describe(rule) for rule in view.rules])  # fmt: skip
    return found


def _process(rules: engine.Rules, *, keep_meta: bool, defaults: Mapping[str, str]) -> rows.Relabel:
    def relabel(labels: Mapping[str, str]) -> rows.Verdict:
        return engine.process(labels, rules, keep_meta=keep_meta, defaults=defaults)

    return relabel


def describe(rule: engine.Rule) -> str:
    """A rule as its config wrote it (JSON, which is YAML too), action first."""
    written = rule.config.model_dump(mode="json", exclude_unset=True)
    return orjson.dumps({"action": rule.action, **written}).decode()


class FoldSource:
    """`snapshot()` of a running fold, for `route.DiscoveryPage`."""

    def __init__(
        self,
        fold: folds.Fold,
        *,
        lag: Gauge,
        prefix: str,
        unready: Callable[[], str | None],
        monitor_jobs: Callable[[], MonitorJobs] | None = None,
    ) -> None:
        self._fold = fold
        self._monitor_jobs = monitor_jobs
        self._lag = lag
        self._prefix = prefix
        self._unready = unready
        self._positions: tuple[int, ...] = ()
        self._jobs: list[str] = []
        self._relabeling: dict[str, dict[str | None, Relabeling]] = {}

    def jobs(self) -> Sequence[str]:
        """Configured jobs in config order, then monitor jobs as they were added."""
        self._refresh()
        return self._jobs

    def _refresh(self) -> None:
        """Follow the fold's views (monitor jobs come and go), recomputed only when they
        changed."""
        positions = tuple(self._fold.active)
        if positions != self._positions:
            views = list(self._fold.active.values())
            self._jobs = list(dict.fromkeys(view.job for view in views))
            self._relabeling = relabeling(views)
            self._positions = positions

    def snapshot(self) -> Snapshot:
        fold = self._fold
        self._refresh()
        return Snapshot(
            unready=self._unready(),
            jobs=self._jobs,
            discovered=fold.discovered.copy(),  # the index; groups decoded when shown
            served={job: totals[1] for job, totals in fold.totals.items()},
            objects={name: state.size() for name, state in fold.clusters.items()},
            lag=lag_by_cluster(self._lag, self._prefix),
            relabeling=self._relabeling,
            # replaced whole by `LiveMonitors` at each change: safe to read in a thread
            monitor_jobs=self._monitor_jobs() if self._monitor_jobs is not None else {},
            not_kept=fold.not_kept(),
        )
