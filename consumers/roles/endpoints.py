"""The `endpoints` role: one target per core/v1 Endpoints address and port.

The contract: docs/kubernetes-sd-contract.md §4.4.

Joins the same-named Service, the Pods that addresses' targetRefs name (plus their owner
chains), Nodes (attach_metadata.node) and the Namespace. Pod-backed addresses also bring
"extra" targets for container ports no endpoint port covers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from consumers.roles import joins, labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import Group, LabelSet
from schemas.topics import Resource, Source

ENDPOINT_READY = "__meta_kubernetes_endpoint_ready"
ENDPOINT_PORT_NAME = "__meta_kubernetes_endpoint_port_name"
ENDPOINT_PORT_PROTOCOL = "__meta_kubernetes_endpoint_port_protocol"
ENDPOINT_NODE_NAME = "__meta_kubernetes_endpoint_node_name"
ENDPOINT_HOSTNAME = "__meta_kubernetes_endpoint_hostname"
ENDPOINT_ADDRESS_TARGET_KIND = "__meta_kubernetes_endpoint_address_target_kind"
ENDPOINT_ADDRESS_TARGET_NAME = "__meta_kubernetes_endpoint_address_target_name"


def source(namespace: str, name: str) -> Source:
    return Source(f"endpoints/{namespace}/{name}")


class _Address(NamedTuple):
    """One subset address with the labels that do not depend on the port."""

    ip: str
    ready: str
    labels: LabelSet
    pod: joins.JoinedPod | None


def _group_labels(
    endpoints: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> LabelSet:
    """`namespace`, the service block, the Endpoints metadata block, the namespace block."""
    m = meta(endpoints)
    namespace: str = m.get("namespace") or ""
    out: LabelSet = {labels.NAMESPACE: namespace}
    service = lookup.get(Resource.SERVICES, lookups.key(namespace, m.get("name") or ""))
    if service is not None:
        out.update(labels.service_block(service))
    labels.add_meta(out, m, labels.ENDPOINTS_META)
    if attach.namespace:
        labels.add_namespace(out, lookup=lookup, namespace=namespace)
    return out


def _node_to_join(address: Mapping[str, Any]) -> str | None:
    """`nodeName` if set (even to ""), else the name of a `Node` targetRef."""
    node_name: str | None = address.get("nodeName")
    if node_name is not None:
        return node_name
    ref = address.get("targetRef")
    if ref is not None and ref.get("kind") == "Node":
        name: str = ref.get("name") or ""
        return name
    return None


def _address(
    address: Mapping[str, Any],
    ready: str,
    *,
    nodes: joins.NodeBlocks | None,
    pods: joins.PodJoin,
) -> _Address:
    out: LabelSet = {}
    ref = address.get("targetRef")
    if ref is not None:
        out[ENDPOINT_ADDRESS_TARGET_KIND] = ref.get("kind") or ""
        out[ENDPOINT_ADDRESS_TARGET_NAME] = ref.get("name") or ""
    node_name = address.get("nodeName")
    if node_name is not None:
        out[ENDPOINT_NODE_NAME] = node_name
    hostname = address.get("hostname")
    if hostname:
        out[ENDPOINT_HOSTNAME] = hostname
    if nodes is not None:
        nodes.add(out, _node_to_join(address))
    return _Address(address.get("ip") or "", ready, out, pods.resolve(ref))


def _subset_targets(
    subset: Mapping[str, Any], *, nodes: joins.NodeBlocks | None, pods: joins.PodJoin
) -> Iterator[LabelSet]:
    """Per port: each ready address (`"true"`), then each not-ready one (`"false"`)."""
    addresses = [
        _address(address, ready, nodes=nodes, pods=pods)
        for key, ready in (("addresses", labels.TRUE), ("notReadyAddresses", labels.FALSE))
        for address in subset.get(key) or ()
    ]
    for port in subset.get("ports") or ():
        number: int = port.get("port") or 0
        number_text = labels.uint_text(number)
        protocol: str = port.get("protocol") or ""
        port_name: str = port.get("name") or ""
        for address in addresses:
            # The blocks' label names are disjoint, so copying the biggest one first is safe
            # (and cheaper than merging it into a new dict).
            target = {} if address.pod is None else address.pod.block.copy()
            target.update(address.labels)
            target[labels.ADDRESS] = labels.join_host_port(address.ip, number_text)
            target[ENDPOINT_PORT_NAME] = port_name
            target[ENDPOINT_PORT_PROTOCOL] = protocol
            target[ENDPOINT_READY] = address.ready
            if address.pod is not None:
                match = address.pod.by_number.get(number)
                if match is not None:
                    target.update(match)  # but with the Endpoints port's protocol:
                    target[labels.POD_CONTAINER_PORT_PROTOCOL] = protocol
                pods.use(address.pod, number)
            yield target


def build_group(endpoints: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach) -> Group:
    """Subset targets in order, then the extra pod-port targets (order unspecified upstream).

    Empty `subsets` give the group labels and no targets.
    """
    m = meta(endpoints)
    nodes = joins.NodeBlocks(lookup) if attach.node else None
    pods = joins.PodJoin(lookup=lookup, attach=attach)
    targets = [
        target
        for subset in endpoints.get("subsets") or ()
        for target in _subset_targets(subset, nodes=nodes, pods=pods)
    ]
    targets.extend(pods.extra_targets())
    return Group(
        source(m.get("namespace") or "", m.get("name") or ""),
        _group_labels(endpoints, lookup=lookup, attach=attach),
        targets,
    )
