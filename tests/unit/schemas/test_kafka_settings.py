"""Kafka client settings: every combination aiokafka would silently ignore or fail on late is
refused at load, naming the fields; secrets and client certificates come from files that are
checked at load and never shown."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pydantic
import pytest

from kafka_access import kafka_options
from schemas.config import KafkaSettings, kafka_inconsistency
from sdstream import settings

SECRET = "s3cr3t-Pa55"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two self-signed certificate/key pairs (a, b), a.key encrypted, a password file."""
    tmp = tmp_path_factory.mktemp("pem")
    openssl = shutil.which("openssl")
    assert openssl is not None, "the tests make their PEM files with openssl"
    for name in ("a", "b"):
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", tmp / f"{name}.key", "-out", tmp / f"{name}.crt",
             "-days", "1", "-subj", f"/CN={name}"],
            check=True, capture_output=True,
        )  # fmt: skip
    (tmp / "keypass").write_text("k3y-pass\n")
    subprocess.run(
        [openssl, "pkey", "-in", tmp / "a.key", "-aes256", "-passout", f"file:{tmp / 'keypass'}",
         "-out", tmp / "a.enc.key"],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp / "password").write_text(SECRET + "\n")
    (tmp / "not.pem").write_text("not a certificate\n")
    return tmp


SASL = {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u", "sasl_password": "p"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"sasl_username": "u", "sasl_password": "p"},
         ["sasl_username, sasl_password", "PLAINTEXT"]),
        ({"sasl_mechanism": "PLAIN"}, ["sasl_mechanism", "PLAINTEXT"]),
        ({"security_protocol": "SSL"} | SASL, ["sasl_mechanism", "SSL"]),
        ({"sasl_password_file": "/p"}, ["sasl_password_file", "PLAINTEXT"]),
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"},
         ["SASL_SSL needs sasl_mechanism"]),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"},
         ["needs sasl_username, sasl_password (or sasl_password_file)"]),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
         ["needs sasl_password"]),
        ({"security_protocol": "SASL_SSL"}, ["needs sasl_mechanism, sasl_username, sasl_password"]),
        ({"security_protocol": "SASL_SSL", "sasl_password_file": "/p"} | SASL,
         ["sasl_password and sasl_password_file"]),
        ({"ssl_cafile": "/ca.pem"}, ["ssl_cafile", "PLAINTEXT", "does not use TLS"]),
        ({"security_protocol": "SASL_PLAINTEXT", "ssl_certfile": "/c", "ssl_keyfile": "/k"} | SASL,
         ["ssl_certfile, ssl_keyfile", "SASL_PLAINTEXT"]),
        ({"security_protocol": "SSL", "ssl_certfile": "/c"}, ["ssl_certfile and ssl_keyfile"]),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k"}, ["ssl_certfile and ssl_keyfile"]),
        ({"security_protocol": "SSL", "ssl_keyfile_password_file": "/p"},
         ["ssl_keyfile_password_file set without ssl_keyfile"]),
    ],
)  # fmt: skip
def test_an_inconsistent_combination_is_refused_naming_the_fields(
    fields: dict[str, Any], named: list[str]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        KafkaSettings.model_validate(fields)
    (error,) = caught.value.errors()
    for part in named:
        assert part in error["msg"]
    assert "\n" not in error["msg"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"security_protocol": "SSL"},
        {"security_protocol": "SSL", "ssl_cafile": "/ca", "ssl_certfile": "/c", "ssl_keyfile": "/k",
         "ssl_keyfile_password_file": "/p"},
        {"security_protocol": "SASL_PLAINTEXT"} | SASL,
        {"security_protocol": "SASL_SSL", "ssl_cafile": "/ca"} | SASL,
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u",
         "sasl_password_file": "/p", "ssl_certfile": "/c", "ssl_keyfile": "/k"},
    ],
)  # fmt: skip
def test_a_consistent_combination_is_accepted(fields: dict[str, Any]) -> None:
    assert kafka_inconsistency(KafkaSettings.model_validate(fields)) is None


def _load(monkeypatch: pytest.MonkeyPatch, **env: str | Path) -> settings.ConsumerAppSettings:
    for name, value in env.items():
        monkeypatch.setenv(f"SDSTREAM_KAFKA_{name.upper()}", str(value))
    return settings.load(settings.ConsumerAppSettings)


