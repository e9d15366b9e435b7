"""The keyword arguments every aiokafka client of ours gets, with what `schemas` may not
build itself: the OAUTHBEARER token provider (an aiokafka class).

A client built from these reads secrets again: a password file at each call of this
function (each new client), a token file at each authentication (each new connection),
so files rotated while we run are used without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider

from schemas.config import KafkaSettings, read_secret


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # untyped base
    """The token in `path`, read at every `token()` call: aiokafka asks once per
    authentication, so a rotated file is used by the next connection."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def token(self) -> str:
        return read_secret(self._path).strip()

    def __repr__(self) -> str:  # never the token
        return f"FileTokenProvider({str(self._path)!r})"


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """`kafka.client_options()`, with the token provider OAUTHBEARER needs."""
    path = kafka.sasl_oauth_token_file
    provider = FileTokenProvider(path) if path is not None else None
    return kafka.client_options(token_provider=provider)
