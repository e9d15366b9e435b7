"""The `service` role: one target per Service port, at its cluster DNS name.

The contract: docs/kubernetes-sd-contract.md §4.2.

Joins only the Service's Namespace (attach_metadata.namespace).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumers.roles import labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import Group, LabelSet
from schemas.topics import Source

SERVICE_PORT_NAME = "__meta_kubernetes_service_port_name"
SERVICE_PORT_NUMBER = "__meta_kubernetes_service_port_number"
SERVICE_PORT_PROTOCOL = "__meta_kubernetes_service_port_protocol"
SERVICE_TYPE = "__meta_kubernetes_service_type"
SERVICE_CLUSTER_IP = "__meta_kubernetes_service_cluster_ip"
SERVICE_EXTERNAL_NAME = "__meta_kubernetes_service_external_name"
SERVICE_LOADBALANCER_IP = "__meta_kubernetes_service_loadbalancer_ip"


def source(namespace: str, name: str) -> Source:
    return Source(f"svc/{namespace}/{name}")


def load_balancer_ip(service: KubeObject, spec: Mapping[str, Any]) -> str:
    """Non-empty `status.loadBalancer.ingress[].ip` joined by `,`, else `spec.loadBalancerIP`.

    This is unreleased Prometheus main (after v3.14.0, §10); releases up to v3.14.0 use only
    `spec.loadBalancerIP`.
    """
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    ips = [entry["ip"] for entry in ingress if entry.get("ip")]
    if ips:
        return ",".join(ips)
    value: str = spec.get("loadBalancerIP") or ""
    return value


def _type_labels(service: KubeObject, spec: Mapping[str, Any]) -> LabelSet:
    """The labels every port target shares: type, then cluster IP or external name, LB IP."""
    kind: str = spec.get("type") or ""
    out: LabelSet = {SERVICE_TYPE: kind}
    if kind == "ExternalName":
        out[SERVICE_EXTERNAL_NAME] = spec.get("externalName") or ""
    else:
        out[SERVICE_CLUSTER_IP] = spec.get("clusterIP") or ""
    if kind == "LoadBalancer":
        out[SERVICE_LOADBALANCER_IP] = load_balancer_ip(service, spec)
    return out


def build_group(service: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach) -> Group:
    """Group labels: `namespace` and the service block; targets: `spec.ports` in order."""
    m = meta(service)
    namespace: str = m.get("namespace") or ""
    name: str = m.get("name") or ""
    group_labels = labels.service_block(service)
    if attach.namespace:
        labels.add_namespace(group_labels, lookup=lookup, namespace=namespace)
    spec = service.get("spec") or {}
    shared = _type_labels(service, spec)
    host = f"{name}.{namespace}.svc"
    targets: list[LabelSet] = []
    for port in spec.get("ports") or ():
        number = labels.int_text(port.get("port"))
        targets.append(
            {
                labels.ADDRESS: labels.join_host_port(host, number),
                SERVICE_PORT_NAME: port.get("name") or "",
                SERVICE_PORT_NUMBER: number,
                SERVICE_PORT_PROTOCOL: port.get("protocol") or "",
                **shared,
            }
        )
    return Group(source(namespace, name), group_labels, targets)
