"""Monitor jobs judged by Prometheus: the operator's job, run by promtool against the API
server, and the same job run by sdstream (`render --job` with the translated rules), give
the same final targets.

Their side: the job exactly as `consumers.monitors.jobs.generate` writes it, which
tests/unit/consumers/monitors/test_jobs.py holds equal to prometheus-operator's golden
outputs, with `$(SHARD)` as 0 (as the operator's config reloader or the OTel collector
substitute it) and this API server's kubeconfig. Our side: `select.monitor_jobs` (the rules
sdstream applies), through `sdstream render --job` on a dump of the same namespace, and
the served targets read back by promtool with no rules, so both get Prometheus's defaults.
The operator itself as the judge (its generated Secret) is not run here yet.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client

from consumers.monitors import jobs, select
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource
from tests.integration import objects
from tests.integration import promtool as kube_dump
from tests.integration import relabel_oracle as oracle
from tests.naming import unique

ROOT = Path(__file__).parents[2]


def seed(api: client.ApiClient, ns: str) -> None:
    node = unique("node")
    objects.create_node(api, node, address="10.1.0.11")
    ports = [("web", 8080, "TCP"), ("admin", 8081, "TCP"), ("metrics", 9090, "TCP")]
    side = objects.container("side", ("x", 7000, "TCP"))
    for i, phase in enumerate(("Running", "Running", "Failed")):
        objects.create_pod(
            api, ns, f"web-{i}", ip=f"10.244.7.{i + 1}", node=node, phase=phase,
            labels={"app": "web", "env": "prod" if i else "dev", "app.kubernetes.io/name": "w"},
            containers=[objects.container("app", *ports), side],
        )  # fmt: skip
    objects.create_pod(api, ns, "other", ip="10.244.7.9", node=node, labels={"app": "other"})
    for name, labels in (("web", {"app": "web", "team": "a", "tier": "be"}),
                         ("web-canary", {"app": "web", "team": "b"})):  # fmt: skip
        objects.create_service(
            api, ns, name, labels=labels, selector={"app": "web"},
            ports=[{"name": "web", "port": 80, "targetPort": 8080},
                   {"name": "admin", "port": 81, "targetPort": 8081}],
        )  # fmt: skip
        addresses = [
            {"ip": f"10.244.7.{i + 1}", "nodeName": node,
             "targetRef": {"kind": "Pod", "name": f"web-{i}", "namespace": ns}}
            for i in range(3)
        ]  # fmt: skip
        objects.create_endpoints(api, ns, name, subsets=[{
            "addresses": addresses,
            "ports": [{"name": "web", "port": 8080}, {"name": "admin", "port": 8081}],
        }])  # fmt: skip
        objects.create_endpointslice(
            api, ns, f"{name}-abc", service=name,
            endpoints=[{"addresses": [a["ip"]], "conditions": {"ready": True},
                        "nodeName": node, "targetRef": a["targetRef"]} for a in addresses],
            ports=[{"name": "web", "port": 8080, "protocol": "TCP"},
                   {"name": "admin", "port": 8081, "protocol": "TCP"}],
        )  # fmt: skip


def monitors(ns: str) -> list[tuple[Resource, dict[str, Any]]]:
    mine = {"matchNames": [ns]}
    service = {
        "metadata": {"name": "web", "namespace": ns, "labels": {"team": "a"}},
        "spec": {
            "namespaceSelector": mine,
            "selector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["web", "api"]},
                {"key": "tier", "operator": "Exists"}]},
            "targetLabels": ["team"],
            "podTargetLabels": ["env", "app.kubernetes.io/name"],
            "jobLabel": "app",
            "endpoints": [
                {"port": "web", "relabelings": [
                    {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                     "targetLabel": "node_name"},
                    {"action": "labeldrop", "regex": "container"}]},
                {"targetPort": 8081, "filterRunning": False},
            ],
        },
    }  # fmt: skip
    canary = {
        "metadata": {"name": "canary", "namespace": ns},
        "spec": {"namespaceSelector": mine,
                 "selector": {"matchLabels": {"team": "b"}},
                 "endpoints": [{"targetPort": "admin"}]},
    }  # fmt: skip
    pod = {
        "metadata": {"name": "pods", "namespace": ns},
        "spec": {
            "namespaceSelector": mine,
            "selector": {"matchLabels": {"app": "web"},
                         "matchExpressions": [
                             {"key": "env", "operator": "NotIn", "values": ["x"]}]},
            "podTargetLabels": ["env"],
            "jobLabel": "app.kubernetes.io/name",
            "podMetricsEndpoints": [
                {"port": "metrics", "relabelings": [
                    {"action": "keep", "sourceLabels": ["__meta_kubernetes_pod_container_name"],
                     "regex": "app"}]},
                {"portNumber": 8080},
                {"targetPort": 8081, "filterRunning": False},
            ],
        },
    }  # fmt: skip
    return [(Resource.SERVICEMONITORS, service), (Resource.SERVICEMONITORS, canary),
            (Resource.PODMONITORS, pod)]  # fmt: skip


def _shard_zero(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "regex": r["regex"].replace("$(SHARD)", "0")} if "regex" in r else r
            for r in rules]  # fmt: skip


def ours(tmp: Path, dumped: Path, job: select.MonitorJob) -> Any:
    rules = [r.model_dump(mode="json", exclude_defaults=True) for r in job.rules]
    sd = job.sd_config.model_dump(mode="json", exclude_defaults=True)
    spec = {"job_name": "oracle", "kubernetes_sd_configs": [sd], "relabel_configs": rules}
    path = tmp / f"job-{unique('j')}.yml"
    path.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [ROOT / ".venv" / "bin" / "sdstream", "render", "--job", path, dumped],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.parametrize("role", ["endpoints", "endpointslice"])
def test_monitor_jobs_give_prometheus_s_final_targets(
    promtool: Path, kube_api: client.ApiClient, kubeconfig: Path, namespace: str,
    tmp_path: Path, role: str,
) -> None:  # fmt: skip
    seed(kube_api, namespace)
    dumped = tmp_path / "objects.json"
    dumped.write_bytes(orjson.dumps(kube_dump.dump(kube_api, namespace)))
    settings = MonitorsSettings(service_discovery_role=role)
    theirs_jobs, our_served = [], []
    for resource, monitor in monitors(namespace):
        for job in jobs.generate(resource, monitor, endpoint_role=role):
            (sd,) = job["kubernetes_sd_configs"]
            theirs_jobs.append({
                "kubernetes_sd_configs": [{**sd, "kubeconfig_file": str(kubeconfig)}],
                "relabel_configs": _shard_zero(job["relabel_configs"]),
            })  # fmt: skip
        made = select.monitor_jobs(settings, "c1", resource, monitor)
        our_served += [ours(tmp_path, dumped, job) for job in made]
    assert len(theirs_jobs) == len(our_served) == 6
    results = oracle.run_all(
        promtool,
        [*theirs_jobs, *(oracle.file_sd(tmp_path, served) for served in our_served)],
        tmp_path,
        timeout="3s",
    )
    # Both oracle jobs are named "oracle"; our rules name the operator's job there.
    results = [{t - {("__tmp_prometheus_job_name", "oracle")} for t in r} for r in results]
    results[6:] = [{frozenset(x for x in t if x[0] != "__tmp_prometheus_job_name") for t in r}
                   for r in results[6:]]  # fmt: skip
    theirs, mine = results[:6], results[6:]
    assert all(theirs), "every job should keep some target"
    for index, (t, m) in enumerate(zip(theirs, mine, strict=True)):
        assert m == t, f"job {index}:\n" + oracle.describe(m, t)
