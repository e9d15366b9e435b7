"""`sdstream devstack up|status|env|down` from a shell, in a run dir of its own."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError

from kafka_access import kafka_options
from sdstream import settings
from sdstream.devstack import cache, stack
from sdstream.devstack.errors import DevstackError

CLI = [sys.executable, "-m", "sdstream.cli", "devstack"]


def run(run_dir: Path, *verb: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--run-dir", str(run_dir), *verb], capture_output=True, text=True, check=False
    )


def test_up_env_status_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "stack"
    try:
        up = run(run_dir, "up")
        assert up.returncode == 0, up.stderr
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in run(run_dir, "env").stdout.splitlines()
        )
        assert Path(env["KUBECONFIG"]).is_file()
        host, port = env["SDSTREAM_KAFKA_BOOTSTRAP"].split(":")
        with socket.create_connection((host, int(port)), timeout=5):
            pass
        status = run(run_dir, "status")
        assert status.returncode == 0
        assert status.stdout.count("running") == 3
    finally:
        down = run(run_dir, "down")
    assert down.returncode == 0
    assert not run_dir.exists()
    assert run(run_dir, "status").returncode == 1


def test_a_busy_port_fails_cleanly_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DevstackError, match="in use"):
            stack.up(cache.cache_dir(), tmp_path / "busy", kafka_port=port)

    left = stack.load(tmp_path / "busy")
    assert left is None or not any(left.running().values())


async def test_up_secure_prints_client_settings_files_that_work(tmp_path: Path) -> None:
    """`up --secure` grants the default prefix's ACLs and prints one settings file per
    principal and method; producer-a's SCRAM file, loaded as `produce --config` loads it,
    may write `sdstream.a.*` and not `sdstream.b.*`."""
    run_dir = tmp_path / "secure"
    try:
        up = run(run_dir, "up", "--secure", "--secure-clusters", "a,b")
        assert up.returncode == 0, up.stderr
        printed = [line.split(None, 1)[1] for line in up.stdout.splitlines()
                   if line.startswith("settings:")]  # fmt: skip
        principals = ("producer-a", "producer-b", "fold", "sink")
        expected = sorted(f"{p}.{m}.yaml" for p in principals for m in ("scram", "mtls"))
        assert sorted(Path(path).name for path in printed) == expected
        config = next(Path(p) for p in printed if p.endswith("producer-a.scram.yaml"))
        kafka = settings.load(settings.ProducerAppSettings, config_file=config, cluster="a").kafka
        assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
        admin = AIOKafkaAdminClient(**kafka_options.client_options(kafka))
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(name, 1, 1) for name in ("sdstream.a.pods", "sdstream.b.pods")]
            )
        finally:
            await admin.close()
        assert sorted((name, code) for name, code, *_ in response.topic_errors) == [
            ("sdstream.a.pods", 0),
            ("sdstream.b.pods", 29),
        ]  # fmt: skip - 29: not authorized
        writer = AIOKafkaProducer(**kafka_options.client_options(kafka))
        await writer.start()
        try:
            await writer.send_and_wait("sdstream.a.pods", b"{}", key=b"k")
            with pytest.raises(TopicAuthorizationFailedError):
                await writer.send_and_wait("sdstream.b.pods", b"{}", key=b"k")
        finally:
            await writer.stop()
        assert run(run_dir, "status").stdout.count("running") == 3
    finally:
        down = run(run_dir, "down")
    assert down.returncode == 0
