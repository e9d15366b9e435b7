"""prometheus-operator as the judge of monitor jobs: run it against the test API server
with a Prometheus CR and read the config it generates (Secret `prometheus-<name>`, key
`prometheus.yaml.gz`); no kubelet needed, the Secret is written before any pod.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sdstream.devstack import build, cache, versions

OPERATOR_CRDS = (
    "prometheuses",
    "servicemonitors",
    "podmonitors",
    "probes",
    "scrapeconfigs",
    "prometheusrules",
)  # the Prometheus controller waits for all their informers


def binary() -> Path:
    with cache.build_lock(cache.cache_dir()):
        return build.ensure_prometheus_operator(cache.cache_dir())


def crd_dir() -> Path:
    """The operator's CRDs, from its module in the cache (fetched by `binary()`)."""
    binary()
    root = cache.cache_dir()
    module = root / "go" / "mod" / "github.com" / "prometheus-operator"
    return (
        module
        / f"prometheus-operator@{versions.PROMETHEUS_OPERATOR}"
        / "example"
        / "prometheus-operator-crd"
    )


def install_crds(api: client.ApiClient) -> None:
    """Create (not apply: the Prometheus CRD is ~800 KB) the CRDs the operator needs."""
    ext = client.ApiextensionsV1Api(api)
    for name in OPERATOR_CRDS:
        doc = yaml.safe_load((crd_dir() / f"monitoring.coreos.com_{name}.yaml").read_text())
        with contextlib.suppress(ApiException):  # 409: another test installed it
            ext.create_custom_resource_definition(doc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(kubeconfig: Path, namespace: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary(), f"--web.listen-address=127.0.0.1:{_free_port()}",
             f"--namespaces={namespace}", "--log-level=debug",
             "--prometheus-config-reloader=example/reloader:v0"],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=out, stderr=out,
        )  # fmt: skip
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def prometheus_cr(namespace: str, name: str, *, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serviceMonitorSelector": {},
            "podMonitorSelector": {},
            "serviceDiscoveryRole": "EndpointSlice" if role == "endpointslice" else "Endpoints",
        },
    }


async def generated_config(
    api: client.ApiClient, namespace: str, name: str, *, jobs: int, timeout_s: float = 120
) -> dict[str, Any]:
    """The operator's config once it holds `jobs` scrape jobs."""
    core = client.CoreV1Api(api)
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                secret = core.read_namespaced_secret(f"prometheus-{name}", namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            else:
                raw = gzip.decompress(base64.b64decode(secret.data["prometheus.yaml.gz"]))
                config: dict[str, Any] = yaml.safe_load(raw) or {}
                if len(config.get("scrape_configs") or []) >= jobs:
                    return config
            await asyncio.sleep(0.5)


def for_promtool(job: dict[str, Any], kubeconfig: Path) -> dict[str, Any]:
    """A generated job as promtool runs it: shard 0, this API server."""
    text = json.dumps(job).replace("$(SHARD)", "0")
    fixed: dict[str, Any] = json.loads(text)
    fixed["kubernetes_sd_configs"] = [
        {**sd, "kubeconfig_file": str(kubeconfig)} for sd in fixed["kubernetes_sd_configs"]
    ]
    return fixed
