"""The `endpointslice` role: one target per endpoint, port and address.

The contract: docs/kubernetes-sd-contract.md §4.5.

Joins the Service the `kubernetes.io/service-name` label names (also for the dual-stack
rule), the Pods that endpoints' targetRefs name (plus their owner chains), Nodes
(attach_metadata.node) and the Namespace. Optional API fields give a label only when set,
so null and absent differ from empty here, unlike elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from consumers.roles import joins, labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import Group, LabelSet
from schemas.topics import Resource, Source

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

ENDPOINTSLICE_ADDRESS_TYPE = "__meta_kubernetes_endpointslice_address_type"
ENDPOINTSLICE_PORT_NAME = "__meta_kubernetes_endpointslice_port_name"
ENDPOINTSLICE_PORT_PROTOCOL = "__meta_kubernetes_endpointslice_port_protocol"
ENDPOINTSLICE_PORT = "__meta_kubernetes_endpointslice_port"
ENDPOINTSLICE_PORT_APP_PROTOCOL = "__meta_kubernetes_endpointslice_port_app_protocol"
ENDPOINTSLICE_ENDPOINT_CONDITIONS_READY = (
    "__meta_kubernetes_endpointslice_endpoint_conditions_ready"
)
ENDPOINTSLICE_ENDPOINT_CONDITIONS_SERVING = (
    "__meta_kubernetes_endpointslice_endpoint_conditions_serving"
)
ENDPOINTSLICE_ENDPOINT_CONDITIONS_TERMINATING = (
    "__meta_kubernetes_endpointslice_endpoint_conditions_terminating"
)
ENDPOINTSLICE_ENDPOINT_HOSTNAME = "__meta_kubernetes_endpointslice_endpoint_hostname"
ENDPOINTSLICE_ENDPOINT_NODE_NAME = "__meta_kubernetes_endpointslice_endpoint_node_name"
ENDPOINTSLICE_ENDPOINT_ZONE = "__meta_kubernetes_endpointslice_endpoint_zone"
ENDPOINTSLICE_ADDRESS_TARGET_KIND = "__meta_kubernetes_endpointslice_address_target_kind"
ENDPOINTSLICE_ADDRESS_TARGET_NAME = "__meta_kubernetes_endpointslice_address_target_name"
TOPOLOGY = labels.Names(
    "__meta_kubernetes_endpointslice_endpoint_topology_",
    "__meta_kubernetes_endpointslice_endpoint_topology_present_",
)

_DUAL_STACK = frozenset({"PreferDualStack", "RequireDualStack"})
_CONDITIONS = (
    ("ready", ENDPOINTSLICE_ENDPOINT_CONDITIONS_READY),
    ("serving", ENDPOINTSLICE_ENDPOINT_CONDITIONS_SERVING),
    ("terminating", ENDPOINTSLICE_ENDPOINT_CONDITIONS_TERMINATING),
)
_PORT_FIELDS = (
    ("name", ENDPOINTSLICE_PORT_NAME),
    ("protocol", ENDPOINTSLICE_PORT_PROTOCOL),
    ("appProtocol", ENDPOINTSLICE_PORT_APP_PROTOCOL),
)
_ENDPOINT_FIELDS = (
    ("hostname", ENDPOINTSLICE_ENDPOINT_HOSTNAME),
    ("nodeName", ENDPOINTSLICE_ENDPOINT_NODE_NAME),
    ("zone", ENDPOINTSLICE_ENDPOINT_ZONE),
)


def source(namespace: str, name: str) -> Source:
    return Source(f"endpointslice/{namespace}/{name}")


class _Port(NamedTuple):
    """A slice port: its number (None when unset), that number as text, and its labels."""

    number: int | None
    text: str | None
    labels: LabelSet


def _port(port: Mapping[str, Any]) -> _Port:
    out: LabelSet = {name: port[key] for key, name in _PORT_FIELDS if port.get(key) is not None}
    number: int | None = port.get("port")
    text = None if number is None else labels.uint_text(number)
    if text is not None:
        out[ENDPOINTSLICE_PORT] = text
    return _Port(number, text, out)


def secondary_family(service: KubeObject | None, address_type: str) -> bool:
    """The dual-stack rule: a slice not of its dual-stack Service's primary family."""
    if service is None:
        return False
    spec = service.get("spec") or {}
    families: list[str] = spec.get("ipFamilies") or []
    return (
        spec.get("ipFamilyPolicy") in _DUAL_STACK
        and bool(families)
        and (address_type != families[0])
    )


