"""The mapping from what aiokafka raises to what Kafka refused: every case it raises (read
from aiokafka 0.14's source), chained as our edges chain them, and the operator's line."""

from __future__ import annotations

import ssl

import pytest
from aiokafka import errors

from kafka_access import refusals

SCRAM_SAID = (
    "Authentication failed during authentication due to invalid credentials with SASL "
    "mechanism SCRAM-SHA-512"
)


def unverified() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify")
    error.verify_message = "unable to get local issuer certificate"
    return error


def chained(error: BaseException) -> BaseException:
    """As our edges raise: a failure of ours from a connection error from the cause."""
    middle = errors.KafkaConnectionError("Connection at h:1 closed")
    middle.__cause__ = error
    outer = RuntimeError("reading t")
    outer.__cause__ = middle
    return outer


@pytest.mark.parametrize(
    ("error", "reason", "resource", "detail"),
    [
        (errors.SaslAuthenticationFailed(SCRAM_SAID), "authentication", None, SCRAM_SAID),
        (errors.UnsupportedSaslMechanismError("not enabled"), "sasl_mechanism", None,
         "not enabled"),
        (unverified(), "tls_verify", None, "unable to get local issuer certificate"),
        (ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"), "tls", None, "SSL"),
        (errors.TopicAuthorizationFailedError("sd.b.pods"), "topic_denied", "sd.b.pods",
         "TOPIC_AUTHORIZATION_FAILED"),
        (errors.TopicAuthorizationFailedError({"sd.b.pods", "sd.a.pods"}), "topic_denied",
         "sd.a.pods, sd.b.pods", "TOPIC_AUTHORIZATION_FAILED"),
        (errors.GroupAuthorizationFailedError("fold"), "group_denied", "fold",
         "GROUP_AUTHORIZATION_FAILED"),
        (errors.ClusterAuthorizationFailedError(), "cluster_denied", None, "CLUSTER_AUTH"),
    ],
)  # fmt: skip
def test_each_refusal_is_classified_even_when_chained(
    error: BaseException, reason: str, resource: str | None, detail: str
) -> None:
    for raised in (error, chained(error)):
        refusal = refusals.classify(raised)
        assert refusal is not None
        assert (refusal.reason, refusal.resource) == (reason, resource)
        assert detail in refusal.detail
        assert refusal.reason in refusals.REASONS


def test_the_handshake_error_that_carries_the_connection_keeps_no_repr_of_it() -> None:
    class Conn:
        def __repr__(self) -> str:
            return "<AIOKafkaConnection password=hunter2>"

    refusal = refusals.classify(errors.SaslAuthenticationFailed(Conn()))
    assert refusal is not None
    assert "hunter2" not in refusal.detail


@pytest.mark.parametrize(
    "error",
    [errors.KafkaConnectionError("Unable to bootstrap from [('h', 1, 0)]"),
     errors.KafkaTimeoutError(), errors.NotLeaderForPartitionError(), ConnectionRefusedError(),
     ValueError("a bug")],
)  # fmt: skip
def test_anything_else_is_no_refusal(error: BaseException) -> None:
    assert refusals.classify(error) is None


def test_only_a_connection_error_needs_a_probe() -> None:
    bootstrap = errors.KafkaConnectionError("Unable to bootstrap from [('h', 1, 0)]")
    assert refusals.needs_probe(bootstrap)
    assert refusals.needs_probe(chained(ConnectionResetError()))
    assert refusals.needs_probe(errors.NodeNotReadyError("node id None"))  # OAUTHBEARER
    assert not refusals.needs_probe(chained(unverified()))  # already known
    assert not refusals.needs_probe(errors.TopicAuthorizationFailedError("t"))
    assert not refusals.needs_probe(errors.KafkaTimeoutError())


@pytest.mark.parametrize(
    ("code", "reason"),
    [(29, "topic_denied"), (30, "group_denied"), (31, "cluster_denied"), (58, "authentication"),
     (36, None), (0, None)],
)  # fmt: skip
def test_error_codes_in_answers(code: int, reason: str | None) -> None:
    refusal = refusals.from_code(code, "t")
    assert (refusal.reason if refusal else None) == reason


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (errors.SaslAuthenticationFailed(SCRAM_SAID),
         ["Kafka at b:9094", "SASL user 'fold' (SCRAM-SHA-512)", "while starting", SCRAM_SAID,
          "sasl_username"]),
        (unverified(), ["TLS to Kafka at b:9094", "not verified", "ssl_cafile",
                        "unable to get local issuer certificate"]),
        (errors.TopicAuthorizationFailedError("sd.b.pods"),
         ["denied SASL user 'fold'", "topic sd.b.pods", "grant the ACL"]),
        (errors.GroupAuthorizationFailedError("g1"), ["consumer group g1"]),
        (errors.ClusterAuthorizationFailedError(), ["the cluster"]),
        (errors.UnsupportedSaslMechanismError("x"), ["sasl_mechanism"]),
        (ssl.SSLError(1, "x"), ["ssl_certfile"]),
    ],
)  # fmt: skip
def test_the_line_names_broker_principal_and_topic_or_group(
    error: BaseException, words: list[str]
) -> None:
    refusal = refusals.classify(error)
    assert refusal is not None
    principal = refusals.principal(
        protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username="fold", subject=None
    )
    line = refusals.explain(refusal, broker="b:9094", principal=principal, doing="starting")
    for word in words:
        assert word in line
    assert "\n" not in line


def test_principal_is_the_sasl_user_else_the_certificate_subject_else_anonymous() -> None:
    assert (
        refusals.principal(protocol="SASL_SSL", mechanism="PLAIN", username="u", subject="CN=c")
        == "SASL user 'u' (PLAIN)"
    )
    assert (
        refusals.principal(protocol="SSL", mechanism=None, username=None, subject="CN=c,O=o")
        == "client certificate 'CN=c,O=o'"
    )
    assert (
        refusals.principal(protocol="SSL", mechanism=None, username=None, subject=None)
        == "an anonymous client (SSL)"
    )


def test_a_subject_reads_as_kafka_prints_the_principal() -> None:
    decoded = ((("organizationName", "sdstream"),), (("commonName", "fold"),))
    assert refusals.subject_name(decoded) == "CN=fold,O=sdstream"
