"""deploy/kubernetes/deployment.yaml, checked without a kubelet: its settings validate and
every secret it reads is a file mounted from a Secret (the server-side dry-run and RBAC
checks are in tests/integration/test_producer_deploy.py)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from sdstream import settings
from tests.pki import Pki

DEPLOYMENT = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "deployment.yaml"


def _deployment() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEPLOYMENT.read_text())
    return loaded


def _container() -> dict[str, Any]:
    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def _env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container()["env"] if "value" in e}


def _secret_mounts() -> dict[PurePosixPath, str]:
    """Mount path -> Secret name, for the container's Secret volumes."""
    volumes = {v["name"]: v for v in _deployment()["spec"]["template"]["spec"]["volumes"]}
    return {
        PurePosixPath(m["mountPath"]): volumes[m["name"]]["secret"]["secretName"]
        for m in _container()["volumeMounts"]
        if "secret" in volumes[m["name"]]
    }


def test_kafka_is_reached_over_tls_with_scram_from_secret_files() -> None:
    env = _env()
    assert env["SDSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["SDSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert "SDSTREAM_KAFKA_SASL_PASSWORD" not in env
    mounts = _secret_mounts()
    for name in ("SDSTREAM_KAFKA_SASL_PASSWORD_FILE", "SDSTREAM_KAFKA_SSL_CAFILE"):
        assert PurePosixPath(env[name]).parent in mounts, name


def test_the_settings_validate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mounts = _secret_mounts()
    ca = tmp_path / "ca.crt"
    ca.write_text(_a_ca(tmp_path))
    for name, value in _env().items():
        if PurePosixPath(value).parent in mounts:  # a mounted secret: a local stand-in
            value = str(ca) if value.endswith(".crt") else str(_password(tmp_path))
        monkeypatch.setenv(name, value)

    loaded = settings.load(settings.ProducerAppSettings)

    assert loaded.kafka.security_protocol == "SASL_SSL"
    assert loaded.kafka.sasl_username == "producer-prod-eu-1"


def _password(directory: Path) -> Path:
    path = directory / "password"
    path.write_text("not-a-real-password\n")
    return path


def _a_ca(directory: Path) -> str:
    return Pki(directory / "pki").ca("test-ca").read_text()
