"""The secured devstack's pure parts: ACL bindings, broker properties, client settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kafka_access import kafka_options
from sdstream import cli, settings
from sdstream.devstack import kafka_acls, secure, servers
from sdstream.devstack.kafka_acls import Binding, Operation, Pattern, Resource

TOPIC, GROUP = Resource.TOPIC, Resource.GROUP
PREFIXED, LITERAL = Pattern.PREFIXED, Pattern.LITERAL


def granted(principal: str, prefix: str = "p") -> set[tuple[Resource, str, Pattern, Operation]]:
    return {
        (b.resource, b.name, b.pattern, b.operation)
        for b in kafka_acls.bindings(prefix, ("a", "b"))
        if b.principal == principal
    }


def test_a_producer_may_use_only_its_own_clusters_topics() -> None:
    assert granted("producer-a") == {
        (TOPIC, "p.a.", PREFIXED, op)
        for op in (Operation.CREATE, Operation.WRITE, Operation.READ, Operation.DESCRIBE,
                   Operation.DESCRIBE_CONFIGS)
    }  # fmt: skip


def test_the_fold_reads_every_topic_of_the_prefix_and_writes_only_targets() -> None:
    writes = {(r, n, p) for r, n, p, op in granted("fold") if op in (Operation.WRITE,
                                                                     Operation.CREATE)}  # fmt: skip
    assert writes == {(TOPIC, "p.targets", LITERAL)}
    assert (TOPIC, "p.", PREFIXED, Operation.READ) in granted("fold")
    assert (GROUP, "p", PREFIXED, Operation.READ) in granted("fold")


def test_the_sink_reads_the_targets_topic_and_what_monitor_jobs_come_from() -> None:
    """Never an object topic beyond monitors and namespaces, never a write."""
    topics = ["p.targets"] + [
        f"p.{c}.{r}" for c in ("a", "b") for r in ("servicemonitors", "podmonitors", "namespaces")
    ]
    assert granted("sink") == {(TOPIC, t, LITERAL, op) for t in topics
                               for op in (Operation.READ, Operation.DESCRIBE)}  # fmt: skip


def test_bindings_of_two_prefixes_never_overlap() -> None:
    assert not set(kafka_acls.bindings("p", ("a",))) & set(kafka_acls.bindings("q", ("a",)))
    assert Binding("producer-a", TOPIC, "p.a.", PREFIXED, Operation.WRITE) in (
        kafka_acls.bindings("p", ("a",))
    )


@pytest.fixture
def made(tmp_path: Path) -> secure.Secrets:
    return secure.write_secrets(tmp_path / "s", users=secure.principals(("a",)))


def test_the_broker_properties_add_listeners_beside_plaintext(made: secure.Secrets) -> None:
    ports = {"SSL": 2, "SASL_SSL": 3, "SASL_PLAINTEXT": 4}
    text = servers._kafka_properties(
        Path("/run"), broker=1, controller=9, extra=secure.listener_properties(made, ports=ports)
    )
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert lines["listeners"] == (
        "PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:9,SSL://127.0.0.1:2,"
        "SASL_SSL://127.0.0.1:3,SASL_PLAINTEXT://127.0.0.1:4"
    )
    assert lines["listener.security.protocol.map"].endswith(",SASL_PLAINTEXT:SASL_PLAINTEXT")
    assert lines["super.users"] == "User:ANONYMOUS"
    assert lines["listener.name.ssl.ssl.client.auth"] == "required"
    assert "_listeners" not in lines
    for listener in ("sasl_ssl", "sasl_plaintext"):
        assert lines[f"listener.name.{listener}.sasl.enabled.mechanisms"] == (
            "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER"
        )


def test_scram_users_are_created_for_both_scram_mechanisms(made: secure.Secrets) -> None:
    args = secure.format_args(made)
    password = made.passwords["fold"].read_text().strip()
    assert f"SCRAM-SHA-512=[name=fold,password={password}]" in args
    assert f"SCRAM-SHA-256=[name=fold,password={password}]" in args
    assert args.count("--add-scram") == 2 * len(made.passwords)


def test_secrets_are_private_files(made: secure.Secrets) -> None:
    assert {p.stat().st_mode & 0o777 for p in made.passwords.values()} == {0o600}
    assert made.pki.clients["fold"].key.stat().st_mode & 0o777 == 0o600
    assert made.pki.broker_keystore.stat().st_mode & 0o777 == 0o600


def test_client_files_load_as_producer_settings(made: secure.Secrets, tmp_path: Path) -> None:
    files = secure.write_client_files(
        made, tmp_path / "clients", bootstraps={"scram": "127.0.0.1:3", "mtls": "127.0.0.1:2"}
    )
    assert sorted(files) == sorted(
        f"{p}.{m}" for p in ("producer-a", "fold", "sink") for m in ("scram", "mtls")
    )
    scram = settings.load(settings.ProducerAppSettings, config_file=Path(files["fold.scram"]),
                          cluster="a").kafka  # fmt: skip
    assert scram.bootstrap == "127.0.0.1:3"
    assert kafka_options.password(scram) == made.passwords["fold"].read_text().strip()
    mtls = settings.load(settings.ProducerAppSettings, config_file=Path(files["sink.mtls"]),
                         cluster="a").kafka  # fmt: skip
    assert (mtls.security_protocol, mtls.ssl_certfile) == ("SSL", made.pki.clients["sink"].cert)
    password = made.passwords["fold"].read_text().strip()
    assert password not in Path(files["fold.scram"]).read_text()


def test_certificates_name_their_principal_and_the_broker_its_address(
    made: secure.Secrets,
) -> None:
    """CN=<principal>: the broker maps it to User:<principal>, the SCRAM user's name."""

    def show(cert: Path, what: str) -> str:
        argv = ["openssl", "x509", "-noout", "-in", str(cert), what]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    assert (
        show(made.pki.clients["producer-a"].cert, "-subject").strip() == "subject=CN = producer-a"
    )
    broker = made.pki.broker_keystore.with_name("broker.crt")
    assert "IP Address:127.0.0.1, DNS:localhost" in show(broker, "-ext=subjectAltName")
    verify = ["openssl", "verify", "-CAfile", str(made.pki.ca), str(broker)]
    assert subprocess.run(verify, capture_output=True, check=False).returncode == 0
    # the keystore Kafka reads: key first, then the chain
    assert made.pki.broker_keystore.read_text().startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--secure-clusters", "a,B_x"), ("--secure-clusters", "a,,b"), ("--topic-prefix", "x.y")],
)
def test_bad_names_for_the_secure_devstack_are_usage_errors(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["devstack", "--run-dir", str(tmp_path), "up", "--secure", option, value])
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"argument {option}:" in error
    assert "lower-case letters, digits and '-'" in error
    assert not (tmp_path / "devstack.json").exists()
