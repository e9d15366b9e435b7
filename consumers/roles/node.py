"""The `node` role: one target per Node, at its kubelet.

The contract: docs/kubernetes-sd-contract.md §4.1.

The node role joins nothing and ignores attach_metadata; its group depends only on the
Node itself.
"""

from __future__ import annotations

from consumers.roles import labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import Group, LabelSet
from schemas.topics import Source

NODE_PROVIDER_ID = "__meta_kubernetes_node_provider_id"
NODE_CONDITION_PREFIX = "__meta_kubernetes_node_condition_"
NODE_ADDRESS_PREFIX = "__meta_kubernetes_node_address_"

# Prometheus's priority (the code's, §9): the first address of the first present type.
ADDRESS_PRIORITY = (
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
)


def source(name: str) -> Source:
    return Source(f"node/{name}")


def _group_labels(node: KubeObject) -> LabelSet:
    out: LabelSet = {NODE_PROVIDER_ID: (node.get("spec") or {}).get("providerID") or ""}
    for condition in (node.get("status") or {}).get("conditions") or ():
        kind = labels.sanitize(labels.go_lower(condition.get("type") or ""))
        out[NODE_CONDITION_PREFIX + kind] = labels.go_lower(condition.get("status") or "")
    labels.add_meta(out, meta(node), labels.NODE_META)
    return out


def build_group(
    node: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> Group | None:
    """The node's group, or None when no address has a known type.

    Prometheus then logs "No node address found" and sends nothing, so any earlier group
    for the node stays; callers must keep the previous group, not send a tombstone.
    `lookup` and `attach` are unused: the node role joins nothing.
    """
    status = node.get("status") or {}
    first = labels.first_values(status.get("addresses"), key="type", value="address")
    host = next((first[kind] for kind in ADDRESS_PRIORITY if kind in first), None)
    if host is None:
        return None
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    name: str = meta(node).get("name") or ""
    target: LabelSet = {
        labels.ADDRESS: labels.join_host_port(host, labels.int_text(endpoint.get("Port"))),
        labels.INSTANCE: name,
    }
    for kind in sorted(first):  # sanitisation collisions: the greatest type wins
        target[NODE_ADDRESS_PREFIX + labels.sanitize(kind)] = first[kind]
    return Group(source(name), _group_labels(node), [target])
