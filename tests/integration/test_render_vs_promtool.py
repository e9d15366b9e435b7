"""`sdstream render` on `kubectl get -o json` output equals what Prometheus's own
kubernetes_sd (promtool) discovers from the same real API server, role by role.

The role builders' unit tests were written from docs/kubernetes-sd-contract.md; this file
is the proof
against the real code. Each scenario creates realistic objects (status through the status
subresource, since no kubelet or controller runs), runs promtool and `sdstream render`
with the same sd configs, and compares `__address__` and `__meta_*` labels as multisets.
Several sd configs per scenario run side by side, since each promtool run waits out its
whole --timeout.

Known, documented differences (docs/kubernetes-sd-contract.md §4.2 and §10): sdstream
follows Prometheus main,
where a LoadBalancer's `service_loadbalancer_ip` comes from `status.loadBalancer.ingress`;
promtool here is v3.14.0, which reads only `spec.loadBalancerIP`
(`test_service_role` checks both sides of that difference explicitly).

Spec edge cases a real API server refuses, so they are covered only by unit tests:
Endpoints `nodeName: ""`, an Ingress `ingressClassName: ""`, an Ingress path without
`pathType`, and a rule whose `http` has no paths (see
`test_api_server_refuses_edge_case`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import kube_render_objects as k
from tests.integration import objects, promtool
from tests.naming import unique

Labels = dict[str, str]
Adjust = Callable[[Labels], Labels]
P = "__meta_kubernetes_"


def dump_all(api: client.ApiClient, namespaces: Iterable[str]) -> dict[str, Any]:
    """`promtool.dump` of several namespaces, cluster-scoped objects once."""
    items: dict[tuple[str, str, str], Any] = {}
    for namespace in namespaces:
        for item in promtool.dump(api, namespace)["items"]:
            m = item["metadata"]
            items[(item["kind"], m.get("namespace", ""), m["name"])] = item
    return {"apiVersion": "v1", "kind": "List", "items": list(items.values())}


def all_namespaces(api: client.ApiClient) -> list[str]:
    listed = k.request(api, "GET", "/api/v1/namespaces", None, content_type="application/json")
    return [item["metadata"]["name"] for item in listed["items"]]


def _describe(targets: Counter[promtool.Target]) -> str:
    return "\n".join(f"  {dict(sorted(t))}" for t in sorted(targets, key=sorted))


def assert_same(oracle: Counter[promtool.Target], ours: Counter[promtool.Target]) -> None:
    only_oracle, only_ours = oracle - ours, ours - oracle
    message = f"promtool only:\n{_describe(only_oracle)}\nsdstream only:\n{_describe(only_ours)}"
    assert only_oracle + only_ours == Counter(), message


def compare(
    api: client.ApiClient,
    namespaces: Sequence[str],
    sd_configs: Sequence[dict[str, Any]],
    *,
    env: tuple[Path, Path, Path],
    adjust: Adjust | None = None,
) -> list[list[Labels]]:
    """promtool and `sdstream render` agree for each sd config; promtool's targets.

    `env` is (kubeconfig, promtool, tmp_path). `adjust` rewrites our targets first, for
    a documented, deliberate difference. The renders run while promtool waits out its
    timeout, so a scenario costs about one timeout.
    """
    kubeconfig, promtool_bin, tmp_path = env
    with ThreadPoolExecutor(max_workers=len(sd_configs) + 1) as pool:
        oracles_future = pool.submit(
            promtool.discover_all, promtool_bin, sd_configs, kubeconfig=kubeconfig,
            tmp_path=tmp_path,
        )  # fmt: skip
        dumped = dump_all(api, namespaces)
        works = [tmp_path / f"render-{index}" for index in range(len(sd_configs))]
        for work in works:
            work.mkdir()
        rendered = list(pool.map(partial(promtool.render, dumped), sd_configs, works))
        oracles = oracles_future.result()
    for entries, oracle in zip(rendered, oracles, strict=True):
        if adjust is not None:
            entries = [{**e, "labels": adjust(e["labels"])} for e in entries]
        assert_same(oracle, promtool.http_sd_targets(entries))
    return [[dict(t) for t in oracle.elements()] for oracle in oracles]


def by_address(targets: Iterable[Labels]) -> dict[str, list[Labels]]:
    out: dict[str, list[Labels]] = {}
    for target in targets:
        out.setdefault(target.get("__address__", ""), []).append(target)
    return out


@pytest.fixture
def env(kubeconfig: Path, promtool: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    return kubeconfig, promtool, tmp_path


def label_namespace(api: client.ApiClient, name: str) -> None:
    """Namespace metadata with `.`, `/` and `-` in keys, and an empty label value."""
    meta = {
        "labels": {"team": "sre", "example.com/tier": "gold", "empty-value": ""},
        "annotations": {"example.com/owner-email": "sre@example.com"},
    }
    k.patch(api, "Namespace", name, {"metadata": meta})


def node(
    api: client.ApiClient,
    name: str,
    addresses: list[tuple[str, str]],
    *,
    labels: dict[str, str] | None = None,
    **status: Any,
) -> dict[str, Any]:
    body = {"metadata": {"name": name, "labels": labels or {}}}
    st = {"addresses": [{"type": t, "address": a} for t, a in addresses], **status}
    return k.create(api, "Node", body, status=st)


# --- node ----------------------------------------------------------------------------


def test_node_role(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api = kube_api
    pool = unique("pool")
    rich, external, host_only, v6, bare, custom = (
        unique(n) for n in ("rich", "external", "hostonly", "v6", "bare", "custom")
    )
    meta = {
        "name": rich,
        "labels": {
            "sdstream.test/pool": pool,
            "topology.kubernetes.io/zone": "z1",
            "node-role.kubernetes.io/worker": "",
            "cost-center": "a--b",
            "example.com/Mixed_Case.Key": "v",
        },
        "annotations": {"node.alpha.kubernetes.io/ttl": "0", "example.com/owner-team": "sre"},
    }
    k.create(
        api,
        "Node",
        {"metadata": meta, "spec": {"providerID": "kind://docker/x/rich"}},
        status={
            "addresses": [
                {"type": "Hostname", "address": "rich-host"},
                {"type": "ExternalIP", "address": "10.2.0.1"},
                {"type": "InternalIP", "address": "10.1.0.1"},
                {"type": "InternalIP", "address": "10.1.0.2"},
                {"type": "InternalDNS", "address": "ip-10-1-0-1.internal"},
                {"type": "ExternalDNS", "address": "rich.example.com"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}},
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "NetworkUnavailable", "status": "Unknown"},
                {"type": "example.com/GPU-Healthy", "status": "True"},
                {"type": "Ünïcode-Check", "status": "False"},
            ],
        },
    )
    in_pool = {"sdstream.test/pool": pool}
    node(api, external, [("Hostname", "ext-host"), ("ExternalIP", "10.2.0.2")], labels=in_pool)
    node(
        api,
        host_only,
        [("Hostname", "host-only.example")],
        labels=in_pool,
        daemonEndpoints={"kubeletEndpoint": {"Port": 10250}},
    )
    node(
        api,
        v6,
        [("InternalIP", "fd00::11"), ("Hostname", v6)],
        labels=in_pool,
        daemonEndpoints={"kubeletEndpoint": {"Port": 10250}},
    )
    node(api, bare, [], labels=in_pool)
    cordoned = unique("cordoned")
    k.create(
        api,
        "Node",
        {"metadata": {"name": cordoned, "labels": in_pool}, "spec": {"unschedulable": True}},
        status={"addresses": [{"type": "InternalIP", "address": "10.1.0.3"}]},
    )
    node(
        api,
        custom,
        [("Custom-Type", "10.3.0.1"), ("Wéird", "10.3.0.2"), ("ExternalDNS", "custom.example.com")],
        labels=in_pool,
    )

    pool_only, everything, one, schedulable = compare(
        api,
        [namespace],
        [  # nodes are cluster-wide
            {
                "role": "node",
                "selectors": [{"role": "node", "label": f"sdstream.test/pool={pool}"}],
            },
            {"role": "node"},
            {"role": "node", "selectors": [{"role": "node", "field": f"metadata.name={rich}"}]},
            {
                "role": "node",
                "selectors": [
                    {
                        "role": "node",
                        "label": f"sdstream.test/pool in ({pool}),!absent",
                        "field": "spec.unschedulable=false",
                    }
                ],
            },
        ],
        env=env,
    )

    found = by_address(pool_only)
    assert set(found) == {
        "10.1.0.1:10255",
        "10.2.0.2:0",
        "host-only.example:10250",
        "[fd00::11]:10250",
        "custom.example.com:0",
        "10.1.0.3:0",
    }
    (r,) = found["10.1.0.1:10255"]
    assert r[P + "node_address_InternalDNS"] == "ip-10-1-0-1.internal"
    assert r[P + "node_condition_example_com_gpu_healthy"] == "true"
    assert found["custom.example.com:0"][0][P + "node_address_Custom_Type"] == "10.3.0.1"
    assert found["custom.example.com:0"][0][P + "node_address_W_ird"] == "10.3.0.2"
    assert r[P + "node_condition__n_code_check"] == "false"  # lower-cased, then per code point
    assert len(everything) >= len(pool_only)
    assert [t[P + "node_name"] for t in one] == [rich]
    assert set(by_address(schedulable)) == set(found) - {"10.1.0.3:0"}


# --- service -------------------------------------------------------------------------


def service(
    api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return k.create(
        api, "Service", {"metadata": {"name": name, **extra}, "spec": spec}, namespace=namespace
    )


def test_service_role(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api, ns = kube_api, namespace
    label_namespace(api, ns)
    service(
        api,
        ns,
        "web",
        {
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "dns-udp", "port": 53, "protocol": "UDP"},
                {"name": "sctp", "port": 3868, "protocol": "SCTP"},
            ]
        },
        labels={"app.kubernetes.io/name": "web", "team": ""},
        annotations={"prometheus.io/scrape": "true", "example.com/owner-team": "sre"},
    )
    service(api, ns, "single", {"ports": [{"port": 8080}]})
    service(
        api,
        ns,
        "headless",
        {"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"name": "grpc", "port": 9000}]},
    )
    service(api, ns, "headless-no-ports", {"clusterIP": "None"})
    service(
        api,
        ns,
        "ext",
        {
            "type": "ExternalName",
            "externalName": "db.example.com",
            "ports": [{"name": "pg", "port": 5432}],
        },
    )
    service(
        api,
        ns,
        "np",
        {"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
    )
    lb = {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443}]}
    service(api, ns, "lb-spec", {**lb, "loadBalancerIP": "10.4.0.1"})
    service(api, ns, "lb-pending", lb)
    service(api, ns, "lb-hostname", {**lb, "loadBalancerIP": "10.4.0.5"})
    lb_host = {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}
    k.patch_status(api, "Service", "lb-hostname", lb_host, namespace=ns)
    service(api, ns, "lb-status", {**lb, "loadBalancerIP": "10.4.0.2"})
    k.patch_status(
        api,
        "Service",
        "lb-status",
        {
            "loadBalancer": {
                "ingress": [{"ip": "10.4.0.3"}, {"hostname": "lb.example.com"}, {"ip": "10.4.0.4"}]
            }
        },
        namespace=ns,
    )
    lb_ip = P + "service_loadbalancer_ip"

    def as_v3_14(target: Labels) -> Labels:
        """v3.14.0 reads spec.loadBalancerIP only; main (sdstream) reads status first."""
        if target.get(P + "service_name") != "lb-status":
            return target
        assert target[lb_ip] == "10.4.0.3,10.4.0.4", (
            "ours follows main (docs/kubernetes-sd-contract.md §4.2)"
        )
        return {**target, lb_ip: "10.4.0.2"}

    every, selected = compare(
        api,
        [ns],
        [
            {
                "role": "service",
                "namespaces": {"names": [ns]},
                "attach_metadata": {"namespace": True},
            },
            {
                "role": "service",
                "namespaces": {"names": [ns]},
                "selectors": [
                    {
                        "role": "service",
                        "label": "app.kubernetes.io/name in (web,api)",
                        "field": "metadata.name!=api",
                    }
                ],
            },
        ],
        env=env,
        adjust=as_v3_14,
    )

    found = by_address(every)
    assert found[f"headless.{ns}.svc:9000"][0][P + "service_cluster_ip"] == "None"
    assert found[f"ext.{ns}.svc:5432"][0][P + "service_external_name"] == "db.example.com"
    assert found[f"lb-status.{ns}.svc:443"][0][lb_ip] == "10.4.0.2"  # promtool v3.14.0
    assert lb_ip not in found[f"lb-pending.{ns}.svc:443"][0]
    assert found[f"np.{ns}.svc:80"][0][P + "service_type"] == "NodePort"
    assert {t[P + "service_port_protocol"] for t in selected} == {"TCP", "UDP", "SCTP"}
    assert found[f"lb-hostname.{ns}.svc:443"][0][lb_ip] == "10.4.0.5"  # hostnames ignored
    assert len(every) == 11


# --- pod -----------------------------------------------------------------------------


def pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    spec: dict[str, Any],
    status: dict[str, Any] | None,
    **meta: Any,
) -> dict[str, Any]:
    return k.create(
        api,
        "Pod",
        {"metadata": {"name": name, **meta}, "spec": spec},
        namespace=namespace,
        status=status,
    )


def _rich_pod(api: client.ApiClient, ns: str, node_name: str) -> None:
    """Containers with named, unnamed and UDP ports, a port-less one, an init container
    with a port, a native sidecar, container statuses, and an ephemeral container."""
    spec = {
        "nodeName": node_name,
        "containers": [
            k.container(
                "app",
                k.port(8080, "http"),
                k.port(8081),
                k.port(9090, "metrics"),
                k.port(53, "dns", "UDP"),
            ),
            k.container("log-shipper", image="example/shipper:2"),
        ],
        "initContainers": [
            k.container("migrate", k.port(7000, "admin"), image="example/migrate:1"),
            k.container(
                "mesh", k.port(15090, "envoy-prom"), image="example/mesh:1", restartPolicy="Always"
            ),
        ],
    }
    status = k.running(
        "10.244.3.1",
        statuses=[
            k.container_status("app", "example/app:1", "containerd://app1"),
            k.container_status("log-shipper", "example/shipper:2", "containerd://ship1"),
        ],
        init_statuses=[k.container_status("mesh", "example/mesh:1", "containerd://mesh1")],
    )
    pod(
        api,
        ns,
        "rich",
        spec,
        status,
        labels={"app.kubernetes.io/name": "rich", "pod-template-hash": "abc", "empty": ""},
        annotations={
            "prometheus.io/port": "9090",
            "kubectl.kubernetes.io/default-container": "app",
        },
    )
    debug = {"name": "debug", "image": "busybox:1", "targetContainerName": "app"}
    k.request(
        api,
        "PATCH",
        f"/api/v1/namespaces/{ns}/pods/rich/ephemeralcontainers",
        {"spec": {"ephemeralContainers": [debug]}},
        content_type="application/merge-patch+json",
    )


def test_pod_role_containers_and_states(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api, ns = kube_api, namespace
    label_namespace(api, ns)
    node_name = unique("node")
    node(
        api,
        node_name,
        [("InternalIP", "10.1.0.51")],
        labels={"topology.kubernetes.io/zone": "z1", "node-role.kubernetes.io/worker": ""},
    )
    _rich_pod(api, ns, node_name)
    one = {"nodeName": node_name, "containers": [k.container("app", k.port(8080, "http"))]}
    two = {
        "nodeName": node_name,
        "containers": [k.container("app", k.port(8080)), k.container("sidecar")],
    }
    pod(api, ns, "v6", two, k.running("fd00::5"))
    pod(api, ns, "no-ip", one, None)
    pod(
        api,
        ns,
        "not-ready",
        one,
        k.running(
            "10.244.3.3",
            phase="Pending",
            conditions=[
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False"},
            ],
        ),
    )
    pod(api, ns, "no-ready-condition", one, k.running("10.244.3.4", conditions=[]))
    unknown = [{"type": "Ready", "status": "Unknown"}]
    pod(api, ns, "ready-unknown", one, k.running("10.244.3.8", conditions=unknown))
    pod(api, ns, "succeeded", one, k.running("10.244.3.5", phase="Succeeded"))
    pod(api, ns, "terminating", one, k.running("10.244.3.6"))
    k.delete(api, "Pod", "terminating", namespace=ns)  # stays Terminating: no kubelet
    pod(api, ns, "on-unknown-node", {**one, "nodeName": unique("gone")}, k.running("10.244.3.7"))

    plain, attached = compare(
        api,
        [ns],
        [
            {"role": "pod", "namespaces": {"names": [ns]}},
            {
                "role": "pod",
                "namespaces": {"names": [ns]},
                "attach_metadata": {"node": True, "namespace": True},
            },
        ],
        env=env,
    )

    found = by_address(plain)
    assert len(found["10.244.3.1:7000"]) == 1
    assert "10.244.3.1" in found
    assert found["10.244.3.1:15090"][0][P + "pod_container_id"] == "containerd://mesh1"
    assert found["10.244.3.1:15090"][0][P + "pod_container_init"] == "true"
    assert set(found["fd00::5"][0]) >= {P + "pod_container_name"}  # bare IPv6, no brackets
    assert "[fd00::5]:8080" in found
    assert found["10.244.3.4:8080"][0][P + "pod_ready"] == "unknown"
    assert "10.244.3.6:8080" in found
    assert "10.244.3.7:8080" in found
    assert found["10.244.3.8:8080"][0][P + "pod_ready"] == "unknown"
    assert len(plain) == 15
    assert "10.244.3.7:8080" not in by_address(attached)  # unknown node: empty group
    assert all(t[P + "node_name"] == node_name for t in attached)


def test_pod_role_owner_chains(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    """Owner chains with ReplicaSets and Jobs created by hand (no controller runs)."""
    api, ns = kube_api, namespace
    fake_uid = "00000000-0000-0000-0000-00000000000"

    def ref(kind: str, name: str, n: int, *, controller: bool = True) -> dict[str, Any]:
        return k.owner(
            kind, {"metadata": {"name": name, "uid": f"{fake_uid}{n}"}}, controller=controller
        )

    def template(labels: dict[str, str], restart: str) -> dict[str, Any]:
        return {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": restart, "containers": [k.container("app")]},
        }

    def replicaset(name: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
        spec = {
            "replicas": 0,
            "selector": {"matchLabels": {"rs": name}},
            "template": template({"rs": name}, "Always"),
        }
        body = {"metadata": {"name": name, "ownerReferences": owners}, "spec": spec}
        return k.create(api, "ReplicaSet", body, namespace=ns)

    def job(name: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
        spec = {"suspend": True, "template": template({}, "Never")}
        body = {"metadata": {"name": name, "ownerReferences": owners}, "spec": spec}
        return k.create(api, "Job", body, namespace=ns)

    from_deployment = replicaset("web-7d9f", [ref("Deployment", "web", 1)])
    bare_rs = replicaset("bare-rs", [])
    from_rollout = replicaset(
        "canary-rs", [{**ref("Rollout", "canary", 2), "apiVersion": "argoproj.io/v1alpha1"}]
    )
    from_cronjob = job("nightly-290", [ref("CronJob", "nightly", 3)])
    manual = job("manual", [])
    spec = {"containers": [k.container("app", k.port(8080, "http"))]}
    owned = {
        "web-7d9f-a": [k.owner("ReplicaSet", from_deployment)],
        "bare-rs-a": [k.owner("ReplicaSet", bare_rs)],
        "canary-rs-a": [k.owner("ReplicaSet", from_rollout)],
        "gone-rs-a": [ref("ReplicaSet", "gone-rs", 4)],
        "nightly-290-a": [k.owner("Job", from_cronjob)],
        "manual-a": [k.owner("Job", manual)],
        "gone-job-a": [ref("Job", "gone-job", 5)],
        "second-ref": [
            ref("ReplicaSet", "web-7d9f", 6, controller=False),
            k.owner("Job", from_cronjob),
        ],
        "not-controller": [k.owner("ReplicaSet", from_deployment, controller=False)],
        "statefulset-0": [ref("StatefulSet", "db", 7)],
    }
    for index, (name, owners) in enumerate(owned.items()):
        pod(api, ns, name, spec, k.running(f"10.244.4.{index + 1}"), ownerReferences=owners)

    base = {"role": "pod", "namespaces": {"names": [ns]}}
    full, cron_only, job_only, _ = compare(
        api,
        [ns],
        [
            {**base, "attach_metadata": {"deployment": True, "job": True, "cronjob": True}},
            {**base, "attach_metadata": {"cronjob": True}},
            {**base, "attach_metadata": {"job": True}},
            base,
        ],
        env=env,
    )

    names = {t[P + "pod_name"]: t for t in full}
    assert names["web-7d9f-a"][P + "pod_deployment_name"] == "web"
    assert names["nightly-290-a"][P + "pod_cronjob_name"] == "nightly"
    assert names["second-ref"][P + "pod_job_name"] == "nightly-290"
    assert names["gone-job-a"][P + "pod_job_name"] == "gone-job"
    assert P + "pod_controller_kind" not in names["not-controller"]
    assert not any(P + "pod_job_name" in t for t in cron_only)
    assert not any(P + "pod_cronjob_name" in t for t in job_only)


def test_pod_role_selectors_and_namespaces(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api, ns1 = kube_api, namespace
    ns2, ns3 = (objects.create_namespace(api, unique("t"))["metadata"]["name"] for _ in "23")
    node_a, node_b = unique("node-a"), unique("node-b")
    node(api, node_a, [("InternalIP", "10.1.0.61")], labels={"pool": "a"})
    node(api, node_b, [("InternalIP", "10.1.0.62")], labels={"pool": "b"})

    def spec(node_name: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"containers": [k.container("app", k.port(8080, "http"))]}
        if node_name:
            out["nodeName"] = node_name
        return out

    pods = [  # namespace, name, node, app label, phase
        (ns1, "a-run", node_a, "a", "Running"),
        (ns1, "b-pending", node_b, "b", "Pending"),
        (ns1, "c-run", node_a, "c", "Running"),
        (ns1, "no-app", node_b, None, "Running"),
        (ns1, "unscheduled", None, "a", "Pending"),
        (ns2, "a-run", node_b, "a", "Running"),
        (ns3, "a-run", node_a, "a", "Running"),
    ]
    for index, (where, name, node_name, app, phase) in enumerate(pods):
        labels = {} if app is None else {"app": app}
        pod(
            api,
            where,
            name,
            spec(node_name),
            k.running(f"10.244.8.{index + 1}", phase=phase),
            labels=labels,
        )

    one, two = [ns1], [ns1, ns2]
    cases: list[tuple[list[str], dict[str, Any], list[str]]] = [  # names, config, pods seen
        (two, {"selectors": [{"role": "pod", "label": "app in (a,b)"}]},
         [f"{ns1}/a-run", f"{ns1}/b-pending", f"{ns1}/unscheduled", f"{ns2}/a-run"]),
        (one, {"selectors": [{"role": "pod", "field": "status.phase=Running"}]},
         [f"{ns1}/a-run", f"{ns1}/c-run", f"{ns1}/no-app"]),
        (one, {"selectors": [{"role": "pod", "field": "spec.nodeName="}]},
         [f"{ns1}/unscheduled"]),
        (two, {"selectors": [{"role": "pod", "label": "app,app notin (c)",
                              "field": f"spec.nodeName!={node_b}"}]},
         [f"{ns1}/a-run", f"{ns1}/unscheduled"]),
        (one, {"selectors": [{"role": "pod", "label": "app notin (a,b)"}]},
         [f"{ns1}/c-run", f"{ns1}/no-app"]),
        (one, {"selectors": [{"role": "pod", "label": "!app", "field": "status.podIP=10.244.8.4"}]},
         [f"{ns1}/no-app"]),
        (one, {"selectors": [{"role": "pod", "field": "spec.restartPolicy=Always,"
                              "spec.schedulerName==default-scheduler,spec.hostNetwork=false,"
                              "spec.serviceAccountName=,status.nominatedNodeName=,"
                              "metadata.name!=c-run,metadata.namespace=" + ns1}]},
         [f"{ns1}/a-run", f"{ns1}/b-pending", f"{ns1}/no-app", f"{ns1}/unscheduled"]),
        (two, {"attach_metadata": {"node": True},
               "selectors": [{"role": "node", "label": "pool=a"},
                             {"role": "pod", "label": "!missing"}]},
         [f"{ns1}/a-run", f"{ns1}/c-run"]),
    ]  # fmt: skip
    configs = [{"role": "pod", "namespaces": {"names": names}, **c} for names, c, _ in cases]
    results = compare(api, [ns1, ns2, ns3], configs, env=env)

    picked = [sorted(f"{t[P + 'namespace']}/{t[P + 'pod_name']}" for t in r) for r in results]
    assert picked == [sorted(expected) for _, _, expected in cases]


# --- endpoints -----------------------------------------------------------------------


def _endpoints_pods(api: client.ApiClient, ns: str, other: str, nodes: tuple[str, str]) -> None:
    """pa: deployment-owned, extra ports and an init container re-using the endpoint port
    (a later match overwrites); pb: not ready; pc: no IP; pd: in another namespace."""
    rs = k.create(
        api,
        "ReplicaSet",
        {
            "metadata": {
                "name": "web-5c",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                        "uid": "00000000-0000-0000-0000-000000000001",
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [k.container("app")]},
                },
            },
        },
        namespace=ns,
    )
    pa = {
        "nodeName": nodes[0],
        "containers": [
            k.container("app", k.port(8080, "http"), k.port(9100, "node-exp")),
            k.container("logs"),
        ],
        "initContainers": [
            k.container("setup", k.port(8080, "setup-http")),
            k.container("mesh", k.port(15090, "envoy"), restartPolicy="Always"),
        ],
    }
    pod(
        api,
        ns,
        "pa",
        pa,
        k.running("10.244.5.1"),
        labels={"app": "web", "tier": "front"},
        ownerReferences=[k.owner("ReplicaSet", rs)],
    )
    pb = {
        "nodeName": nodes[1],
        "containers": [k.container("app", k.port(8080, "http"), k.port(9101, "udp-x", "UDP"))],
    }
    not_ready = [{"type": "Ready", "status": "False"}]
    pod(api, ns, "pb", pb, k.running("10.244.5.2", conditions=not_ready), labels={"app": "web"})
    pod(api, ns, "pc", pb, None, labels={"app": "web"})
    pod(api, other, "pd", pb, k.running("10.244.6.1"), labels={"app": "web"})


def test_endpoints_role(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api, ns = kube_api, namespace
    other = objects.create_namespace(api, unique("t"))["metadata"]["name"]
    label_namespace(api, ns)
    n1, n2 = unique("node"), unique("node")
    node(api, n1, [("InternalIP", "10.1.0.31")], labels={"rack": "r1"})
    node(api, n2, [("InternalIP", "10.1.0.32")], labels={"rack": "r2"})
    _endpoints_pods(api, ns, other, (n1, n2))
    service(
        api,
        ns,
        "web",
        {"ports": [{"name": "http", "port": 8080}]},
        labels={"app.kubernetes.io/name": "web", "expose": "yes"},
        annotations={"prometheus.io/scrape": "true"},
    )

    def addr(ip: str, pod_name: str | None = None, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"ip": ip, **extra}
        if pod_name:
            out["targetRef"] = {"kind": "Pod", "name": pod_name, "namespace": ns}
        return out

    subsets = [
        {
            "addresses": [
                addr("10.244.5.1", "pa", nodeName=n1, hostname="pa-host"),
                addr("10.244.9.9"),
            ],
            "notReadyAddresses": [
                addr("10.244.5.2", "pb", nodeName=n2),
                addr("10.244.5.3", "pc"),
                addr("10.244.9.9"),
            ],
            "ports": [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "metrics", "port": 9100, "protocol": "UDP"},
            ],
        },
        {
            "addresses": [
                {"ip": "10.1.0.31", "targetRef": {"kind": "Node", "name": n1}},
                # nodeName beats a Node targetRef here (not in endpointslice)
                {"ip": "10.1.0.32", "nodeName": n2, "targetRef": {"kind": "Node", "name": n1}},
            ],
            "ports": [
                {"name": "https-metrics", "port": 10250},
                {"name": "diameter", "port": 3868, "protocol": "SCTP"},
            ],
        },
        {
            "addresses": [
                {
                    "ip": "10.244.6.1",
                    "nodeName": n2,
                    "targetRef": {"kind": "Pod", "name": "pd", "namespace": other},
                },
                {"ip": "10.244.5.9", "targetRef": {}},
                # a targetRef without namespace never resolves
                {"ip": "10.244.5.1", "targetRef": {"kind": "Pod", "name": "pa"}},
            ],
            "ports": [{"port": 80}],
        },
    ]
    meta = {
        "name": "web",
        "labels": {"app.kubernetes.io/name": "web"},
        "annotations": {
            "endpoints.kubernetes.io/last-change-trigger-time": "2026-11-24T10:00:00Z",
            "example.com/note": 'grüße,\n"quoted" {json: true}',
        },
    }
    k.create(api, "Endpoints", {"metadata": meta, "subsets": subsets}, namespace=ns)
    k.create(
        api,
        "Endpoints",
        {
            "metadata": {"name": "lonely", "labels": {"app": "x"}},
            "subsets": [{"addresses": [addr("10.244.9.8")], "ports": [{"port": 1}]}],
        },
        namespace=ns,
    )

    both = {"names": [ns, other]}
    attach = {"node": True, "namespace": True, "deployment": True}
    joined, selected, cluster_wide = compare(
        api,
        all_namespaces(api),
        [
            {"role": "endpoints", "namespaces": both, "attach_metadata": attach},
            {
                "role": "endpoints",
                "namespaces": both,
                "selectors": [
                    {"role": "endpoints", "label": "app.kubernetes.io/name=web"},
                    {"role": "service", "label": "expose=no"},
                    {"role": "pod", "label": "tier=front"},
                ],
            },
            {"role": "endpoints", "attach_metadata": {"node": True}},
        ],
        env=env,
    )

    found = by_address(joined)
    assert found["10.244.5.1:8080"][0][P + "pod_container_name"] == "setup"  # later wins
    assert {t[P + "endpoint_ready"] for t in found["10.244.9.9:8080"]} == {"true", "false"}
    assert "10.244.5.1:15090" in found
    assert "10.244.5.2:9101" in found
    assert found["10.1.0.31:10250"][0][P + "node_label_rack"] == "r1"
    assert found["10.1.0.32:10250"][0][P + "node_label_rack"] == "r2"
    assert P + "pod_name" not in found["10.244.5.1:80"][0]
    assert "10.244.5.9:80" in found  # targetRef {}: empty kind and name labels
    assert P + "pod_name" not in found["10.244.6.1:80"][0]  # other namespace: no join
    assert P + "pod_name" in by_address(cluster_wide)["10.244.6.1:80"][0]
    assert not any(P + "service_name" in t for t in selected)
    assert "10.244.5.2:9101" not in by_address(selected)


# --- endpointslice -------------------------------------------------------------------


def slice_(
    api: client.ApiClient,
    ns: str,
    name: str,
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    *,
    address_type: str = "IPv4",
    labels: dict[str, str] | None = None,
    **meta: Any,
) -> None:
    body = {
        "metadata": {"name": name, "labels": labels or {}, **meta},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports,
    }
    k.create(api, "EndpointSlice", body, namespace=ns)


def _slice_pods(api: client.ApiClient, ns: str, node_name: str) -> None:
    """pa: owned by a Job of a CronJob, extra ports and a sidecar; pb: a plain pod whose
    port 53 is TCP where the slice says UDP."""
    job = k.create(
        api,
        "Job",
        {
            "metadata": {
                "name": "batch-1",
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": "batch",
                        "uid": "00000000-0000-0000-0000-000000000002",
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [k.container("app")]}
                },
            },
        },
        namespace=ns,
    )
    pa = {
        "nodeName": node_name,
        "containers": [k.container("app", k.port(8080, "http"), k.port(9100, "metrics"))],
        "initContainers": [k.container("mesh", k.port(15090, "envoy"), restartPolicy="Always")],
    }
    pod(
        api,
        ns,
        "pa",
        pa,
        k.running("10.244.7.1"),
        labels={"app": "web", "tier": "front"},
        ownerReferences=[k.owner("Job", job)],
    )
    pb = {
        "nodeName": node_name,
        "containers": [k.container("app", k.port(8080, "http"), k.port(53, "dns-tcp", "TCP"))],
    }
    pod(api, ns, "pb", pb, k.running("10.244.7.2"), labels={"app": "web"})


def test_endpointslice_role(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api, ns = kube_api, namespace
    label_namespace(api, ns)
    n1, n2 = unique("node"), unique("node")
    node(api, n1, [("InternalIP", "10.1.0.41")], labels={"topology.kubernetes.io/zone": "z1"})
    node(api, n2, [("InternalIP", "10.1.0.42")], labels={"topology.kubernetes.io/zone": "z2"})
    _slice_pods(api, ns, n1)
    service(
        api,
        ns,
        "web",
        {"ports": [{"name": "http", "port": 8080}]},
        labels={"app.kubernetes.io/name": "web", "expose": "yes"},
    )
    x80 = [{"name": "x", "port": 80}]
    # headless without selector: the server makes it RequireDualStack [IPv4, IPv6]
    dual = service(api, ns, "dual", {"clusterIP": "None", "ports": x80}, labels={"expose": "yes"})
    assert dual["spec"]["ipFamilyPolicy"] == "RequireDualStack", dual["spec"]
    # single-stack cluster: PreferDualStack gets ipFamilies [IPv4] only
    prefer = service(api, ns, "prefer", {"ipFamilyPolicy": "PreferDualStack", "ports": x80})
    assert prefer["spec"]["ipFamilies"] == ["IPv4"], prefer["spec"]

    def pod_ref(name: str) -> dict[str, Any]:
        return {"kind": "Pod", "name": name, "namespace": ns}

    web = {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "t"}
    slice_(
        api,
        ns,
        "web-v4",
        [
            {
                "addresses": ["10.244.7.1"],
                "hostname": "pa",
                "nodeName": n1,
                "zone": "z1",
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "hints": {"forZones": [{"name": "z1"}]},
                "targetRef": pod_ref("pa"),
                "deprecatedTopology": {
                    "topology.kubernetes.io/zone": "z1",
                    "kubernetes.io/hostname": n1,
                },
            },
            {
                "addresses": ["10.244.7.2"],
                "nodeName": unique("gone"),
                "targetRef": pod_ref("pb"),
                "conditions": {"ready": False, "serving": True, "terminating": True},
            },
            {"addresses": ["10.244.7.3", "10.244.7.33"], "conditions": {}},
            {"addresses": ["10.1.0.41"], "targetRef": {"kind": "Node", "name": n1}},
            # a Node targetRef beats nodeName here (not in endpoints)
            {"addresses": ["10.1.0.43"], "nodeName": n2, "targetRef": {"kind": "Node", "name": n1}},
            {"addresses": ["10.244.7.4"], "nodeName": n2, "targetRef": {}},
            {"addresses": ["10.244.7.5"], "targetRef": {"kind": "Pod", "name": "missing"}},
        ],
        [
            {"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "all", "protocol": "TCP"},
        ],
        labels=web,
        annotations={"example.com/owner-team": "sre"},
    )
    slice_(
        api,
        ns,
        "web-v6",
        [{"addresses": ["fd00::7:1"], "conditions": {"ready": True}}],
        [{"name": "http", "port": 8080}],
        address_type="IPv6",
        labels=web,
    )
    to_dual = {"kubernetes.io/service-name": "dual"}
    slice_(
        api,
        ns,
        "dual-v4",
        [{"addresses": ["10.244.7.9"]}],
        [{"name": "x", "port": 80}],
        labels=to_dual,
    )
    slice_(
        api,
        ns,
        "dual-v6",
        [{"addresses": ["fd00::7:9"]}],
        [{"name": "x", "port": 80}],
        address_type="IPv6",
        labels=to_dual,
    )
    slice_(
        api,
        ns,
        "fqdn",
        [{"addresses": ["db.example.com"]}],
        [{"name": "pg", "port": 5432}, {"name": "any"}],
        address_type="FQDN",
    )
    for family, address in (("IPv4", "10.244.7.10"), ("IPv6", "fd00::7:10")):
        slice_(
            api,
            ns,
            f"prefer-{family.lower()}",
            [{"addresses": [address]}],
            x80,
            address_type=family,
            labels={"kubernetes.io/service-name": "prefer"},
        )
    slice_(
        api,
        ns,
        "unnamed-port",
        [{"addresses": ["10.244.7.11"], "targetRef": pod_ref("pb")}],
        [{"port": 53, "protocol": "UDP"}],
        labels={"kubernetes.io/service-name": "gone"},
    )
    slice_(api, ns, "empty", [], [], labels=web)

    attach = {"node": True, "namespace": True, "job": True, "cronjob": True}
    base = {"role": "endpointslice", "namespaces": {"names": [ns]}}
    joined, selected = compare(
        api,
        [ns],
        [
            {**base, "attach_metadata": attach},
            {
                **base,
                "selectors": [
                    {"role": "endpointslice", "label": "kubernetes.io/service-name"},
                    {"role": "service", "label": "expose!=yes"},
                    {"role": "pod", "label": "tier=front"},
                ],
            },
        ],
        env=env,
    )

    found = by_address(joined)
    assert found["10.244.7.1"][0][P + "endpointslice_port_name"] == "all"  # no number: bare
    assert found["10.244.7.1:8080"][0][P + "pod_cronjob_name"] == "batch"
    assert "10.244.7.1:15090" in found
    assert "10.244.7.1:9100" in found
    assert "[fd00::7:1]:8080" in found
    assert "db.example.com" in found
    assert "10.244.7.33:53" in found  # every address of an endpoint
    dns = found["10.244.7.2:53"][0]  # slice port UDP, container port TCP: container wins
    assert (dns[P + "endpointslice_port_protocol"], dns[P + "pod_container_port_protocol"]) == (
        "UDP",
        "TCP",
    )
    assert "10.244.7.9:80" in found  # the dual-stack Service's primary family
    assert "[fd00::7:9]:80" not in found  # ... and not its secondary
    assert found["10.1.0.41:8080"][0][P + "node_label_topology_kubernetes_io_zone"] == "z1"
    assert found["10.1.0.43:8080"][0][P + "node_label_topology_kubernetes_io_zone"] == "z1"
    assert found["10.244.7.4:8080"][0][P + "node_label_topology_kubernetes_io_zone"] == "z2"
    assert "10.244.7.10:80" in found
    assert "[fd00::7:10]:80" not in found  # PreferDualStack, secondary family
    assert "[fd00::7:9]:80" in by_address(selected)  # service filtered out: no dual rule
    web_targets = [t for t in selected if t[P + "endpointslice_name"].startswith("web-")]
    assert web_targets
    assert not any(P + "service_name" in t for t in web_targets)
    assert P + "pod_name" not in by_address(selected)["10.244.7.2:8080"][0]


# --- ingress -------------------------------------------------------------------------


def test_ingress_role(
    kube_api: client.ApiClient,
    namespace: str,
    env: tuple[Path, Path, Path],
) -> None:
    api, ns = kube_api, namespace
    label_namespace(api, ns)
    backend = {"service": {"name": "web", "port": {"number": 80}}}

    def path(value: str | None, kind: str = "Prefix") -> dict[str, Any]:
        out = {"pathType": kind, "backend": backend}
        return out if value is None else {**out, "path": value}

    rules = [
        {
            "host": "a.example.com",
            "http": {
                "paths": [
                    path("/api"),
                    path("/healthz", "Exact"),
                    path(None, "ImplementationSpecific"),
                ]
            },
        },
        {"host": "b.example.com", "http": {"paths": [path("/")]}},
        {"host": "*.wild.example.com", "http": {"paths": [path("/w")]}},
        {"host": "x.wild.example.com", "http": {"paths": [path("/x")]}},
        {"host": "y.x.wild.example.com", "http": {"paths": [path("/y")]}},
        {"http": {"paths": [path("/open")]}},
        {"host": "c.example.com"},
    ]
    tls = [{"hosts": ["a.example.com", "*.wild.example.com"], "secretName": "cert"}]
    k.create(
        api,
        "Ingress",
        {
            "metadata": {
                "name": "main",
                "labels": {"app.kubernetes.io/name": "web"},
                "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"},
            },
            "spec": {
                "ingressClassName": "nginx",
                "tls": tls,
                "rules": rules,
                "defaultBackend": backend,
            },
        },
        namespace=ns,
    )
    k.create(
        api,
        "Ingress",
        {
            "metadata": {"name": "legacy", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"tls": [{"secretName": "none"}], "rules": [{"host": "legacy.example.com"}]},
        },
        namespace=ns,
    )
    k.create(
        api,
        "Ingress",
        {  # both class fields: accepted by the server
            "metadata": {
                "name": "both-classes",
                "annotations": {"kubernetes.io/ingress.class": "nginx"},
            },
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "both.example.com"}]},
        },
        namespace=ns,
    )
    k.create(
        api,
        "Ingress",
        {"metadata": {"name": "default-only"}, "spec": {"defaultBackend": backend}},
        namespace=ns,
    )

    every, selected = compare(
        api,
        [ns],
        [
            {
                "role": "ingress",
                "namespaces": {"names": [ns]},
                "attach_metadata": {"namespace": True},
            },
            {
                "role": "ingress",
                "namespaces": {"names": [ns]},
                "selectors": [{"role": "ingress", "label": "app.kubernetes.io/name=web"}],
            },
        ],
        env=env,
    )

    scheme = {
        (t.get("__address__", ""), t[P + "ingress_path"]): t[P + "ingress_scheme"] for t in every
    }
    assert scheme == {
        ("a.example.com", "/api"): "https",
        ("a.example.com", "/healthz"): "https",
        ("a.example.com", "/"): "https",
        ("b.example.com", "/"): "http",
        ("*.wild.example.com", "/w"): "https",
        ("x.wild.example.com", "/x"): "https",
        ("y.x.wild.example.com", "/y"): "http",
        ("", "/open"): "http",
        ("c.example.com", "/"): "http",
        ("legacy.example.com", "/"): "http",
        ("both.example.com", "/"): "http",
    }
    assert all(t[P + "ingress_class_name"] == "nginx" for t in selected)


# --- what the API server refuses -----------------------------------------------------


REFUSED_BACKEND = {"service": {"name": "web", "port": {"number": 80}}}
REFUSED: dict[str, tuple[str, dict[str, Any]]] = {
    "endpoints-node-name-empty": (
        "Endpoints",
        {
            "metadata": {"name": "e"},
            "subsets": [
                {"addresses": [{"ip": "10.244.1.1", "nodeName": ""}], "ports": [{"port": 1}]}
            ],
        },
    ),
    "ingress-class-name-empty": (
        "Ingress",
        {
            "metadata": {"name": "i1"},
            "spec": {"ingressClassName": "", "defaultBackend": REFUSED_BACKEND},
        },
    ),
    "ingress-path-without-path-type": (
        "Ingress",
        {
            "metadata": {"name": "i2"},
            "spec": {
                "rules": [
                    {
                        "host": "a.example.com",
                        "http": {"paths": [{"path": "/", "backend": REFUSED_BACKEND}]},
                    }
                ]
            },
        },
    ),
    "ingress-http-without-paths": (
        "Ingress",
        {
            "metadata": {"name": "i3"},
            "spec": {"rules": [{"host": "a.example.com", "http": {"paths": []}}]},
        },
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_api_server_refuses_edge_case(
    kube_api: client.ApiClient, namespace: str, case: str
) -> None:
    """Spec edge cases no real cluster can hold (422); unit tests cover them alone."""
    kind, body = REFUSED[case]
    with pytest.raises(k.RequestFailed, match=" 422 "):
        k.create(kube_api, kind, body, namespace=namespace)
