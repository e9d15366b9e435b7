"""deploy/helm/sdstream checked by the real tools: helm lint and template for several values
sets, every rendered object through the API server's server-side dry-run (with the
monitoring.coreos.com CRDs installed), and the rendered Deployments' args and config
files run as real processes against the devstack, to ready and to the targets promtool
discovers; their /metrics must name every metric the alerts and the dashboard query."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from schemas import resources
from sdstream.devstack import build, cache
from tests.integration import chart, objects
from tests.integration import promtool as oracle
from tests.integration.test_producer_process import free_port, get, status_of
from tests.naming import unique

ROOT = Path(__file__).parents[2]
FILES = chart.CHART / "files"
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
METRIC = re.compile(r"\bsdstream_[a-z0-9_]+\b")
POD_NAME_AS_INSTANCE = {
    "name": "SDSTREAM_GROUP_INSTANCE_ID",
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
}


@pytest.fixture(scope="module")
def helm() -> Path:
    with cache.build_lock(cache.cache_dir()):
        return build.ensure_helm(cache.cache_dir())


@pytest.fixture(scope="module")
def rendered(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[chart.Doc]]:
    return chart.render_all(
        helm, chart.VALUES, namespace="sdstream", tmp=tmp_path_factory.mktemp("helm")
    )


@pytest.fixture(scope="module")
def monitoring_crds(kube_api: client.ApiClient) -> None:
    """The ServiceMonitor and PrometheusRule CRDs, installed and served."""
    with cache.build_lock(cache.cache_dir()):
        crds = build.ensure_monitoring_crds(cache.cache_dir())
    for path in sorted(crds.glob("*.yaml")):
        apply(kube_api, yaml.safe_load(path.read_text()))
    dynamic = DynamicClient(kube_api)

    def served() -> bool:
        try:
            for kind in ("ServiceMonitor", "PrometheusRule"):
                dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind=kind)
        except ResourceNotFoundError:
            dynamic.resources.invalidate_cache()
            return False
        return True

    async def wait() -> None:
        async with asyncio.timeout(30):
            while not served():  # noqa: ASYNC110
                await asyncio.sleep(0.2)

    asyncio.run(wait())


def apply(kube_api: client.ApiClient, doc: chart.Doc, **options: Any) -> None:
    resource = DynamicClient(kube_api).resources.get(
        api_version=doc["apiVersion"], kind=doc["kind"]
    )
    resource.server_side_apply(
        body=doc,
        name=doc["metadata"]["name"],
        namespace=doc["metadata"].get("namespace"),
        field_manager="sdstream-test",
        force_conflicts=True,
        **options,
    )


@pytest.mark.parametrize("name", sorted(chart.VALUES))
def test_helm_lint_passes(helm: Path, name: str, tmp_path: Path) -> None:
    values = tmp_path / "values.json"
    values.write_text(json.dumps(chart.VALUES[name]))
    lint = subprocess.run(
        [helm, "lint", "--strict", chart.CHART, "--values", values],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_every_rendered_object_passes_a_server_side_dry_run(
    rendered: dict[str, list[chart.Doc]],
    kube_api: client.ApiClient,
    namespace: str,
    monitoring_crds: None,
) -> None:
    kinds = set()
    for docs in rendered.values():
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
            apply(kube_api, doc, dry_run="All")
            kinds.add(doc["kind"])
    assert {
        "Deployment",
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "ClusterRole",
        "Role",
    } <= kinds


def test_a_value_the_settings_refuse_is_refused_by_helm_naming_its_path(
    helm: Path, tmp_path: Path
) -> None:
    values = tmp_path / "bad.json"
    values.write_text(
        json.dumps({**chart.VALUES["hub"], "consumer": {"settings": {"targets_partitions": 0}}})
    )
    run = subprocess.run(
        chart.template_args(helm, values, namespace="x"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "/consumer/settings/targets_partitions" in run.stderr


def test_the_cluster_role_is_the_registry_s(rendered: dict[str, list[chart.Doc]]) -> None:
    for name, docs in rendered.items():
        for role in chart.of_kind(docs, "ClusterRole"):
            assert role["rules"] == resources.rbac_rules(), name


def test_pods_are_hardened_with_the_dockerfile_s_uid(rendered: dict[str, list[chart.Doc]]) -> None:
    (user,) = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    for docs in rendered.values():
        for deployment in chart.workloads(docs):
            pod = deployment["spec"]["template"]["spec"]
            assert pod["enableServiceLinks"] is False
            security = pod["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["runAsUser"] == security["runAsGroup"] == int(user)
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"]:
                assert container["securityContext"] == {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"]},
                }
                paths = {
                    container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")
                }
                assert paths == {"/healthz", "/readyz"}
                assert container["resources"]["requests"]


def test_secrets_reach_the_processes_as_files_never_as_values(
    rendered: dict[str, list[chart.Doc]],
) -> None:
    docs = rendered["secure"]
    for deployment in chart.workloads(docs):
        kafka = chart.config_of(docs, deployment)["kafka"]
        assert kafka["sasl_password_file"] == "/etc/sdstream/kafka-user/password"
        assert kafka["ssl_cafile"] == "/etc/sdstream/kafka-ca/ca.crt"
        assert "sasl_password" not in kafka
        pod = deployment["spec"]["template"]["spec"]
        env = [e for c in pod["containers"] for e in c.get("env", [])]
        assert all(e == POD_NAME_AS_INSTANCE for e in env), env
    (serve,) = [d for d in chart.of_kind(docs, "Deployment") if "serve" in d["metadata"]["name"]]
    assert chart.config_of(docs, serve)["http"]["web_config_file"] == (
        "/etc/sdstream/web/web-config.yml"
    )


def test_the_fold_is_a_stateful_set_whose_pod_names_are_static_members(
    rendered: dict[str, list[chart.Doc]],
) -> None:
    for name, static in (("secure", True), ("hub-basic-auth", False)):
        docs = rendered[name]
        (fold,) = chart.of_kind(docs, "StatefulSet")
        (container,) = fold["spec"]["template"]["spec"]["containers"]
        assert container.get("env", []) == ([POD_NAME_AS_INSTANCE] if static else []), name
        (service,) = [s for s in chart.of_kind(docs, "Service")
                      if s["metadata"]["name"] == fold["spec"]["serviceName"]]  # fmt: skip
        assert service["spec"]["clusterIP"] == "None"
        assert chart.config_of(docs, fold)["session_timeout_s"] == 45


def endpoints(docs: list[chart.Doc]) -> dict[str, chart.Doc]:
    """Each ServiceMonitor's one endpoint, by the components it selects."""
    found = {}
    for monitor in chart.of_kind(docs, "ServiceMonitor"):
        (expression,) = monitor["spec"]["selector"]["matchExpressions"]
        (endpoint,) = monitor["spec"]["endpoints"]
        found[",".join(expression["values"])] = endpoint
    return found


