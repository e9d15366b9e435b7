"""deploy/kubernetes/overlays checked by the real kubectl (its built-in kustomize) and the
real API server: `kubectl apply -k <overlay> --dry-run=server` for each overlay, and the
single-cluster overlay runs the same pods as the Helm chart's defaults."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from sdstream.devstack import build, cache
from tests.integration import chart, objects

OVERLAYS = Path(__file__).parents[2] / "deploy" / "kubernetes" / "overlays"
NAMES = ("single-cluster", "multi-cluster/hub", "multi-cluster/workload")


@pytest.fixture(scope="module")
def kubectl() -> Path:
    with cache.build_lock(cache.cache_dir()):
        return build.ensure_kubectl(cache.cache_dir())


@pytest.fixture(scope="module")
def sdstream_namespace(kube_api: client.ApiClient) -> None:
    """The overlays' namespace, for real: a server-side dry-run of its objects needs it."""
    existing = {n.metadata.name for n in client.CoreV1Api(kube_api).list_namespace().items}
    if "sdstream" not in existing:
        objects.create_namespace(kube_api, "sdstream")


def kustomize(kubectl: Path, overlay: str) -> list[chart.Doc]:
    out = subprocess.run(
        [kubectl, "kustomize", OVERLAYS / overlay], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("overlay", NAMES)
def test_kubectl_apply_k_passes_a_server_side_dry_run(
    kubectl: Path, kubeconfig: Path, sdstream_namespace: None, overlay: str
) -> None:
    run = subprocess.run(
        [
            kubectl,
            "apply",
            "-k",
            OVERLAYS / overlay,
            "--dry-run=server",
            "--server-side",
            "--field-manager=sdstream-test",
            "--kubeconfig",
            kubeconfig,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(server dry run)" in run.stdout


def pod_shape(deployment: chart.Doc) -> dict[str, Any]:
    """What must match between the chart and the overlays: replicas and how the pod runs."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return {
        "replicas": deployment["spec"]["replicas"],
        "pod": {k: pod.get(k) for k in ("securityContext", "enableServiceLinks")},
        "container": {k: container.get(k) for k in ("securityContext", "ports")},
        "command": [a for a in container["args"] if a != "--config" and not a.startswith("/")],
        "probes": [container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")],
    }


def test_the_single_cluster_overlay_runs_the_charts_default_pods(
    kubectl: Path, helm: Path, tmp_path: Path
) -> None:
    values = {
        "producer": {
            "settings": {"cluster": "prod-eu-1"},
            "kafkaUser": {
                "username": "producer-prod-eu-1",
                "passwordSecret": {"name": "producer-prod-eu-1"},
            },
        },
        "fold": {"kafkaUser": {"username": "fold", "passwordSecret": {"name": "fold"}}},
        "serve": {"kafkaUser": {"username": "sink", "passwordSecret": {"name": "sink"}}},
    }
    helm_docs = chart.render_all(helm, {"defaults": values}, namespace="sdstream", tmp=tmp_path)
    ours = kustomize(kubectl, "single-cluster")

    def shapes(docs: list[chart.Doc]) -> dict[str, Any]:
        return {
            d["metadata"]["name"].rsplit("-", 1)[1]: pod_shape(d)
            for d in chart.of_kind(docs, "Deployment") + chart.of_kind(docs, "StatefulSet")
        }

    def kinds(docs: list[chart.Doc]) -> set[str]:
        return {d["kind"] for d in docs} - {"Namespace"}

    assert json.dumps(shapes(ours), sort_keys=True, indent=1) == json.dumps(
        shapes(helm_docs["defaults"]), sort_keys=True, indent=1
    )
    assert kinds(ours) == kinds(helm_docs["defaults"])


@pytest.fixture(scope="module")
def helm() -> Path:
    with cache.build_lock(cache.cache_dir()):
        return build.ensure_helm(cache.cache_dir())
