"""End to end, every role: API server -> producer -> Kafka -> consumer -> HTTP SD, judged by
Prometheus itself.

For each role the same sd config goes to promtool's kubernetes_sd (against the same API
server) and to our consumer; our HTTP SD must give the same targets, after the initial
list and again after adds, updates and deletes of every kind. Then promtool reads our
endpoint with `http_sd_configs` and must discover exactly what its kubernetes_sd did:
a Prometheus switched from one to the other would see no difference. Only `__address__`
and `__meta_*` are compared; our extra `cluster` label is asserted on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import e2e_pipeline as e2e
from tests.integration import objects
from tests.naming import unique

MERGE = "application/merge-patch+json"
PORTS = [{"name": "http", "port": 8080, "protocol": "TCP"},
         {"name": "metrics", "port": 9090, "protocol": "TCP"}]  # fmt: skip


def jobs(namespace: str) -> dict[str, e2e.SdConfig]:
    mine = {"names": [namespace]}
    return {
        "nodes": {"role": "node"},  # cluster-wide, as in Prometheus
        "services": {"role": "service", "namespaces": mine},
        "pods": {"role": "pod", "namespaces": mine,
                 "attach_metadata": {"node": True, "namespace": True}},
        "endpoints": {"role": "endpoints", "namespaces": mine, "attach_metadata": {"node": True}},
        "slices": {"role": "endpointslice", "namespaces": mine,
                   "attach_metadata": {"node": True}},
        "ingresses": {"role": "ingress", "namespaces": mine},
    }  # fmt: skip


def pod_ref(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "Pod", "namespace": namespace, "name": name}


def subsets(namespace: str, node: str, pods: dict[str, str]) -> list[dict[str, Any]]:
    """Endpoints subsets for `pods` (name -> IP) on `node`, both ports."""
    addresses = [{"ip": ip, "nodeName": node, "targetRef": pod_ref(namespace, name)}
                 for name, ip in pods.items()]  # fmt: skip
    return [{"addresses": addresses, "ports": PORTS}]


def slice_endpoints(namespace: str, node: str, pods: dict[str, str]) -> list[dict[str, Any]]:
    return [{"addresses": [ip], "conditions": {"ready": True, "serving": True},
             "nodeName": node, "targetRef": pod_ref(namespace, name)}
            for name, ip in pods.items()]  # fmt: skip


def seed(api: client.ApiClient, ns: str, node_a: str, node_b: str) -> None:
    """One or more objects of every kind, some of them to be changed or deleted later."""
    objects.create_node(api, node_a, address="10.1.7.1", labels={"zone": "z1"})
    objects.create_node(api, node_b, address="10.1.7.2")
    web = [objects.container("app", ("http", 8080, "TCP"), ("metrics", 9090, "TCP")),
           {"name": "sidecar", "image": "side:1"}]  # fmt: skip
    objects.create_pod(api, ns, "web-0", ip="10.244.7.1", node=node_a, labels={"app": "web"},
                       containers=web)  # fmt: skip
    objects.create_pod(api, ns, "web-1", ip="10.244.7.2", node=node_b, labels={"app": "web"},
                       containers=web)  # fmt: skip
    objects.create_pod(api, ns, "db-0", ip="10.244.7.3", node=node_a, phase="Pending",
                       containers=[objects.container("db", ("pg", 5432, "TCP"))])  # fmt: skip
    http = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    objects.create_service(api, ns, "web", ports=[http], selector={"app": "web"})
    objects.create_service(api, ns, "db", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])
    both = {"web-0": "10.244.7.1", "web-1": "10.244.7.2"}
    objects.create_endpoints(api, ns, "web", subsets=subsets(ns, node_a, both))
    objects.create_endpoints(api, ns, "db", subsets=subsets(ns, node_a, {"db-0": "10.244.7.3"}))
    objects.create_endpointslice(api, ns, "web-abc", service="web", ports=PORTS,
                                 endpoints=slice_endpoints(ns, node_a, both))  # fmt: skip
    db = slice_endpoints(ns, node_a, {"db-0": "10.244.7.3"})
    objects.create_endpointslice(api, ns, "db-abc", service="db", ports=PORTS[:1], endpoints=db)
    objects.create_ingress(api, ns, "web", spec={"rules": [{"host": "web.example.com", "http": {
        "paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {
            "name": "web", "port": {"number": 80}}}}]}}]})  # fmt: skip
    objects.create_ingress(api, ns, "old", spec={"rules": [{"host": "old.example.com"}]})
    # the less common shapes: IPv6, not-ready addresses, ExternalName, unnamed ports
    objects.create_pod(api, ns, "v6-0", ip="fd00::7:1", node=node_b,
                       containers=[objects.container("app", ("", 8080, "TCP"))])  # fmt: skip
    objects.create_endpointslice(api, ns, "v6-abc", service="v6", address_type="IPv6",
                                 ports=[{"port": 8080, "protocol": "TCP"}],
                                 endpoints=[{"addresses": ["fd00::7:1"],
                                             "conditions": {"ready": False}}])  # fmt: skip
    objects.create_endpoints(api, ns, "mixed", subsets=[{
        "addresses": [{"ip": "10.244.7.1", "targetRef": pod_ref(ns, "web-0")}],
        "notReadyAddresses": [{"ip": "10.244.7.3", "targetRef": pod_ref(ns, "db-0")}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}])  # fmt: skip
    external = client.V1ServiceSpec(type="ExternalName", external_name="db.example.com",
                                    ports=[client.V1ServicePort(name="pg", port=5432)])  # fmt: skip
    client.CoreV1Api(api).create_namespaced_service(
        ns, client.V1Service(metadata=client.V1ObjectMeta(name="ext"), spec=external)
    )


def change(api: client.ApiClient, ns: str, node_a: str, node_b: str, node_c: str) -> None:
    """Adds, updates and deletes of every kind, including ones that only reach a role
    through metadata (node labels for pods, namespace labels, pod labels for endpoints)."""
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    net = client.NetworkingV1Api(api)
    # nodes: update a label (seen by the node role and by attached node metadata), delete, add
    core.patch_node(node_a, {"metadata": {"labels": {"zone": "z2"}}}, _content_type=MERGE)
    core.delete_node(node_b)
    objects.create_node(api, node_c, address="10.1.7.3", kubelet_port=10255)
    core.patch_namespace(ns, {"metadata": {"labels": {"team": "shop"}}}, _content_type=MERGE)
    # pods: relabel one, delete one, add one
    core.patch_namespaced_pod("web-0", ns, {"metadata": {"labels": {"version": "v2"}}},
                              _content_type=MERGE)  # fmt: skip
    objects.delete_pod(api, ns, "web-1")
    objects.create_pod(api, ns, "web-2", ip="10.244.7.4", node=node_c, labels={"app": "web"})
    # services
    core.patch_namespaced_service("web", ns, {"metadata": {"labels": {"tier": "front"}}},
                                  _content_type=MERGE)  # fmt: skip
    # (the API server deletes a Service's same-name Endpoints with it: delete them first)
    core.delete_namespaced_endpoints("db", ns)
    core.delete_namespaced_service("db", ns)
    objects.create_service(api, ns, "cache", ports=[{"name": "redis", "port": 6379}])
    # endpoints and slices follow the pods; the db ones go, new cache ones come
    now = {"web-0": "10.244.7.1", "web-2": "10.244.7.4"}
    core.patch_namespaced_endpoints("web", ns, {"subsets": subsets(ns, node_a, now)},
                                    _content_type=MERGE)  # fmt: skip
    objects.create_endpoints(api, ns, "cache", subsets=[{"addresses": [{"ip": "10.244.7.9"}],
                             "ports": [{"name": "redis", "port": 6379}]}])  # fmt: skip
    disc.patch_namespaced_endpoint_slice(
        "web-abc", ns, {"endpoints": slice_endpoints(ns, node_a, now)}, _content_type=MERGE
    )
    disc.delete_namespaced_endpoint_slice("db-abc", ns)
    objects.create_endpointslice(api, ns, "cache-abc", service="cache",
                                 endpoints=[{"addresses": ["10.244.7.9"]}],
                                 ports=[{"name": "redis", "port": 6379}])  # fmt: skip
    # ingresses
    net.patch_namespaced_ingress("web", ns, {"spec": {"tls": [{"hosts": ["web.example.com"]}]}},
                                 _content_type=MERGE)  # fmt: skip
    net.delete_namespaced_ingress("old", ns)
    objects.create_ingress(api, ns, "api", spec={"rules": [{"host": "api.example.com"}]})


async def check_every_role(
    consumer: e2e.RunningConsumer,
    sd_configs: dict[str, e2e.SdConfig],
    promtool: Path,
    kubeconfig: Path,
    *,
    tmp_path: Path,
    cluster: str,
) -> None:
    expected = await e2e.gather({
        job: e2e.kubernetes_sd(promtool, sd, kubeconfig=kubeconfig, tmp_path=tmp_path)
        for job, sd in sd_configs.items()
    })  # fmt: skip
    for job, targets in expected.items():
        assert targets, f"promtool must discover something for {job}"
        entries = await e2e.converge(consumer, job, targets)
        assert e2e.clusters_of(entries) == {cluster}, job
    # Prometheus itself, pointed at our endpoint, sees what it sees from the API server
    via_http = await e2e.gather({
        job: e2e.http_sd(promtool, consumer.url(job), tmp_path=tmp_path) for job in sd_configs
    })  # fmt: skip
    for job, targets in via_http.items():
        assert targets == expected[job], f"{job}:\n{e2e.diff(targets, expected[job])}"


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


async def test_every_role_matches_prometheus_after_adds_updates_and_deletes(
    env: e2e.Env, namespace: str, topic_prefix: str, tmp_path: Path
) -> None:
    node_a, node_b, node_c = unique("node"), unique("node"), unique("node")
    seed(env.kube_api, namespace, node_a, node_b)
    sd_configs = jobs(namespace)
    producer = e2e.RunningProducer(
        e2e.producer_settings(
            cluster="c1",
            bootstrap=env.kafka_bootstrap,
            prefix=topic_prefix,
            kubeconfig=env.kubeconfig,
            namespace=namespace,
        )
    )
    consumer = e2e.RunningConsumer(
        e2e.consumer_settings(
            bootstrap=env.kafka_bootstrap, prefix=topic_prefix, jobs=sd_configs, group=unique("g")
        )
    )

    async def check() -> None:
        await check_every_role(
            consumer, sd_configs, env.promtool, env.kubeconfig, tmp_path=tmp_path, cluster="c1"
        )

    async with e2e.running(producer, consumer):
        await check()
        change(env.kube_api, namespace, node_a, node_b, node_c)
        await check()
