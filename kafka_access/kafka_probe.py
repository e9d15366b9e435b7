"""One connection of our own to each bootstrap broker, to learn why a client could not
connect: aiokafka's bootstrap logs the real error (a failed SASL authentication, an
unverified certificate) and raises a bare KafkaConnectionError without it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import conn
from aiokafka.errors import KafkaError

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
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                connection = await conn.create_conn(
                    host, port, request_timeout_ms=int(PROBE_TIMEOUT_S * 1000), **wanted
                )
        except (OSError, KafkaError, TimeoutError) as exc:
            return f"{host}:{port}", exc
        connection.close()
    return None
