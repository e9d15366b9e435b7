"""The `pod` role: one target per container port, or per port-less container.

The contract: docs/kubernetes-sd-contract.md §4.3.

Joins the pod's Node (attach_metadata.node; an unknown node empties the group), its
Namespace, and the owner chain: the controlling ReplicaSet (deployment) or Job (cronjob).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consumers.roles import labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import Group, LabelSet
from schemas.topics import ObjectKey, Resource, Source

POD_CONTAINER_ID = "__meta_kubernetes_pod_container_id"


def source(namespace: str, name: str) -> Source:
    return Source(f"pod/{namespace}/{name}")


def container_ids(statuses: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """`containerID` by container name; the first status of a name wins."""
    return labels.first_values(statuses, key="name", value="containerID")


def _targets(spec: Mapping[str, Any], status: Mapping[str, Any], pod_ip: str) -> list[LabelSet]:
    ids = {
        labels.FALSE: container_ids(status.get("containerStatuses")),
        labels.TRUE: container_ids(status.get("initContainerStatuses")),
    }
    out: list[LabelSet] = []
    for container, init in labels.containers(spec):
        name: str = container.get("name") or ""
        shared: LabelSet = {
            labels.POD_CONTAINER_NAME: name,
            POD_CONTAINER_ID: ids[init].get(name, ""),
            labels.POD_CONTAINER_IMAGE: container.get("image") or "",
            labels.POD_CONTAINER_INIT: init,
        }
        ports = container.get("ports")
        if not ports:  # one target at the bare pod IP, never bracketed
            out.append({labels.ADDRESS: pod_ip, **shared})
            continue
        for port in ports:
            number = labels.uint_text(port.get("containerPort"))
            out.append(
                {
                    labels.ADDRESS: labels.join_host_port(pod_ip, number),
                    **shared,
                    labels.POD_CONTAINER_PORT_NUMBER: number,
                    labels.POD_CONTAINER_PORT_NAME: port.get("name") or "",
                    labels.POD_CONTAINER_PORT_PROTOCOL: port.get("protocol") or "",
                }
            )
    return out


def build_group(pod: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach) -> Group:
    """The pod's group; empty (no labels, no targets) without `status.podIP`, or when node
    metadata is on and `spec.nodeName` is not a known node.
    """
    m = meta(pod)
    namespace: str = m.get("namespace") or ""
    group_source = source(namespace, m.get("name") or "")
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    pod_ip: str = status.get("podIP") or ""
    if not pod_ip:
        return Group(group_source)
    node = (
        lookup.get(Resource.NODES, ObjectKey(spec.get("nodeName") or "")) if attach.node else None
    )
    if attach.node and node is None:
        return Group(group_source)
    group_labels = labels.pod_block(pod, lookup=lookup, attach=attach)
    group_labels[labels.NAMESPACE] = namespace
    if node is not None:
        labels.add_meta(group_labels, meta(node), labels.NODE_META)
    if attach.namespace:
        labels.add_namespace(group_labels, lookup=lookup, namespace=namespace)
    return Group(group_source, group_labels, _targets(spec, status, pod_ip))
