"""The devstack as a whole: build what is missing, start the servers, remember them.

State (ports, pids, paths) is a JSON file in the run directory, so `down`,
`status` and `env` work from another process, and a test session can start its
own stack in a temporary directory beside a user's.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sdstream.devstack import build, cache, processes, servers
from sdstream.devstack.errors import DevstackError

STATE_FILE = "devstack.json"


@dataclass
class Stack:
    run_dir: str
    kafka_bootstrap: str = ""
    kubeconfig: str = ""
    api_server: str = ""
    promtool: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

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
    """Fetch and build every server; cached artefacts make this instant."""
    built = {
        "kafka": build.ensure_kafka(root),
        "etcd": build.ensure_etcd(root),
        "kube-apiserver": build.ensure_kube_apiserver(root),
    }
    if promtool:
        built["promtool"] = build.ensure_promtool(root)
    return built


def up(root: Path, run_dir: Path, *, kafka_port: int | None = None) -> Stack:
    """Start Kafka, etcd and kube-apiserver on loopback; on failure stop them all."""
    existing = load(run_dir)
    if existing and any(existing.running().values()):
        raise DevstackError(f"a devstack already runs in {run_dir}; run `devstack down` first")
    built = build_all(root)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    stack = Stack(run_dir=str(run_dir), promtool=str(built["promtool"]))
    try:
        _start(stack, built, run_dir, kafka_port=kafka_port)
    except BaseException:
        down_stack(stack, remove=False)
        raise
    return stack


def _start(stack: Stack, built: dict[str, Path], run_dir: Path, *, kafka_port: int | None) -> None:
    ports = {
        "kafka": kafka_port or processes.free_port(),
        "kafka-controller": processes.free_port(),
        "etcd": processes.free_port(),
        "etcd-peer": processes.free_port(),
        "kube-apiserver": processes.free_port(),
    }
    stack.ports = ports
    cache.say(f"starting Kafka {built['kafka'].name} on 127.0.0.1:{ports['kafka']}")
    stack.pids["kafka"] = servers.start_kafka(
        built["kafka"], run_dir, broker=ports["kafka"], controller=ports["kafka-controller"]
    )
    stack.kafka_bootstrap = f"127.0.0.1:{ports['kafka']}"
    stack.save()
    cache.say(f"starting etcd on 127.0.0.1:{ports['etcd']}")
    stack.pids["etcd"] = servers.start_etcd(
        built["etcd"], run_dir, client=ports["etcd"], peer=ports["etcd-peer"]
    )
    stack.save()
    cache.say(f"starting kube-apiserver on https://127.0.0.1:{ports['kube-apiserver']}")
    pid, token = servers.start_apiserver(
        built["kube-apiserver"], run_dir, port=ports["kube-apiserver"], etcd=ports["etcd"]
    )
    stack.pids["kube-apiserver"] = pid
    stack.api_server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    config = run_dir / "kubeconfig"
    config.write_text(
        servers.kubeconfig(
            port=ports["kube-apiserver"], ca=run_dir / "pki" / "apiserver.crt", token=token
        )
    )
    config.chmod(0o600)
    stack.kubeconfig = str(config)
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
        f"kubeconfig:  {stack.kubeconfig}",
        f"promtool:    {stack.promtool}",
        f"kcat:        kcat -b {stack.kafka_bootstrap} -L",
    ]
    return "\n".join(lines)
