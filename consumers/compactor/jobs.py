"""Which objects a job sees: its namespaces and selectors, applied by the consumer.

In Prometheus, each kubernetes_sd_config lists and watches with its namespaces and
selectors, so its informer caches hold only what the API server let through. sdstream's
producer publishes a cluster's objects unfiltered and many jobs share that stream, so the
consumer has to rebuild, per job, what those caches would have held. This module does
that, purely: a compactor (per event) and `render` (per snapshot) use the same answer.

API::

    views = compile_job(job, own_namespace="monitoring")  # one JobView per sd config
    view.reads_cluster(cluster)           # the job's `clusters`
    view.role_resource                    # objects of this resource produce groups
    view.watched                          # every resource the role's informers watch
    view.sees(resource, obj)              # would that informer's cache hold obj?
    view.sees_join(resource, obj, from_namespace=ns)  # ... and can an object in ns join it?

Rules (Prometheus discovery/kubernetes at v3.14 / main d15adb9; docs/kubernetes-sd-contract.md §2):

1. A resource the role does not watch is never seen. Roles watch their own resource;
   endpoints and endpointslice also Services and Pods; with attach_metadata (ignored by
   the node role, only `namespace` for service and ingress) Nodes (`node`), Namespaces
   (`namespace`), ReplicaSets (`deployment`) and Jobs (`job` or `cronjob`).
2. Namespaces: never filtered, no selectors.
3. Namespaced resources: only objects in the watched namespaces (`names`, plus the
   consumer's own with `own_namespace`; all when neither) exist for the role **and for its
   joins**: a pod in an unwatched namespace never joins an Endpoints object.
4. Selectors: the role's own selector decides which objects produce groups. The pod
   role's `node` selector filters the node cache (pods on excluded nodes then get empty
   groups); the endpoints roles' `service` and `pod` selectors filter only their join
   caches. Nodes: the node role's selector, or the pod role's; none for endpoints roles.
   ReplicaSets and Jobs never get selectors.
5. With an explicit namespace list Prometheus runs one discoverer per namespace, each with
   its own pod, service, ReplicaSet and Job caches, so joins never cross namespaces
   (a targetRef into another watched namespace stays unresolved). With all namespaces they
   can. `sees_join` encodes this; cluster-scoped Nodes and Namespaces always join.

What callers must do with the answers:
- A join lookup (node of a pod, pod of a targetRef, service of an Endpoints...) must
  treat an object the view does not `sees_join` as absent.
- An object of `role_resource` that the view does not `sees` has no group; one that
  stops being seen (labels changed) loses its group: the API server sends a DELETED event
  when an object leaves a watch's selection, so Prometheus sends a tombstone.
- Several sd configs in one job are separate views (`index`); their Sources can
  coincide (two pod configs seeing one pod), which Prometheus keeps apart by provider.

Pure: no logging, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consumers import selectors
from consumers.relabel import engine
from schemas import discovery_roles
from schemas.objects import KubeObject, meta
from schemas.sd_config import AttachMetadata, KubernetesSDConfig, Role, ScrapeJob
from schemas.topics import Resource


class JobConfigError(ValueError):
    """A job that cannot be compiled in this consumer; the message names the config path."""


def watched_resources(role: Role, attach: AttachMetadata) -> frozenset[Resource]:
    """Every resource Prometheus's informers watch for `role` (rule 1)."""
    return role.spec.watches(discovery_roles.enabled(attach))


def namespace_of(obj: KubeObject) -> str:
    namespace = meta(obj).get("namespace")
    return namespace if isinstance(namespace, str) else ""


