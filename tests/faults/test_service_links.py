"""Kubernetes service links: a Service named sdstream-kafka, sdstream-http or sdstream in
the namespace injects SDSTREAM_* docker-links variables into every pod (unless
enableServiceLinks is false). The real `sdstream produce` and `consume` ignore them and
become ready, instead of exiting 2 on "extra inputs" or on SDSTREAM_HTTP_PORT=tcp://...
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from sdstream.devstack import processes
from tests.faults import cli
from tests.naming import unique

LINKS = {
    "SDSTREAM_KAFKA_SERVICE_HOST": "10.0.0.1",
    "SDSTREAM_KAFKA_SERVICE_PORT": "9092",
    "SDSTREAM_KAFKA_PORT": "tcp://10.0.0.1:9092",
    "SDSTREAM_KAFKA_PORT_9092_TCP": "tcp://10.0.0.1:9092",
    "SDSTREAM_KAFKA_PORT_9092_TCP_PROTO": "tcp",
    "SDSTREAM_KAFKA_PORT_9092_TCP_PORT": "9092",
    "SDSTREAM_KAFKA_PORT_9092_TCP_ADDR": "10.0.0.1",
    "SDSTREAM_HTTP_SERVICE_HOST": "10.0.0.2",
    "SDSTREAM_HTTP_SERVICE_PORT": "80",
    "SDSTREAM_HTTP_SERVICE_PORT_WEB": "80",
    "SDSTREAM_HTTP_PORT": "tcp://10.0.0.2:80",
    "SDSTREAM_HTTP_PORT_80_TCP": "tcp://10.0.0.2:80",
    "SDSTREAM_HTTP_PORT_80_TCP_ADDR": "10.0.0.2",
    "SDSTREAM_SERVICE_HOST": "10.0.0.3",
    "SDSTREAM_SERVICE_PORT": "8080",
    "SDSTREAM_PORT": "tcp://10.0.0.3:8080",
    "SDSTREAM_PORT_8080_TCP_PORT": "8080",
}


async def test_service_links_leave_both_processes_running(
    kafka_bootstrap: str, kubeconfig: Path, namespace: str, topic_prefix: str, tmp_path: Path
) -> None:
    kafka = {"SDSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap,
             "SDSTREAM_KAFKA_TOPIC_PREFIX": topic_prefix}  # fmt: skip
    config = tmp_path / "consumer.yml"
    config.write_text(yaml.safe_dump({
        "group_id": unique("g"),
        "scrape_configs": [{"job_name": "pods", "kubernetes_sd_configs": [
            {"role": "pod", "namespaces": {"names": [namespace]}}]}],
    }))  # fmt: skip
    produce_port, consume_port = processes.free_port(), processes.free_port()
    producer_env = LINKS | kafka | {"SDSTREAM_NAMESPACES": namespace,
                                    "SDSTREAM_RESOURCES": "pods,services,endpoints"}  # fmt: skip

    async with (
        cli.running("produce", "--cluster", "c1", "--kubeconfig", str(kubeconfig),
                    "--http-port", str(produce_port), env=producer_env) as producer,
        cli.running("consume", "--config", str(config), "--http-port", str(consume_port),
                    env=LINKS | kafka) as consumer,
    ):  # fmt: skip
        await asyncio.gather(producer.ready(produce_port), consumer.ready(consume_port))

    for process in (producer, consumer):
        assert process.process.returncode == 0, "\n".join(process.lines)
        (ignored,) = [line for line in process.lines if "service-link variables" in line]
        assert f"Ignoring {len(LINKS)} Kubernetes service-link variables" in ignored
        assert "SDSTREAM_HTTP_PORT," in ignored
