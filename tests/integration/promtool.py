"""Prometheus's own discovery as the oracle: promtool and `kubectl get -o json`-style dumps.

promtool runs the real Prometheus kubernetes_sd code against our API server; we compare
only `__address__` and `__meta_*` labels (it adds scrape defaults), and targets as a
multiset, since Prometheus's own order is not always deterministic.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from kubernetes import client

Target = frozenset[tuple[str, str]]


def comparable(labels: Mapping[str, str]) -> Target:
    """`__address__` and `__meta_*` labels; Prometheus's target layer drops empty values
    (an empty label is an absent one), so they are dropped here on both sides."""
    return frozenset(
        (k, v) for k, v in labels.items() if v and (k == "__address__" or k.startswith("__meta_"))
    )


def discover_all(
    promtool: Path, sd_configs: Sequence[Mapping[str, Any]], *, kubeconfig: Path, tmp_path: Path
) -> list[Counter[Target]]:
    """What promtool's kubernetes_sd finds for each sd config, as comparable targets, all
    at once: each promtool run waits out its whole
    --timeout, mostly idle, so running them side by side costs one timeout, not several."""
    runs = []
    for index, sd_config in enumerate(sd_configs):
        config = tmp_path / f"prometheus-{index}.yml"
        job = {"job_name": "oracle", "kubernetes_sd_configs": [
            {**sd_config, "kubeconfig_file": str(kubeconfig)}]}  # fmt: skip
        config.write_text(json.dumps({"scrape_configs": [job]}))
        runs.append(subprocess.Popen(
            [promtool, "check", "service-discovery", config, "oracle", "--timeout=3s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    found = []
    for run in runs:
        stdout, stderr = run.communicate()
        if run.returncode:
            raise subprocess.CalledProcessError(run.returncode, run.args, stdout, stderr)
        found.append(Counter(comparable(t["discoveredLabels"]) for t in json.loads(stdout)))
    return found


def http_sd_targets(entries: Iterable[Mapping[str, Any]]) -> Counter[Target]:
    """Targets of an HTTP SD / `render --format http_sd` document, as comparable targets."""
    return Counter(
        comparable({**entry["labels"], "__address__": address})
        for entry in entries
        for address in entry["targets"]
    )


Lister = Callable[[client.ApiClient, str], Any]
LISTS: list[tuple[str, Lister]] = [
    ("Pod", lambda api, ns: client.CoreV1Api(api).list_namespaced_pod(ns, _preload_content=False)),
    ("Service", lambda api, ns: client.CoreV1Api(api).list_namespaced_service(
        ns, _preload_content=False)),
    ("Endpoints", lambda api, ns: client.CoreV1Api(api).list_namespaced_endpoints(
        ns, _preload_content=False)),
    ("EndpointSlice", lambda api, ns: client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        ns, _preload_content=False)),
    ("Ingress", lambda api, ns: client.NetworkingV1Api(api).list_namespaced_ingress(
        ns, _preload_content=False)),
    ("ReplicaSet", lambda api, ns: client.AppsV1Api(api).list_namespaced_replica_set(
        ns, _preload_content=False)),
    ("Job", lambda api, ns: client.BatchV1Api(api).list_namespaced_job(
        ns, _preload_content=False)),
    ("Node", lambda api, ns: client.CoreV1Api(api).list_node(_preload_content=False)),
    ("Namespace", lambda api, ns: client.CoreV1Api(api).list_namespace(_preload_content=False)),
]  # fmt: skip


def dump(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """`kubectl get -o json` of everything discovery reads in `namespace` (plus nodes and
    namespaces), as raw API JSON with each item's kind."""
    items: list[dict[str, Any]] = []
    for kind, lister in LISTS:
        listed = orjson.loads(lister(api, namespace).data)
        items += [{"kind": kind, **item} for item in listed["items"]]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def render(objects: Mapping[str, Any], sd_config: Mapping[str, Any], tmp_path: Path) -> Any:
    """`sdstream render --format http_sd` on a dump, through the real command line."""
    (tmp_path / "objects.json").write_bytes(orjson.dumps(objects))
    (tmp_path / "sd.json").write_text(json.dumps(sd_config))
    done = subprocess.run(
        [Path(__file__).parents[2] / ".venv" / "bin" / "sdstream", "render",
         "--config", tmp_path / "sd.json", "--format", "http_sd", tmp_path / "objects.json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)
