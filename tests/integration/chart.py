"""The Helm chart rendered by the real helm, once per values set, for the chart tests.

Each values set is one way an admin installs sdstream; `render_all` runs `helm template`
for all of them side by side (each helm run is mostly start-up), so the tests share one
render per set.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).parents[2] / "deploy" / "helm" / "sdstream"
Doc = dict[str, Any]

_USER = {"username": "", "passwordSecret": {"name": "", "key": "password"}}


def _sasl_user(name: str) -> dict[str, Any]:
    return {"username": name, "passwordSecret": {"name": name, "key": "password"}}


# Every set must lint, render and pass the API server's dry-run.
VALUES: dict[str, dict[str, Any]] = {
    # One cluster, everything in it: SASL_SSL per principal (docs/SECURITY.md), HTTP SD
    # behind a web config with TLS, and all monitoring objects.
    "secure": {
        "image": {"digest": "sha256:" + "0" * 64},
        "producer": {
            "settings": {"cluster": "prod-eu-1"},
            "kafkaUser": _sasl_user("producer-prod-eu-1"),
        },
        "fold": {"kafkaUser": _sasl_user("fold")},
        "serve": {
            "kafkaUser": _sasl_user("sink"),
            "webConfig": {"secretName": "sdstream-web", "tls": True},
        },
        "monitoring": {
            "serviceMonitor": {
                "enabled": True,
                "tlsConfig": {
                    "ca": {"secret": {"name": "sdstream-web-ca", "key": "ca.crt"}},
                    "serverName": "sdstream-serve.sdstream.svc",
                },
                "bearerTokenSecret": {"name": "sdstream-scraper", "key": "token"},
            },
            "prometheusRule": {"enabled": True},
            "dashboard": {"enabled": True},
        },
    },
    # The hub behind basic auth over TLS (a CA from a ConfigMap), dynamic group members.
    "hub-basic-auth": {
        "kafka": {"security_protocol": "PLAINTEXT", "sasl_mechanism": None},
        "kafkaCA": {"secretName": ""},
        "producer": {"enabled": False},
        "fold": {"staticMembership": False},
        "serve": {"webConfig": {"secretName": "sdstream-web", "tls": True}},
        "monitoring": {
            "serviceMonitor": {
                "enabled": True,
                "tlsConfig": {"ca": {"configMap": {"name": "web-ca", "key": "ca.crt"}}},
                "basicAuth": {
                    "username": {"name": "scraper", "key": "username"},
                    "password": {"name": "scraper", "key": "password"},
                },
            }
        },
    },
    # A workload cluster: only its producer, mutual TLS to Kafka (Strimzi tls users).
    "edge": {
        "kafka": {"security_protocol": "SSL", "sasl_mechanism": None},
        "producer": {
            "settings": {"cluster": "edge-1", "namespaces": ["apps"]},
            "kafkaUser": {**_USER, "certSecretName": "producer-edge-1"},
        },
        "fold": {"enabled": False},
        "serve": {"enabled": False},
    },
    # The hub: fold and serving replicas for every cluster, no producer, plain Kafka.
    "hub": {
        "kafka": {"security_protocol": "PLAINTEXT", "sasl_mechanism": None},
        "kafkaCA": {"secretName": ""},
        "producer": {"enabled": False},
        "consumer": {
            "settings": {
                "cluster_pattern": "(prod|edge)-.*",
                "scrape_configs": [
                    {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]},
                    {"job_name": "nodes", "kubernetes_sd_configs": [{"role": "node"}]},
                ],
            }
        },
        "serve": {
            "replicas": 3,
            "networkPolicy": {"enabled": False},
            "podDisruptionBudget": {"minAvailable": 2},
        },
        "monitoring": {"prometheusRule": {"enabled": True}},
    },
}


def devstack_values(*, bootstrap: str, prefix: str) -> dict[str, Any]:
    """Values that run against the devstack: plain Kafka, replication factor 1."""
    return {
        "kafka": {
            "bootstrap": bootstrap,
            "topic_prefix": prefix,
            "replication_factor": 1,
            "min_insync_replicas": 1,
            "security_protocol": "PLAINTEXT",
            "sasl_mechanism": None,
        },
        "kafkaCA": {"secretName": ""},
        "producer": {"settings": {"cluster": "c1", "partitions": 2, "resources": ["pods"]}},
        "consumer": {
            "settings": {
                "targets_partitions": 2,
                "scrape_configs": [
                    {"job_name": "kubernetes-pods", "kubernetes_sd_configs": [{"role": "pod"}]}
                ],
            }
        },
        "fold": {"replicas": 1},
    }


def template_args(helm: Path, values: Path, *, namespace: str) -> list[str]:
    return [
        str(helm),
        "template",
        "sdstream",
        str(CHART),
        "--namespace",
        namespace,
        "--values",
        str(values),
    ]


def render_all(
    helm: Path, sets: Mapping[str, Mapping[str, Any]], *, namespace: str, tmp: Path
) -> dict[str, list[Doc]]:
    """`helm template` of each values set, run side by side; a failure raises."""
    runs = {}
    for name, values in sets.items():
        path = tmp / f"{name}.values.json"
        path.write_text(json.dumps(values))
        runs[name] = subprocess.Popen(
            template_args(helm, path, namespace=namespace),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    rendered = {}
    for name, run in runs.items():
        out, err = run.communicate(timeout=120)
        if run.returncode:
            raise AssertionError(f"helm template ({name}) failed: {err}")
        rendered[name] = [d for d in yaml.safe_load_all(out) if d]
    return rendered


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def workloads(docs: list[Doc]) -> list[Doc]:
    """Deployments and StatefulSets (the fold)."""
    return of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet")


def config_of(docs: list[Doc], deployment: Doc) -> Doc:
    """The config.yaml a Deployment's pods read (its `config` ConfigMap volume)."""
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (name,) = [v["configMap"]["name"] for v in volumes if v["name"] == "config"]
    (config,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == name]
    loaded: Doc = yaml.safe_load(config["data"]["config.yaml"])
    return loaded
