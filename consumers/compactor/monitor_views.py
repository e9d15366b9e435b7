"""Monitor jobs as the fold's job views, and what to change when the live set changes.

A monitor endpoint's job in one cluster (`consumers.monitors.select.MonitorJob`) becomes
one `JobView` reading only that cluster, with the operator's rules then the monitor's own,
and Prometheus's scrape defaults for that endpoint. When the live set changes, a job whose
targets would differ (selector, endpoints, relabelings, scrape defaults) is swapped: its
old view removed, a new one added (`Fold` tombstones only the groups the new view does not
build again). A job that differs only in what does not touch targets (say
metricRelabelings) keeps its view.

Pure: no Kafka, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from consumers import selectors
from consumers.compactor import prefilter
from consumers.compactor.jobs import JobView, watched_resources
from consumers.monitors import live
from consumers.monitors.select import MonitorJob
from consumers.relabel import engine

Where = tuple[str, str]  # (job name, cluster)


def view_of(job: MonitorJob) -> JobView:
    """The job's view; its leading selector rules pre-filter objects (`prefilter`), so
    the objects they drop hold nothing in the fold (docs/monitors.md)."""
    sd = job.sd_config
    names = frozenset(sd.namespaces.names)
    rules = engine.compile_rules(job.rules)
    return JobView(
        job=job.name,
        index=0,
        role=sd.role,
        clusters=frozenset({job.cluster}),
        cluster_label=job.cluster_label,
        namespaces=names or None,
        attach=sd.attach_metadata,
        watched=watched_resources(sd.role, sd.attach_metadata),
        filters={
            s.role.resource: selectors.ObjectFilter(s.label_selector(), s.field_selector())
            for s in sd.selectors
        },
        rules=rules,
        keep_meta=False,
        keep_dropped=_keep_dropped(job),
        defaults=job.defaults,
        prefilter=prefilter.program(sd.role.resource, rules),
    )


def _keep_dropped(job: MonitorJob) -> int:
    """The monitor's keepDroppedTargets (validated a non-negative integer; 0: none)."""
    value = job.scrape.get("keep_dropped_targets")
    return value if isinstance(value, int) else 0


@dataclass(frozen=True, slots=True)
class Plan:
    remove: tuple[Where, ...]  # views to remove, by (job, cluster)
    add: tuple[MonitorJob, ...]  # jobs to add views for


def plan(current: Mapping[Where, MonitorJob], wanted: live.Jobs) -> Plan:
    """Views to remove and to add so the fold builds exactly `wanted`."""
    flat = {(name, c): job for name, by in wanted.items() for c, job in by.items()}
    remove = [w for w, job in current.items() if w not in flat or not job.targets_equal(flat[w])]
    add = [job for w, job in flat.items() if w not in current or w in remove]
    return Plan(tuple(sorted(remove)), tuple(add))
