"""bench/discovery_page: what the discovery page costs for a big job, and where.

    .venv/bin/python bench/discovery_page.py [--pods 50000]

A fold of N pods (3 ports each: 3N targets) with two jobs: `plain` (no rules) and
`relabeled` (the annotation-driven keep/port/labelmap set, keeping 10 % of pods). For
each page it times the part on the event loop (the snapshot: dict copies) apart from
the part in the render thread (walk, relabel, search, render), and the page's size.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kit

from consumers import heap
from consumers.compactor import folds
from consumers.compactor.jobs import compile_jobs
from consumers.discovery import html, route, rows, source
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource
from sdstream import consume

RULES = [
    {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
     "regex": "true", "action": "keep"},
    {"source_labels": ["__meta_kubernetes_pod_label_app"], "regex": "app-[0-4][0-9]",
     "action": "keep"},  # 50 of 500 apps: 10 % of pods
    {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "metrics",
     "action": "keep"},
    {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
     "regex": "([^:]+)(?::\\d+)?;(\\d+)", "replacement": "$1:$2",
     "target_label": "__address__"},
    {"regex": "__meta_kubernetes_pod_label_(.+)", "action": "labelmap"},
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
]  # fmt: skip


def build(pods: int) -> folds.Fold:
    jobs = [
        ScrapeJob.model_validate({"job_name": "plain", "kubernetes_sd_configs": [{"role": "pod"}]}),
        ScrapeJob.model_validate({"job_name": "relabeled", "relabel_configs": RULES,
                                  "kubernetes_sd_configs": [{"role": "pod"}]}),
    ]  # fmt: skip
    fold = folds.Fold(compile_jobs(jobs))
    for i in range(pods):
        body = kit.with_status(i, namespaces=100)
        key = ObjectKey(f"{body['metadata']['namespace']}/{body['metadata']['name']}")
        fold.apply("c1", Resource.PODS, key, body)
    fold.rebuild()
    heap.settle()  # as the fold does after its catch-up: the state is out of the GC's reach
    return fold


def timed(call: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=50_000)
    pods = parser.parse_args().pods
    kit.say(f"building a fold of {pods} pods")
    fold = build(pods)
    gauge = Gauge("lag", "lag", ["topic", "partition"], registry=CollectorRegistry())
    data = source.FoldSource(fold, lag=gauge, prefix="p", unready=lambda: None)
    pages: dict[str, Callable[[source.Snapshot], bytes]] = {
        "overview": lambda s: html.overview(source.overview(s)),
        **{
            f"{job} {label}": (lambda s, job=job, query=query:
                               html.job_page(rows.select(source.job_targets(s, job), query)))
            for job in ("plain", "relabeled")
            for label, query in (("page 1", rows.Query()),
                                 ("search (no match)", rows.Query("no-such-label")),
                                 ("dropped, page 50", rows.Query(state="dropped", page=50)))
        },
    }  # fmt: skip
    lines = []
    for name, render in pages.items():
        loop_ms, snap = timed(data.snapshot)
        thread_ms, body = timed(lambda render=render, snap=snap: render(snap))  # type: ignore[misc]
        lines.append((name, f"{loop_ms:.1f}", f"{thread_ms:.0f}", f"{len(body) / 1024:.0f}"))  # type: ignore[arg-type]
    print(kit.table(("page", "on the loop (ms)", "in the thread (ms)", "KiB"), lines))
    sys.setswitchinterval(consume.SWITCH_INTERVAL_S)  # as `sdstream consume` runs
    idle, worst = asyncio.run(loop_delays(route.DiscoveryPage(data)))
    print(f"\nWorst event-loop delay (1 ms timer): {idle:.1f} ms idle for 2 s, {worst:.1f} ms"
          " while the relabeled search renders")  # fmt: skip


async def loop_delays(page: route.DiscoveryPage) -> tuple[float, float]:
    idle = asyncio.ensure_future(asyncio.sleep(2))
    baseline = await loop_delay(idle)
    request = page("/discovery/relabeled", query={"q": ["no-such-label"]}, headers={})
    return baseline, await loop_delay(asyncio.ensure_future(request))  # type: ignore[arg-type]


async def loop_delay(running: asyncio.Future[object]) -> float:
    """The longest a 1 ms timer fired late while `running` ran."""
    worst = 0.0
    while not running.done():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, (time.perf_counter() - started) * 1000 - 1)
    return worst


if __name__ == "__main__":
    main()