def test_the_serving_replicas_metrics_are_scraped_with_their_web_config_s_tls_and_credentials(
    rendered: dict[str, list[chart.Doc]], helm: Path, tmp_path: Path
) -> None:
    plain = {"port": "http", "path": "/metrics", "interval": "30s"}
    secure = endpoints(rendered["secure"])
    assert secure["producer,fold"] == plain
    assert secure["serve"] == {
        **plain,
        "scheme": "https",
        "tlsConfig": {
            "ca": {"secret": {"name": "sdstream-web-ca", "key": "ca.crt"}},
            "serverName": "sdstream-serve.sdstream.svc",
        },
        "authorization": {
            "type": "Bearer",
            "credentials": {"name": "sdstream-scraper", "key": "token"},
        },
    }
    basic = endpoints(rendered["hub-basic-auth"])
    assert set(basic) == {"producer,fold", "serve"}
    assert basic["serve"] == {
        **plain,
        "scheme": "https",
        "tlsConfig": {"ca": {"configMap": {"name": "web-ca", "key": "ca.crt"}}},
        "basicAuth": {
            "username": {"name": "scraper", "key": "username"},
            "password": {"name": "scraper", "key": "password"},
        },
    }
    unset = {**chart.VALUES["hub"], "monitoring": {"serviceMonitor": {"enabled": True}}}
    docs = chart.render_all(helm, {"unset": unset}, namespace="x", tmp=tmp_path)["unset"]
    assert endpoints(docs)["serve"] == {**plain, "scheme": "http"}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((FILES / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_prometheus_rule_carries_the_alerts_file(rendered: dict[str, list[chart.Doc]]) -> None:
    (rule,) = chart.of_kind(rendered["secure"], "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((FILES / "alerts.yaml").read_text())


def test_alerts_pass_promtool_check_and_their_unit_tests(promtool: Path) -> None:
    check = subprocess.run(
        [promtool, "check", "rules", FILES / "alerts.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = ROOT / "tests" / "fixtures" / "alerts_test.yaml"
    run = subprocess.run(
        [promtool, "test", "rules", tests],
        cwd=tests.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(tests.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == {rule["alert"] for rule in alert_rules()}, "an alert without a test"


def queried_metrics() -> set[str]:
    dashboard = json.loads((FILES / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [rule["expr"] for rule in alert_rules()]
    return {name for expr in exprs for name in METRIC.findall(expr)}


def exported(text: str) -> set[str]:
    """Every sample name /metrics may carry: from the # TYPE lines (a family without
    samples yet still has one) plus the suffixes of its type."""
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        suffixes = {
            "counter": ("", "_total", "_created"),
            "histogram": ("", "_bucket", "_sum", "_count", "_created"),
        }
        names |= {family + s for s in suffixes.get(kind, ("",))}
    return names


async def group_members(bootstrap: str, group: str) -> list[str]:
    """The member ids the broker lists for `group` (a static member's begins with its
    group.instance.id)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    ((*_, described),) = response.groups
    return [member[0] for member in described]


@contextlib.asynccontextmanager
async def run_deployment(
    docs: list[chart.Doc], deployment: chart.Doc, tmp: Path, *, extra: dict[str, Any]
) -> AsyncIterator[int]:
    """The Deployment's container as a process: its args (after the image's entrypoint,
    `sdstream --log-json`) and its config file, bound to loopback on a free port."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    config = chart.config_of(docs, deployment)
    pod_name = f"{deployment['metadata']['name']}-0"
    port = free_port()
    config["http"] = {**config["http"], "host": "127.0.0.1", "port": port}
    path = tmp / f"{deployment['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump({**config, **extra}))
    args = [str(path) if a == "/etc/sdstream/config/config.yaml" else a for a in container["args"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDSTREAM_")}
    for var in container.get("env", []):  # the downward API, as the kubelet fills it
        assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, var
        env[var["name"]] = pod_name
    with (tmp / f"{path.stem}.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sdstream.cli",
            "--log-json",
            *args,
            cwd=ROOT,
            env=env,
            stderr=log,
        )
    try:
        async with asyncio.timeout(60):
            while await status_of(port, "/readyz") != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        yield port
    finally:
        process.terminate()
        async with asyncio.timeout(30):
            await process.wait()


async def test_the_rendered_deployments_run_to_ready_and_serve_what_promtool_finds(
    *,
    helm: Path,
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
    promtool: Path,
    tmp_path: Path,
) -> None:
    objects.create_pod(kube_api, namespace, "p", ip="10.244.7.1", node="n")
    sd = {"role": "pod", "namespaces": {"names": [namespace]}}
    values = chart.devstack_values(bootstrap=kafka_bootstrap, prefix=topic_prefix)
    values["producer"]["settings"]["namespaces"] = [namespace]
    values["consumer"]["settings"]["scrape_configs"] = [
        {"job_name": "kubernetes-pods", "kubernetes_sd_configs": [sd]}
    ]
    values["consumer"]["settings"]["group_id"] = unique("g")
    docs = chart.render_all(helm, {"devstack": values}, namespace=namespace, tmp=tmp_path)[
        "devstack"
    ]
    by_name = {d["metadata"]["name"].rsplit("-", 1)[1]: d for d in chart.workloads(docs)}
    assert set(by_name) == {"producer", "fold", "serve"}
    kube = {"kube": {"kubeconfig": str(kubeconfig)}}
    scraped = set()
    async with (
        run_deployment(docs, by_name["producer"], tmp_path, extra=kube) as producer,
        run_deployment(docs, by_name["fold"], tmp_path, extra={}) as fold,
        run_deployment(docs, by_name["serve"], tmp_path, extra={}) as serve,
    ):
        for port in (producer, fold, serve):
            code, body = await get(port, "/metrics")
            assert code == 200
            scraped |= exported(body.decode())
        members = await group_members(kafka_bootstrap, values["consumer"]["settings"]["group_id"])
        fold_pod = f"{by_name['fold']['metadata']['name']}-0"
        assert [m.startswith(f"{fold_pod}-") for m in members] == [True], members
        expected = oracle.discover_all(promtool, [sd], kubeconfig=kubeconfig, tmp_path=tmp_path)[0]
        assert sum(expected.values()) == 1  # the pod above, nothing else
        async with asyncio.timeout(30):
            while True:
                code, body = await get(serve, "/http_sd/kubernetes-pods")
                if code == 200 and oracle.http_sd_targets(json.loads(body)) == expected:
                    break
                await asyncio.sleep(0.2)
    missing = queried_metrics() - scraped
    assert not missing, f"alerts or dashboard query metrics sdstream does not export: {missing}"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (
            {**chart.VALUES["secure"], "producer": {"settings": {"cluster": ""}}},
            "producer.settings.cluster is required",
        ),
        ({**chart.VALUES["secure"], "fold": {}}, "fold.kafkaUser.username"),
        (
            {**chart.VALUES["hub"], "kafka": {"security_protocol": "PLAINTEXT"}},
            "kafka.security_protocol PLAINTEXT sends no SASL credentials",
        ),
        (
            {
                **chart.VALUES["hub"],
                "kafka": {
                    **chart.VALUES["hub"]["kafka"],
                    "replication_factor": 2,
                    "min_insync_replicas": 3,
                },
            },
            "kafka.min_insync_replicas 3 exceeds kafka.replication_factor 2",
        ),
    ],
    ids=["no-cluster", "sasl-without-user", "sasl-fields-under-plaintext", "min-insync"],
)
def test_settings_the_processes_would_refuse_stop_helm_with_one_line(
    helm: Path, tmp_path: Path, values: dict[str, Any], says: str
) -> None:
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    run = subprocess.run(
        chart.template_args(helm, path, namespace="x"), capture_output=True, text=True, check=False
    )
    assert run.returncode != 0
    assert says in run.stderr
