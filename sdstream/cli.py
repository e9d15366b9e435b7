"""`sdstream` command line: up | devstack | produce | consume | render | schema.

Exit status: 0 success, 1 runtime failure, 2 bad usage, input or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from schemas.config import KafkaSettings
from schemas.topics import check_name
from sdstream import logs, schema_export
from sdstream.devstack import cache, secure, stack
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
    up.add_argument("--secure", action="store_true",
                    help="also SSL (mTLS), SASL_SSL and SASL_PLAINTEXT listeners, principals "
                    "and ACLs; prints the client settings files")  # fmt: skip
    up.add_argument("--secure-clusters", type=_names, default=secure.DEFAULT_CLUSTERS,
                    metavar="A,B", help="clusters with a producer principal (producer-<cluster>) "
                    "and ACLs for <prefix>.<cluster>.* (default: a,b)")  # fmt: skip
    up.add_argument("--topic-prefix", type=_prefix,
                    default=KafkaSettings.model_fields["topic_prefix"].default,
                    help="topic prefix the ACLs of --secure are granted for "
                    "(default: %(default)s)")  # fmt: skip
    verbs.add_parser("down", help="stop what `up` started and remove its data")
    verbs.add_parser("status", help="what runs where")
    verbs.add_parser("env", help="KUBECONFIG=... and SDSTREAM_KAFKA_BOOTSTRAP=... for a shell")
    verbs.add_parser("build", help="only fetch and build the servers (and promtool)")
    dev.set_defaults(handler=_devstack)


def _names(value: str) -> tuple[str, ...]:
    """--secure-clusters: comma-separated cluster names, as topic names take them."""
    try:
        names = tuple(check_name("cluster", part.strip()) for part in value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def _prefix(value: str) -> str:
    try:
        return check_name("topic prefix", value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        return _devstack_up(args, root, run_dir)
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


def _devstack_up(args: argparse.Namespace, root: Path, run_dir: Path) -> int:
    from sdstream.devstack import kafka_acls  # aiokafka only when granting

    clusters: tuple[str, ...] = args.secure_clusters
    started = stack.up(root, run_dir, kafka_port=args.kafka_port, secure=args.secure,
                       secure_clusters=clusters)  # fmt: skip
    if args.secure:
        try:
            asyncio.run(kafka_acls.grant(started, prefix=args.topic_prefix, clusters=clusters))
        except BaseException:
            stack.down_stack(started, remove=False)
            raise
        cache.say(f"granted ACLs for topics {args.topic_prefix}.* to "
                  f"{', '.join(secure.principals(clusters))}")  # fmt: skip
    print(stack.describe(started))
    return 0


def _up_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="the whole pipeline on an embedded default (local Kafka + API server + demo)",
        description="Start the devstack (real Kafka, etcd + kube-apiserver per cluster), "
        "write a demo workload, run a producer per cluster and a consumer with example jobs "
        "for all six roles, serve HTTP SD and file SD, and print where everything is. "
        "Ctrl-C stops it all.",
    )
    up.add_argument("--cache-dir", type=Path, help="default $SDSTREAM_CACHE or ~/.cache/sdstream")
    up.add_argument("--run-dir", type=Path, help="default <cache-dir>/run/up")
    up.add_argument("--clusters", type=int, default=1, help="API servers, one producer each")
    up.add_argument("--churn", type=float, default=0.0, metavar="RATE",
                    help="changes per second to the demo workload (default: none)")  # fmt: skip
    up.add_argument("--http-port", type=int, default=8081, help="HTTP SD, /metrics, /readyz")
    up.add_argument("--kafka", help="use this Kafka instead of starting one (needs --kubeconfig)")
    up.add_argument(
        "--kubeconfig", type=Path, action="append", default=[],
        help="use this cluster instead of starting one (repeatable; no demo)",
    )  # fmt: skip
    up.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    from sdstream import up

    if bool(args.kafka) != bool(args.kubeconfig):
        print("sdstream up: --kafka and --kubeconfig go together", file=sys.stderr)
        return 2
    root = cache.cache_dir(args.cache_dir)
    options = up.Options(
        root=root, run_dir=args.run_dir or root / "run" / "up", clusters=args.clusters,
        churn=args.churn, http_port=args.http_port, kafka=args.kafka,
        kubeconfigs=tuple(args.kubeconfig),
    )  # fmt: skip
    return up.run(options)


def _render_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = sub.add_parser(
        "render",
        help="print the target groups Prometheus would discover for a snapshot of objects",
        description="Apply one kubernetes_sd_configs entry to Kubernetes objects (a "
        "`kubectl get -o json` List, a JSON array, or - for stdin) and print the target "
        "groups Prometheus's kubernetes_sd would produce; or, with --job, apply a whole "
        "scrape_configs entry, relabel_configs included, and print the final targets "
        "(docs/relabeling.md). Exit 2 on bad input.",
    )
    given = render.add_mutually_exclusive_group(required=True)
    given.add_argument("--config", type=Path, help="kubernetes_sd_configs entry")
    given.add_argument(
        "--job", type=Path, help="scrape_configs entry: job_name, kubernetes_sd_configs, "
        "relabel_configs (default format: http_sd)",
    )  # fmt: skip
    render.add_argument("--own-namespace", help="namespace for namespaces.own_namespace")
    render.add_argument("--format", choices=["native", "http_sd"])
    render.add_argument("objects", help="JSON file of objects, or - for stdin")
    render.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    from sdstream import render

    if args.job is not None:
        return render.run_job(
            job=args.job, objects=args.objects, own_namespace=args.own_namespace,
            fmt=args.format or "http_sd",
        )  # fmt: skip
    return render.run(
        config=args.config, objects=args.objects, own_namespace=args.own_namespace,
        fmt=args.format or "native",
    )  # fmt: skip


def _flag_groups(**groups: dict[str, object]) -> dict[str, dict[str, object]]:
    """Flags for nested settings groups, keeping only those given: a group absent here is
    left to the environment and the config file, field by field."""
    given = {
        name: {k: v for k, v in values.items() if v is not None} for name, values in groups.items()
    }
    return {name: values for name, values in given.items() if values}


def _web_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.config.file", type=Path, dest="web_config_file", metavar="FILE",
        help="Prometheus web configuration file: TLS and basic auth for the HTTP server "
        "(SDSTREAM_HTTP_WEB_CONFIG_FILE)",
    )  # fmt: skip


def _produce_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    produce = sub.add_parser(
        "produce",
        help="watch one cluster's API server into compacted Kafka object topics",
        description="List and watch pods, services, endpoints, endpointslices, ingresses, "
        "nodes, namespaces, replicasets and jobs, and publish them to "
        "<prefix>.<cluster>.<resource>, keyed namespace/name, with tombstones for deletes. "
        "Settings: flags > SDSTREAM_* variables > the config file.",
    )
    produce.add_argument("--cluster", help="cluster name, part of every topic (SDSTREAM_CLUSTER)")
    produce.add_argument("--config", type=Path, dest="config_file", help="YAML settings file")
    produce.add_argument("--kubeconfig", type=Path, help="default: in-cluster service account")
    produce.add_argument("--context", help="kubeconfig context")
    produce.add_argument("--bootstrap", help="Kafka bootstrap servers (SDSTREAM_KAFKA_BOOTSTRAP)")
    produce.add_argument("--topic-prefix", help="default sdstream")
    produce.add_argument("--http-port", type=int, help="/metrics, /healthz, /readyz")
    _web_config_flag(produce)
    produce.set_defaults(handler=_produce)


def _produce(args: argparse.Namespace) -> int:
    from sdstream import produce, settings

    overrides = _flag_groups(
        kube={"kubeconfig": args.kubeconfig, "context": args.context},
        kafka={"bootstrap": args.bootstrap, "topic_prefix": args.topic_prefix},
        http={"port": args.http_port, "web_config_file": args.web_config_file},
    )
    try:
        loaded = settings.load(
            settings.ProducerAppSettings,
            config_file=args.config_file,
            cluster=args.cluster,
            **overrides,
        )
    except settings.SettingsError as exc:
        print(f"sdstream produce: {exc}", file=sys.stderr)
        return 2
    return produce.main(loaded)


def _consume_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    consume = sub.add_parser(
        "consume",
        help="fold object topics into target groups; serve HTTP SD and file SD",
        description="Read <prefix>.<cluster>.<resource> topics, build the target groups of "
        "the jobs in the config file (Prometheus scrape_configs with kubernetes_sd_configs), "
        "publish them to <prefix>.targets (or the config's targets_topic), and serve them "
        "over HTTP SD (/http_sd/<job>) and "
        "as file SD files. Settings: flags > SDSTREAM_* variables > the config file.",
    )
    consume.add_argument("--config", type=Path, help="YAML: settings and scrape_configs")
    consume.add_argument("--bootstrap", help="Kafka bootstrap servers (SDSTREAM_KAFKA_BOOTSTRAP)")
    consume.add_argument("--mode", choices=["all", "fold", "serve"])
    consume.add_argument("--http-port", type=int)
    consume.add_argument("--file-sd-dir", type=Path)
    _web_config_flag(consume)
    consume.set_defaults(handler=_consume)


def _consume(args: argparse.Namespace) -> int:
    from sdstream import consume

    overrides: dict[str, object] = {"mode": args.mode, "file_sd_dir": args.file_sd_dir}
    overrides |= _flag_groups(
        kafka={"bootstrap": args.bootstrap},
        http={"port": args.http_port, "web_config_file": args.web_config_file},
    )
    return consume.main(config_file=args.config, overrides=overrides)


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
    _produce_parser(sub)
    _consume_parser(sub)
    _render_parser(sub)
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
