"""What Kafka refused and why, from what aiokafka 0.14 raises: one pure mapping, so every
client (producer, fold, sinks reader) says the same thing about the same refusal.

What aiokafka raises (read in its source: conn.py, client.py, fetcher.py,
group_coordinator.py, producer/sender.py):

- Wrong password or unknown user (PLAIN, SCRAM): `SaslAuthenticationFailed` (errno 58)
  from the SaslAuthenticate answer, inside the connection. A client's `start()` never
  shows it: `AIOKafkaClient.bootstrap` logs each host's error and raises a bare
  `KafkaConnectionError("Unable to bootstrap from [...]")`, without the cause. So a
  connection error is diagnosed by connecting once more ourselves (`kafka_access.probe`).
- A mechanism the listener does not offer: `UnsupportedSaslMechanismError` (same path).
- Unknown CA or a name the certificate does not carry: `ssl.SSLCertVerificationError`
  from `loop.create_connection` (same path).
- The broker refusing our client certificate (or its absence): under TLS 1.3 the alert
  comes after the handshake, so it is an `ssl.SSLError` ("tlsv13 alert certificate
  required", "sslv3 alert bad certificate") on the first request, or a closed connection.
- A topic ACL: `TopicAuthorizationFailedError(topic)` from `send()` (metadata), a
  produce answer, a fetch (raised by `getmany()`); error code 29 inside CreateTopics,
  DescribeConfigs and Metadata answers (see `from_code`).
- A group ACL: `GroupAuthorizationFailedError(group)` from FindCoordinator, JoinGroup or
  Heartbeat, raised by `getmany()`.
- A cluster ACL: `ClusterAuthorizationFailedError` (e.g. CreateTopics without CREATE).

Each is worth retrying with backoff: passwords and password files are rotated, CA files
replaced and ACLs granted while we run; a new client reads the files again.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from aiokafka import errors

AUTHENTICATION: Final = "authentication"
SASL_MECHANISM: Final = "sasl_mechanism"
TLS_VERIFY: Final = "tls_verify"
TLS: Final = "tls"
TOPIC_DENIED: Final = "topic_denied"
GROUP_DENIED: Final = "group_denied"
CLUSTER_DENIED: Final = "cluster_denied"
REASONS: Final = (AUTHENTICATION, SASL_MECHANISM, TLS_VERIFY, TLS, TOPIC_DENIED,
                  GROUP_DENIED, CLUSTER_DENIED)  # fmt: skip

_BY_CODE: Final = {
    errors.TopicAuthorizationFailedError.errno: TOPIC_DENIED,
    errors.GroupAuthorizationFailedError.errno: GROUP_DENIED,
    errors.ClusterAuthorizationFailedError.errno: CLUSTER_DENIED,
    errors.SaslAuthenticationFailed.errno: AUTHENTICATION,
}
_BY_CLASS: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (errors.SaslAuthenticationFailed, AUTHENTICATION),
    (errors.AuthenticationFailedError, AUTHENTICATION),
    (errors.IllegalSaslStateError, AUTHENTICATION),
    (errors.UnsupportedSaslMechanismError, SASL_MECHANISM),
    (errors.AuthenticationMethodNotSupported, SASL_MECHANISM),
    (ssl.SSLCertVerificationError, TLS_VERIFY),
    (ssl.SSLError, TLS),
    (errors.TopicAuthorizationFailedError, TOPIC_DENIED),
    (errors.GroupAuthorizationFailedError, GROUP_DENIED),
    (errors.ClusterAuthorizationFailedError, CLUSTER_DENIED),
)
_CHAIN_DEPTH: Final = 8
# What a refused connection can look like to a client: the bootstrap's bare error, a
# closed connection, and (OAUTHBEARER, see kafka_probe) a node that never becomes ready.
_PROBED: Final = (errors.KafkaConnectionError, errors.NodeNotReadyError)


@dataclass(frozen=True)
class Refusal:
    reason: str  # one of REASONS: the metric label
    detail: str  # what the broker or TLS said, one line (never a secret: see _detail)
    resource: str | None = None  # the topic(s) or group, when the error names them


def classify(exc: BaseException) -> Refusal | None:
    """The refusal `exc` (or an exception it was raised from) stands for, or None when it
    is something else (a broker away, a timeout, a bug)."""
    for error in _chain(exc):
        for kind, reason in _BY_CLASS:
            if isinstance(error, kind):
                resource = _resource(error, reason)
                return Refusal(reason, _detail(error, resource), resource)
    return None


def from_code(code: int, resource: str) -> Refusal | None:
    """The refusal a Kafka error code inside an answer (CreateTopics, DescribeConfigs,
    Metadata) stands for, or None."""
    reason = _BY_CODE.get(code)
    if reason is None:
        return None
    return Refusal(reason, errors.for_code(code).message, resource)


def needs_probe(exc: BaseException) -> bool:
    """Whether `exc` may hide a refusal that only a connection of our own can show: the
    bootstrap error carries no cause, a closed connection may be a TLS alert, and a node
    never ready may be a refused OAUTHBEARER token."""
    return classify(exc) is None and any(isinstance(e, _PROBED) for e in _chain(exc))


def explain(refusal: Refusal, *, broker: str, principal: str, doing: str) -> str:
    """The one line an operator reads: who was refused by which broker, doing what, why."""
    said = f" ({refusal.detail})" if refusal.detail else ""
    where = f"Kafka at {broker}"
    match refusal.reason:
        case "authentication":
            return (f"{where} refused {principal} while {doing}: SASL authentication "
                    f"failed{said}; check sasl_username and the password (a password "
                    "file is read again at each try)")  # fmt: skip
        case "sasl_mechanism":
            return (f"{where} refused {principal} while {doing}: SASL mechanism not "
                    f"offered on this listener{said}; check sasl_mechanism")  # fmt: skip
        case "tls_verify":
            return (f"TLS to {where} failed for {principal} while {doing}: the broker's "
                    f"certificate was not verified{said}; check ssl_cafile and the host "
                    "name in bootstrap")  # fmt: skip
        case "tls":
            return (f"TLS to {where} failed for {principal} while {doing}{said}; check "
                    "ssl_certfile/ssl_keyfile (the broker may require a client "
                    "certificate it trusts) and security_protocol")  # fmt: skip
    kind = {TOPIC_DENIED: "topic", GROUP_DENIED: "consumer group"}.get(refusal.reason)
    target = f"{kind} {refusal.resource}" if kind and refusal.resource else "the cluster"
    return (f"{where} denied {principal} access to {target} while {doing}{said}; "
            "grant the ACL or fix the principal")  # fmt: skip


def principal(
    *,
    protocol: str,
    mechanism: str | None,
    username: str | None,
    subject: str | None,
    token_file: str | None = None,
) -> str:
    """Who the broker sees, as far as the client knows: the SASL user (or the subject of
    the OAUTHBEARER token in `token_file`), else the client certificate's subject, else an
    anonymous client."""
    if mechanism == "OAUTHBEARER":
        return f"the OAUTHBEARER token in {token_file}"
    if mechanism is not None and username is not None:
        return f"SASL user {username!r} ({mechanism})"
    if subject is not None:
        return f"client certificate {subject!r}"
    return f"an anonymous client ({protocol})"


def subject_name(subject: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """A certificate subject as Kafka prints a principal (RFC 2253: last RDN first),
    from the shape `ssl` decodes certificates into."""
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
             "domainComponent": "DC"}  # fmt: skip
    return ",".join(
        "+".join(f"{short.get(key, key)}={value}" for key, value in rdn)
        for rdn in reversed(subject)
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_DEPTH:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _detail(error: BaseException, resource: str | None) -> str:
    """The broker's or TLS's own words. aiokafka puts the connection object, or the topic
    or group, in some errors' args: those are dropped (the topic is `resource`)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return getattr(error, "reason", None) or " ".join(str(error).split())
    if isinstance(error, errors.BrokerResponseError):
        said = error.args[0] if error.args and isinstance(error.args[0], str) else ""
        text = said if said and said != resource else ""
        return f"{error.message}: {text}" if text else error.message
    return " ".join(str(error).split())


def _resource(error: BaseException, reason: str) -> str | None:
    if reason not in (TOPIC_DENIED, GROUP_DENIED) or not error.args:
        return None
    named = error.args[0]
    if isinstance(named, str):
        return named
    if isinstance(named, set | frozenset | list | tuple):
        return ", ".join(sorted(str(n) for n in named))
    return None
