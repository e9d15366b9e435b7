"""What Kafka refuses at run time, on the secured broker (`secure_kafka`): a wrong password,
an unknown CA and a denied topic are each one clear line naming broker, principal and
topic, a reason on /readyz and a counted reason, retried with backoff (a password or CA
file fixed while we run is read again), and a denied cluster's topic does not stop the
others."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest
from prometheus_client import CollectorRegistry

from producers import producer_metrics
from producers.runner import Producer
from schemas.config import ConsumerSettings, KafkaSettings, ProducerSettings
from schemas.topics import Resource, object_topic
from tests.integration import e2e_pipeline as e2e
from tests.integration import events, kafka_helpers, objects
from tests.integration.secure_kafka import SecureKafka
from tests.integration.test_consume import POD_JOB, addresses, consumer, pod
from tests.integration.test_consume import Running as RunningConsumer
from tests.integration.test_consume import settings as consumer_settings
from tests.unit.consumers.sinks.http_client import fetch

WRONG = "Wr0ng-Pa55w0rd"


async def until(check: Callable[[], object], *, timeout_s: float = 90) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - polling a process's state
            await asyncio.sleep(0.1)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def producer_settings(
    kafka: KafkaSettings, kubeconfig: Path, namespace: str, *, cluster: str = "a"
) -> ProducerSettings:
    return e2e.producer_settings(
        cluster=cluster,
        bootstrap=kafka.bootstrap,
        prefix=kafka.topic_prefix,
        kubeconfig=kubeconfig,
        namespace=namespace,
        kafka=kafka,
    )


async def test_a_wrong_password_is_one_clear_line_and_recovers_when_the_file_is_fixed(
    secure_kafka: SecureKafka,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    password = tmp_path / "password"
    password.write_text(WRONG + "\n")
    kafka = secure_kafka.settings(
        "producer-a", "scram", topic_prefix=topic_prefix, sasl_password_file=password
    )
    registry = CollectorRegistry()
    producer = Producer(
        producer_settings(kafka, kubeconfig, namespace), producer_metrics.create(registry)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    try:
        await until(lambda: "SASL authentication" in (producer.readiness.reason() or ""))
        reason = producer.readiness.reason() or ""
        for words in (f"Kafka at {secure_kafka.sasl_bootstrap}",
                      "SASL user 'producer-a' (SCRAM-SHA-512)", "invalid credentials"):  # fmt: skip
            assert words in reason
        refused = registry.get_sample_value(
            "sdstream_producer_kafka_refusals_total", {"reason": "authentication"}
        )
        assert refused is not None
        assert refused >= 1
        logged = [r for r in caplog.records if r.name == "producers.runner"]
        assert any(reason in r.getMessage() for r in logged)

        shutil.copyfile(secure_kafka.password_file("producer-a"), password)  # rotated
        await until(lambda: producer.readiness.ready)
    finally:
        stop.set()
        assert await task == 0
    no_tracebacks(caplog)
    assert WRONG not in caplog.text


async def test_a_producer_denied_another_clusters_topics_says_so_and_its_own_keeps_flowing(  # noqa: PLR0917 - fixtures
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    kube_api: object,
    kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """producer-a's credentials given to cluster b's producer (a copy-paste slip)."""
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    as_a = secure_kafka.settings("producer-a", "scram", topic_prefix=topic_prefix)
    registry = CollectorRegistry()
    own = Producer(producer_settings(as_a, kubeconfig, namespace), producer_metrics.create(
        CollectorRegistry()))  # fmt: skip
    slip = Producer(producer_settings(as_a, kubeconfig, namespace, cluster="b"),
                    producer_metrics.create(registry))  # fmt: skip
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in (own, slip)]
    try:
        await until(lambda: own.readiness.ready)
        await until(lambda: "access to topic" in (slip.readiness.reason() or ""))
        reason = slip.readiness.reason() or ""
        assert f"Kafka at {secure_kafka.sasl_bootstrap} denied SASL user 'producer-a'" in reason
        assert f"topic {topic_prefix}.b." in reason
        denied = registry.get_sample_value(
            "sdstream_producer_kafka_refusals_total", {"reason": "topic_denied"}
        )
        assert denied is not None
        assert denied >= 1

        objects.create_pod(kube_api, namespace, "web-0", ip="10.244.9.2", node="node-1")  # type: ignore[arg-type]
        pods = object_topic(topic_prefix, "a", Resource.PODS)
        wanted = f"{namespace}/web-0".encode()

        async def published() -> bool:
            return wanted in [r.key for r in await kafka_helpers.read_all(kafka_bootstrap, pods)]

        async with asyncio.timeout(60):
            while not await published():  # noqa: ASYNC110 - polling Kafka
                await asyncio.sleep(0.2)
        assert not slip.readiness.ready
    finally:
        stop.set()
        assert await asyncio.gather(*tasks) == [0, 0]
    no_tracebacks(caplog)


async def readyz(running: RunningConsumer) -> tuple[int, str]:
    reply = await fetch(running.address, path="/readyz")
    return reply.status, reply.body.decode()


async def wait_readyz(running: RunningConsumer, check: Callable[[int, str], bool]) -> str:
    async with asyncio.timeout(90):
        while not check(*(answer := await readyz(running))):  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.2)
    return answer[1]


def fold_config(kafka: KafkaSettings, bootstrap: str) -> ConsumerSettings:
    base = consumer_settings(bootstrap, kafka.topic_prefix, POD_JOB,
                             group=f"{kafka.topic_prefix}-fold")  # fmt: skip
    return base.model_copy(update={"kafka": kafka})


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA that signed nothing the broker holds."""
    openssl = shutil.which("openssl")
    assert openssl is not None
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", tmp_path / "ca.key", "-out", tmp_path / "ca.crt", "-days", "1",
         "-subj", "/CN=someone else's CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp_path / "ca.crt"


