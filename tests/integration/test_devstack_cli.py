"""`sdstream devstack up|status|env|down` from a shell, in a run dir of its own."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

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
