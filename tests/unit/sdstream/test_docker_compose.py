"""docker-compose.yml cannot run here (no Docker engine): check it statically."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
import yaml

from schemas.web_config import WebConfig
from sdstream import settings, web_config

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"
SECRETS = "/run/secrets/"
SERVICES = {"producer": settings.ProducerAppSettings, "consumer": settings.ConsumerAppSettings}


def compose() -> dict[str, dict[str, object]]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, dict[str, object]] = loaded["services"]
    return services


def test_compose_has_kafka_producer_and_consumer() -> None:
    assert {"kafka", "producer", "consumer"} <= set(compose())
    assert compose()["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # type: ignore[index]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_variable_is_a_real_setting(service: str) -> None:
    env: dict[str, str] = compose()[service]["environment"]  # type: ignore[assignment]
    known = settings.env_names(SERVICES[service])

    assert set(env) - known == set()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_values_validate(service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env: dict[str, str] = compose()[service]["environment"]  # type: ignore[assignment]
    for name, value in env.items():
        monkeypatch.setenv(name, _secret_here(value, tmp_path))

    loaded = settings.load(SERVICES[service])

    assert loaded.kafka.bootstrap == "kafka:9092"
    assert loaded.http.port == int(env["SDSTREAM_HTTP_PORT"])


def _secret_here(value: str, directory: Path) -> str:
    """A Docker secret's path (/run/secrets/NAME) as a file of that name in `directory`,
    since the settings read password files at load."""
    if not value.startswith(SECRETS):
        return value
    made = directory / value.removeprefix(SECRETS)
    made.write_text("not-a-real-password\n")
    return str(made)


def test_secrets_are_files_and_kafka_is_internal() -> None:
    services = compose()
    for service in SERVICES:
        env: dict[str, str] = services[service]["environment"]  # type: ignore[assignment]
        assert env["SDSTREAM_KAFKA_SECURITY_PROTOCOL"].startswith("SASL_")
        assert "SDSTREAM_KAFKA_SASL_PASSWORD" not in env
        name = env["SDSTREAM_KAFKA_SASL_PASSWORD_FILE"].removeprefix(SECRETS)
        assert name in services[service]["secrets"]  # type: ignore[operator]
    networks = yaml.safe_load(COMPOSE.read_text())["networks"]
    assert networks["kafka"]["internal"] is True
    assert "ports" not in services["kafka"]
    assert "ports" not in services["producer"]


def test_the_shipped_web_config_refuses_to_start_until_a_hash_is_set() -> None:
    """The example must not ship a working password: its placeholder is a one-line error
    naming the user, and the file is valid once a real bcrypt hash replaces it."""
    shipped = COMPOSE.parent / "deploy" / "compose" / "web-config.yml"
    with pytest.raises(settings.SettingsError, match="basic_auth_users"):
        web_config.load(shipped)
    data = yaml.safe_load(shipped.read_text())
    data["basic_auth_users"]["prometheus"] = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    assert WebConfig.model_validate(data).tls_server_config is not None
