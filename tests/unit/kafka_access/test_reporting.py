"""A refusal is counted by reason, kept for /readyz until the clients work again, and
logged once per LOG_EVERY_S (or not at all when the caller logs it)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from aiokafka import errors
from prometheus_client import CollectorRegistry, Counter

from kafka_access import reporting
from schemas.config import KafkaSettings

SASL = KafkaSettings(
    bootstrap="b:9094", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
    sasl_username="fold", sasl_password="pw-never-shown",
)  # fmt: skip


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def counter() -> tuple[Counter, CollectorRegistry]:
    registry = CollectorRegistry()
    return Counter("refusals", "", ["reason"], registry=registry), registry


def test_counted_kept_and_logged_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    clock, (count, registry) = Clock(), counter()
    refused = reporting.Refusals(SASL, counter=count, clock=clock)
    denied = errors.TopicAuthorizationFailedError("sd.b.pods")
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            line = refused.check_now(denied, doing="reading object topics")
        clock.now = reporting.LOG_EVERY_S
        refused.check_now(denied, doing="reading object topics")
    assert line is not None
    assert refused.problem == line
    assert registry.get_sample_value("refusals_total", {"reason": "topic_denied"}) == 4
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert logged == [f"{line}."] * 2
    assert "sd.b.pods" in line
    assert "SASL user 'fold'" in line
    assert "pw-never-shown" not in caplog.text
    with caplog.at_level(logging.INFO):
        refused.clear()
    assert refused.problem is None
    assert "accepts our clients again" in caplog.text


def test_no_refusal_is_neither_counted_nor_kept() -> None:
    count, registry = counter()
    refused = reporting.Refusals(SASL, counter=count)
    assert refused.check_now(errors.KafkaTimeoutError(), doing="x") is None
    assert refused.problem is None
    assert registry.get_sample_value("refusals_total", {"reason": "topic_denied"}) is None


def test_a_caller_that_logs_itself_gets_the_line_only(caplog: pytest.LogCaptureFixture) -> None:
    refused = reporting.Refusals(SASL, log=False)
    line = refused.check_now(errors.GroupAuthorizationFailedError("g"), doing="x", keep=False)
    assert line is not None
    assert "consumer group g" in line
    assert refused.problem is None  # keep=False: the caller tracks health
    assert not caplog.records


async def test_a_connection_error_is_diagnosed_by_a_connection_of_our_own() -> None:
    """Nothing listens on the port: the probe finds a refused connection, no refusal."""
    refused = reporting.Refusals(KafkaSettings(bootstrap="127.0.0.1:1"))
    bootstrap = errors.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1, 0)]")
    assert await refused.check(bootstrap, doing="starting") is None


def test_the_principal_of_mutual_tls_is_the_certificate_subject(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", tmp_path / "c.key", "-out", tmp_path / "c.crt", "-days", "1",
         "-subj", "/O=sdstream/CN=fold"],
        check=True, capture_output=True,
    )  # fmt: skip
    settings = KafkaSettings(
        security_protocol="SSL", ssl_certfile=tmp_path / "c.crt", ssl_keyfile=tmp_path / "c.key"
    )
    assert reporting.Refusals(settings).principal == "client certificate 'CN=fold,O=sdstream'"
    assert reporting.certificate_subject(tmp_path / "missing.crt") is None
