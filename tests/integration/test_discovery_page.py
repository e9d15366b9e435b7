"""The discovery page in a real browser: API server -> producer -> Kafka -> consumer ->
`GET /` and `/discovery/<job>` in headless Chromium.

A known workload (pods in two namespaces, one of them annotated with a script) is
discovered for real; the pages must load with no console error, CSP violation or failed
request, show the expected counts, list the job's targets, narrow them by a search, and
show the hostile annotation as text (no script element, no dialog), and, for a job
with relabel_configs, the served and dropped counts and the rule that dropped a target.
Screenshots are kept under test-artifacts/discovery-page/ (ignored by git), their paths
printed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from kubernetes import client

from schemas.sd_config import ScrapeJob
from tests.integration import chromium, objects
from tests.integration import e2e_pipeline as e2e
from tests.naming import unique
from tests.unit.consumers.sinks.http_client import fetch

HOSTILE = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "discovery-page"
CELLS = "Array.from(document.querySelectorAll('#{table} tr')).slice(1).map(r => Array.from(r.cells).map(c => c.innerText))"  # noqa: E501
DOM = {
    "jobs": CELLS.format(table="jobs"),
    "clusters": CELLS.format(table="clusters"),
    "targets": "document.querySelectorAll('#targets tr.target').length",
    "scripts": "document.querySelectorAll('script').length",
    "summary": "document.getElementById('summary')?.innerText",
}


def needs_browser() -> None:
    """Skip only where no browser can be had; where scripts/install could have installed
    it (root with apt-get), a missing browser is a failure, not a skip."""
    if chromium.binary() is not None:
        return
    installable = os.geteuid() == 0 and shutil.which("apt-get") is not None
    message = "no chromium: scripts/install installs Debian's chromium (root, apt-get)"
    if installable:
        pytest.fail(f"{message}; run scripts/install")
    pytest.skip(message)


def seed(api: client.ApiClient, ns_a: str, ns_b: str) -> None:
    """3 pods in ns_a, 2 in ns_b, one port each: 5 groups, 5 targets."""
    for ns, count in ((ns_a, 3), (ns_b, 2)):
        for i in range(count):
            objects.create_pod(api, ns, f"web-{i}", ip=f"10.244.9.{len(ns) % 50 + i}",
                               node="n1", labels={"app": "web"})  # fmt: skip
    note = {"metadata": {"annotations": {"note": HOSTILE}}}
    client.CoreV1Api(api).patch_namespaced_pod("web-1", ns_b, note)


def save(visit: chromium.Visit, name: str) -> None:
    path = visit.save(ARTIFACTS / f"{name}.png")
    print(f"screenshot: {path}")  # the artifact's path, for people


def clean(visit: chromium.Visit) -> None:
    assert visit.status == 200, visit.url
    assert visit.errors == [], visit.errors
    assert visit.dialogs == []
    assert visit.values["scripts"] == 0


async def test_the_discovery_page_in_a_browser(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, namespace: str,
    topic_prefix: str,
) -> None:  # fmt: skip
    needs_browser()
    ns_a, ns_b = namespace, unique("t")
    objects.create_namespace(kube_api, ns_b)
    seed(kube_api, ns_a, ns_b)
    cluster = unique("c")
    producer = e2e.producer_settings(
        cluster=cluster,
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
        kubeconfig=kubeconfig,
        namespace=ns_a,
    )
    producer = producer.model_copy(update={"namespaces": (ns_a, ns_b)})
    pods: dict[str, Any] = {"role": "pod", "namespaces": {"names": [ns_a, ns_b]}}
    settings = e2e.consumer_settings(
        bootstrap=kafka_bootstrap, prefix=topic_prefix, group=unique("g"),
        jobs={"pods": pods, "services": {"role": "service", "namespaces": {"names": [ns_a]}}},
    )  # fmt: skip
    keep_a = {"source_labels": ["__meta_kubernetes_namespace"], "regex": ns_a, "action": "keep"}
    kept = ScrapeJob.model_validate({"job_name": "kept", "kubernetes_sd_configs": [pods],
                                     "relabel_configs": [keep_a]})  # fmt: skip
    consumer = e2e.RunningConsumer(
        settings.model_copy(update={"scrape_configs": (*settings.scrape_configs, kept)})
    )
    async with e2e.running(e2e.RunningProducer(producer), consumer):
        await converge(consumer, "pods", 5)
        await converge(consumer, "kept", 3)
        base = f"http://{consumer.address[0]}:{consumer.address[1]}"
        async with chromium.Browser.launch() as browser:
            overview = await browser.visit(f"{base}/", expressions=DOM)
            save(overview, "overview")
            clean(overview)
            assert "Ready" in overview.text
            jobs = {row[0]: row[1:] for row in overview.values["jobs"]}
            assert jobs == {"pods": [cluster, "5", "5", "5", "0"],
                            "services": ["", "0", "0", "0", "0"],
                            "kept": [cluster, "5", "5", "3", "2"]}  # fmt: skip
            [(name, held, groups, lag)] = overview.values["clusters"]
            assert (name, groups, lag) == (cluster, "10", "0")
            assert int(held) >= 5  # pods, and the namespaces and nodes the fold reads

            job = await browser.visit(f"{base}/discovery/pods", expressions=DOM)
            save(job, "job")
            clean(job)
            assert job.values["targets"] == 5
            assert job.values["summary"].startswith("5 targets discovered: 5 served, 0 dropped")
            assert f'__meta_kubernetes_pod_annotation_note="{HOSTILE}"' in job.text

            query = quote(f'namespace="{ns_b}"')
            found = await browser.visit(f"{base}/discovery/pods?q={query}", expressions=DOM)
            save(found, "search")
            clean(found)
            assert found.values["targets"] == 2
            assert f'__meta_kubernetes_namespace="{ns_b}"' in found.text
            assert f'__meta_kubernetes_namespace="{ns_a}"' not in found.text

            dropped = await browser.visit(f"{base}/discovery/kept?state=dropped", expressions=DOM)
            save(dropped, "dropped")
            clean(dropped)
            assert dropped.values["summary"].startswith("5 targets discovered: 3 served, 2 dropped")
            assert dropped.values["targets"] == 2
            rule = (
                f'"action":"keep","source_labels":["__meta_kubernetes_namespace"],"regex":"{ns_a}"'
            )
            assert dropped.text.count(f"dropped by relabel_configs[0]: {{{rule}}}") == 2


async def converge(consumer: e2e.RunningConsumer, job: str, targets: int) -> None:
    """Until the job serves `targets` targets (one per HTTP SD entry here)."""
    entries: list[Any] = []
    try:
        async with asyncio.timeout(60):
            while len(entries) != targets:
                reply = await fetch(consumer.address, path=f"/http_sd/{job}")
                entries = orjson.loads(reply.body) if reply.status == 200 else []
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{job}: {len(entries)} targets, not {targets}") from None


async def test_no_page_when_turned_off(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = e2e.consumer_settings(
        bootstrap=kafka_bootstrap, prefix=topic_prefix, group=unique("g"),
        jobs={"pods": {"role": "pod"}},
    ).model_copy(update={"discovery_page": False})  # fmt: skip
    consumer = e2e.RunningConsumer(settings)
    async with e2e.running(consumer):
        for path in ("/", "/discovery/pods"):
            assert (await fetch(consumer.address, path=path)).status == 404, path
        assert (await fetch(consumer.address, path="/http_sd/pods")).status == 200


async def test_keep_dropped_targets_lists_at_most_that_many_dropped_targets(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, namespace: str,
    topic_prefix: str,
) -> None:  # fmt: skip
    """Prometheus's keep_dropped_targets: the page lists at most that many of a job's
    dropped targets and still counts them all (its droppedTargetCounts)."""
    ns_a, ns_b = namespace, unique("t")
    objects.create_namespace(kube_api, ns_b)
    seed(kube_api, ns_a, ns_b)  # 3 pods kept by the rule, 2 dropped
    cluster = unique("c")
    producer = e2e.producer_settings(
        cluster=cluster, bootstrap=kafka_bootstrap, prefix=topic_prefix,
        kubeconfig=kubeconfig, namespace=ns_a,
    ).model_copy(update={"namespaces": (ns_a, ns_b)})  # fmt: skip
    pods: dict[str, Any] = {"role": "pod", "namespaces": {"names": [ns_a, ns_b]}}
    keep_a = {"source_labels": ["__meta_kubernetes_namespace"], "regex": ns_a, "action": "keep"}
    settings = e2e.consumer_settings(
        bootstrap=kafka_bootstrap, prefix=topic_prefix, group=unique("g"), jobs={}
    )
    jobs = tuple(
        ScrapeJob.model_validate({"job_name": name, "kubernetes_sd_configs": [pods],
                                  "relabel_configs": [keep_a], **extra})
        for name, extra in (("capped", {"keep_dropped_targets": 1}), ("all", {}))
    )  # fmt: skip
    consumer = e2e.RunningConsumer(settings.model_copy(update={"scrape_configs": jobs}))
    async with e2e.running(e2e.RunningProducer(producer), consumer):
        await converge(consumer, "capped", 3)
        await converge(consumer, "all", 3)
        overview = (await fetch(consumer.address, path="/")).body.decode()
        # Both jobs: 5 discovered, 3 served, 2 dropped (counted, listed or not).
        assert overview.count("<td class=num>5</td><td class=num>3</td><td class=num>2</td>") == 2
        for name, listed, note in (("capped", 1, True), ("all", 2, False)):
            page = await fetch(consumer.address, path=f"/discovery/{name}?state=dropped")
            text = page.body.decode()
            assert "5 targets discovered: 3 served, 2 dropped." in text, name
            assert text.count('<tr class="target dropped">') == listed, name
            assert ("1 dropped targets are only counted" in text) is note, name
