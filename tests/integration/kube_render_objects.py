"""Raw-JSON object creation for the render-vs-promtool scenarios.

`objects.py` has one typed helper per kind for the common shapes. The differential tests
need every field discovery reads (init containers, container statuses, slice conditions,
hints, TLS, owner chains...), so here any object is POSTed as the raw JSON a user would
`kubectl apply`, and its status is merge-patched through the status subresource, as a
kubelet or controller would. Nothing runs in the cluster; IPs are data only.
"""

from __future__ import annotations

from typing import Any

import orjson
from kubernetes import client

from schemas.resources import ROWS

Body = dict[str, Any]

# From the resource registry: kind -> collection path, and apiVersion where not "v1".
PATHS = {
    row.kind: row.api
    + ("" if row.resource.cluster_scoped else "/namespaces/{namespace}")
    + f"/{row.resource.value}"
    for row in ROWS.values()
}
API_VERSIONS = {
    row.kind: row.api.removeprefix("/apis/") for row in ROWS.values() if row.api != "/api/v1"
}
READY_CONDITIONS = [
    {"type": t, "status": "True"}
    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
]


class RequestFailed(RuntimeError):
    """The API server refused a request; the message carries its status and reply."""


def request(
    api: client.ApiClient, method: str, path: str, body: Body | None, *, content_type: str
) -> Body:
    """One JSON request; the decoded reply, or RequestFailed with the server's message."""
    verb, url, headers, data, _ = api.param_serialize(
        method=method,
        resource_path=path,
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    reply = api.call_api(verb, url, headers, data)
    raw: bytes = reply.read()  # type: ignore[no-untyped-call]  # unannotated in kubernetes
    if not 200 <= reply.status < 300:
        raise RequestFailed(f"{method} {path}: {reply.status} {raw.decode(errors='replace')}")
    decoded: Body = orjson.loads(raw)
    return decoded


def _path(kind: str, namespace: str | None) -> str:
    return PATHS[kind].format(namespace=namespace)


def create(
    api: client.ApiClient,
    kind: str,
    body: Body,
    *,
    namespace: str | None = None,
    status: Body | None = None,
) -> Body:
    """POST `body` as a `kind` (in `namespace` unless cluster-scoped), then its status."""
    full = {"apiVersion": API_VERSIONS.get(kind, "v1"), "kind": kind, **body}
    created = request(api, "POST", _path(kind, namespace), full, content_type="application/json")
    if status is None:
        return created
    return patch_status(api, kind, created["metadata"]["name"], status, namespace=namespace)


def patch_status(
    api: client.ApiClient, kind: str, name: str, status: Body, *, namespace: str | None = None
) -> Body:
    """Merge-patch `status` through the status subresource (lists are replaced whole)."""
    path = f"{_path(kind, namespace)}/{name}/status"
    return request(
        api, "PATCH", path, {"status": status}, content_type="application/merge-patch+json"
    )


def patch(
    api: client.ApiClient, kind: str, name: str, body: Body, *, namespace: str | None = None
) -> Body:
    """Merge-patch the object itself (labels, annotations...)."""
    path = f"{_path(kind, namespace)}/{name}"
    return request(api, "PATCH", path, body, content_type="application/merge-patch+json")


def delete(api: client.ApiClient, kind: str, name: str, *, namespace: str | None = None) -> Body:
    """A graceful DELETE: a pod with a nodeName then stays Terminating (no kubelet)."""
    path = f"{_path(kind, namespace)}/{name}"
    return request(api, "DELETE", path, None, content_type="application/json")


def owner(kind: str, obj: Body, *, controller: bool = True) -> Body:
    """An ownerReference to a created object (`controller` omitted when False)."""
    api_version = obj.get("apiVersion") or API_VERSIONS.get(kind, "v1")
    ref: Body = {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
    }
    if controller:
        ref["controller"] = True
    return ref


def running(
    ip: str,
    *,
    host_ip: str = "10.1.0.11",
    conditions: list[Body] | None = None,
    phase: str = "Running",
    statuses: list[Body] | None = None,
    init_statuses: list[Body] | None = None,
) -> Body:
    """A pod status as a kubelet writes it (podIPs[0] == podIP, hostIPs[0] == hostIP)."""
    out: Body = {
        "phase": phase,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": "2026-11-24T10:00:00Z",
        "conditions": READY_CONDITIONS if conditions is None else conditions,
    }
    if statuses is not None:
        out["containerStatuses"] = statuses
    if init_statuses is not None:
        out["initContainerStatuses"] = init_statuses
    return out


def container_status(name: str, image: str, container_id: str) -> Body:
    """A running container's status entry."""
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "containerID": container_id,
        "ready": True,
        "started": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": "2026-11-24T10:00:01Z"}},
    }


def port(number: int, name: str | None = None, protocol: str | None = None) -> Body:
    """A container port; name and protocol only when given (the server defaults TCP)."""
    out: Body = {"containerPort": number}
    if name is not None:
        out["name"] = name
    if protocol is not None:
        out["protocol"] = protocol
    return out


def container(name: str, *ports: Body, image: str = "example/app:1", **extra: Any) -> Body:
    out: Body = {"name": name, "image": image, **extra}
    if ports:
        out["ports"] = list(ports)
    return out
