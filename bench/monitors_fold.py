"""bench/monitors_fold: the fold alone (no Kafka, no HTTP) with PodMonitor jobs, in process.

    .venv/bin/python bench/monitors_fold.py [--pods 10000] [--monitors 40] [--profile]

Where bench/monitors.py measures the whole consumer, this isolates the fold's share: the
same pods and PodMonitors as there (monitor m selects `app: app-m`, port `metrics`), the
pods stored as record values like the Kafka loop stores them, then: the first full build
(`mark_all` + `rebuild`), one monitor edit (view removed and added, `rebuild`), wall time
and tracemalloc's peak for each; `--profile` prints cProfile's top functions of the full
build. A quick, repeatable way to see what the fold spends on monitor jobs.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import tracemalloc
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import monitors as bench_monitors
import orjson

from consumers.compactor import folds, monitor_views, state
from consumers.monitors import select
from schemas.monitors import MonitorsSettings
from schemas.topics import ObjectKey, Resource

CLUSTER = "bench"


def stored(body: dict[str, Any]) -> state.Encoded:
    return state.Encoded.of(body, orjson.dumps({"object": body}))


def views(monitors: int, namespaces: int, rev: int = 0) -> list[Any]:
    settings = MonitorsSettings.model_validate({})
    bodies = [bench_monitors.monitor(m, namespaces=namespaces, rev=rev) for m in range(monitors)]
    return [
        monitor_views.view_of(job)
        for body in bodies
        for job in select.monitor_jobs(settings, CLUSTER, Resource.PODMONITORS, body)
    ]


def timed(label: str, run: Any) -> Any:
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    result = run()
    took = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - before
    print(f"{label}: {took:.2f} s, tracemalloc peak +{peak / 2**20:.0f} MiB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--monitors", type=int, default=40)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    tracemalloc.start()
    fold = folds.Fold(())
    for i in range(args.pods):
        body = kit.with_status(i, namespaces=args.namespaces)
        m = body["metadata"]
        fold.load(CLUSTER, Resource.PODS, ObjectKey(f"{m['namespace']}/{m['name']}"), stored(body))
    positions = [fold.add_view(v) for v in views(args.monitors, args.namespaces)]

    def build() -> Any:
        fold.mark_all()
        return fold.rebuild()

    if args.profile:
        profiler = cProfile.Profile()
        changes, _ = timed("full build", lambda: profiler.runcall(build))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
    else:
        changes, _ = timed("full build", build)
    held = tracemalloc.get_traced_memory()[0] / 2**20
    targets = sum(len(g.targets) for g in fold.groups.values())
    print(
        f"groups {len(fold.groups)}, targets {targets}, discovered {len(fold.discovered)}, "
        f"left_out {len(fold.left_out.by_key)}, deps {len(fold.deps.reads)}, held {held:.0f} MiB"
    )
    edited = views(1, args.namespaces, rev=1)[0]

    def edit() -> Any:
        fold.remove_view(positions[0])
        fold.add_view(edited)
        return fold.rebuild()

    changes, _ = timed("one monitor edited", edit)
    print(f"edit changes: {len(changes)}")


if __name__ == "__main__":
    main()
