"""Create realistic objects in a kube-apiserver that has no kubelet and no controllers.

Status is what discovery reads, so each helper writes it through the status
subresource, as a kubelet or controller would. IPs here are data only.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

Body = dict[str, Any]
READY_CONDITIONS = [
    {"type": t, "status": "True"}
    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
]


def create_namespace(
    api: client.ApiClient, name: str, *, labels: dict[str, str] | None = None
) -> Body:
    body = {"metadata": {"name": name, "labels": labels or {}}}
    return _dict(api, client.CoreV1Api(api).create_namespace(body))


def create_node(
    api: client.ApiClient,
    name: str,
    *,
    address: str,
    labels: dict[str, str] | None = None,
    kubelet_port: int = 10250,
) -> Body:
    core = client.CoreV1Api(api)
    core.create_node({"metadata": {"name": name, "labels": labels or {}}})
    status = {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    return _dict(api, core.patch_node_status(name, status))


def container(name: str, *ports: tuple[str, int, str]) -> Body:
    """A container with (name, port, protocol) ports."""
    return {
        "name": name,
        "image": "example/app:1",
        "ports": [{"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports],
    }


def create_pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    ip: str,
    node: str,
    containers: list[Body] | None = None,
    labels: dict[str, str] | None = None,
    owner: Body | None = None,
    phase: str = "Running",
) -> Body:
    core = client.CoreV1Api(api)
    meta: Body = {"name": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [owner]
    spec = {"nodeName": node, "containers": containers or [container("app", ("http", 8080, "TCP"))]}
    core.create_namespaced_pod(namespace, {"metadata": meta, "spec": spec})
    host_ip = "10.1.0.11"
    status = {
        "status": {
            "phase": phase,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "conditions": READY_CONDITIONS,
        }
    }
    return _dict(api, core.patch_namespaced_pod_status(name, namespace, status))


def delete_pod(api: client.ApiClient, namespace: str, name: str) -> None:
    """Grace 0: with a nodeName and no kubelet, a graceful delete would wait forever."""
    client.CoreV1Api(api).delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def create_service(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    ports: list[Body],
    selector: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> Body:
    body = {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"ports": ports, "selector": selector or {}},
    }
    return _dict(api, client.CoreV1Api(api).create_namespaced_service(namespace, body))


def create_endpoints(
    api: client.ApiClient, namespace: str, name: str, *, subsets: list[Body]
) -> Body:
    body = {"metadata": {"name": name}, "subsets": subsets}
    return _dict(api, client.CoreV1Api(api).create_namespaced_endpoints(namespace, body))


def create_endpointslice(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    service: str,
    endpoints: list[Body],
    ports: list[Body],
    address_type: str = "IPv4",
) -> Body:
    body = {
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports,
    }
    api_ = client.DiscoveryV1Api(api)
    return _dict(api, api_.create_namespaced_endpoint_slice(namespace, body))


def create_ingress(api: client.ApiClient, namespace: str, name: str, *, spec: Body) -> Body:
    body = {"metadata": {"name": name}, "spec": spec}
    net = client.NetworkingV1Api(api)
    return _dict(api, net.create_namespaced_ingress(namespace, body))


def _dict(api: client.ApiClient, obj: Any) -> Body:
    """API JSON (camelCase), as `kubectl get -o json` prints it."""
    result: Body = api.sanitize_for_serialization(obj)
    return result
