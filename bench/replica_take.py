"""bench/replica_take: the sinks' per-group CPU in-process, no Kafka: what a `--mode serve`
replica spends taking the targets topic's records (`TargetView.apply_records`), and what
one process spends holding the fold's own writes (`TargetView.put`), with this code and
another checkout's, interleaved in one run (issue 19 goal 1).

    .venv/bin/python bench/replica_take.py [--pods 10000] [--slices 100] [--per-slice 100]
                                           [--base CHECKOUT] [--rounds 3]

The records are bench/consume.py's workload (kit's objects, the fold's own code), built
once here; each round runs each code in a fresh process, which takes every record into a
fresh view, then puts every group into another, then times the stages of taking a record
alone (parse, take, render, deflate, digest). CPU seconds (process time), the best of the
rounds. Every run also prints a digest of every HTTP SD fragment its view holds: the codes
must agree (the same bytes served).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def build(pods: int, slices: int, per_slice: int) -> list[tuple[bytes, bytes]]:
    """The workload's records (key, value), as the fold encodes them."""
    sys.path.insert(0, str(HERE))
    import kit
    import topic_bytes

    from schemas import targets

    groups = topic_bytes.build(kit, pods=pods, slices=slices, per_slice=per_slice)
    return [(key.encode(), targets.encode(group)) for key, group in groups]


def child(root: str, path: str) -> dict[str, Any]:
    """One code's figures on the records in `path` (imports from `root`)."""
    sys.path.insert(0, root)
    from consumers.sinks import deflated, sd_json, views
    from schemas import targets
    from schemas.topics import TargetKey

    records: list[tuple[bytes, bytes]] = pickle.loads(Path(path).read_bytes())  # noqa: S301
    raws = [views.RawRecord(k, v) for k, v in records]
    out: dict[str, Any] = {}

    def timed(name: str, work: Any) -> Any:
        started = time.process_time()
        got = work()
        out[name] = time.process_time() - started
        return got

    view = views.TargetView()
    timed("apply_records (replica)", lambda: view.apply_records(raws))
    fragments = hashlib.blake2b(digest_size=16)
    for key in view:
        held = view.held_at(key)
        assert held is not None
        fragments.update(key.encode() + b"\0" + held.fragment + b"\0")
    out["fragments digest"] = fragments.hexdigest()
    models = [(TargetKey(k.decode()), targets.decode(v), v) for k, v in records]
    put = views.TargetView()
    timed("put (one process)", lambda: [put.put(k, g, v) for k, g, v in models])
    parsed = timed("  parse (orjson)", lambda: [views.orjson.loads(v) for _, v in records])
    del parsed
    taken = timed("  take (parse + checks)", lambda: [views.take(k, v)[1] for k, v in records])
    rendered = timed(
        "  render fragments", lambda: [sd_json.http_sd_fragment(t.group) for t in taken]
    )
    timed("  deflate + CRC", lambda: [deflated.piece(f) for f in rendered])
    timed("  digest", lambda: [targets.digest(v) for _, v in records])
    out["targets"] = sum(len(t.group.targets) for t in taken)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--per-slice", type=int, default=100)
    parser.add_argument("--base", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    records = build(args.pods, args.slices, args.per_slice)
    codes = {"this code": str(HERE.parent)}
    if args.base:
        codes = {"base": str(args.base.resolve()), **codes}
    best: dict[str, dict[str, Any]] = {}
    with tempfile.NamedTemporaryFile(suffix=".pickle") as file:
        file.write(pickle.dumps(records))
        file.flush()
        for _ in range(args.rounds):
            for name, root in codes.items():
                argv = [sys.executable, __file__, "--child", root, file.name]
                got = json.loads(subprocess.run(argv, check=True, capture_output=True).stdout)
                kept = best.setdefault(name, got)
                for stage, value in got.items():
                    if isinstance(value, float):
                        kept[stage] = min(kept[stage], value)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"{len(records)} records, {best['this code']['targets']} targets; "
          f"{time.strftime('%H:%M', time.gmtime())} UTC, load {load}\n")  # fmt: skip
    names = list(codes)
    print(f"| CPU s (best of {args.rounds}) | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for stage, value in best["this code"].items():
        if isinstance(value, float):
            print(f"| {stage} | " + " | ".join(f"{best[n][stage]:.3f}" for n in names) + " |")
    digests = {best[n]["fragments digest"] for n in names}
    print(f"\nfragments held: {'the same' if len(digests) == 1 else 'DIFFERENT'} ({digests})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
