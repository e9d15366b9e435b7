"""The devstack as a whole: build what is missing, start the servers, remember them.

State (ports, pids, paths) is a JSON file in the run directory, so `down`,
`status` and `env` work from another process, and a test session can start its
own stack in a temporary directory beside a user's.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sdstream.devstack import build, cache, pki, processes, secure, servers
from sdstream.devstack.errors import DevstackError

STATE_FILE = "devstack.json"


@dataclass
class Stack:
    run_dir: str
    kafka_bootstrap: str = ""
    kubeconfig: str = ""
    api_server: str = ""
    promtool: str = ""
    kubeconfigs: list[str] = field(default_factory=list)  # one per API server; [0] == kubeconfig
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    # `up(secure=True)` only (see `secure`): the SSL (mTLS) and SASL_SSL listeners, the CA,
    # each principal's password file, client certificate and key, and settings files.
    kafka_ssl_bootstrap: str = ""
    kafka_sasl_bootstrap: str = ""
    kafka_sasl_plaintext_bootstrap: str = ""
    kafka_ca: str = ""
    clusters: list[str] = field(default_factory=list)  # whose producer principals exist
    passwords: dict[str, str] = field(default_factory=dict)
    certs: dict[str, list[str]] = field(default_factory=dict)  # principal -> [cert, key]
    client_settings: dict[str, str] = field(default_factory=dict)  # "<principal>.<method>"

    @property
    def secured(self) -> bool:
        return bool(self.kafka_sasl_bootstrap)

    def secrets(self) -> secure.Secrets:
        """The secured broker's certificates and password files (`up(secure=True)`)."""
        clients = {name: pki.ClientCert(Path(c), Path(k)) for name, (c, k) in self.certs.items()}
        ca = Path(self.kafka_ca)
        made = pki.KafkaPki(ca=ca, broker_keystore=ca.with_name(pki.KEYSTORE), clients=clients)
        return secure.Secrets(made, {name: Path(p) for name, p in self.passwords.items()})

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": self.kubeconfig, "SDSTREAM_KAFKA_BOOTSTRAP": self.kafka_bootstrap}

    def running(self) -> dict[str, bool]:
        return {name: processes.alive(pid) for name, pid in self.pids.items()}

    def save(self) -> None:
        Path(self.run_dir, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


def default_run_dir(root: Path) -> Path:
    return root / "run" / "default"


def load(run_dir: Path) -> Stack | None:
    try:
        data = json.loads((run_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    return Stack(**data)


def build_all(root: Path, *, promtool: bool = True) -> dict[str, Path]:
    """Fetch and build every server; cached artefacts make this instant. Holds the
    cache's build lock, so two checkouts sharing a cache never build the same binary
    into the same path at once: the second waits, then finds it built."""
    with cache.build_lock(root):
        built = {
            "kafka": build.ensure_kafka(root),
            "etcd": build.ensure_etcd(root),
            "kube-apiserver": build.ensure_kube_apiserver(root),
        }
        if promtool:
            built["promtool"] = build.ensure_promtool(root)
        built["helm"] = build.ensure_helm(root)
        built["kubectl"] = build.ensure_kubectl(root)
        built["monitoring-crds"] = build.ensure_monitoring_crds(root)
        built["prometheus-operator"] = build.ensure_prometheus_operator(root)
    return built


def up(
    root: Path,
    run_dir: Path,
    *,
    kafka_port: int | None = None,
    clusters: int = 1,
    secure: bool = False,
    secure_clusters: tuple[str, ...] = secure.DEFAULT_CLUSTERS,
) -> Stack:
    """Start Kafka and `clusters` etcd + kube-apiserver pairs on loopback; on failure stop
    them all. `secure`: the broker also gets SSL and SASL_SSL listeners, an authorizer,
    and principals for the producers of `secure_clusters`, the fold and a sink (see
    `sdstream.devstack.secure`; grant their ACLs with `kafka_acls.grant`)."""
    existing = load(run_dir)
    if existing and any(existing.running().values()):
        raise DevstackError(f"a devstack already runs in {run_dir}; run `devstack down` first")
    built = build_all(root)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    stack = Stack(run_dir=str(run_dir), promtool=str(built["promtool"]))
    try:
        _start(stack, built, run_dir, kafka_port=kafka_port,
               secure_clusters=secure_clusters if secure else None)  # fmt: skip
        for number in range(2, clusters + 1):
            _start_cluster(stack, built, run_dir / f"cluster-{number}", suffix=f"-{number}")
    except BaseException:
        down_stack(stack, remove=False)
        raise
    return stack


def _start(
    stack: Stack,
    built: dict[str, Path],
    run_dir: Path,
    *,
    kafka_port: int | None,
    secure_clusters: tuple[str, ...] | None,
) -> None:
    broker, controller = kafka_port or processes.free_port(), processes.free_port()
    stack.ports.update({"kafka": broker, "kafka-controller": controller})
    extra, format_args = (
        ({}, []) if secure_clusters is None else _secure(stack, run_dir, secure_clusters)
    )
    cache.say(f"starting Kafka {built['kafka'].name} on 127.0.0.1:{broker}")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-start") as pool:
        kafka = pool.submit(
            servers.start_kafka, built["kafka"], run_dir, broker=broker, controller=controller,
            extra=extra, format_args=format_args,
        )  # fmt: skip
        try:
            _start_cluster(stack, built, run_dir, suffix="")
        except BaseException:  # still record the broker, so `up`'s cleanup stops it
            with contextlib.suppress(Exception):
                _record_kafka(stack, kafka.result(), broker=broker)
            raise
        _record_kafka(stack, kafka.result(), broker=broker)
    stack.kubeconfig = stack.kubeconfigs[0]
    stack.api_server = f"https://127.0.0.1:{stack.ports['kube-apiserver']}"
    stack.save()


def _record_kafka(stack: Stack, pid: int, *, broker: int) -> None:
    """Record the broker, started beside the API server (the JVM and the API server each
    take seconds to start; side by side they take about the longer of the two, not the
    sum), first in `pids`, so `down` stops it last."""
    stack.pids = {"kafka": pid, **stack.pids}
    stack.kafka_bootstrap = f"127.0.0.1:{broker}"
    stack.save()


def _secure(
    stack: Stack, run_dir: Path, clusters: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    """Certificates, passwords and client settings files for the secured broker; its
    extra server.properties entries and storage-format arguments."""
    ports = {name: processes.free_port() for name in ("SSL", "SASL_SSL", "SASL_PLAINTEXT")}
    stack.ports.update({f"kafka-{name.lower().replace('_', '-')}": p for name, p in ports.items()})
    made = secure.write_secrets(run_dir / "kafka-secrets", users=secure.principals(clusters))
    stack.kafka_ssl_bootstrap = f"127.0.0.1:{ports['SSL']}"
    stack.kafka_sasl_bootstrap = f"127.0.0.1:{ports['SASL_SSL']}"
    stack.kafka_sasl_plaintext_bootstrap = f"127.0.0.1:{ports['SASL_PLAINTEXT']}"
    stack.kafka_ca = str(made.pki.ca)
    stack.clusters = list(clusters)
    stack.passwords = {name: str(path) for name, path in made.passwords.items()}
    stack.certs = {name: [str(c.cert), str(c.key)] for name, c in made.pki.clients.items()}
    bootstraps = {"scram": stack.kafka_sasl_bootstrap, "mtls": stack.kafka_ssl_bootstrap}
    stack.client_settings = secure.write_client_files(
        made, run_dir / "kafka-clients", bootstraps=bootstraps
    )
    extra = secure.listener_properties(made, ports=ports)
    return extra, secure.format_args(made)


def _start_cluster(stack: Stack, built: dict[str, Path], run_dir: Path, *, suffix: str) -> None:
    """One etcd + kube-apiserver pair, its kubeconfig in `run_dir`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    etcd, peer, api = processes.free_port(), processes.free_port(), processes.free_port()
    stack.ports.update({f"etcd{suffix}": etcd, f"etcd-peer{suffix}": peer,
                        f"kube-apiserver{suffix}": api})  # fmt: skip
    cache.say(f"starting etcd{suffix} on 127.0.0.1:{etcd}")
    stack.pids[f"etcd{suffix}"] = servers.start_etcd(built["etcd"], run_dir, client=etcd, peer=peer)
    stack.save()
    cache.say(f"starting kube-apiserver{suffix} on https://127.0.0.1:{api}")
    pid, token = servers.start_apiserver(built["kube-apiserver"], run_dir, port=api, etcd=etcd)
    stack.pids[f"kube-apiserver{suffix}"] = pid
    config = run_dir / "kubeconfig"
    config.write_text(
        servers.kubeconfig(port=api, ca=run_dir / "pki" / "apiserver.crt", token=token)
    )
    config.chmod(0o600)
    stack.kubeconfigs.append(str(config))
    stack.save()


def restart_kafka(stack: Stack, *, root: Path | None = None) -> None:
    """Stop the stack's Kafka broker and start it again in place (same ports, same data,
    no re-format), as a broker restart in production would; clients must reconnect.
    For tests of restarts. `root` is the build cache (default: `cache.cache_dir()`)."""
    home = build.ensure_kafka(root or cache.cache_dir())
    cache.say(f"restarting Kafka on {stack.kafka_bootstrap}")
    stack.pids["kafka"] = servers.restart_kafka(
        home, Path(stack.run_dir), pid=stack.pids["kafka"], broker=stack.ports["kafka"]
    )
    stack.save()


def down_stack(stack: Stack, *, remove: bool = True) -> None:
    """Stop in reverse start order (the API server before its etcd)."""
    for name in reversed(list(stack.pids)):
        processes.stop(stack.pids[name])
    if remove:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(stack.run_dir)


def describe(stack: Stack) -> str:
    alive = stack.running()
    lines = [f"run dir:     {stack.run_dir}"]
    lines += [f"{name:<15} pid {pid:<8} {'running' if alive[name] else 'STOPPED'}"
              for name, pid in stack.pids.items()]  # fmt: skip
    lines += [
        f"kafka:       {stack.kafka_bootstrap}",
        f"api server:  {stack.api_server}",
        *(f"kubeconfig:  {path}" for path in stack.kubeconfigs),
        f"promtool:    {stack.promtool}",
        f"kcat:        kcat -b {stack.kafka_bootstrap} -L",
    ]
    if stack.secured:
        lines += [
            f"kafka mTLS:  {stack.kafka_ssl_bootstrap} (SSL, client certificate required)",
            f"kafka SASL:  {stack.kafka_sasl_bootstrap} "
            f"(SASL_SSL: {', '.join(secure.SASL_MECHANISMS)})",
            f"kafka SASL without TLS: {stack.kafka_sasl_plaintext_bootstrap} (SASL_PLAINTEXT)",
            f"kafka CA:    {stack.kafka_ca}",
            *(f"settings:    {path}" for path in stack.client_settings.values()),
        ]
    return "\n".join(lines)