@dataclass(frozen=True)
class JobView:
    """What one kubernetes_sd_config of one job sees; build it with `compile_job`."""

    job: str
    index: int  # position in the job's kubernetes_sd_configs
    role: Role
    clusters: frozenset[str] | None  # None: every cluster
    cluster_label: str
    namespaces: frozenset[str] | None  # None: every namespace
    attach: AttachMetadata
    watched: frozenset[Resource]
    filters: Mapping[Resource, selectors.ObjectFilter] = field(hash=False)
    # The job's relabel_configs, compiled; empty: targets are served as discovered.
    rules: engine.Rules = field(default=(), hash=False, compare=False)
    keep_meta: bool = False  # serve __meta_* labels left after relabeling
    # keep_dropped_targets: at most this many targets of the job that relabeling leaves
    # out are held for the discovery page (`folds.Fold`); 0: no limit.
    keep_dropped: int = field(default=0, hash=False, compare=False)
    # Prometheus's scrape defaults, added before relabeling (used only with rules).
    defaults: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    # The leading rules run on a partial label set before building a group (`prefilter`):
    # when they drop it, the group is not built. Set for monitor jobs only, so hand-written
    # jobs keep every dropped target on the discovery page.
    prefilter: engine.Prefilter | None = field(default=None, hash=False, compare=False)

    @property
    def role_resource(self) -> Resource:
        return self.role.resource

    def reads_cluster(self, cluster: str) -> bool:
        return self.clusters is None or cluster in self.clusters

    def in_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def sees(self, resource: Resource, obj: KubeObject) -> bool:
        """Whether the informer for `resource` would hold `obj` (rules 1-4)."""
        if resource not in self.watched:
            return False
        if resource is Resource.NAMESPACES:
            return True
        if not resource.cluster_scoped and not self.in_namespace(namespace_of(obj)):
            return False
        selected = self.filters.get(resource)
        return selected is None or selected.matches(obj)

    def sees_join(self, resource: Resource, obj: KubeObject, *, from_namespace: str) -> bool:
        """Whether an object in `from_namespace` can join `obj` (rules 1-5)."""
        if not self.sees(resource, obj):
            return False
        return (
            resource.cluster_scoped
            or self.namespaces is None
            or namespace_of(obj) == from_namespace
        )


def compile_job(job: ScrapeJob, *, own_namespace: str | None = None) -> tuple[JobView, ...]:
    """One view per kubernetes_sd_config. `own_namespace`: where this consumer runs, needed
    by configs with `namespaces.own_namespace` (Prometheus reads its service account's)."""
    rules = engine.compile_rules(job.relabel_configs)  # shared by the job's views
    return tuple(
        _view(job, index, config, own_namespace, rules)
        for index, config in enumerate(job.kubernetes_sd_configs)
    )


def compile_jobs(
    jobs: Iterable[ScrapeJob], *, own_namespace: str | None = None
) -> tuple[JobView, ...]:
    return tuple(view for job in jobs for view in compile_job(job, own_namespace=own_namespace))


def _view(
    job: ScrapeJob,
    index: int,
    config: KubernetesSDConfig,
    own_namespace: str | None,
    rules: engine.Rules,
) -> JobView:
    return JobView(
        job=job.job_name,
        index=index,
        role=config.role,
        clusters=None if job.clusters is None else frozenset(job.clusters),
        cluster_label=job.cluster_label,
        namespaces=_namespaces(job, index, config, own_namespace),
        attach=config.attach_metadata,
        watched=watched_resources(config.role, config.attach_metadata),
        filters={
            s.role.resource: selectors.ObjectFilter(s.label_selector(), s.field_selector())
            for s in config.selectors
        },
        rules=rules,
        keep_meta=job.keep_meta_labels,
        keep_dropped=job.keep_dropped_targets,
        defaults=job.scrape_defaults(),
    )


def _namespaces(
    job: ScrapeJob, index: int, config: KubernetesSDConfig, own_namespace: str | None
) -> frozenset[str] | None:
    names = set(config.namespaces.names)
    if config.namespaces.own_namespace:
        if not own_namespace:
            raise JobConfigError(
                f"job {job.job_name!r}: kubernetes_sd_configs[{index}].namespaces.own_namespace "
                "is set, but this consumer's own namespace is unknown"
            )
        names.add(own_namespace)
    return frozenset(names) if names else None
