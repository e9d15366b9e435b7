"""Producer selectors (issue 13, case 6): a bad one is a one-line error at start, and an
HTTP 400 at run time is logged once per backoff period and shown on /readyz, not retried
in silence forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from schemas import events
from schemas.config import HttpSettings
from schemas.topics import Resource, object_topic
from sdstream import produce
from tests.faults.test_big_objects import latest_until, producing
from tests.integration import e2e_pipeline as e2e
from tests.integration.test_producer_process import free_port, get

SDSTREAM = Path(sys.executable).parent / "sdstream"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("SDSTREAM_LABEL_SELECTOR", "app in (web", "label_selector"),
        ("SDSTREAM_FIELD_SELECTOR", "spec.nodeName=n1", "field_selector"),  # not on services
        ("SDSTREAM_DROP_ANNOTATION_PATTERNS", '["(unclosed"]', "drop_annotation_patterns.0"),
        # flags not at the start: refused at load, not a traceback once the producer starts
        ("SDSTREAM_DROP_ANNOTATION_PATTERNS", '["a(?i)b"]', "drop_annotation_patterns.0"),
    ],
)
async def test_a_bad_selector_is_one_line_and_exit_2(
    variable: str, value: str, field: str, tmp_path: Path
) -> None:
    env = {**os.environ, variable: value}
    process = await asyncio.create_subprocess_exec(
        str(SDSTREAM),
        "produce",
        "--cluster",
        "c1",
        "--http-port",
        "0",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert process.returncode == 2
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"sdstream produce: invalid settings: {field}: "), lines[0]
    assert stdout == b""


async def test_a_drop_pattern_with_an_inline_flag_starts_and_drops(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    """`(?i)...` passes load; the producer used to join the patterns into one regex at start,
    where the flag is no longer first: a traceback and exit 1 on every restart."""
    settings = e2e.producer_settings(
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        kubeconfig=kubeconfig,
        namespace=namespace,
        resources=(Resource.SERVICES,),
        drop_annotation_patterns=(r"(?i)EXAMPLE\.COM/debug-.*",),
        http=HttpSettings(port=free_port()),
    )
    annotations = {"example.com/debug-dump": "{...}", "example.com/port": "8080"}
    body = {"metadata": {"name": "web", "annotations": annotations},
            "spec": {"ports": [{"name": "http", "port": 80}]}}  # fmt: skip
    client.CoreV1Api(kube_api).create_namespaced_service(namespace, body)
    key = f"{namespace}/web"
    async with producing(settings):
        topic = object_topic(topic_prefix, "c1", Resource.SERVICES)
        latest = await latest_until(kafka_bootstrap, topic, lambda t: t.get(key) is not None)
    value = latest[key]
    assert value is not None
    published = events.decode(value).object["metadata"]["annotations"]
    assert published == {"example.com/port": "8080"}


async def test_a_selector_the_api_server_rejects_shows_on_readyz_and_logs_once(
    kafka_bootstrap: str,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    good = e2e.producer_settings(
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        kubeconfig=kubeconfig,
        namespace=namespace,
        resources=("pods", "services"),
        http=HttpSettings(port=port),
    )
    # Settings loading refuses this selector; built unchecked, it reaches the API server.
    settings = good.model_copy(update={"label_selector": "app in (web"})
    stop = asyncio.Event()
    task = asyncio.create_task(produce.run(settings, stop=stop, registry=CollectorRegistry()))
    try:
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(OSError):
                    code, body = await get(port, "/readyz")
                    # each watch shows once it has failed STUCK_AFTER times in a row
                    if b"watch of pods in " in body and b"watch of services in " in body:
                        break
                await asyncio.sleep(0.2)
        assert code == 503
        assert b"HTTP 400" in body
        _, metrics = await get(port, "/metrics")
        assert b'sdstream_producer_watch_failures{resource="pods"} ' in metrics
        assert b'sdstream_producer_watch_failures{resource="pods"} 0.0' not in metrics
    finally:
        stop.set()
        async with asyncio.timeout(30):
            assert await task == 0
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and "HTTP 400" in r.message]
    assert len(logged) == 2, [r.message for r in logged]  # one per watch, not one per try