async def test_an_unknown_ca_is_named_on_readyz_and_recovers_when_the_ca_file_is_fixed(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    other_ca: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    kafka = secure_kafka.settings("fold", "mtls", topic_prefix=topic_prefix, ssl_cafile=other_ca)
    async with consumer(fold_config(kafka, kafka_bootstrap), ready=False) as running:
        body = await wait_readyz(running, lambda status, body: "not verified" in body)
        for words in (f"TLS to Kafka at {secure_kafka.ssl_bootstrap}",
                      "client certificate 'CN=fold", "ssl_cafile"):  # fmt: skip
            assert words in body
        assert running.metric("sdstream_fold_kafka_refusals_total", reason="tls_verify") >= 1
        errors = [r.getMessage() for r in caplog.records if r.name == "kafka_access.reporting"]
        assert any("not verified" in line and "CN=fold" in line for line in errors)

        shutil.copyfile(secure_kafka.ca, other_ca)  # the right CA appears
        await wait_readyz(running, lambda status, _: status == 200)
    no_tracebacks(caplog)


async def deny_read(kafka_bootstrap: str, principal: str, prefix: str) -> None:
    """A DENY READ ACL on topics prefixed `prefix` (through the super-user listener)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        response = await admin._send_request(CreateAclsRequest(
            resource_type=2, resource_name=prefix, resource_pattern_type_filter=4,
            principal=f"User:{principal}", host="*", operation=3, permission_type=2,
        ))  # fmt: skip
    finally:
        await admin.close()
    assert all(code == 0 for code, _ in response.creation_responses), response


async def test_a_denied_clusters_topic_is_named_while_the_other_cluster_keeps_flowing(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    await deny_read(kafka_bootstrap, "fold", f"{topic_prefix}.b.")
    read = [Resource.PODS, Resource.NODES]  # nodes: read whole, outside the group
    for cluster in ("a", "b"):
        await events.create_topics(kafka_bootstrap, topic_prefix, cluster, read)
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.PODS, pod("ns", "web-0", "10.244.3.1"))
        await writer.put("b", Resource.PODS, pod("ns", "web-0", "10.244.3.2"))
        async with consumer(fold_config(kafka, kafka_bootstrap), ready=False) as running:
            denied = {object_topic(topic_prefix, "b", r) for r in read}
            body = await wait_readyz(running, lambda status, body: f"{topic_prefix}.b." in body)
            for words in (f"Kafka at {secure_kafka.sasl_bootstrap}", "SASL user 'fold'",
                          "access to topic"):  # fmt: skip
                assert words in body
            found = await running.until("pods", lambda e: len(e) == 1)
            assert addresses(found) == ["10.244.3.1:8080"]
            await writer.put("a", Resource.PODS, pod("ns", "web-1", "10.244.3.3"))
            found = await running.until("pods", lambda e: len(e) == 2)  # a keeps flowing
            assert addresses(found) == ["10.244.3.1:8080", "10.244.3.3:8080"]
            assert running.metric("sdstream_fold_kafka_refusals_total", reason="topic_denied") >= 1
    errors = [r.getMessage() for r in caplog.records if r.name == "kafka_access.reporting"]
    for topic in denied:  # the group's topic and the table's topic are each named
        assert any(f"topic {topic} " in line for line in errors), topic
    no_tracebacks(caplog)


async def test_a_denied_consumer_group_is_named_on_readyz_until_it_is_granted(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The fold's group ACL covers groups prefixed with the topic prefix: another is denied."""
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    await events.create_topics(kafka_bootstrap, topic_prefix, "a", [Resource.PODS])
    kafka = secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix)
    group = f"not-{topic_prefix}"
    config = fold_config(kafka, kafka_bootstrap).model_copy(update={"group_id": group})
    async with consumer(config, ready=False) as running:
        body = await wait_readyz(running, lambda status, body: "consumer group" in body)
        assert f"consumer group {group}" in body
        assert "SASL user 'fold'" in body
        assert running.metric("sdstream_fold_kafka_refusals_total", reason="group_denied") >= 1

        await secure_kafka.grant(group, clusters=())  # the fold's ACLs for groups `not-...`
        await wait_readyz(running, lambda status, body: status == 200)
    no_tracebacks(caplog)


async def test_the_sinks_reader_names_a_wrong_password_and_recovers_when_the_file_is_fixed(
    kafka_bootstrap: str,
    secure_kafka: SecureKafka,
    topic_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    await kafka_helpers.create_topic(kafka_bootstrap, f"{topic_prefix}.targets", partitions=2)
    password = tmp_path / "password"
    password.write_text(WRONG + "\n")
    kafka = secure_kafka.settings(
        "sink", "scram", topic_prefix=topic_prefix, sasl_password_file=password
    )
    config = fold_config(kafka, kafka_bootstrap).model_copy(update={"mode": "serve"})
    async with consumer(config, ready=False) as running:
        body = await wait_readyz(running, lambda status, body: "SASL authentication" in body)
        assert f"Kafka at {secure_kafka.sasl_bootstrap} refused SASL user 'sink'" in body
        assert running.metric("sdstream_sink_kafka_refusals_total", reason="authentication") >= 1

        shutil.copyfile(secure_kafka.password_file("sink"), password)  # rotated
        await wait_readyz(running, lambda status, _: status == 200)
    no_tracebacks(caplog)
    assert WRONG not in caplog.text
