"""bench/identity_answer: the HTTP SD route's CPU per changed answer to a client without
`Accept-Encoding: gzip` (Prometheus), this checkout against another, in the same run.

    .venv/bin/python bench/identity_answer.py [--base CHECKOUT] [--pods 2333] [--changes 10]
                                              [--rounds 200]

The job of `bench/kafka_latency.py` as it stands mid-run (~2,333 pod groups, one target
each, ~2.5 MiB answer): per round, `--changes` groups change (a new label), the route is
told (`invalidate`), and one identity GET goes through the real `HttpSd` route, its body
taken to the end as the server would write it (a streamed body is inflated as taken). In
one thread, so `time.process_time` is the route's whole CPU: render, the inflate, the
ETag. No socket (`bench/http_server.py` measures the server). Each checkout runs in a
process of its own (`--child`), alternating, the bodies checked to be the same bytes.
Bounded: rounds x changes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def child(root: str, pods: int, changes: int, rounds: int) -> dict[str, Any]:
    import http_server  # bench/http_server.py: pod groups as the role labels them

    sys.path.insert(0, root)  # that checkout's modules (kit put this one's first)
    assert not any(name.startswith("consumers") for name in sys.modules)
    from consumers.sinks import http_sd
    from consumers.sinks.http_sd import HttpSd
    from consumers.sinks.views import TargetView
    from schemas.topics import Source, target_key

    built = http_server.groups(pods)
    view = TargetView()
    for group in built:
        view.apply(target_key(group.job, group.cluster, Source(group.source)), group)
    route = HttpSd(view, ready=lambda: True)
    job = built[0].job

    async def rounds_of() -> tuple[list[float], list[float], str]:
        cpu, wall, digest = [], [], hashlib.sha256()
        for r in range(rounds):
            for i in range(changes):
                old = built[(r * changes + i * 97) % pods]
                new = old.model_copy(update={"labels": {**old.labels, "round": str(r)}})
                key = target_key(new.job, new.cluster, Source(new.source))
                route.invalidate(view.apply(key, new))
            started, used = time.perf_counter(), time.process_time()
            reply = await route(f"/http_sd/{job}", query={}, headers={})
            size = sum(len(part) for part in reply.parts)
            cpu.append(time.process_time() - used)
            wall.append(time.perf_counter() - started)
            if r % 50 == 0:
                digest.update(reply.body)
            assert size == len(reply.body)
        return cpu, wall, digest.hexdigest()

    cpu, wall, digest = asyncio.run(rounds_of())
    assert http_sd.__file__.startswith(root), http_sd.__file__
    return {"cpu": cpu, "wall": wall, "digest": digest, "size": len(view.document(job))}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path)
    parser.add_argument("--pods", type=int, default=2333)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.pods, args.changes, args.rounds)))
        return 0
    roots = [("this checkout", HERE.parents[1])]
    if args.base:
        roots.insert(0, ("base", args.base.resolve()))
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {' '.join(load)}")
    print("| code | answer MiB | CPU ms p50 | p99 | wall ms p50 | p99 |\n|---|---|---|---|---|---|")
    digests = set()
    for name, root in roots * 2:  # alternating, twice
        out = subprocess.run(
            [sys.executable, str(HERE), "--child", str(root), "--pods", str(args.pods),
             "--changes", str(args.changes), "--rounds", str(args.rounds)],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        got = json.loads(out.stdout.strip().splitlines()[-1])
        digests.add(got["digest"])
        print(f"| {name} ({root}) | {got['size'] / 2**20:.2f} | {pct(got['cpu'], 0.5):.2f} | "
              f"{pct(got['cpu'], 0.99):.2f} | {pct(got['wall'], 0.5):.2f} | "
              f"{pct(got['wall'], 0.99):.2f} |", flush=True)  # fmt: skip
    assert len(digests) == 1, "the checkouts served different bytes"
    return 0


if __name__ == "__main__":
    sys.exit(main())
