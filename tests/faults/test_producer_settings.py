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
from prometheus_client import CollectorRegistry

from schemas.config import HttpSettings, KafkaSettings, KubeSettings, ProducerSettings
from sdstream import produce
from tests.integration.test_producer_process import free_port, get

SDSTREAM = Path(sys.executable).parent / "sdstream"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("SDSTREAM_LABEL_SELECTOR", "app in (web", "label_selector"),
        ("SDSTREAM_FIELD_SELECTOR", "spec.nodeName=n1", "field_selector"),  # not on services
        ("SDSTREAM_DROP_ANNOTATION_PATTERNS", '["(unclosed"]', "drop_annotation_patterns.0"),
    ],
)
async def test_a_bad_selector_is_one_line_and_exit_2(
    variable: str, value: str, field: str, tmp_path: Path
) -> None:
    env = {**os.environ, variable: value}
    process = await asyncio.create_subprocess_exec(
        str(SDSTREAM), "produce", "--cluster", "c1", "--http-port", "0",
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate()
    assert process.returncode == 2
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"sdstream produce: invalid settings: {field}: "), lines[0]
    assert stdout == b""


async def test_a_selector_the_api_server_rejects_shows_on_readyz_and_logs_once(
    kafka_bootstrap: str,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    good = ProducerSettings(
        cluster="c1",
        resources=("pods", "services"),
        namespaces=(namespace,),
        partitions=2,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        kube=KubeSettings(kubeconfig=kubeconfig),
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
