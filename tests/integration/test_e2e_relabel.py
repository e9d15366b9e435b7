"""End to end with relabel_configs: API server -> producer -> Kafka -> consumer -> HTTP SD,
judged by Prometheus (docs/relabeling.md).

Per job, promtool's `check service-discovery` of the original job (kubernetes_sd_configs
against the same API server, plus the job's relabel_configs) must give the same final
labels per target as promtool reading our HTTP SD endpoint for that job with no rules:
a Prometheus switched from its own relabeling to our final targets scrapes the same
targets with the same labels. Checked after the initial list and again after changes
that drop and add targets. Our `cluster` label is not Prometheus's and is left out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from consumers.sinks import http_sd
from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.sd_config import ScrapeJob
from tests.integration import e2e_pipeline as e2e
from tests.integration import objects
from tests.integration import relabel_oracle as oracle
from tests.naming import unique
from tests.relabel_rules import TYPICAL

MERGE = "application/merge-patch+json"
SLICE_RULES = [
    {"source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": "metrics",
     "action": "drop"},
    {"source_labels": ["__meta_kubernetes_service_name",
                       "__meta_kubernetes_endpointslice_port_name"],
     "separator": "-", "target_label": "svc_port"},
    {"source_labels": ["__address__"], "modulus": 4, "target_label": "__tmp_hash",
     "action": "hashmod"},
    {"source_labels": ["__tmp_hash"], "regex": "[0-2]", "action": "keep"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    {"source_labels": ["svc_port"], "action": "uppercase", "target_label": "SVC"},
    {"action": "labelmap", "regex": "__meta_kubernetes_endpointslice_(address_target_.*)",
     "replacement": "t_$1"},
]  # fmt: skip
NODE_RULES = [
    {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"},
    {"source_labels": ["__meta_kubernetes_node_label_zone"], "regex": "z9", "action": "drop"},
    {"source_labels": ["__meta_kubernetes_node_address_InternalIP"], "target_label": "__tmp_ip"},
    {"action": "labelkeep", "regex": "__address__|node|__tmp_ip|__meta_kubernetes_node_label_.*|"
     "job|__scheme__|__metrics_path__|__scrape_.*|__.*histograms.*"},
    {"source_labels": ["__tmp_ip"], "target_label": "__address__", "replacement": "$1:9100"},
    {"source_labels": ["node"], "target_label": "lower", "action": "lowercase"},
    {"source_labels": ["node"], "target_label": "node", "action": "keepequal"},
]  # fmt: skip


def jobs(ns: str) -> dict[str, dict[str, Any]]:
    mine = {"names": [ns]}
    return {
        "pods": {"kubernetes_sd_configs": [{"role": "pod", "namespaces": mine}],
                 "relabel_configs": TYPICAL},
        "pods_debug": {"kubernetes_sd_configs": [{"role": "pod", "namespaces": mine}],
                       "relabel_configs": TYPICAL, "keep_meta_labels": True},
        "slices": {"kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": mine}],
                   "relabel_configs": SLICE_RULES},
        "nodes": {"kubernetes_sd_configs": [{"role": "node"}], "relabel_configs": NODE_RULES},
    }  # fmt: skip


def annotate(api: client.ApiClient, ns: str, name: str, notes: dict[str, str | None]) -> None:
    body = {"metadata": {"annotations": notes}}
    client.CoreV1Api(api).patch_namespaced_pod(name, ns, body, _content_type=MERGE)


def seed(api: client.ApiClient, ns: str, nodes: tuple[str, str]) -> None:
    objects.create_node(api, nodes[0], address="10.1.9.1", labels={"zone": "z1"})
    objects.create_node(api, nodes[1], address="10.1.9.2", labels={"zone": "z9"})
    ports = objects.container("app", ("http", 8080, "TCP"), ("metrics", 9090, "TCP"))
    for i in range(6):
        objects.create_pod(api, ns, f"web-{i}", ip=f"10.244.9.{i + 1}", node=nodes[0],
                           labels={"app": "web", "idx": str(i)}, containers=[ports])  # fmt: skip
        annotate(api, ns, f"web-{i}", {"prometheus.io/scrape": "true" if i % 3 else "false",
                                        "prometheus.io/port": "9090",
                                        "prometheus.io/path": "/m" if i % 2 else None})  # fmt: skip
    slice_ports = [{"name": "http", "port": 8080, "protocol": "TCP"},
                   {"name": "metrics", "port": 9090, "protocol": "TCP"}]  # fmt: skip
    endpoints = [{"addresses": [f"10.244.9.{i + 1}"], "conditions": {"ready": True},
                  "targetRef": {"kind": "Pod", "namespace": ns, "name": f"web-{i}"}}
                 for i in range(6)]  # fmt: skip
    objects.create_endpointslice(api, ns, "web-abc", service="web", ports=slice_ports,
                                 endpoints=endpoints)  # fmt: skip


def change(api: client.ApiClient, ns: str, node: str) -> None:
    """Drop a kept pod, keep a dropped one, add a node and a pod."""
    annotate(api, ns, "web-1", {"prometheus.io/scrape": "false"})
    annotate(api, ns, "web-3", {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"})
    objects.create_pod(api, ns, "web-9", ip="10.244.9.99", node=node, labels={"app": "new"})
    annotate(api, ns, "web-9", {"prometheus.io/scrape": "true"})
    objects.create_node(api, unique("node"), address="10.1.9.3")


def settings(bootstrap: str, prefix: str, ns: str) -> ConsumerSettings:
    scrape = [ScrapeJob.model_validate({"job_name": name, **job}) for name, job in jobs(ns).items()]
    return ConsumerSettings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        scrape_configs=tuple(scrape), http=HttpSettings(port=0), group_id=unique("g"),
        targets_partitions=e2e.PARTITIONS,
    )  # fmt: skip


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


def addresses(found: set[oracle.Final]) -> set[str]:
    return {dict(t)["__address__"] for t in found}


async def served_addresses(consumer: e2e.RunningConsumer, job: str, query: str = "") -> set[str]:
    return {address for e in await consumer.entries(job, query) for address in e["targets"]}


async def check(env: e2e.Env, consumer: e2e.RunningConsumer, ns: str, tmp_path: Path) -> None:
    specs = jobs(ns)
    originals = [
        {**job, "kubernetes_sd_configs": [
            {**sd, "kubeconfig_file": str(env.kubeconfig)} for sd in job["kubernetes_sd_configs"]]}
        for job in specs.values()
    ]  # fmt: skip
    for job in originals:
        job.pop("keep_meta_labels", None)  # sdstream's own setting
    expected = dict(zip(specs, await oracle.run_all_async(env.promtool, originals, tmp_path),
                        strict=True))  # fmt: skip
    for job, targets in expected.items():
        assert targets, f"promtool must keep something for {job}"
        try:
            async with asyncio.timeout(60):
                while await served_addresses(consumer, job) != addresses(targets):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(
                f"{job}: {await served_addresses(consumer, job)} != {addresses(targets)}"
            ) from None
    via_http = await oracle.run_all_async(
        env.promtool, [{"http_sd_configs": [{"url": consumer.url(job)}]} for job in specs], tmp_path
    )
    for job, found in zip(specs, via_http, strict=True):
        assert found == expected[job], f"{job}:\n{oracle.describe(found, expected[job])}"


async def test_relabeled_jobs_serve_what_prometheus_keeps(
    env: e2e.Env, namespace: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka_bootstrap, kubeconfig, kube_api = env.kafka_bootstrap, env.kubeconfig, env.kube_api
    nodes = (unique("node"), unique("node"))
    seed(kube_api, namespace, nodes)
    producer = e2e.RunningProducer(e2e.producer_settings(
        cluster="c1", bootstrap=kafka_bootstrap, prefix=topic_prefix, kubeconfig=kubeconfig,
        namespace=namespace))  # fmt: skip
    consumer = e2e.RunningConsumer(settings(kafka_bootstrap, topic_prefix, namespace))
    async with e2e.running(producer, consumer):
        await check(env, consumer, namespace, tmp_path)
        final = await consumer.entries("pods")
        debug = await consumer.entries("pods_debug")
        assert not [k for e in final for k in e["labels"] if k.startswith("__meta_")]
        assert all("__meta_kubernetes_pod_name" in e["labels"] for e in debug)
        assert {e["labels"]["cluster"] for e in final} == {"c1"}
        # shards split the final addresses the way Prometheus's hashmod would
        for shard in (0, 1):
            mine = await served_addresses(consumer, "pods", f"?shards=2&shard={shard}")
            assert {http_sd.hashmod(a, 2) for a in mine} <= {shard}
        change(kube_api, namespace, nodes[0])
        await check(env, consumer, namespace, tmp_path)
