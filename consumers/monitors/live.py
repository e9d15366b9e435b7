"""The live set of monitor jobs: monitor and namespace objects in, jobs out, as they change.

Both the fold (which builds the jobs' target groups) and every sink (which serves only the
jobs its own `monitors:` section selects, docs/monitors.md "Trust") keep one of these, fed
from the same compacted monitor and Namespace topics, so they agree on the job set without
telling each other. `apply` takes one object (None removes it); `jobs()` recomputes the
selection (`select.all_jobs`) only after something that can change it was applied, so a
batch of changes costs one recomputation.

API::

    live = LiveMonitors(settings)
    live.apply(cluster, Resource.SERVICEMONITORS, key, monitor)  # True: jobs may change
    live.jobs()      # {job name: {cluster: MonitorJob}}, names sorted
    live.rejected()  # monitors the operator would reject, as select.Rejected
    live.generation  # bumped whenever jobs() was recomputed
    live.drop_partition(cluster, resource, partition=p, partitions=n)  # before re-reading p
    live.copy()      # an independent copy (a reader re-reads into it, serving the original)

A partition Kafka denied us and lets us read again is re-read from offset 0, and what came
from it before is forgotten first (`drop_partition`): a monitor deleted meanwhile, whose
tombstone was compacted away, would otherwise keep its job forever.

Pure: no Kafka, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from consumers.monitors import select
from schemas.monitors import MonitorsSettings
from schemas.objects import KubeObject, meta
from schemas.topics import ObjectKey, Resource, partition_for

Jobs = Mapping[str, Mapping[str, select.MonitorJob]]  # job name -> cluster -> job
READS: frozenset[Resource] = frozenset(
    {Resource.SERVICEMONITORS, Resource.PODMONITORS, Resource.NAMESPACES}
)


def _labels(obj: KubeObject) -> dict[str, str]:
    labels = meta(obj).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


@dataclass
class LiveMonitors:
    settings: MonitorsSettings
    _monitors: dict[tuple[str, Resource, ObjectKey], KubeObject] = field(
        default_factory=dict, init=False
    )
    _namespaces: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict, init=False)
    _jobs: dict[str, dict[str, select.MonitorJob]] = field(default_factory=dict, init=False)
    _rejected: list[select.Rejected] = field(default_factory=list, init=False)
    _stale: bool = field(default=False, init=False)
    # Bumped at each recomputation: a reader compares it to know the jobs may differ
    # without comparing them (cheap enough to check per batch or per request).
    generation: int = field(default=0, init=False)

    def apply(
        self, cluster: str, resource: Resource, key: ObjectKey, obj: KubeObject | None
    ) -> bool:
        """Store (None: remove) a monitor or a namespace's labels; True when the job set
        may change. Other resources and unread clusters are ignored."""
        if resource not in READS or not self.settings.reads_cluster(cluster):
            return False
        if resource is Resource.NAMESPACES:
            changed = self._namespace(cluster, str(key), obj)
        else:
            where = (cluster, resource, key)
            changed = self._monitors.get(where) != obj
            if obj is None:
                self._monitors.pop(where, None)
            else:
                self._monitors[where] = obj
        self._stale = self._stale or changed
        return changed

    def _namespace(self, cluster: str, name: str, obj: KubeObject | None) -> bool:
        labels = None if obj is None else _labels(obj)
        if self._namespaces.get((cluster, name)) == labels:
            return False
        if labels is None:
            del self._namespaces[(cluster, name)]
        else:
            self._namespaces[(cluster, name)] = labels
        return self._uses_namespace_labels()

    def drop_partition(
        self, cluster: str, resource: Resource, *, partition: int, partitions: int
    ) -> bool:
        """Forget the monitors (or namespaces) of `resource` in `cluster` that sit on
        `partition` of `partitions` (the producer's placement); True when the job set may
        change."""
        if resource not in READS or partitions < 1:
            return False

        def here(key: str) -> bool:
            return partition_for(ObjectKey(key), partitions) == partition

        if resource is Resource.NAMESPACES:
            gone_ns = [w for w in self._namespaces if w[0] == cluster and here(w[1])]
            for where in gone_ns:
                del self._namespaces[where]
            changed = bool(gone_ns) and self._uses_namespace_labels()
        else:
            gone = [w for w in self._monitors if w[:2] == (cluster, resource) and here(w[2])]
            for found in gone:
                del self._monitors[found]
            changed = bool(gone)
        self._stale = self._stale or changed
        return changed

    def copy(self) -> LiveMonitors:
        """An independent copy (objects are shared: they are never changed in place)."""
        made = LiveMonitors(self.settings)
        made._monitors = dict(self._monitors)
        made._namespaces = dict(self._namespaces)
        made._stale, made.generation = True, self.generation
        return made

    def _uses_namespace_labels(self) -> bool:
        s = self.settings
        return (
            s.service_monitor_selector is not None
            and s.service_monitor_namespace_selector is not None
        ) or (s.pod_monitor_selector is not None and s.pod_monitor_namespace_selector is not None)

    def jobs(self) -> Jobs:
        if self._stale:
            self._recompute()
        return self._jobs

    def rejected(self) -> list[select.Rejected]:
        if self._stale:
            self._recompute()
        return list(self._rejected)

    def _recompute(self) -> None:
        monitors = ((c, r, m) for (c, r, _), m in sorted(self._monitors.items()))
        found, self._rejected = select.all_jobs(
            self.settings, monitors, lambda c, ns: self._namespaces.get((c, ns))
        )
        jobs: dict[str, dict[str, select.MonitorJob]] = {}
        for (name, cluster), job in sorted(found.items()):
            jobs.setdefault(name, {})[cluster] = job
        self._jobs = jobs
        self._stale = False
        self.generation += 1


def changed_jobs(old: Jobs, new: Jobs, *, targets_only: bool = False) -> frozenset[str]:
    """Names of jobs that appeared, vanished or changed in some cluster between two
    `jobs()` answers; `targets_only`: a change counts only if it changes target groups."""
    names = set(old) | set(new)
    return frozenset(n for n in names if not _same(old.get(n, {}), new.get(n, {}), targets_only))


def _same(
    a: Mapping[str, select.MonitorJob], b: Mapping[str, select.MonitorJob], targets_only: bool
) -> bool:
    if a.keys() != b.keys():
        return False
    if targets_only:
        return all(a[c].targets_equal(b[c]) for c in a)
    return all(a[c] == b[c] and a[c].monitor == b[c].monitor for c in a)
