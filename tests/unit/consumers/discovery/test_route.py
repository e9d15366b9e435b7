"""The discovery page's routes over a real fold: pages, errors, and the render bound."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from consumers.compactor import folds
from consumers.compactor.jobs import compile_jobs
from consumers.discovery import html, route, rows, source
from consumers.monitors.select import MonitorJob
from consumers.relabel import engine
from consumers.sinks.http_sd import PartsReply
from schemas.relabel import RelabelConfig
from schemas.sd_config import KubernetesSDConfig, ScrapeJob
from schemas.topics import ObjectKey, Resource
from sdstream import http
from tests.unit.consumers.sinks.http_client import fetch
from tests.unit.sdstream import test_guard
from tests.unit.sdstream.test_http_hooks import LOOPBACK

PREFIX = "sd"


def pod(ns: str, name: str, ip: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                     "resourceVersion": "1", "labels": {"app": name}},
        "spec": {"nodeName": "n0", "containers": [{"name": "app", "image": "app:1",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"podIP": ip, "phase": "Running"},
    }  # fmt: skip


KEEP_SHOP = {"source_labels": ["__meta_kubernetes_namespace"], "regex": "shop", "action": "keep"}
RULES = [
    {"target_label": "app", "source_labels": ["__meta_kubernetes_pod_label_app"]},
    KEEP_SHOP,
]


def fold_with_pods() -> folds.Fold:
    jobs = [
        ScrapeJob.model_validate({"job_name": name, "kubernetes_sd_configs": [{"role": role}]})
        for name, role in (("pods", "pod"), ("idle", "node"))
    ]
    jobs.append(ScrapeJob.model_validate({"job_name": "shop", "relabel_configs": RULES,
                                          "kubernetes_sd_configs": [{"role": "pod"}]}))  # fmt: skip
    f = folds.Fold(compile_jobs(jobs))
    placed = [("c1", "shop"), ("c1", "shop"), ("c1", "web"), ("c2", "web")]
    for i, (cluster, ns) in enumerate(placed):
        f.apply(cluster, Resource.PODS, ObjectKey(f"{ns}/p{i}"), pod(ns, f"p{i}", f"10.0.0.{i}"))
    f.rebuild()
    return f


def lag_gauge() -> Gauge:
    gauge = Gauge("lag", "lag", ["topic", "partition"], registry=CollectorRegistry())
    gauge.labels(f"{PREFIX}.c1.pods", "0").set(3)
    gauge.labels(f"{PREFIX}.c1.pods", "1").set(4)
    gauge.labels(f"{PREFIX}.c2.nodes", "0").set(0)
    gauge.labels("other.topic", "0").set(99)
    return gauge


def page(data: route.Source | None = None, **kwargs: Any) -> route.DiscoveryPage:
    data = data or source.FoldSource(fold_with_pods(), lag=lag_gauge(), prefix=PREFIX,
                                     unready=lambda: None)  # fmt: skip
    return route.DiscoveryPage(data, registry=CollectorRegistry(), **kwargs)


async def get(
    served: route.DiscoveryPage, path: str, query: Mapping[str, list[str]] | None = None
) -> PartsReply:
    answer = served(path, query=query or {}, headers={})
    return answer if isinstance(answer, PartsReply) else await answer


async def test_overview_counts_jobs_clusters_and_lag() -> None:
    reply = await get(page(), "/")
    assert reply.status == 200
    assert reply.headers["Content-Security-Policy"] == html.CSP
    body = reply.body.decode()
    assert "<td>c1, c2</td><td class=num>4</td><td class=num>4</td><td class=num>4</td>" in body
    # Groups of every job: pods and shop each have one per pod.
    assert "<tr><td>c1</td><td class=num>3</td><td class=num>6</td><td class=num>7</td>" in body
    assert "<tr><td>c2</td><td class=num>1</td><td class=num>2</td><td class=num>0</td>" in body
    assert 'href="/discovery/idle"' in body
    assert "Ready" in body


async def test_a_job_page_searches_and_pages() -> None:
    served = page(page_size=2)
    first = (await get(served, "/discovery/pods")).body.decode()
    assert "4 targets discovered: 4 served, 0 dropped. 4 match." in first
    assert "page 1 of 2" in first
    found = (await get(served, "/discovery/pods", {"q": ['namespace="web"']})).body.decode()
    assert "2 match." in found
    assert 'pod_name="p2"' in found
    assert 'pod_name="p0"' not in found


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [("/discovery/nope", {}, 404), ("/discovery/pods", {"page": ["x"]}, 400),
     ("/discovery/pods/extra", {}, 404), ("/discovery", {}, 200)],
)  # fmt: skip
async def test_unknown_jobs_and_bad_queries(
    path: str, query: dict[str, list[str]], status: int
) -> None:
    reply = await get(page(), path, query)
    assert reply.status == status
    assert reply.headers["Content-Type"] == html.CONTENT_TYPE


class Blocked:
    """A source whose relabeling blocks in the render thread until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: set[str] = set()
        self.inner = source.FoldSource(fold_with_pods(), lag=lag_gauge(), prefix=PREFIX,
                                       unready=lambda: None)  # fmt: skip

    def jobs(self) -> list[str]:
        return list(self.inner.jobs())

    def snapshot(self) -> source.Snapshot:
        return dataclasses.replace(
            self.inner.snapshot(), relabeling={"pods": {None: (self.relabel, ())}}
        )

    def relabel(self, labels: Mapping[str, str]) -> rows.Verdict:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        self.release.wait(10)
        return rows.as_discovered(labels)


