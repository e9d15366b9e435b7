"""Bad environments end with one clear line naming the cause."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sdstream.devstack import build, cache, processes
from sdstream.devstack.errors import DevstackError


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            DevstackError, match=rf"127\.0\.0\.1:{port} for the Kafka broker is in use"
        ):
            processes.check_port_free(port, what="the Kafka broker")


def test_missing_java_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(DevstackError, match="java not found on PATH"):
        build.ensure_kafka(tmp_path)


def test_a_failed_step_names_its_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "step.log"

    with pytest.raises(DevstackError, match=r"exit 3: boom \(log: .*step\.log\)"):
        cache.run_logged(["sh", "-c", "echo boom; exit 3"], log=log, what="a step")

    assert "boom" in log.read_text()


def test_a_missing_program_names_itself(tmp_path: Path) -> None:
    with pytest.raises(DevstackError, match="no-such-program not found"):
        cache.run_logged(["no-such-program"], log=tmp_path / "x.log", what="a step")
