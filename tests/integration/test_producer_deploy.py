"""deploy/kubernetes/base/producer checked by the real API server: server-side dry-run,
and RBAC that really lets the producer's service account list, watch and hold its Lease."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.kubeapi import api, auth
from producers.runner import Producer
from schemas.config import (
    HttpSettings,
    KafkaSettings,
    KubeSettings,
    LeaderSettings,
    ProducerSettings,
)
from schemas.topics import Resource
from sdstream import settings as app_settings
from tests.naming import unique

DEPLOY = Path(__file__).parents[2] / "deploy" / "kubernetes" / "base" / "producer"
NAMESPACE = DEPLOY.parent / "namespace" / "namespace.yaml"
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    return [yaml.safe_load((DEPLOY / name).read_text()) for name in kustomization["resources"]]


def placed(namespace: str, suffix: str) -> list[dict[str, Any]]:
    """The manifests as kustomize would place them in `namespace`; cluster-wide names
    get `suffix` so tests never collide."""
    docs = []
    for doc in copy.deepcopy(manifests()):
        if doc["kind"] == "Namespace":
            continue
        if doc["kind"] in CLUSTER_SCOPED_KINDS:
            doc["metadata"]["name"] += suffix
        else:
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
        docs.append(doc)
    return docs


def apply(kube_api: client.ApiClient, doc: dict[str, Any], **options: Any) -> None:
    """Server-side apply, as `kubectl apply --server-side` does."""
    resource = DynamicClient(kube_api).resources.get(
        api_version=doc["apiVersion"], kind=doc["kind"]
    )
    resource.server_side_apply(
        body=doc,
        name=doc["metadata"]["name"],
        namespace=doc["metadata"].get("namespace"),
        field_manager="sdstream-test",
        **options,
    )


def test_manifests_pass_a_server_side_dry_run(kube_api: client.ApiClient, namespace: str) -> None:
    for doc in [yaml.safe_load(NAMESPACE.read_text()), *placed(namespace, "")]:
        apply(kube_api, doc, dry_run="All")


def test_the_cluster_role_grants_exactly_get_list_watch_on_every_resource() -> None:
    (role,) = [d for d in manifests() if d["kind"] == "ClusterRole"]
    granted = {
        (group, resource, tuple(sorted(rule["verbs"])))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    expected = {
        (
            api.PATHS[r].removeprefix("/apis/").removeprefix("/api").split("/")[0],
            r.value,
            ("get", "list", "watch"),
        )
        for r in Resource
    }
    assert granted == expected


def test_the_deployment_runs_two_replicas_with_known_settings() -> None:
    (deployment,) = [d for d in manifests() if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = {e["name"] for e in container["env"]}
    assert names <= app_settings.env_names(app_settings.ProducerAppSettings)
    probes = {
        container["livenessProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
    }
    assert probes == {"/healthz", "/readyz"}


async def test_the_service_account_may_do_what_the_producer_does(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    for doc in placed(namespace, "-" + unique("t")):
        if doc["kind"] != "Deployment":  # no kubelet would run it
            apply(kube_api, doc)
    account = f"system:serviceaccount:{namespace}:sdstream-producer"

    async def as_service_account(kube: KubeSettings) -> Any:
        connection = await auth.connect(kube)
        connection.set_default_header("Impersonate-User", account)
        connection.set_default_header("Impersonate-Group", "system:serviceaccounts")
        return connection

    settings = ProducerSettings(
        cluster="c1",
        partitions=2,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        kube=KubeSettings(kubeconfig=kubeconfig),
        http=HttpSettings(port=0),
        leader=LeaderSettings(enabled=True, namespace=namespace, retry_period_s=0.2),
    )
    registry = CollectorRegistry()
    producer = Producer(settings, producer_metrics.create(registry), connect=as_service_account)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        async with asyncio.timeout(30):
            while not (producer.readiness.ready and not producer.readiness.standby):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        forbidden = [
            s
            for m in registry.collect()
            for s in m.samples
            if s.name == "sdstream_producer_errors_total" and s.labels.get("kind") == "Forbidden"
        ]
        assert forbidden == []
    finally:
        stop.set()
        assert await task == 0