async def test_renders_run_off_the_loop_and_beyond_the_bound_answer_503() -> None:
    blocked = Blocked()
    served = page(blocked, max_renders=1)
    first = asyncio.ensure_future(get(served, "/discovery/pods"))
    assert await asyncio.to_thread(blocked.entered.wait, 10)  # the loop runs meanwhile
    busy = await get(served, "/")
    assert busy.status == 503
    assert busy.headers["Retry-After"] == "5"
    blocked.release.set()
    assert (await first).status == 200
    assert blocked.threads == {"discovery-page_0"}
    assert (await get(served, "/")).status == 200  # the slot is free again


async def test_a_relabeled_job_shows_final_labels_and_the_rule_that_dropped_a_target() -> None:
    served = page()
    overview = (await get(served, "/")).body.decode()
    assert (
        '<a href="/discovery/shop">shop</a></td><td>c1, c2</td><td class=num>4</td>'
        "<td class=num>4</td><td class=num>2</td><td class=num>2</td>"
    ) in overview
    body = (await get(served, "/discovery/shop")).body.decode()
    assert "4 targets discovered: 2 served, 2 dropped." in body
    # Final labels: the rule's `app`, no __meta_* (served as Prometheus holds them).
    final = '<li>__address__="10.0.0.0:8080"</li><li>app="p0"</li><li>cluster="c1"</li></ul>'
    assert f'<ul class="labels">{final}' in body
    rule = '{"action":"keep","source_labels":["__meta_kubernetes_namespace"],"regex":"shop"}'
    assert html.labels({}) not in body
    assert body.count(f"dropped by relabel_configs[1]: {html._e(rule)}") == 2
    dropped = (await get(served, "/discovery/shop", {"state": ["dropped"]})).body.decode()
    assert 'pod_name="p2"' in dropped
    assert 'pod_name="p0"' not in dropped


async def test_the_pages_are_behind_the_servers_guard() -> None:
    checker, _ = test_guard.make()
    routes = page().routes
    server = http.HttpServer(LOOPBACK, registry=CollectorRegistry(), ready=lambda: None,
                             routes=routes, guard=checker)  # fmt: skip
    async with server:
        for path in ("/", "/discovery/pods", "/discovery/nope"):
            refused = await fetch(server.address, path=path)
            assert refused.status == 401, path
        auth = {"Authorization": test_guard.basic("prometheus", test_guard.PASSWORD)}
        served = await fetch(server.address, path="/discovery/pods?q=p1", headers=auth)
    assert served.status == 200
    assert served.headers["content-security-policy"] == html.CSP
    assert b'pod_name="p1"' in served.body


async def test_close_drops_queued_renders() -> None:
    blocked = Blocked()
    served = page(blocked, max_renders=3)
    first = asyncio.ensure_future(get(served, "/discovery/pods"))
    assert await asyncio.to_thread(blocked.entered.wait, 10)
    queued = asyncio.ensure_future(get(served, "/discovery/pods"))
    await asyncio.sleep(0)  # the second render is submitted, behind the first
    served.close()
    blocked.release.set()
    assert (await first).status == 200
    with pytest.raises(asyncio.CancelledError):
        await queued


