"""One connection of our own to each bootstrap broker, to learn why a client could not
connect: aiokafka's bootstrap logs the real error (a failed SASL authentication, an
unverified certificate) and raises a bare KafkaConnectionError without it.

OAUTHBEARER needs one more step. aiokafka 0.14's OAuthAuthenticator stops after sending
the token and never reads the broker's error challenge (`{"status":"invalid_token"}`),
so a refused token looks like a connection that works but whose Metadata answer lists
no broker (the client then fails with NodeNotReadyError for "node id None"). The probe
asks for Metadata, and an answer without brokers is reported as the failed
authentication it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed
from aiokafka.protocol.metadata import MetadataRequest

from schemas.config import KafkaSettings

PROBE_TIMEOUT_S = 10.0
_CONN_OPTIONS = (
    "client_id",
    "ssl_context",
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_oauth_token_provider",
)


async def connect_error(
    kafka: KafkaSettings, options: dict[str, Any]
) -> tuple[str, BaseException] | None:
    """The first bootstrap broker's connection error (`host:port`, error), or None when
    every one accepts a connection with these client `options` (the same a client got)."""
    wanted = {k: v for k, v in options.items() if k in _CONN_OPTIONS}
    for host, port, _ in conn.collect_hosts(kafka.bootstrap, randomize=False):
        error = await _probe(host, port, wanted)
        if error is not None:
            return f"{host}:{port}", error
    return None


async def _probe(host: str, port: int, options: dict[str, Any]) -> BaseException | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            connection = await conn.create_conn(
                host, port, request_timeout_ms=int(PROBE_TIMEOUT_S * 1000), **options
            )
    except (OSError, KafkaError, TimeoutError) as exc:
        return exc
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            return await _token_refused(connection, options)
    except (OSError, KafkaError, TimeoutError) as exc:
        return exc
    finally:
        connection.close()


async def _token_refused(connection: Any, options: dict[str, Any]) -> KafkaError | None:
    """Under OAUTHBEARER: the refusal aiokafka did not see, if the broker took no token."""
    if options.get("sasl_mechanism") != "OAUTHBEARER":
        return None
    answer = await connection.send(MetadataRequest([]))
    if answer.brokers:
        return None
    return SaslAuthenticationFailed(
        "the broker did not accept the OAUTHBEARER token (it answered as an "
        "unauthenticated connection; check the token's expiry and subject)"
    )
