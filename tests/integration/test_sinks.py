"""The sinks against the real Kafka broker, served over real sockets, read by real promtool.

Each test writes target groups (and tombstones, and poison) to its own `<prefix>.targets`,
runs the reader with the HTTP SD route and/or file SD, and checks what a scraper gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from consumers.sinks import http_sd, runner, sink_metrics
from consumers.sinks.kafka_targets import Listener, TargetsReader
from consumers.sinks.views import TargetView
from consumers.skips import INVALID_GROUP, INVALID_JSON, KEY_MISMATCH, UNKNOWN_SCHEMA_VERSION
from schemas.config import HttpSettings, KafkaSettings
from schemas.targets import TargetGroup, encode
from schemas.topics import targets_topic
from sdstream import http
from tests.integration import kafka_helpers
from tests.unit.consumers.sinks.builders import group, key
from tests.unit.consumers.sinks.http_client import Response, fetch

PARTITIONS = 3
WEB_0 = group("web", "east", "web-0", "10.0.0.1:80", "10.0.0.1:9100")
WEB_1 = group("web", "west", "web-1", "10.9.0.1:80", ns="shop")
GONE = group("web", "east", "web-9", "10.0.0.9:80")
API = group("api", "east", "api-0", "10.0.1.1:8080")
IDLE = frozenset({"idle"})
JOBS = frozenset({"web", "api"})  # sinks serve configured jobs only

Record = tuple[bytes, bytes | None]


def upsert(g: TargetGroup) -> Record:
    return key(g).encode(), encode(g)


def tombstone(g: TargetGroup) -> Record:
    return key(g).encode(), None


async def targets(
    bootstrap: str, prefix: str, records: Sequence[Record], *, partitions: int = PARTITIONS
) -> None:
    """Create `<prefix>.targets` (if needed) and write `records` in order."""
    topic = targets_topic(prefix)
    await kafka_helpers.create_topic(
        bootstrap, topic, partitions=partitions, configs=kafka_helpers.FAST_COMPACTION
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for k, v in records:
            await producer.send_and_wait(topic, v, key=k)
    finally:
        await producer.stop()


@dataclass
class Changes:
    """A listener that lets a test wait for the reader to announce a job."""

    seen: list[frozenset[str]] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, jobs: frozenset[str]) -> None:
        self.seen.append(jobs)
        self.event.set()

    async def wait_for(self, job: str) -> None:
        while not any(job in jobs for jobs in self.seen):
            self.event.clear()
            await self.event.wait()


@dataclass
class Sinks:
    reader: TargetsReader
    server: http.HttpServer
    registry: CollectorRegistry
    changes: Changes

    async def get(self, path: str, **headers: str) -> Response:
        """GET `path`; header names with `_` for `-` (If_None_Match=...)."""
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return await fetch(self.server.address, path=path, headers=named)

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def sinks(
    bootstrap: str,
    prefix: str,
    *,
    file_sd_dir: Path | None = None,
    configured: frozenset[str] = JOBS,
    listeners: Sequence[Listener] = (),
) -> AsyncIterator[Sinks]:
    """The sinks as `sdstream consume` wires them (runner.build + HttpServer), caught up."""
    registry = CollectorRegistry()
    built = runner.build(
        KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        registry=registry,
        jobs=configured,
        file_sd_dir=file_sd_dir,
        retry_s=0.2,
    )
    changes = Changes()
    every: list[Listener] = [*listeners, changes]
    for listener in every:
        built.reader.add_listener(listener)
    server = http.HttpServer(
        HttpSettings(host="127.0.0.1", port=0),
        registry=registry,
        ready=built.reader.unready_reason,
        routes=built.routes,
    )
    async with server, running(built.reader):
        yield Sinks(built.reader, server, registry, changes)


@contextlib.asynccontextmanager
async def running(reader: TargetsReader) -> AsyncIterator[None]:
    """`reader.run()` in a task, caught up on entry (or its failure raised), cancelled on exit."""
    task = asyncio.create_task(reader.run())
    try:
        async with asyncio.timeout(30):
            caught_up = asyncio.ensure_future(reader.wait_caught_up())
            await asyncio.wait({task, caught_up}, return_when=asyncio.FIRST_COMPLETED)
            caught_up.cancel()
        assert not task.done(), task.result()
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def entries(*groups: TargetGroup) -> list[dict[str, Any]]:
    """What HTTP SD serves for `groups`, in its order."""
    parsed: list[dict[str, Any]] = orjson.loads(http_sd.render(sorted(groups, key=key)))
    return parsed


async def test_http_sd_serves_the_topic_and_survives_a_restart(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    stale = WEB_0.model_copy(update={"targets": [{"__address__": "10.0.0.99:80"}]})
    log = [upsert(stale), upsert(GONE), upsert(WEB_0), upsert(WEB_1), upsert(API), tombstone(GONE)]
    await targets(kafka_bootstrap, topic_prefix, log)

    async with sinks(kafka_bootstrap, topic_prefix) as first:
        web = await first.get("/http_sd/web", Accept="application/json")
        west = await first.get("/http_sd/web?cluster=west")
        jobs = await first.get("/http_sd")
        unknown = await first.get("/http_sd/nope")
        ready = await first.get("/readyz")

    assert (web.status, web.headers["content-type"]) == (200, "application/json")
    assert orjson.loads(web.body) == entries(WEB_0, WEB_1)
    assert orjson.loads(west.body) == entries(WEB_1)
    assert [j["job"] for j in orjson.loads(jobs.body)] == ["api", "web"]
    assert (unknown.status, ready.status) == (404, 200)

    async with sinks(kafka_bootstrap, topic_prefix) as second:  # a new process: same answer
        again = await second.get("/http_sd/web", If_None_Match=web.headers["etag"])
        fresh = await second.get("/http_sd/web")

    assert (again.status, again.headers["etag"]) == (304, web.headers["etag"])
    assert fresh.body == web.body


async def test_a_compacted_topic_gives_the_same_answer(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    stale = WEB_0.model_copy(update={"targets": [{"__address__": "10.0.0.99:80"}]})
    await targets(kafka_bootstrap, topic_prefix, [upsert(stale), upsert(GONE)], partitions=1)
    await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0), tombstone(GONE), upsert(API)])
    topic = targets_topic(topic_prefix)
    roll = (b"roll/east/pod/default/roll", None)  # a tombstone of a key no one has: a no-op
    async with asyncio.timeout(60):
        while True:  # the active segment is never cleaned: appending rolls it
            await targets(kafka_bootstrap, topic_prefix, [roll])
            stored = await kafka_helpers.read_all(kafka_bootstrap, topic)
            if [r.value for r in stored if r.key == key(WEB_0).encode()] == [encode(WEB_0)]:
                break
            await asyncio.sleep(0.2)  # poll interval of the cleaner, not a wait for an outcome

    async with sinks(kafka_bootstrap, topic_prefix) as running:
        web = await running.get("/http_sd/web")
        api = await running.get("/http_sd/api")

    assert stored[0].offset > 0  # the reader started inside a compacted log
    assert orjson.loads(web.body) == entries(WEB_0)
    assert orjson.loads(api.body) == entries(API)


async def test_http_sd_follows_the_tail(kafka_bootstrap: str, topic_prefix: str) -> None:
    failures: list[frozenset[str]] = []

    async def broken_sink(jobs: frozenset[str]) -> None:
        failures.append(jobs)
        raise OSError("disk full")

    await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0)])
    async with sinks(kafka_bootstrap, topic_prefix, listeners=[broken_sink]) as running:
        before = await running.get("/http_sd/web")
        running.changes.seen.clear()
        await targets(kafka_bootstrap, topic_prefix, [tombstone(WEB_0), upsert(API)])
        async with asyncio.timeout(30):
            await running.changes.wait_for("api")
            await running.changes.wait_for("web")
        after = await running.get("/http_sd/web", If_None_Match=before.headers["etag"])
        api = await running.get("/http_sd/api")

    assert orjson.loads(before.body) == entries(WEB_0)
    assert (after.status, after.body) == (200, b"[]")  # known job, no groups left
    assert len(failures) >= 2  # a failing sink was told every time and stopped nothing
    assert orjson.loads(api.body) == entries(API)


async def test_http_sd_is_503_while_the_topic_is_missing(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    registry = CollectorRegistry()
    view = TargetView()
    reader = TargetsReader(
        KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix),
        view=view,
        metrics=sink_metrics.create(registry),
        retry_s=0.2,
    )
    sd = http_sd.HttpSd(view, ready=lambda: reader.caught_up)
    server = http.HttpServer(
        HttpSettings(host="127.0.0.1", port=0),
        registry=registry,
        ready=reader.unready_reason,
        routes={http_sd.PREFIX: sd},
    )
    async with server:
        task = asyncio.create_task(reader.run())
        try:
            before = await fetch(server.address, path="/http_sd/web")
            not_ready = await fetch(server.address, path="/readyz")
            await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0)])
            async with asyncio.timeout(30):
                await reader.wait_caught_up()
            after = await fetch(server.address, path="/http_sd/web")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert before.status == 503
    assert (not_ready.status, not_ready.body) == (
        503,
        f"topic {targets_topic(topic_prefix)} does not exist yet\n".encode(),
    )
    assert orjson.loads(after.body) == entries(WEB_0)


async def test_poison_records_are_skipped_and_counted(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    good_key = key(WEB_0).encode()
    newer = orjson.dumps({**WEB_0.model_dump(mode="json"), "schema_version": 99, "new": 1})
    poison: list[Record] = [
        (b"web/east/pod/default/x-0", b"{not json"),
        (good_key, newer),
        (b"web/east/pod/default/x-1", orjson.dumps({"job": "web"})),
        (b"web/west/pod/default/web-0", encode(WEB_0)),
    ]
    await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0), *poison, upsert(API)])

    async with sinks(kafka_bootstrap, topic_prefix) as running:
        web = await running.get("/http_sd/web")
        metrics = (await running.get("/metrics")).body.decode()
        skipped = {
            reason: running.sample("sdstream_sink_skipped_records_total", reason=reason)
            for reason in (INVALID_JSON, UNKNOWN_SCHEMA_VERSION, INVALID_GROUP, KEY_MISMATCH)
        }

    assert orjson.loads(web.body) == entries(WEB_0)  # the newer-schema record did not replace it
    assert skipped == dict.fromkeys(skipped, 1.0)
    assert "sdstream_sink_records_total 2.0" in metrics
    assert 'sdstream_sink_targets{job="web"} 2.0' in metrics


async def test_file_sd_files_are_atomic_and_only_rewritten_on_change(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    out = tmp_path / "file_sd"
    await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0), upsert(WEB_1)])

    async with sinks(kafka_bootstrap, topic_prefix, file_sd_dir=out, configured=IDLE | JOBS) as run:
        first = {p.name: p.stat() for p in out.iterdir()}
        run.changes.seen.clear()
        await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0), upsert(API)])  # web: same
        async with asyncio.timeout(30):
            await run.changes.wait_for("api")
        second = {p.name: p.stat() for p in out.iterdir()}
        writes = run.sample("sdstream_sink_file_sd_writes_total")

    async with sinks(kafka_bootstrap, topic_prefix, file_sd_dir=out) as restarted:
        third = {p.name: p.stat() for p in out.iterdir()}
        rewrites = restarted.sample("sdstream_sink_file_sd_writes_total")

    assert sorted(first) == sorted(second) == sorted(third) == ["api.json", "idle.json", "web.json"]
    for name in ("idle.json", "web.json"):  # unchanged: not rewritten
        assert (second[name].st_ino, second[name].st_mtime_ns) == (
            first[name].st_ino,
            first[name].st_mtime_ns,
        )
    assert all(
        (third[n].st_ino, third[n].st_mtime_ns) == (second[n].st_ino, second[n].st_mtime_ns)
        for n in third
    )
    assert (writes, rewrites) == (4.0, 0.0)  # api: [] at start, then its group
    assert orjson.loads((out / "web.json").read_bytes()) == entries(WEB_0, WEB_1)
    assert orjson.loads((out / "idle.json").read_bytes()) == []


async def test_promtool_discovers_what_http_sd_serves(
    kafka_bootstrap: str, topic_prefix: str, promtool: Path, tmp_path: Path
) -> None:
    await targets(kafka_bootstrap, topic_prefix, [upsert(WEB_0), upsert(WEB_1), upsert(API)])
    config = tmp_path / "prometheus.yml"

    async with sinks(kafka_bootstrap, topic_prefix) as running:
        host, port = running.server.address
        url = f"http://{host}:{port}/http_sd/web"
        config.write_text(
            json.dumps({"scrape_configs": [{"job_name": "web", "http_sd_configs": [{"url": url}]}]})
        )
        check = await asyncio.create_subprocess_exec(
            promtool,
            "check",
            "service-discovery",
            config,
            "web",
            "--timeout=3s",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, stderr = await check.communicate()
        served = running.sample("sdstream_http_requests_total", route=http_sd.PREFIX, status="200")

    assert check.returncode == 0, stderr.decode()
    found = [
        {
            name: value
            for name, value in t["discoveredLabels"].items()
            if name in ("__address__", "cluster") or name.startswith("__meta_kubernetes_")
        }
        for t in json.loads(stdout)
    ]
    expected = [{"__address__": e["targets"][0], **e["labels"]} for e in entries(WEB_0, WEB_1)]
    assert sorted(found, key=_address) == sorted(expected, key=_address)
    assert {t["discoveredLabels"]["__meta_url"] for t in json.loads(stdout)} == {url}
    assert served >= 1


def _address(labels: dict[str, str]) -> str:
    return labels["__address__"]


def _prometheus_config(path: Path, job: dict[str, Any]) -> tuple[Path, str]:
    path.write_text(json.dumps({"scrape_configs": [job]}))
    return path, job["job_name"]


async def _promtool_targets(promtool: Path, config: tuple[Path, str]) -> list[Any]:
    """promtool's check service-discovery of one job: discovered and relabeled labels."""
    check = await asyncio.create_subprocess_exec(
        promtool, "check", "service-discovery", *config, "--timeout=3s",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        stdout, stderr = await check.communicate()
    assert check.returncode == 0, stderr.decode()
    found: list[Any] = json.loads(stdout)
    return found


async def test_a_shard_is_what_prometheus_hashmod_relabeling_keeps(
    kafka_bootstrap: str, topic_prefix: str, promtool: Path, tmp_path: Path
) -> None:
    """`?shards=3&shard=1` serves exactly the targets that a scraper fetching everything and
    relabeling with `hashmod` on `__address__` (modulus 3) and `keep` 1 would keep."""
    pods = [group("web", "east", f"web-{i}", f"10.0.{i}.1:80", f"10.0.{i}.2:9100")
            for i in range(12)]  # fmt: skip
    await targets(kafka_bootstrap, topic_prefix, [upsert(g) for g in pods])

    async with sinks(kafka_bootstrap, topic_prefix) as running:
        host, port = running.server.address
        url = f"http://{host}:{port}/http_sd/web"
        hashmod = [
            {"source_labels": ["__address__"], "modulus": 3, "target_label": "__tmp_shard",
             "action": "hashmod"},
            {"source_labels": ["__tmp_shard"], "regex": "1", "action": "keep"},
        ]  # fmt: skip
        everything = _prometheus_config(
            tmp_path / "relabel.yml",
            {"job_name": "web", "http_sd_configs": [{"url": url}], "relabel_configs": hashmod},
        )
        one_shard = _prometheus_config(
            tmp_path / "shard.yml",
            {"job_name": "web", "http_sd_configs": [{"url": f"{url}?shards=3&shard=1"}]},
        )
        relabeled, served = await asyncio.gather(
            _promtool_targets(promtool, everything), _promtool_targets(promtool, one_shard)
        )  # fmt: skip

    def addresses(found: list[Any], *, kept_only: bool) -> list[str]:
        return sorted(t["discoveredLabels"]["__address__"] for t in found
                      if t.get("labels") or not kept_only)  # fmt: skip

    assert len(relabeled) == 24  # promtool discovered every target, then relabeled
    kept = addresses(relabeled, kept_only=True)
    assert 0 < len(kept) < 24
    assert addresses(served, kept_only=False) == kept


async def test_a_gzip_client_gets_the_same_document(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Groups are held as gzip members: a client that accepts gzip gets them as they are
    (aiohttp inflating them itself, or raw), any other the same bytes inflated by the
    server, over 1 MiB so that it streams them in several slices."""
    many = [
        group(
            "web",
            ("east", "west")[i % 2],
            f"p-{i:04}",
            *(f"10.1.{i >> 6}.{i & 63}:{p}" for p in (80, 81, 9100, 9200)),
        )
        for i in range(2000)
    ]
    await kafka_helpers.create_topic(
        kafka_bootstrap, targets_topic(topic_prefix), partitions=PARTITIONS
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for g in many:
            await producer.send(targets_topic(topic_prefix), encode(g), key=key(g).encode())
        await producer.flush()
    finally:
        await producer.stop()

    async with sinks(kafka_bootstrap, topic_prefix) as running:
        url = "http://{}:{}".format(*running.server.address)
        got: dict[str, tuple[bytes, bytes, bytes, bytes, str]] = {}
        for path in ("/http_sd/web", "/http_sd/web?cluster=west&shards=3&shard=1"):
            plain = await running.get(path)
            raw = await running.get(path, Accept_Encoding="gzip")
            inflated, encoding = await _aiohttp_get(url + path, auto_decompress=True)
            as_sent, _ = await _aiohttp_get(url + path, auto_decompress=False)
            assert int(plain.headers["content-length"]) == len(plain.body)
            assert raw.headers["content-encoding"] == "gzip"
            got[path] = (
                plain.body,
                gzip.decompress(raw.body),
                inflated,
                gzip.decompress(as_sent),
                encoding,
            )

    whole, shard = got.values()
    assert len(whole[0]) > 1 << 20
    assert whole[0] == http_sd.render(sorted(many, key=key))  # the fragment renderer's bytes
    assert len(set(whole[:4])) == len(set(shard[:4])) == 1
    assert whole[4] == shard[4] == "gzip"
    west = [e for e in orjson.loads(whole[0]) if e["labels"]["cluster"] == "west"]
    kept = [e for e in west if http_sd.hashmod(e["targets"][0], 3) == 1]
    assert orjson.loads(shard[0]) == kept


async def _aiohttp_get(url: str, *, auto_decompress: bool) -> tuple[bytes, str]:
    """The body as aiohttp reads it (sending its default `Accept-Encoding: gzip, ...`)."""
    async with (
        aiohttp.ClientSession(auto_decompress=auto_decompress) as session,
        session.get(url) as response,
    ):
        return await response.read(), response.headers.get("Content-Encoding", "")
