"""One snapshot in, Prometheus's target groups out: the pure core of `sdstream render`.

The same job view (namespaces, selectors, join visibility) and the same role builders as
the compacting consumer, applied once to a whole set of objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consumers.compactor import folds, state
from consumers.compactor.folds import VisibleLookup
from consumers.compactor.jobs import JobView, namespace_of
from consumers.roles import table
from schemas import resources
from schemas.objects import KubeObject, meta
from schemas.targets import Group
from schemas.topics import object_key

KINDS = resources.by_kind()


class RenderError(ValueError):
    """An object that cannot be read or built; the message names it."""


def describe(obj: KubeObject) -> str:
    m = meta(obj)
    name = f"{m.get('namespace')}/{m.get('name')}" if m.get("namespace") else m.get("name")
    return f"{obj.get('kind') or '?'} {name or '<no name>'}"


@dataclass(frozen=True)
class Loaded:
    objects: state.ClusterState
    ignored: int  # objects of kinds discovery does not read


def load(items: Iterable[object]) -> Loaded:
    """Index objects by resource and key; RenderError for a malformed one."""
    objects = state.ClusterState()
    ignored = 0
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise RenderError(f"item {position}: not a JSON object")
        resource = KINDS.get(item.get("kind") or "")
        if resource is None:
            ignored += 1
            continue
        m = item.get("metadata")
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"]:
            raise RenderError(f"item {position} ({describe(item)}): metadata.name is missing")
        namespace = m.get("namespace")
        if resource.cluster_scoped == bool(namespace) or not isinstance(namespace, str | None):
            want = "no namespace" if resource.cluster_scoped else "a namespace"
            raise RenderError(f"item {position} ({describe(item)}): needs {want}")
        objects.apply(resource, object_key(namespace, m["name"]), item)
    return Loaded(objects, ignored)


def render(objects: state.ClusterState, view: JobView) -> list[Group]:
    """The groups Prometheus would hold for this state, sorted by source.

    Groups with neither labels nor targets (a pod without an IP) are what Prometheus
    sends to say "nothing here", so they are left out.
    """
    role = table.role(view.role)
    attach = folds.attach_of(view)
    groups: list[Group] = []
    for key in objects.keys(view.role_resource):
        obj = objects.get(view.role_resource, key)
        if obj is None or not view.sees(view.role_resource, obj):
            continue
        lookup = VisibleLookup(objects, view, namespace_of(obj))
        try:
            group = role.build_group(obj, lookup=lookup, attach=attach)
        except Exception as exc:
            raise RenderError(f"{describe(obj)}: cannot build its group: {exc!r}") from exc
        if group is not None and (group.labels or group.targets):
            groups.append(group)
    return sorted(groups, key=lambda g: g.source)