def test_the_password_file_is_read_less_one_newline_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, pem: Path
) -> None:
    loaded = _load(monkeypatch, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
                   sasl_username="u", sasl_password_file=pem / "password")  # fmt: skip

    assert kafka_options.client_options(loaded.kafka)["sasl_plain_password"] == SECRET
    assert SECRET not in repr(loaded)
    assert SECRET not in str(loaded)
    assert SECRET not in loaded.model_dump_json()


def test_only_one_trailing_newline_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("pass\n\n")
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_username="u", sasl_password_file=tmp_path / "p")  # fmt: skip
    assert kafka_options.password(kafka) == "pass\n"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"sasl_password_file": "{pem}/nope"}, "kafka.sasl_password_file: {pem}/nope"),
        ({"sasl_password_file": "{pem}"}, "kafka.sasl_password_file: {pem} is a directory"),
        ({"ssl_certfile": "{pem}/nope.crt", "ssl_keyfile": "{pem}/a.key"},
         "kafka.ssl_certfile: {pem}/nope.crt"),
        ({"ssl_certfile": "{pem}/a.crt", "ssl_keyfile": "{pem}/nope.key"},
         "kafka.ssl_keyfile: {pem}/nope.key"),
        ({"ssl_certfile": "{pem}/a.crt", "ssl_keyfile": "{pem}/b.key"},
         "kafka.ssl_certfile, kafka.ssl_keyfile: {pem}/a.crt, {pem}/b.key"),
        ({"ssl_certfile": "{pem}/not.pem", "ssl_keyfile": "{pem}/a.key"},
         "kafka.ssl_certfile, kafka.ssl_keyfile: {pem}/not.pem, {pem}/a.key"),
        ({"ssl_certfile": "{pem}/a.crt", "ssl_keyfile": "{pem}/a.enc.key",
          "ssl_keyfile_password_file": "{pem}/password"},
         "kafka.ssl_certfile, kafka.ssl_keyfile: {pem}/a.crt, {pem}/a.enc.key"),
        ({"ssl_cafile": "{pem}/not.pem"}, "kafka.ssl_cafile: {pem}/not.pem"),
        ({"ssl_cafile": "{pem}/nope"}, "kafka.ssl_cafile: {pem}/nope"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_field_and_file(
    monkeypatch: pytest.MonkeyPatch, pem: Path, env: dict[str, str], named: str
) -> None:
    filled = {k: v.format(pem=pem) for k, v in env.items()}
    protocol = "SASL_SSL" if "sasl_password_file" in env else "SSL"
    sasl = {"sasl_mechanism": "PLAIN", "sasl_username": "u"} if protocol == "SASL_SSL" else {}

    with pytest.raises(settings.SettingsError) as caught:
        _load(monkeypatch, security_protocol=protocol, **sasl, **filled)

    message = str(caught.value)
    assert message.startswith(named.format(pem=pem)), message
    assert "\n" not in message
    assert SECRET not in message
    assert "k3y-pass" not in message


def test_an_empty_password_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(settings.SettingsError, match=r"kafka\.sasl_password_file: .* is empty"):
        _load(monkeypatch, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
              sasl_username="u", sasl_password_file=tmp_path / "empty")  # fmt: skip


@pytest.mark.parametrize("key", ["a.key", "a.enc.key"])
def test_a_client_certificate_goes_into_the_ssl_context(
    monkeypatch: pytest.MonkeyPatch, pem: Path, key: str
) -> None:
    extra = {"ssl_keyfile_password_file": pem / "keypass"} if key == "a.enc.key" else {}
    loaded = _load(monkeypatch, security_protocol="SSL", ssl_cafile=pem / "b.crt",
                   ssl_certfile=pem / "a.crt", ssl_keyfile=pem / key, **extra)  # fmt: skip

    context = kafka_options.client_options(loaded.kafka)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "b"),),)]


def test_sasl_with_plaintext_through_the_environment_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(settings.SettingsError, match=r"^invalid settings: kafka: sasl_username"):
        _load(monkeypatch, sasl_username="u", sasl_password="p")
