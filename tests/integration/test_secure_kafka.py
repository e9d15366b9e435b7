"""End to end on the secured broker: API server -> producer -> Kafka -> consumer -> HTTP SD
over SASL_SSL (SCRAM-SHA-512) and over mutual TLS, each side with its own principal and
only the ACLs `devstack` grants for the test's topic prefix, judged by promtool.

And the point of per-cluster principals: cluster a's producer principal cannot write
cluster b's topics (the broker answers TopicAuthorizationFailed), while cluster a's own
pipeline keeps flowing.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError
from kubernetes import client

from kafka_access import kafka_options
from schemas.config import ConsumerSettings, KafkaSettings, ProducerSettings
from schemas.topics import Resource, object_topic, targets_topic
from tests.integration import e2e_pipeline as e2e
from tests.integration import kafka_helpers, objects
from tests.integration.secure_kafka import Method, SecureKafka


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


def sd_configs(namespace: str) -> dict[str, e2e.SdConfig]:
    mine = {"names": [namespace]}
    return {"pods": {"role": "pod", "namespaces": mine},
            "slices": {"role": "endpointslice", "namespaces": mine}}  # fmt: skip


def populate(env: e2e.Env, ns: str) -> None:
    pods = [("web-0", "10.244.7.1"), ("web-1", "10.244.7.2")]
    for name, ip in pods:
        objects.create_pod(env.kube_api, ns, name, ip=ip, node="node-1", labels={"app": "web"})
    endpoints = [{"addresses": [ip], "targetRef": {"kind": "Pod", "namespace": ns, "name": name}}
                 for name, ip in pods]  # fmt: skip
    objects.create_endpointslice(env.kube_api, ns, "web-abc", service="web", endpoints=endpoints,
                                 ports=[{"name": "http", "port": 8080}])  # fmt: skip


def producer(env: e2e.Env, kafka: KafkaSettings, *, cluster: str, ns: str) -> e2e.RunningProducer:
    settings = e2e.producer_settings(cluster=cluster, bootstrap=kafka.bootstrap,
                                     prefix=kafka.topic_prefix, kubeconfig=env.kubeconfig,
                                     namespace=ns)  # fmt: skip
    return e2e.RunningProducer(ProducerSettings.model_validate(
        {**settings.model_dump(), "kafka": kafka.model_dump()}))  # fmt: skip


def consumer(kafka: KafkaSettings, jobs: dict[str, e2e.SdConfig]) -> e2e.RunningConsumer:
    # the fold's group ACL is for groups prefixed with the topic prefix
    settings = e2e.consumer_settings(bootstrap=kafka.bootstrap, prefix=kafka.topic_prefix,
                                     jobs=jobs, group=f"{kafka.topic_prefix}-fold")  # fmt: skip
    return e2e.RunningConsumer(ConsumerSettings.model_validate(
        {**settings.model_dump(), "kafka": kafka.model_dump()}))  # fmt: skip


async def check_equal_to_promtool(
    env: e2e.Env, running: e2e.RunningConsumer, jobs: dict[str, e2e.SdConfig], tmp_path: Path
) -> None:
    expected = await e2e.gather({
        job: e2e.kubernetes_sd(env.promtool, sd, kubeconfig=env.kubeconfig, tmp_path=tmp_path)
        for job, sd in jobs.items()
    })  # fmt: skip
    for job in jobs:
        assert expected[job], job
        await e2e.converge(running, job, expected[job])
    via_http = await e2e.gather(
        {job: e2e.http_sd(env.promtool, running.url(job), tmp_path=tmp_path) for job in jobs}
    )
    assert via_http == expected


@pytest.mark.parametrize("method", ["scram", "mtls"])
async def test_pipeline_over_a_secured_listener_equals_promtool(
    env: e2e.Env,
    secure_kafka: SecureKafka,
    method: Method,
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    populate(env, namespace)
    jobs = sd_configs(namespace)
    as_producer = secure_kafka.settings("producer-a", method, topic_prefix=topic_prefix)
    as_fold = secure_kafka.settings("fold", method, topic_prefix=topic_prefix)
    assert as_producer.security_protocol == ("SASL_SSL" if method == "scram" else "SSL")
    fold = consumer(as_fold, jobs)
    async with e2e.running(producer(env, as_producer, cluster="a", ns=namespace), fold):
        await check_equal_to_promtool(env, fold, jobs, tmp_path)
        objects.create_pod(env.kube_api, namespace, "web-2", ip="10.244.7.3", node="node-1",
                           labels={"app": "web"})  # fmt: skip
        await check_equal_to_promtool(env, fold, jobs, tmp_path)


async def test_a_producer_principal_cannot_write_another_clusters_topics(
    env: e2e.Env, secure_kafka: SecureKafka, namespace: str, topic_prefix: str, tmp_path: Path
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a", "b"))
    populate(env, namespace)
    jobs = sd_configs(namespace)
    as_a = secure_kafka.settings("producer-a", "scram", topic_prefix=topic_prefix)
    b_pods = object_topic(topic_prefix, "b", Resource.PODS)
    await kafka_helpers.create_topic(env.kafka_bootstrap, b_pods, partitions=e2e.PARTITIONS)
    fold = consumer(secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix), jobs)
    async with e2e.running(producer(env, as_a, cluster="a", ns=namespace), fold):
        await check_equal_to_promtool(env, fold, jobs, tmp_path)

        intruder = AIOKafkaProducer(**kafka_options.client_options(as_a), enable_idempotence=True)
        await intruder.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await intruder.send_and_wait(b_pods, b"{}", key=b"pod/x/y")
        finally:
            await intruder.stop()

        # cluster a keeps flowing after the refusal
        objects.create_pod(env.kube_api, namespace, "web-2", ip="10.244.7.3", node="node-1",
                           labels={"app": "web"})  # fmt: skip
        await check_equal_to_promtool(env, fold, jobs, tmp_path)
    assert await kafka_helpers.read_all(env.kafka_bootstrap, b_pods) == []


async def test_the_sink_principal_reads_the_targets_topic_and_nothing_else(
    kafka_bootstrap: str, secure_kafka: SecureKafka, topic_prefix: str
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    targets, a_pods = targets_topic(topic_prefix), object_topic(topic_prefix, "a", Resource.PODS)
    for topic in (targets, a_pods):
        await kafka_helpers.create_topic(kafka_bootstrap, topic)
    admin_writer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await admin_writer.start()
    try:
        for topic in (targets, a_pods):
            await admin_writer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await admin_writer.stop()
    as_sink = secure_kafka.settings("sink", "mtls", topic_prefix=topic_prefix)

    assert (await first_record(as_sink, targets)).value == b"{}"
    admin = AIOKafkaAdminClient(**kafka_options.client_options(as_sink))
    await admin.start()
    try:
        described = {t["topic"]: t["error_code"] for t in await admin.describe_topics()
                     if t["topic"].startswith(f"{topic_prefix}.")}  # fmt: skip
    finally:
        await admin.close()
    assert described == {targets: 0}  # the object topic is not even visible
    writer = AIOKafkaProducer(**kafka_options.client_options(as_sink))
    await writer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await writer.send_and_wait(targets, b"{}", key=b"k")
    finally:
        await writer.stop()


async def first_record(kafka: KafkaSettings, topic: str) -> Any:
    reader = AIOKafkaConsumer(**kafka_options.client_options(kafka), group_id=None,
                              auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await reader.start()
    try:
        reader.assign([TopicPartition(topic, 0)])
        async with asyncio.timeout(30):
            return await reader.getone()
    finally:
        await reader.stop()


@pytest.mark.parametrize(
    ("method", "mechanism"),
    [
        ("scram", "SCRAM-SHA-512"),
        ("scram", "SCRAM-SHA-256"),
        ("scram", "PLAIN"),
        ("scram-plaintext", "SCRAM-SHA-512"),
        ("scram-plaintext", "SCRAM-SHA-256"),
        ("scram-plaintext", "PLAIN"),
        ("mtls", None),
    ],
)
async def test_each_protocol_and_mechanism_writes_and_reads_through_our_settings(
    secure_kafka: SecureKafka, topic_prefix: str, method: Method, mechanism: str | None
) -> None:
    """KafkaSettings' client options, as every sdstream client uses them, against each
    listener and mechanism: create an own topic, write, read back."""
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    overrides = {} if mechanism is None else {"sasl_mechanism": mechanism}
    kafka = secure_kafka.settings("producer-a", method, topic_prefix=topic_prefix, **overrides)
    topic = object_topic(topic_prefix, "a", Resource.PODS)
    admin = AIOKafkaAdminClient(**kafka_options.client_options(kafka))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    assert [code for _, code, *_ in response.topic_errors] == [0]
    writer = AIOKafkaProducer(**kafka_options.client_options(kafka), enable_idempotence=True)
    await writer.start()
    try:
        await writer.send_and_wait(topic, b"{}", key=b"pod/ns/web-0")
    finally:
        await writer.stop()
    assert (await first_record(kafka, topic)).key == b"pod/ns/web-0"


@pytest.fixture
def encrypted_key(secure_kafka: SecureKafka, tmp_path: Path) -> tuple[Path, Path]:
    """producer-a's client key encrypted with a passphrase; (key, passphrase file)."""
    _, key = secure_kafka.cert("producer-a")
    secret = tmp_path / "key.password"
    secret.write_text("s3cret-passphrase\n")
    encrypted = tmp_path / "producer-a.encrypted.key"
    openssl = shutil.which("openssl")
    assert openssl
    subprocess.run([openssl, "pkey", "-in", str(key), "-aes256", "-passout", f"file:{secret}",
                    "-out", str(encrypted)], check=True)  # fmt: skip
    assert "ENCRYPTED" in encrypted.read_text()
    return encrypted, secret


