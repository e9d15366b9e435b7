"""`sdstream.produce` as a process: /healthz, /readyz, /metrics, and SIGTERM -> flush, exit 0."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

from kubernetes import client

from schemas import events
from schemas.topics import Resource, object_topic
from tests.integration import kafka_helpers, objects

SCRIPT = """
import sys
from pathlib import Path
from schemas.config import HttpSettings, KafkaSettings, KubeSettings, ProducerSettings
from sdstream import produce
bootstrap, kubeconfig, prefix, namespace, port = sys.argv[1:]
sys.exit(produce.main(ProducerSettings(
    cluster="c1", resources=("pods",), namespaces=(namespace,), partitions=2,
    kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
    kube=KubeSettings(kubeconfig=Path(kubeconfig)),
    http=HttpSettings(host="127.0.0.1", port=int(port)),
)))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def status_of(port: int, path: str) -> int | None:
    try:
        return (await get(port, path))[0]
    except OSError:
        return None


async def test_endpoints_and_sigterm(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    objects.create_pod(kube_api, namespace, "p", ip="10.244.6.1", node="n")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        kafka_bootstrap,
        str(kubeconfig),
        topic_prefix,
        namespace,
        str(port),
        cwd=Path(__file__).parents[2],
    )
    try:
        async with asyncio.timeout(60):
            while await status_of(port, "/readyz") != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert (await get(port, "/healthz"))[0] == 200
        code, metrics = await get(port, "/metrics")
        assert code == 200
        assert b'sdstream_producer_lists_total{resource="pods"} 1.0' in metrics
        assert b"sdstream_producer_ready" in metrics
        assert b'sdstream_build_info{pythonversion="' in metrics
        assert b"process_resident_memory_bytes " in metrics
        assert (await get(port, "/nope"))[0] == 404
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    records = await kafka_helpers.read_all(
        kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.PODS)
    )
    assert [(r.key, dict(r.headers)[events.HEADER_EVENT]) for r in records] == [
        (f"{namespace}/p".encode(), b"ADDED")
    ]
