"""bench/heap: where the one-process consumer's resident memory goes (issue 19 goal 2).

    .venv/bin/python bench/heap.py [--pods 50000] [--slices 500] [--per-slice 100]
                                   [--trace FRAMES] [--small]

bench/lean.py's structure walk left ~2.8 KiB per target of a one-process consumer's RSS
unattributed. This starts its own devstack, writes bench/consume.py's workload and runs
`sdstream consume` (one process, new targets topic) in a child that, once the sinks hold
every target, prints: RSS and peak; glibc's view of its heap (`mallinfo2`: bytes in use,
bytes free but kept, mmapped); Python's object allocator (blocks in use vs arenas held,
from `sys._debugmallocstats`); with `--trace N`, tracemalloc's biggest holders grouped by
N frames of traceback and its peak; then RSS again after `malloc_trim(0)` (what glibc
gives back is free heap kept, i.e. fragmentation or slack, not live data).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import io
import json
import os
import re
import signal
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import consume as bench_consume  # bench/consume.py: the same workload
import kit  # bench/kit.py; it puts the repository root on sys.path
import lean  # bench/lean.py: settings, capture, held_all

from sdstream import consume


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]  # fmt: skip


LIBC = ctypes.CDLL("libc.so.6")
LIBC.mallinfo2.restype = MallInfo2
MIB = 2**20


def status_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith(field)).split()[1]) / 1024


def glibc() -> dict[str, float]:
    info = LIBC.mallinfo2()
    return {"heap (arena) MiB": info.arena / MIB, "in use MiB": info.uordblks / MIB,
            "free kept MiB": info.fordblks / MIB, "mmapped MiB": info.hblkhd / MIB}  # fmt: skip


def pymalloc() -> dict[str, float]:
    """Bytes in pymalloc blocks in use vs bytes of its arenas, from _debugmallocstats."""
    buffer = io.StringIO()
    saved, fd = os.dup(2), os.open(os.devnull, os.O_RDWR)
    with contextlib.redirect_stderr(buffer):
        read, write = os.pipe()
        os.dup2(write, 2)
        sys._debugmallocstats()
        os.dup2(saved, 2)
        os.close(write)
        text = os.read(read, 1 << 20).decode()
        os.close(read)
    os.close(fd)
    os.close(saved)

    def number(label: str) -> float:
        found = re.search(rf"^# {re.escape(label)}\s*=\s*([\d,]+)", text, re.M)
        return int(found.group(1).replace(",", "")) / MIB if found else -1

    return {"arenas allocated MiB": number("bytes in allocated blocks"),
            "arenas held MiB": number("bytes in available blocks") + number(
                "bytes in allocated blocks"),
            "arena count": number("arenas allocated current") * MIB}  # fmt: skip


def traced(frames: int, top: int = 25) -> list[tuple[float, int, str]]:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    rows = []
    for stat in snapshot.statistics("traceback")[:top]:
        where = " <- ".join(
            f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
            for f in list(stat.traceback)[:frames]
        )
        rows.append((stat.size / MIB, stat.count, where))
    return rows


async def held_all() -> None:
    """Until the fold has published (ready) and the sinks hold every target it built."""
    while True:
        loop, sinks = lean.BUILT.get("loop"), lean.BUILT.get("sinks")
        if loop is not None and sinks is not None and loop.ready():
            built = sum(targets for _, targets in loop.fold.totals.values())
            if sum(sinks.view.counts(job)[1] for job in lean.JOBS) == built:
                return
        await asyncio.sleep(0.05)


async def child(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["trace"]:
        tracemalloc.start(payload["trace"])
    lean.capture()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(consume.serve(lean.settings(payload)))
    await held_all()
    out: dict[str, Any] = {"rss MiB": status_mb("VmRSS:"), "peak MiB": status_mb("VmHWM:"),
                           "glibc": glibc(), "pymalloc": pymalloc()}  # fmt: skip
    if payload["trace"]:
        current, peak = tracemalloc.get_traced_memory()
        out["traced MiB"], out["traced peak MiB"] = current / MIB, peak / MIB
        out["top"] = traced(payload["trace"])
    LIBC.malloc_trim(0)
    out["rss after malloc_trim MiB"] = status_mb("VmRSS:")
    out["glibc after trim"] = glibc()
    # Cyclic garbage frozen by consumers.heap.settle (gc.freeze): collectable only now.
    out["frozen objects"] = gc.get_freeze_count()
    gc.unfreeze()
    out["cyclic garbage collected"] = gc.collect()
    LIBC.malloc_trim(0)
    out["rss after unfreeze + collect + trim MiB"] = status_mb("VmRSS:")
    if payload["trace"]:
        out["traced after collect MiB"] = tracemalloc.get_traced_memory()[0] / MIB
    print(json.dumps(out), flush=True)
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--small", action="store_true", help="2,000 pods, 20 slices")
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kit.report(asyncio.run(child(json.loads(args.child[1]))))
        return 0
    if args.small:
        args.pods, args.slices = 2_000, 20
    print(f"machine: {kit.machine()}", flush=True)
    with kit.devstack() as stack:
        asyncio.run(bench_consume.write_all(stack.kafka_bootstrap, pods=args.pods,
                                            slices=args.slices, per_slice=args.per_slice,
                                            ns=10))  # fmt: skip
        payload = {"bootstrap": stack.kafka_bootstrap, "mode": "all", "topic": "heap.targets",
                   "trace": args.trace}  # fmt: skip
        proc = kit.spawn(str(Path(__file__)), "consume", payload)
        try:
            assert proc.stdout is not None
            got = json.loads(proc.stdout.readline())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=120)
    top = got.pop("top", [])
    print(json.dumps(got, indent=1))
    for size, count, where in top:
        print(f"{size:8.1f} MiB {count:9d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
