"""Trust in the targets topic: the sinks serve, and write files for, configured jobs only.

Anyone who can write to the targets topic could otherwise add an HTTP SD route and a
file SD file (which Prometheus picks up through its `files:` glob) for a job nobody
configured. Such records are skipped and counted; configured jobs keep flowing, and file
SD files get the configured permission bits.
"""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from consumers.sinks import runner
from consumers.skips import UNCONFIGURED_JOB
from schemas.config import HttpSettings, KafkaSettings
from sdstream import http
from tests.integration.test_sinks import API, WEB_0, WEB_1, entries, running, targets, upsert
from tests.unit.consumers.sinks.builders import group
from tests.unit.consumers.sinks.http_client import fetch

INTRUDER = group("intruder", "east", "evil-0", "10.6.6.6:80")


async def test_records_of_unconfigured_jobs_get_no_route_and_no_file(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    out = tmp_path / "file_sd"
    log = [upsert(WEB_0), upsert(INTRUDER), upsert(API), upsert(WEB_1)]
    await targets(kafka_bootstrap, topic_prefix, log)
    registry = CollectorRegistry()
    built = runner.build(
        KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        registry=registry,
        jobs=["web"],
        file_sd_dir=out,
        file_sd_mode=0o640,
        retry_s=0.2,
    )
    server = http.HttpServer(
        HttpSettings(host="127.0.0.1", port=0),
        registry=registry,
        ready=built.reader.unready_reason,
        routes=built.routes,
    )
    async with server, running(built.reader):
        web = await fetch(server.address, path="/http_sd/web")
        intruder = await fetch(server.address, path="/http_sd/intruder")
        jobs = await fetch(server.address, path="/http_sd")
        metrics = (await fetch(server.address, path="/metrics")).body.decode()

    assert orjson.loads(web.body) == entries(WEB_0, WEB_1)
    assert intruder.status == 404
    assert [j["job"] for j in orjson.loads(jobs.body)] == ["web"]
    assert sorted(p.name for p in out.iterdir()) == ["web.json"]
    assert stat.S_IMODE((out / "web.json").stat().st_mode) == 0o640
    assert f'sdstream_sink_skipped_records_total{{reason="{UNCONFIGURED_JOB}"}} 2.0' in metrics
