"""OAUTHBEARER end to end on the secured broker (Kafka's unsecured JWS validator): the
producer authenticates with the token in `sasl_oauth_token_file` and publishes as the
token's subject. An expired token, then a token of another principal (producer-b, refused
cluster a's topics), are each one clear line and a /readyz reason; each token rotated
into the file is used by the next connection, without a restart.

aiokafka 0.14 never reads the broker's answer to a refused token (see
`kafka_access.kafka_probe`): the expired token is still named as an authentication
failure."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.runner import Producer
from schemas.config import KafkaSettings
from schemas.topics import Resource, object_topic
from tests.integration import kafka_helpers, objects
from tests.integration.secure_kafka import SecureKafka
from tests.integration.test_kafka_refusals import no_tracebacks, producer_settings, until


def unsecured_jws(subject: str, *, expires_in_s: float) -> str:
    """A token Kafka's unsecured validator takes: header {"alg": "none"}, no signature."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": subject, "iat": now - 60, "exp": int(now + expires_in_s)}
    return f"{part({'alg': 'none'})}.{part(claims)}."


async def test_a_producer_authenticates_with_a_token_file_and_a_rotated_token_is_used(  # noqa: PLR0917 - fixtures
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    kube_api: object,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    token = tmp_path / "token"
    expired = unsecured_jws("producer-a", expires_in_s=-30)
    other = unsecured_jws("producer-b", expires_in_s=3600)
    token.write_text(expired + "\n")
    kafka = KafkaSettings(
        bootstrap=secure_kafka.sasl_bootstrap, topic_prefix=topic_prefix,
        security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", sasl_oauth_token_file=token,
        ssl_cafile=secure_kafka.ca,
    )  # fmt: skip
    objects.create_pod(kube_api, namespace, "web-0", ip="10.244.9.1", node="node-1")  # type: ignore[arg-type]
    registry = CollectorRegistry()
    producer = Producer(
        producer_settings(kafka, kubeconfig, namespace), producer_metrics.create(registry)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        await until(lambda: "SASL authentication" in (producer.readiness.reason() or ""))
        reason = producer.readiness.reason() or ""
        assert f"refused the OAUTHBEARER token in {token}" in reason
        assert "did not accept the OAUTHBEARER token" in reason

        token.write_text(other + "\n")  # rotated, to a principal without cluster a's ACLs
        await until(lambda: "denied" in (producer.readiness.reason() or ""))
        reason = producer.readiness.reason() or ""
        assert f"Kafka at {secure_kafka.sasl_bootstrap}" in reason
        assert f"the OAUTHBEARER token in {token}" in reason
        assert f"topic {topic_prefix}.a." in reason
        refused = registry.get_sample_value(
            "sdstream_producer_kafka_refusals_total", {"reason": "topic_denied"}
        )
        assert refused is not None
        assert refused >= 1

        token.write_text(unsecured_jws("producer-a", expires_in_s=3600) + "\n")  # rotated
        await until(lambda: producer.readiness.ready)
    finally:
        stop.set()
        assert await task == 0
    pods = object_topic(topic_prefix, "a", Resource.PODS)
    keys = [r.key for r in await kafka_helpers.read_all(kafka_bootstrap, pods)]
    assert f"{namespace}/web-0".encode() in keys
    no_tracebacks(caplog)
    assert expired not in caplog.text
    assert other not in caplog.text
