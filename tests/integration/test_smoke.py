"""The devstack's servers are the real ones: a broker that stores and compacts,
an API server that stores objects with status, and promtool that discovers them."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from aiokafka import AIOKafkaProducer
from kubernetes import client

from tests.integration import kafka_helpers, objects
from tests.naming import unique


async def test_a_record_goes_through_the_broker(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}.smoke"
    await kafka_helpers.create_topic(kafka_bootstrap, topic, partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v1", key=b"ns/a", headers=[("h", b"x")])
    finally:
        await producer.stop()

    records = await kafka_helpers.read_all(kafka_bootstrap, topic)

    assert [(r.key, r.value, r.headers) for r in records] == [(b"ns/a", b"v1", (("h", b"x"),))]


def test_a_pod_with_a_status_ip_is_stored_and_listed(
    kube_api: client.ApiClient, namespace: str
) -> None:
    node = unique("node")
    objects.create_node(kube_api, node, address="10.1.0.11")
    objects.create_pod(kube_api, namespace, "web-0", ip="10.244.1.7", node=node)

    pods = client.CoreV1Api(kube_api).list_namespaced_pod(namespace).items

    assert [(p.metadata.name, p.status.pod_ip, p.spec.node_name) for p in pods] == [
        ("web-0", "10.244.1.7", node)
    ]
    assert pods[0].status.phase == "Running"


async def test_an_overwritten_key_is_compacted_away(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.compact"
    await kafka_helpers.create_topic(kafka_bootstrap, topic, configs=kafka_helpers.FAST_COMPACTION)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in (b"old-1", b"old-2", b"new"):
            await producer.send_and_wait(topic, value, key=b"ns/pod")
        await producer.send_and_wait(topic, b"keep", key=b"ns/other")
        async with asyncio.timeout(60):
            while True:
                # The active segment is never cleaned: appending rolls it once segment.ms passed.
                await producer.send_and_wait(topic, b"roll", key=b"roll")
                seen = await kafka_helpers.read_all(kafka_bootstrap, topic)
                values = [r.value for r in seen if r.key == b"ns/pod"]
                if values == [b"new"]:
                    break
                await asyncio.sleep(0.2)
    finally:
        await producer.stop()

    assert [r.value for r in seen if r.key == b"ns/other"] == [b"keep"]
    assert seen[0].offset > 0  # the first records really were removed from the log


def test_promtool_discovers_a_pod_from_the_api_server(
    kube_api: client.ApiClient, namespace: str, kubeconfig: Path, promtool: Path, tmp_path: Path
) -> None:
    node = unique("node")
    objects.create_node(kube_api, node, address="10.1.0.12")
    objects.create_pod(kube_api, namespace, "api-0", ip="10.244.2.9", node=node)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "scrape_configs": [
                    {
                        "job_name": "pods",
                        "kubernetes_sd_configs": [
                            {
                                "role": "pod",
                                "kubeconfig_file": str(kubeconfig),
                                "namespaces": {"names": [namespace]},
                            }
                        ],
                    }
                ]
            }
        )
    )

    done = subprocess.run(
        [promtool, "check", "service-discovery", config, "pods", "--timeout=3s"],
        capture_output=True,
        text=True,
        check=True,
    )

    found = json.loads(done.stdout)
    assert [t["discoveredLabels"]["__address__"] for t in found] == ["10.244.2.9:8080"]
    assert found[0]["discoveredLabels"]["__meta_kubernetes_pod_name"] == "api-0"
