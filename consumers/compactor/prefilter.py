"""Partial label sets that let a job skip the groups its leading rules drop entirely.

A monitor job's first rules keep only the objects its selector picks: for a PodMonitor,
keep rules on `__meta_kubernetes_pod_label_<x>` / `labelpresent_<x>`; for a
ServiceMonitor, on the Service's labels. Building every pod's whole group (all its meta
labels, per target) only to drop it made 200 monitors over 50k pods cost minutes and
gigabytes. Here each role that has one gets a cheap partial build: only the labels those
rules read, made by the very code the role builder uses (`consumers.roles.labels`, so a
sanitisation collision resolves the same way), and `covered`, the names the partial set
holds exactly as every full target would. `engine.prefilter` picks the rules that read
only covered names; `engine.drops` runs them on the partial set.

Why a covered name is exact: the names below are group-level names that no target of the
role overwrites, and the builder computes them from the same fields; names outside
`__meta_*` (and `__address__`, `instance`) no role writes at all, so only the cluster
label and the scrape defaults can hold them, and the partial set gets both the same way.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from consumers.relabel import engine
from consumers.roles import endpointslice, labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import LabelSet
from schemas.topics import Resource

Build = Callable[[KubeObject, lookups.Lookup], LabelSet]
_ROLE_WRITES: Final = frozenset((labels.ADDRESS, labels.INSTANCE))


@dataclass(frozen=True, slots=True)
class Partial:
    build: Build
    exact: frozenset[str]  # covered names
    prefixes: tuple[str, ...]  # covered name prefixes

    def covered(self, name: str) -> bool:
        if name in self.exact or name.startswith(self.prefixes):
            return True
        return not name.startswith(engine.META_PREFIX) and name not in _ROLE_WRITES


def _pod(pod: KubeObject, _: lookups.Lookup) -> LabelSet:
    """What `pod.build_group` writes for these names: `pod_block`'s phase and metadata
    name and labels, then the namespace."""
    m = meta(pod)
    status = pod.get("status") or {}
    out: LabelSet = {labels.POD_PHASE: status.get("phase") or ""}
    out[labels.POD_META.name] = m.get("name") or ""
    labels.add_pairs(out, m.get("labels"), labels.POD_META.labels)
    out[labels.NAMESPACE] = m.get("namespace") or ""
    return out


def _with_service(namespace: str, service: KubeObject | None) -> LabelSet:
    out: LabelSet = {labels.NAMESPACE: namespace}
    if service is not None:
        out.update(labels.service_block(service))
    return out


def _endpoints(endpoints: KubeObject, lookup: lookups.Lookup) -> LabelSet:
    """The Service block of `endpoints._group_labels`: the Service of the same name."""
    m = meta(endpoints)
    namespace: str = m.get("namespace") or ""
    key = lookups.key(namespace, m.get("name") or "")
    return _with_service(namespace, lookup.get(Resource.SERVICES, key))


def _endpointslice(endpoint_slice: KubeObject, lookup: lookups.Lookup) -> LabelSet:
    """The Service block of `endpointslice._group_labels`: the Service its label names."""
    m = meta(endpoint_slice)
    namespace: str = m.get("namespace") or ""
    name = (m.get("labels") or {}).get(endpointslice.SERVICE_NAME_LABEL)
    found = None if name is None else lookup.get(Resource.SERVICES, lookups.key(namespace, name))
    return _with_service(namespace, found)


_SERVICE: Final = (
    labels.SERVICE_META.labels.value_prefix,
    labels.SERVICE_META.labels.present_prefix,
    labels.SERVICE_META.annotations.value_prefix,
    labels.SERVICE_META.annotations.present_prefix,
)
_SERVICE_EXACT: Final = frozenset((labels.SERVICE_META.name,))
PARTIALS: Final[dict[Resource, Partial]] = {
    Resource.PODS: Partial(
        _pod,
        frozenset((labels.POD_PHASE, labels.POD_META.name, labels.NAMESPACE)),
        (labels.POD_META.labels.value_prefix, labels.POD_META.labels.present_prefix),
    ),
    Resource.ENDPOINTS: Partial(_endpoints, _SERVICE_EXACT, _SERVICE),
    Resource.ENDPOINTSLICES: Partial(_endpointslice, _SERVICE_EXACT, _SERVICE),
}


def program(resource: Resource, rules: engine.Rules) -> engine.Prefilter | None:
    """The leading rules a job of `resource`'s role can run on the partial set; None when
    the role has no partial build or no rule qualifies."""
    partial = PARTIALS.get(resource)
    return None if partial is None else engine.prefilter(rules, partial.covered)


def partial_labels(
    resource: Resource, obj: KubeObject, lookup: lookups.Lookup, *, cluster_label: str,
    cluster: str,
) -> LabelSet:  # fmt: skip
    """The partial set of `obj`, with the cluster label as the fold adds it (over the
    role's group labels)."""
    out = PARTIALS[resource].build(obj, lookup)
    if cluster_label:
        out[cluster_label] = cluster
    return out
