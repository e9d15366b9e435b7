"""bench/relabel: what relabel_configs cost the fold, and what they save the scrapers.

    .venv/bin/python bench/relabel.py [--pods 50000] [--small]

In-process, no servers: 50k realistic pods (bench/render.py's), 10 % annotated
`prometheus.io/scrape: "true"`, folded by `consumers.compactor.fold.Fold` as the consumer
does, for one pod job built three ways in the same run:

- plain: no relabel_configs (today's output: every target, every __meta_* label);
- typical: the annotation-driven rules (keep scrape=true, path and port from annotations,
  labelmap of pod labels, namespace and pod) = 10 % of pods kept;
- typical without keep: the same rules minus the keep rule (every pod kept).

Figures: build time (mark_all + rebuild of every group, best of 3), relabel cost per
target (typical minus plain, over the plain job's targets), served HTTP SD bytes, and
the memory the fold's groups hold (tracemalloc, separate pass). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kit
import render as render_bench

from consumers.compactor import fold
from consumers.compactor.jobs import compile_job
from consumers.sinks import sd_json
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource

KEEP = {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "action": "keep", "regex": "true"}  # fmt: skip
REST = [
    {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
     "action": "replace", "target_label": "__metrics_path__", "regex": "(.+)"},
    {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
     "action": "replace", "regex": "([^:]+)(?::\\d+)?;(\\d+)", "replacement": "$1:$2",
     "target_label": "__address__"},
    {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
]  # fmt: skip
JOBS = {"plain": [], "typical": [KEEP, *REST], "typical without keep": REST}


def pods(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        obj = render_bench.pod(i, nodes=50)
        obj["metadata"]["annotations"] = {
            "prometheus.io/scrape": "true" if i % 10 == 0 else "false",
            "prometheus.io/port": "9090", "prometheus.io/path": "/metrics",
        }  # fmt: skip
        out.append(obj)
    return out


def folded(objects: list[dict[str, Any]], rules: list[dict[str, Any]]) -> fold.Fold:
    job = ScrapeJob.model_validate(
        {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}], "relabel_configs": rules}
    )
    f = fold.Fold(compile_job(job))
    for obj in objects:
        meta = obj["metadata"]
        f.load("c1", Resource.PODS, ObjectKey(f"{meta['namespace']}/{meta['name']}"), obj)
    return f


def build_seconds(f: fold.Fold) -> float:
    best = float("inf")
    for _ in range(3):
        f.groups.clear()
        f.totals.clear()
        for rule in f.views[0].rules:
            rule._cache.clear()  # each pass starts cold
        f.mark_all()
        gc.collect()
        start = time.perf_counter()
        _, errors = f.rebuild()
        best = min(best, time.perf_counter() - start)
        assert not errors, errors[:3]
    return best


def served_bytes(f: fold.Fold) -> int:
    fragments = [sd_json.http_sd_fragment(g) for g in f.groups.values()]
    return sum(len(part) for part in sd_json.http_sd_document(fragments))


def held_bytes(objects: list[dict[str, Any]], rules: list[dict[str, Any]]) -> int:
    f = folded(objects, rules)
    f.mark_all()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    f.rebuild()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--small", action="store_true", help="5k pods")
    args = parser.parse_args()
    count = 5_000 if args.small else args.pods
    objects = pods(count)
    kit.say(f"{count} pods; {kit.machine()}")
    rows, plain_s, plain_targets = [], 0.0, 0
    for name, rules in JOBS.items():
        f = folded(objects, rules)
        seconds = build_seconds(f)
        groups, kept = f.totals.get("pods", (0, 0))
        if name == "plain":
            plain_s, plain_targets = seconds, kept
        extra = "" if name == "plain" else f"+{(seconds / plain_s - 1) * 100:.0f} %"
        per_target = (seconds - plain_s) / plain_targets * 1e6 if plain_targets else 0.0
        rows.append((name, groups, kept, f"{seconds:.2f} s", extra,
                     f"{per_target:.1f} µs" if name != "plain" else "-",
                     f"{served_bytes(f) / 2**20:.1f} MiB",
                     f"{held_bytes(objects, rules) / 2**20:.1f} MiB"))  # fmt: skip
    print(kit.table(["job", "groups", "targets", "build (best of 3)", "vs plain",
                     "relabel per discovered target", "served HTTP SD", "groups held"],
                    rows))  # fmt: skip


if __name__ == "__main__":
    main()
