"""Start a single-node KRaft Kafka broker and etcd + kube-apiserver on loopback.

Each `start_*` returns the pid once the server answers; on failure it stops
what it started and raises DevstackError naming the log.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from sdstream.devstack import processes
from sdstream.devstack.errors import DevstackError

_KAFKA_JVM = ["-Xms256m", "-Xmx768m", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
              "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]  # fmt: skip


def _kafka_properties(
    run: Path, *, broker: int, controller: int, extra: dict[str, str] | None = None
) -> str:
    """server.properties; `extra` adds entries, and listeners (`_listeners`) and their
    protocols (`_protocols`) beside PLAINTEXT and CONTROLLER."""
    more = dict(extra or {})
    listeners = ",".join(
        [f"PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}"]
        + ([more.pop("_listeners")] if "_listeners" in more else [])
    )
    protocols = ",".join(
        ["CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"]
        + ([more.pop("_protocols")] if "_protocols" in more else [])
    )
    added = "".join(f"{key}={value}\n" for key, value in more.items())
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners={listeners}
advertised.listeners={listeners}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map={protocols}
log.dirs={run}/kafka/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.cleaner.backoff.ms=100
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.retention.check.interval.ms=1000
{added}"""


def _cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def start_kafka(
    home: Path,
    run: Path,
    *,
    broker: int,
    controller: int,
    extra: dict[str, str] | None = None,
    format_args: list[str] | None = None,
) -> int:
    """Format storage and start the broker. `extra` adds server.properties entries (see
    `_kafka_properties`), `format_args` arguments to `kafka-storage format` (SCRAM users).
    The properties file is 0600: it may hold PLAIN passwords."""
    processes.check_port_free(broker, what="the Kafka broker")
    processes.check_port_free(controller, what="the Kafka controller")
    conf = run / "kafka" / "server.properties"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.touch(mode=0o600)
    conf.write_text(_kafka_properties(run, broker=broker, controller=controller, extra=extra))
    java = _kafka_java(home, run)
    out = run / "kafka" / "kafka.out"
    fmt = subprocess.run(
        [*java, "-Xmx256m", "kafka.tools.StorageTool", "format", "--standalone",
         "-t", _cluster_id(), "-c", str(conf), *(format_args or [])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    out.write_text(fmt.stdout + fmt.stderr)
    if fmt.returncode != 0:
        raise DevstackError("formatting Kafka storage failed", log=out)
    return _run_kafka(home, run, broker=broker)


def restart_kafka(home: Path, run: Path, *, pid: int, broker: int) -> int:
    """Stop the broker `pid` and start it again in place: same server.properties (so the
    same ports), same data directory, storage not re-formatted; topics, offsets and
    committed consumer offsets survive. Returns the new pid."""
    processes.stop(pid)
    if processes.alive(pid):
        raise DevstackError(f"Kafka broker pid {pid} did not stop", log=run / "kafka" / "kafka.out")
    return _run_kafka(home, run, broker=broker)


def _kafka_java(home: Path, run: Path) -> list[str]:
    return [
        "java",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={run / 'kafka' / 'logs'}",
        "-cp",
        f"{home / 'libs'}/*",
    ]


def _run_kafka(home: Path, run: Path, *, broker: int) -> int:
    """Start the broker on formatted storage; the pid once it says it started."""
    java = _kafka_java(home, run)
    server_log = run / "kafka" / "logs" / "server.log"
    seen = server_log.stat().st_size if server_log.exists() else 0  # a restart appends
    out = run / "kafka" / "kafka.out"
    conf = run / "kafka" / "server.properties"
    pid = processes.spawn([*java[:1], *_KAFKA_JVM, *java[1:], "kafka.Kafka", conf], log=out)

    def ready() -> bool:
        if not server_log.exists():
            return False
        with server_log.open("rb") as log:
            log.seek(seen)
            started = b"Kafka Server started" in log.read()
        return started and processes.port_open(broker)

    _wait_or_stop(ready, pid=pid, what="Kafka broker", log=out)
    return pid


def start_etcd(binary: Path, run: Path, *, client: int, peer: int) -> int:
    processes.check_port_free(client, what="etcd clients")
    processes.check_port_free(peer, what="etcd peers")
    log = run / "etcd" / "etcd.log"
    pid = processes.spawn(
        [binary, "--name", "sdstream", "--data-dir", run / "etcd" / "data",
         "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"sdstream=http://127.0.0.1:{peer}",
         "--unsafe-no-fsync", "--log-level", "warn"],
        log=log,
    )  # fmt: skip

    def ready() -> bool:
        url = f"http://127.0.0.1:{client}/health"
        with urllib.request.urlopen(url, timeout=1) as resp:
            return b'"health":"true"' in resp.read()

    _wait_or_stop(ready, pid=pid, what="etcd", log=log)
    return pid


def write_pki(run: Path) -> tuple[Path, str]:
    """Service-account signing keys and a static admin token; returns (pki dir, token)."""
    pki = run / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    key, pub = pki / "sa.key", pki / "sa.pub"
    argvs: list[list[str | Path]] = [
        ["openssl", "genrsa", "-out", key, "2048"],
        ["openssl", "rsa", "-in", key, "-pubout", "-out", pub],
    ]
    for argv in argvs:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise DevstackError("openssl not found; it makes the service-account keys") from exc
        if done.returncode != 0:
            raise DevstackError(f"openssl failed: {done.stderr.strip()[:200]}")
    token = secrets.token_hex(16)
    tokens = pki / "tokens.csv"
    tokens.write_text(f"{token},admin,admin-uid,system:masters\n")
    tokens.chmod(0o600)
    return pki, token


def start_apiserver(binary: Path, run: Path, *, port: int, etcd: int) -> tuple[int, str]:
    """Returns (pid, admin token)."""
    processes.check_port_free(port, what="kube-apiserver")
    pki, token = write_pki(run)
    log = run / "kube-apiserver.log"
    pid = processes.spawn(
        [binary, f"--etcd-servers=http://127.0.0.1:{etcd}",
         "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
         f"--secure-port={port}", f"--cert-dir={pki}",
         "--service-cluster-ip-range=10.96.0.0/16",
         f"--service-account-issuer=https://127.0.0.1:{port}/",
         f"--service-account-key-file={pki / 'sa.pub'}",
         f"--service-account-signing-key-file={pki / 'sa.key'}",
         f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=RBAC",
         "--disable-admission-plugins=ServiceAccount", "--allow-privileged=true",
         "--endpoint-reconciler-type=none", "--v=1"],
        log=log,
    )  # fmt: skip
    ca = pki / "apiserver.crt"

    def ready() -> bool:
        if not ca.exists():
            return False
        context = ssl.create_default_context(cafile=str(ca))
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/readyz", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=2, context=context) as resp:  # noqa: S310
            return bool(resp.read() == b"ok")

    _wait_or_stop(ready, pid=pid, what="kube-apiserver", log=log, timeout_s=120)
    return pid, token


def kubeconfig(*, port: int, ca: Path, token: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: sdstream-dev
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: sdstream-dev
  context:
    cluster: sdstream-dev
    user: admin
current-context: sdstream-dev
"""


def _wait_or_stop(
    ready: Callable[[], bool], *, pid: int, what: str, log: Path, timeout_s: float = 90
) -> None:
    try:
        processes.wait_until(ready, pid=pid, what=what, log=log, timeout_s=timeout_s)
    except DevstackError:
        processes.stop(pid, grace_s=5)
        raise
