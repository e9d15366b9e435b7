"""bench/render: Prometheus target groups for 50k pods and 5k EndpointSlices x 100 endpoints,
against the floor of just parsing the same JSON with orjson, in the same run.

    .venv/bin/python bench/render.py [--pods 50000] [--slices 5000] [--per-slice 100]

Each measurement runs in a fresh process so its peak RSS is its own. Prints a Markdown
table for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kit

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).resolve().parents[1]


def pod(i: int, nodes: int) -> dict[str, Any]:
    ns = f"ns-{i % 100}"
    return {
        "kind": "Pod",
        "metadata": {"name": f"app-{i}", "namespace": ns, "uid": f"uid-{i}",
                     "resourceVersion": str(i), "labels": {"app": f"app-{i % 500}",
                     "app.kubernetes.io/name": "bench", "pod-template-hash": "abc123"},
                     "annotations": {"prometheus.io/scrape": "true"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": f"app-{i % 500}-abc",
                                          "controller": True, "apiVersion": "apps/v1",
                                          "uid": "rs"}]},
        "spec": {"nodeName": f"node-{i % nodes}", "containers": [
            {"name": "app", "image": "example/app:1", "ports": [
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "example/side:1"}]},
        "status": {"phase": "Running", "podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                   "hostIP": "10.250.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "containerID": f"containerd://{i:x}"}]},
    }  # fmt: skip


def endpointslice(i: int, per_slice: int, pods: int) -> dict[str, Any]:
    ns = f"ns-{i % 100}"
    return {
        "kind": "EndpointSlice",
        "metadata": {"name": f"svc-{i}-x", "namespace": ns, "resourceVersion": str(i),
                     "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.200.{(i * per_slice + j) >> 8 & 255}.{j}"],
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "nodeName": f"node-{j % 50}",
                       "targetRef": {"kind": "Pod", "namespace": ns,
                                     "name": f"app-{(i * per_slice + j) % pods}"}}
                      for j in range(per_slice)],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }  # fmt: skip


def generate(path: Path, *, pods: int, slices: int, per_slice: int) -> None:
    nodes = [{"kind": "Node", "metadata": {"name": f"node-{n}"},
              "status": {"addresses": [{"type": "InternalIP", "address": f"10.250.0.{n}"}]}}
             for n in range(50)]  # fmt: skip
    items = nodes + [pod(i, 50) for i in range(pods)]
    items += [endpointslice(i, per_slice, pods) for i in range(slices)]
    path.write_bytes(orjson.dumps({"kind": "List", "items": items}))


def measure_parse(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    orjson.loads(path.read_bytes())
    return {"seconds": time.perf_counter() - started}


def measure_render(path: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from consumers import render
    from consumers.compactor import jobs
    from schemas.sd_config import ScrapeJob

    views = [jobs.compile_job(ScrapeJob.model_validate(
        {"job_name": role, "kubernetes_sd_configs": [{"role": role}]}))[0]
        for role in ("pod", "endpointslice")]  # fmt: skip
    started = time.perf_counter()
    loaded = render.load(orjson.loads(path.read_bytes())["items"])
    groups = targets = 0
    for view in views:
        built = render.render(loaded.objects, view)
        groups += len(built)
        targets += sum(len(g.targets) for g in built)
    return {"seconds": time.perf_counter() - started, "groups": groups, "targets": targets}


def child(kind: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--slices", type=int, default=5_000)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path = args.child
        result = (measure_parse if kind == "parse" else measure_render)(Path(path))
        # VmHWM, not ru_maxrss: a child's ru_maxrss includes its forking parent's peak,
        # and the parent built the whole object list.
        result["max_rss_mb"] = kit.hwm_mb()
        print(json.dumps(result))
        return 0
    OUT.mkdir(exist_ok=True)
    path = OUT / "render-objects.json"
    print(f"generating {args.pods} pods, {args.slices} slices x {args.per_slice}...",
          file=sys.stderr)  # fmt: skip
    generate(path, pods=args.pods, slices=args.slices, per_slice=args.per_slice)
    size = path.stat().st_size / 2**20
    parse, built = child("parse", path), child("render", path)
    ratio = built["seconds"] / parse["seconds"]
    print(f"input: {size:.0f} MiB JSON; {int(built['groups'])} groups, "
          f"{int(built['targets'])} targets\n")  # fmt: skip
    print("| step | seconds | groups/s | peak RSS MiB |\n|---|---|---|---|")
    print(f"| orjson.loads only (floor) | {parse['seconds']:.2f} | - | {parse['max_rss_mb']:.0f} |")
    print(f"| parse + index + build (sdstream render) | {built['seconds']:.2f} | "
          f"{built['groups'] / built['seconds']:.0f} | {built['max_rss_mb']:.0f} |")  # fmt: skip
    print(f"\nrender / parse floor: {ratio:.2f}x (goal: within 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
