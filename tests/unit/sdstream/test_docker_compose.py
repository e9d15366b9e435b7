"""docker-compose.yml cannot run here (no Docker engine): check it statically."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sdstream import settings

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"
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
def test_the_values_validate(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = compose()[service]["environment"]  # type: ignore[assignment]
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    loaded = settings.load(SERVICES[service])

    assert loaded.kafka.bootstrap == "kafka:9092"
    assert loaded.http.port == int(env["SDSTREAM_HTTP_PORT"])
