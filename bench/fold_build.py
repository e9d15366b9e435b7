"""bench/fold_build: the fold's full build in-process, no Kafka: CPU seconds per stage.

    .venv/bin/python bench/fold_build.py [--pods 50000] [--slices 500] [--per-slice 100]
                                         [--repeat 3] [--root CHECKOUT] [--profile FILE]

bench/lean.py's workload (its jobs `pods` and `slices`), each object as the record value
the producer writes (`kit.event_value`), loaded into a `Fold` as the Kafka loop loads a
catch-up (`state.Encoded`), then `mark_all` + `rebuild` under `heap.paused()` as the
full sync runs it, then every group's record value (`Packed.value`), as the full sync
writes it. Prints the CPU seconds of each stage (best of `--repeat`, each on a fresh
fold) and a digest over every (key, record value) pair: two codes that print the same
digest built the same bytes. `--root` runs another checkout's code (for a same-run pair
against main); this script and `bench/kit.py` come from this checkout either way.

Unlike bench/lean.py this measures only the fold's build (about half of a one-process
start's CPU), without the sinks, the Kafka client or the machine's other load on the
same 2 cores mattering much: CPU seconds of one process, steady to a few per cent.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib
import sys
import time
import types
from pathlib import Path
from typing import Any

import orjson


def load_code(root: Path | None) -> Any:
    """Import the fold's modules from `root` (this checkout when None)."""
    here = Path(__file__).resolve().parent
    if root is not None:
        sys.path.insert(0, str(root.resolve()))
    sys.path.insert(1 if root is not None else 0, str(here))
    from consumers import heap
    from consumers.compactor import folds, jobs, state
    from schemas.sd_config import ScrapeJob
    from schemas.topics import Resource, object_key

    kit = importlib.import_module("kit")  # last: it puts this checkout first on sys.path

    return types.SimpleNamespace(
        kit=kit,
        heap=heap,
        folds=folds,
        jobs=jobs,
        state=state,
        ScrapeJob=ScrapeJob,
        Resource=Resource,
        object_key=object_key,
    )


def workload(args: argparse.Namespace, code: Any) -> list[tuple[Any, str, bytes]]:
    kit, resource, object_key = code.kit, code.Resource, code.object_key
    ns = max(1, args.pods // 500)  # bench/consume.py's namespaces
    made = [
        *((resource.PODS, kit.with_status(i, namespaces=ns)) for i in range(args.pods)),
        *((resource.SERVICES, kit.service(j, namespaces=ns)) for j in range(args.slices)),
        *((resource.ENDPOINTSLICES, kit.endpointslice(j, per_slice=args.per_slice,
                                                       pods=args.pods, namespaces=ns))
          for j in range(args.slices)),
    ]  # fmt: skip
    out = []
    for res, obj in made:
        m = obj["metadata"]
        m.setdefault("resourceVersion", "1")
        value = kit.event_value("bench", res, obj)
        out.append((res, object_key(m.get("namespace"), m["name"]), value))
    return out


def run_once(code: Any, records: list[tuple[Any, str, bytes]], profile: cProfile.Profile | None
             ) -> tuple[dict[str, float], str, int]:  # fmt: skip
    heap, folds, jobs, state = code.heap, code.folds, code.jobs, code.state

    views = jobs.compile_jobs(
        code.ScrapeJob.model_validate({"job_name": job, "kubernetes_sd_configs": [{"role": role}]})
        for job, role in {"pods": "pod", "slices": "endpointslice"}.items()
    )
    fold = folds.Fold(views)
    times: dict[str, float] = {}
    t = time.process_time()
    for res, key, value in records:
        obj = orjson.loads(value)["object"]  # what records.decode parses
        fold.load("bench", res, key, state.Encoded.of(obj, value))
    heap.settle()
    times["load (catch-up)"] = time.process_time() - t
    if profile is not None:
        profile.enable()
    t = time.process_time()
    with heap.paused():
        fold.mark_all()
        changes, errors = fold.rebuild()
    times["build (mark_all + rebuild, settle)"] = time.process_time() - t
    if profile is not None:
        profile.disable()
    assert not errors, errors[:3]
    t = time.process_time()
    digest = hashlib.blake2b(digest_size=16)
    held = fold.groups.packed()
    for key in sorted(held):
        digest.update(key.encode())
        digest.update(held[key].value())
    times["record values (full sync's writes)"] = time.process_time() - t
    targets = sum(t for _, t in fold.totals.values())
    del fold, changes
    gc.collect()
    return times, digest.hexdigest(), targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50000)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", type=Path, help="another checkout's code (e.g. main)")
    parser.add_argument("--profile", type=Path, help="cProfile (CPU clock) of the build")
    args = parser.parse_args()
    code = load_code(args.root)
    records = workload(args, code)
    best: dict[str, float] = {}
    for n in range(args.repeat):
        profile = cProfile.Profile(time.process_time) if args.profile and n == 0 else None
        times, digest, targets = run_once(code, records, profile)
        if profile is not None:
            profile.dump_stats(str(args.profile))
        best = {k: min(v, best.get(k, v)) for k, v in times.items()}
    print(f"code: {Path(code.folds.__file__).parents[2]}; {targets} targets; digest {digest}")
    for stage, seconds in best.items():
        print(f"  {stage}: {seconds:.2f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