def keep_namespace(namespace: str) -> dict[str, Any]:
    return {"source_labels": ["__meta_kubernetes_namespace"], "regex": namespace,
            "action": "keep"}  # fmt: skip


def fold_with_a_monitor_job_per_cluster() -> folds.Fold:
    """Job `m` as a monitor job is: one view per cluster, each with its cluster's rules
    (c1 keeps namespace shop, c2 keeps web)."""
    views = []
    for cluster, namespace in (("c1", "shop"), ("c2", "web")):
        job = ScrapeJob.model_validate({
            "job_name": "m", "kubernetes_sd_configs": [{"role": "pod"}],
            "relabel_configs": [keep_namespace(namespace)],
        })  # fmt: skip
        (view,) = compile_jobs([job])
        views.append(dataclasses.replace(view, clusters=frozenset({cluster})))
    f = folds.Fold(views)
    placed = [("c1", "shop"), ("c1", "shop"), ("c1", "web"), ("c2", "web")]
    for i, (cluster, ns) in enumerate(placed):
        f.apply(cluster, Resource.PODS, ObjectKey(f"{ns}/p{i}"), pod(ns, f"p{i}", f"10.0.0.{i}"))
    f.rebuild()
    return f


def monitor_job(cluster: str, scrape: Mapping[str, Any]) -> MonitorJob:
    sd = KubernetesSDConfig.model_validate({"role": "pod"})
    return MonitorJob("m", cluster, sd, (), "cluster", scrape=scrape)


async def test_a_job_per_cluster_explains_each_target_with_its_cluster_s_rules() -> None:
    jobs = {"m": {"c1": monitor_job("c1", {"scrape_interval": "5s", "scheme": "http"}),
                  "c2": monitor_job("c2", {"scrape_interval": "9s", "scheme": "http"})},
    }  # fmt: skip
    data = source.FoldSource(fold_with_a_monitor_job_per_cluster(), lag=lag_gauge(),
                             prefix=PREFIX, unready=lambda: None,
                             monitor_jobs=lambda: jobs)  # fmt: skip
    served = page(data)
    body = (await get(served, "/discovery/m")).body.decode()
    # c2's pod in web is kept by c2's rule; c1's pod in web is dropped by c1's
    assert "4 targets discovered: 3 served, 1 dropped." in body
    dropped = (await get(served, "/discovery/m", {"state": ["dropped"]})).body.decode()
    assert 'pod_name="p2"' in dropped
    assert 'pod_name="p3"' not in dropped
    rule = html._e(source.describe(compile_rules_of(keep_namespace("shop"))))
    assert f"dropped by relabel_configs[0]: {rule}" in dropped
    assert '<h3 class="rules-of">cluster c1</h3>' in body
    assert '<h3 class="rules-of">cluster c2</h3>' in body
    assert '<p id="disagreement">' in body
    assert "<th>c1 (used)</th><th>c2</th>" in body
    assert "<tr><td>scrape_interval</td><td>&quot;5s&quot;</td><td>&quot;9s&quot;</td></tr>" in body
    overview = (await get(served, "/")).body.decode()
    assert '<table id="disagreements">' in overview
    assert "<td>scrape_interval</td><td>c1</td>" in overview


def compile_rules_of(rule: Mapping[str, Any]) -> engine.Rule:
    (compiled,) = engine.compile_rules([RelabelConfig.model_validate(rule)])
    return compiled


async def test_no_disagreement_section_when_clusters_agree() -> None:
    same = {"scrape_interval": "5s"}
    jobs = {"m": {"c1": monitor_job("c1", same), "c2": monitor_job("c2", dict(same))}}
    data = source.FoldSource(fold_with_a_monitor_job_per_cluster(), lag=lag_gauge(),
                             prefix=PREFIX, unready=lambda: None,
                             monitor_jobs=lambda: jobs)  # fmt: skip
    served = page(data)
    assert "disagree" not in (await get(served, "/")).body.decode()
    assert "disagree" not in (await get(served, "/discovery/m")).body.decode()