async def test_mtls_with_an_encrypted_client_key_and_its_password_file(
    secure_kafka: SecureKafka, topic_prefix: str, encrypted_key: tuple[Path, Path]
) -> None:
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    key, secret = encrypted_key
    kafka = secure_kafka.settings(
        "producer-a", "mtls", topic_prefix=topic_prefix, ssl_keyfile=key,
        ssl_keyfile_password_file=secret,
    )  # fmt: skip
    topic = object_topic(topic_prefix, "a", Resource.SERVICES)
    writer = AIOKafkaProducer(**kafka_options.client_options(kafka))
    await kafka_helpers.create_topic(secure_kafka.stack.kafka_bootstrap, topic)
    await writer.start()
    try:
        await writer.send_and_wait(topic, b"{}", key=b"service/ns/web")
    finally:
        await writer.stop()
    assert (await first_record(kafka, topic)).key == b"service/ns/web"


async def test_a_serve_only_consumer_as_the_sink_principal_serves_what_the_fold_built(
    env: e2e.Env, secure_kafka: SecureKafka, namespace: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Fold and sinks split (`mode: fold` / `mode: serve`), each as its own principal: the
    sink principal's ACLs (read the targets topic, nothing else) are enough to serve."""
    await secure_kafka.grant(topic_prefix, clusters=("a",))
    populate(env, namespace)
    jobs = sd_configs(namespace)
    fold = consumer(secure_kafka.settings("fold", "scram", topic_prefix=topic_prefix), jobs)
    serve = consumer(secure_kafka.settings("sink", "mtls", topic_prefix=topic_prefix), jobs)
    fold.settings = fold.settings.model_copy(update={"mode": "fold"})
    serve.settings = serve.settings.model_copy(update={"mode": "serve"})
    as_producer = secure_kafka.settings("producer-a", "scram", topic_prefix=topic_prefix)
    async with e2e.running(producer(env, as_producer, cluster="a", ns=namespace), fold, serve):
        await check_equal_to_promtool(env, serve, jobs, tmp_path)