def _node_to_join(endpoint: Mapping[str, Any]) -> str | None:
    """The name of a `Node` targetRef, else `nodeName` if set."""
    ref = endpoint.get("targetRef")
    if ref is not None and ref.get("kind") == "Node":
        name: str = ref.get("name") or ""
        return name
    node_name: str | None = endpoint.get("nodeName")
    return node_name


def _endpoint_labels(endpoint: Mapping[str, Any], *, nodes: joins.NodeBlocks | None) -> LabelSet:
    """The labels every target of one endpoint shares, whatever the port or address."""
    conditions = endpoint.get("conditions") or {}
    out: LabelSet = {
        name: labels.bool_text(conditions[key])
        for key, name in _CONDITIONS
        if conditions.get(key) is not None
    }
    out.update(
        {name: endpoint[key] for key, name in _ENDPOINT_FIELDS if endpoint.get(key) is not None}
    )
    ref = endpoint.get("targetRef")
    if ref is not None:
        out[ENDPOINTSLICE_ADDRESS_TARGET_KIND] = ref.get("kind") or ""
        out[ENDPOINTSLICE_ADDRESS_TARGET_NAME] = ref.get("name") or ""
    labels.add_pairs(out, endpoint.get("deprecatedTopology"), TOPOLOGY)
    if nodes is not None:
        nodes.add(out, _node_to_join(endpoint))
    return out


def _group_labels(
    endpoint_slice: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> tuple[LabelSet, KubeObject | None]:
    """Group labels in the spec's order, and the joined Service (None if not cached)."""
    m = meta(endpoint_slice)
    namespace: str = m.get("namespace") or ""
    out: LabelSet = {
        labels.NAMESPACE: namespace,
        ENDPOINTSLICE_ADDRESS_TYPE: endpoint_slice.get("addressType") or "",
    }
    labels.add_meta(out, m, labels.ENDPOINTSLICE_META)
    service_name = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
    service = (
        None
        if service_name is None
        else lookup.get(Resource.SERVICES, lookups.key(namespace, service_name))
    )
    if service is not None:
        out.update(labels.service_block(service))
    if attach.namespace:
        labels.add_namespace(out, lookup=lookup, namespace=namespace)
    return out, service


def _targets(
    endpoint_slice: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> list[LabelSet]:
    """For each endpoint, each port, each address; then the extra pod-port targets."""
    ports = [_port(port) for port in endpoint_slice.get("ports") or ()]
    nodes = joins.NodeBlocks(lookup) if attach.node else None
    pods = joins.PodJoin(lookup=lookup, attach=attach)
    out: list[LabelSet] = []
    for endpoint in endpoint_slice.get("endpoints") or ():
        addresses: list[str] = endpoint.get("addresses") or []
        if not ports or not addresses:
            continue
        shared = _endpoint_labels(endpoint, nodes=nodes)
        joined = pods.resolve(endpoint.get("targetRef"))
        for port in ports:
            # Copy the biggest block, then add the rest: cheaper than merging into a new dict,
            # and safe since the blocks' label names are disjoint.
            base, rest = shared, port.labels
            if joined is not None:  # container labels keep the container port's protocol
                match = None if port.number is None else joined.by_number.get(port.number)
                base, rest = joined.block, {**shared, **port.labels, **(match or {})}
                pods.use(joined, port.number)
            for address in addresses:
                target = base.copy()
                target.update(rest)
                target[labels.ADDRESS] = (
                    address if port.text is None else labels.join_host_port(address, port.text)
                )
                out.append(target)
    out.extend(pods.extra_targets())
    return out


def build_group(
    endpoint_slice: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> Group:
    """Labels always; no targets without endpoints or ports, or for a dual-stack secondary."""
    m = meta(endpoint_slice)
    group_source = source(m.get("namespace") or "", m.get("name") or "")
    group_labels, service = _group_labels(endpoint_slice, lookup=lookup, attach=attach)
    if secondary_family(service, endpoint_slice.get("addressType") or ""):
        return Group(group_source, group_labels)
    return Group(group_source, group_labels, _targets(endpoint_slice, lookup=lookup, attach=attach))
