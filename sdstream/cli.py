"""`sdstream` command line: up | devstack | produce | consume | render | schema.

Exit status: 0 success, 1 runtime failure, 2 bad usage, input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sdstream import logs, schema_export
from sdstream.devstack import cache, stack
from sdstream.devstack.errors import DevstackError

Handler = Callable[[argparse.Namespace], int]


def _devstack_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser(
        "devstack",
        help="local Kafka + etcd + kube-apiserver for tests and demos",
        description="Fetch, build (cached) and run a real single-node Kafka broker and "
        "etcd + kube-apiserver on loopback, with free ports.",
    )
    dev.add_argument("--cache-dir", type=Path, help="default $SDSTREAM_CACHE or ~/.cache/sdstream")
    dev.add_argument("--run-dir", type=Path, help="default <cache-dir>/run/default")
    verbs = dev.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="build what is missing, start the servers, print where")
    up.add_argument("--kafka-port", type=int, help="fixed broker port (default: a free one)")
    verbs.add_parser("down", help="stop what `up` started and remove its data")
    verbs.add_parser("status", help="what runs where")
    verbs.add_parser("env", help="KUBECONFIG=... and SDSTREAM_KAFKA_BOOTSTRAP=... for a shell")
    verbs.add_parser("build", help="only fetch and build the servers (and promtool)")
    dev.set_defaults(handler=_devstack)


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    root = cache.cache_dir(args.cache_dir)
    return root, args.run_dir or stack.default_run_dir(root)


def _devstack(args: argparse.Namespace) -> int:
    root, run_dir = _dirs(args)
    if args.verb == "build":
        for name, path in stack.build_all(root).items():
            print(f"{name}: {path}")
        return 0
    if args.verb == "up":
        print(stack.describe(stack.up(root, run_dir, kafka_port=args.kafka_port)))
        return 0
    current = stack.load(run_dir)
    if current is None:
        print(f"no devstack in {run_dir}", file=sys.stderr)
        return 1 if args.verb != "down" else 0
    if args.verb == "down":
        stack.down_stack(current)
        cache.say(f"stopped and removed {run_dir}")
    elif args.verb == "status":
        print(stack.describe(current))
        return 0 if all(current.running().values()) else 1
    else:
        print("\n".join(f"export {k}={v}" for k, v in current.env().items()))
    return 0


def _up_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="the whole pipeline on an embedded default (local Kafka + API server)",
        description="Start the devstack and run the pipeline on it until Ctrl-C.",
    )
    up.add_argument("--cache-dir", type=Path)
    up.add_argument("--run-dir", type=Path)
    up.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    from sdstream import up

    root, run_dir = _dirs(args)
    return up.run(root=root, run_dir=run_dir)


def _schema_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schema = sub.add_parser("schema", help="JSON Schema of every wire contract")
    schema.add_argument("verb", choices=["export", "check"])
    schema.add_argument("--dir", type=Path, default=schema_export.default_dir())
    schema.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    if args.verb == "export":
        for path in schema_export.export(args.dir):
            print(f"wrote {path}")
        return 0
    stale = schema_export.stale(args.dir)
    for name in stale:
        print(f"{args.dir / name} differs from its model; run `sdstream schema export`")
    return 1 if stale else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sdstream",
        description="Kubernetes service discovery as a Kafka event stream.",
    )
    top.add_argument("--log-level", default="INFO")
    top.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    sub = top.add_subparsers(dest="command", required=True)
    _up_parser(sub)
    _devstack_parser(sub)
    _schema_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.setup(level=args.log_level, json=args.log_json)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DevstackError as exc:
        print(f"sdstream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
