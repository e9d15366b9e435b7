"""The demo workload for `sdstream up`: objects with realistic status, and churn.

No kubelet or controller runs on the devstack, so this writes what they would: pod and
node status, Endpoints and EndpointSlices, ReplicaSets and Jobs owned by Deployments
and CronJobs (for attach_metadata). IPs are data only; nothing ever connects to them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from kubernetes import client, config

NAMESPACES = ("shop", "payments", "search")
NODES = ("node-a", "node-b", "node-c")
PODS_PER_APP = 3
READY = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
Body = dict[str, Any]


class DemoError(RuntimeError):
    """The API server refused a demo object."""


def connect(kubeconfig: str) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    return api


CORE, APPS, BATCH = "/api/v1", "/apis/apps/v1", "/apis/batch/v1"
DISCOVERY, NETWORKING = "/apis/discovery.k8s.io/v1", "/apis/networking.k8s.io/v1"


def _owner(kind: str, name: str, api_version: str) -> Body:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}",
            "controller": True}  # fmt: skip


@dataclass
class Workload:
    """The demo objects of one cluster; `step()` makes one random change."""

    api: client.ApiClient
    seed: int = 0
    _ips: Iterator[int] = field(default_factory=lambda: itertools.count(10))
    _pods: dict[str, list[str]] = field(default_factory=dict)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - demo data, not security

    def _call(self, method: str, path: str, body: Body | None = None) -> Any:
        """Raw API JSON in and out, as kubectl sends it (no client model classes)."""
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        method, url, headers, data, _ = self.api.param_serialize(
            method, path, header_params={"Content-Type": kind, "Accept": "application/json"},
            body=body, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self.api.call_api(method, url, header_params=headers, body=data)
        raw: bytes = response.read()  # type: ignore[no-untyped-call]  # the client is untyped here
        if response.status >= 400:
            raise DemoError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return orjson.loads(raw) if raw else None

    def create(self) -> int:
        """Namespaces, nodes, and per namespace an app with service, endpoints, slice,
        ingress, plus a CronJob's Job pod; returns how many objects were written."""
        written = 0
        for number, node in enumerate(NODES, start=1):
            self._node(node, f"10.1.0.{number}")
            written += 1
        for ns in NAMESPACES:
            self._call("POST", f"{CORE}/namespaces",
                       {"metadata": {"name": ns, "labels": {"team": ns}}})  # fmt: skip
            written += 1 + self._app(ns)
        return written

    def _node(self, name: str, address: str) -> None:
        self._call("POST", f"{CORE}/nodes", {"metadata": {"name": name, "labels": {
            "topology.kubernetes.io/zone": f"zone-{name[-1]}"}}})  # fmt: skip
        self._call("PATCH", f"{CORE}/nodes/{name}/status", {"status": {
            "addresses": [{"type": "InternalIP", "address": address},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "conditions": [{"type": "Ready", "status": "True"}]}})  # fmt: skip

    def _app(self, ns: str) -> int:
        self._call("POST", f"{APPS}/namespaces/{ns}/replicasets", {
            "metadata": {"name": "web-5d8f", "ownerReferences": [
                _owner("Deployment", "web", "apps/v1")]},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
        })  # fmt: skip
        self._pods[ns] = []
        for _ in range(PODS_PER_APP):
            self.add_pod(ns, sync=False)
        self._call("POST", f"{CORE}/namespaces/{ns}/services", {
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        })  # fmt: skip
        self._sync_endpoints(ns, create=True)
        self._call("POST", f"{NETWORKING}/namespaces/{ns}/ingresses", {
            "metadata": {"name": "web"},
            "spec": {"tls": [{"hosts": [f"{ns}.example.com"]}], "rules": [
                {"host": f"{ns}.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {
                        "service": {"name": "web", "port": {"number": 80}}}}]}}]},
        })  # fmt: skip
        self._cron_job_pod(ns)
        return 4 + PODS_PER_APP + 3

    def _cron_job_pod(self, ns: str) -> None:
        self._call("POST", f"{BATCH}/namespaces/{ns}/jobs", {
            "metadata": {"name": "report-2911", "ownerReferences": [
                _owner("CronJob", "report", "batch/v1")]},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "report", "image": "report:1"}]}}},
        })  # fmt: skip
        self._pod(ns, "report-2911-x1", owner=_owner("Job", "report-2911", "batch/v1"),
                  labels={"job-name": "report-2911"}, port=9102)  # fmt: skip

    def _pod(self, ns: str, name: str, *, owner: Body, labels: dict[str, str], port: int) -> str:
        node = self._random.choice(NODES)
        self._call("POST", f"{CORE}/namespaces/{ns}/pods", {
            "metadata": {"name": name, "labels": labels, "ownerReferences": [owner],
                         "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1",
                     "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]}]},
        })  # fmt: skip
        serial = next(self._ips)
        ip = f"10.244.{serial // 250}.{serial % 250 + 1}"
        self._call("PATCH", f"{CORE}/namespaces/{ns}/pods/{name}/status", {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.1.0.1",
            "hostIPs": [{"ip": "10.1.0.1"}],
            "conditions": [{"type": t, "status": "True"} for t in READY]}})  # fmt: skip
        return ip

    def add_pod(self, ns: str, *, sync: bool = True) -> None:
        name = f"web-5d8f-{next(self._serial):04d}"
        self._pod(ns, name, owner=_owner("ReplicaSet", "web-5d8f", "apps/v1"),
                  labels={"app": "web"}, port=8080)  # fmt: skip
        self._pods[ns].append(name)
        if sync:
            self._sync_endpoints(ns)

    def remove_pod(self, ns: str) -> None:
        if not self._pods[ns]:
            return
        name = self._pods[ns].pop(self._random.randrange(len(self._pods[ns])))
        self._call("DELETE", f"{CORE}/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0")
        self._sync_endpoints(ns)

    def relabel_pod(self, ns: str) -> None:
        if self._pods[ns]:
            name = self._random.choice(self._pods[ns])
            version = f"v{self._random.randrange(100)}"
            path = f"{CORE}/namespaces/{ns}/pods/{name}"
            self._call("PATCH", path, {"metadata": {"labels": {"rev": version}}})

    def step(self) -> str:
        """One random change, as a short description."""
        ns = self._random.choice(NAMESPACES)
        action = self._random.choice(("add", "remove", "relabel"))
        {"add": self.add_pod, "remove": self.remove_pod, "relabel": self.relabel_pod}[action](ns)
        return f"{action} pod in {ns}"

    def _sync_endpoints(self, ns: str, *, create: bool = False) -> None:
        pods = [self._call("GET", f"{CORE}/namespaces/{ns}/pods/{n}") for n in self._pods[ns]]
        refs = [(p["metadata"]["name"], p["status"]["podIP"], p["spec"]["nodeName"]) for p in pods]
        addresses = [{"ip": ip, "nodeName": node, "targetRef": {
            "kind": "Pod", "name": name, "namespace": ns}} for name, ip, node in refs]  # fmt: skip
        ports = [{"name": "http", "port": 8080, "protocol": "TCP"}]
        subsets = [{"addresses": addresses, "ports": ports}] if refs else []
        endpoints = {"metadata": {"name": "web", "labels": {"app": "web"}}, "subsets": subsets}
        slice_ = {
            "metadata": {"name": "web-abcde", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "name": name, "namespace": ns}}
                          for name, ip, node in refs],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }  # fmt: skip
        eps, slices = (
            f"{CORE}/namespaces/{ns}/endpoints",
            f"{DISCOVERY}/namespaces/{ns}/endpointslices",
        )
        if create:
            self._call("POST", eps, endpoints)
            self._call("POST", slices, slice_)
        else:
            self._call("PUT", f"{eps}/web", endpoints)
            self._call("PUT", f"{slices}/web-abcde", slice_)
