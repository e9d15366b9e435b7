"""The keyword arguments every aiokafka client of ours gets, built from `KafkaSettings`:
the TLS context, the SASL password, and the OAUTHBEARER token provider (an aiokafka class).

Why here and not on the settings model: building them reads files (password, key, token)
and makes an SSL context, run-time work for the Kafka edge; `schemas.config` holds the
contract, what may be set and which combinations make sense.

A client built from these reads secrets again: a password file at each call of
`client_options` (each new client), a token file at each authentication (each new
connection), so files rotated while we run are used without a restart.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Final

from aiokafka.abc import AbstractTokenProvider

from schemas.config import KafkaSettings

_TLS: Final = ("SSL", "SASL_SSL")


def read_secret(path: Path) -> str:
    """A password file's content, less one trailing newline (what `echo` adds)."""
    text = path.read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # untyped base
    """The token in `path`, read at every `token()` call: aiokafka asks once per
    authentication, so a rotated file is used by the next connection."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def token(self) -> str:
        return read_secret(self._path).strip()

    def __repr__(self) -> str:  # never the token
        return f"FileTokenProvider({str(self._path)!r})"


def password(kafka: KafkaSettings) -> str | None:
    """The SASL password, from `sasl_password` or read from `sasl_password_file`."""
    if kafka.sasl_password_file is not None:
        return read_secret(kafka.sasl_password_file)
    return None if kafka.sasl_password is None else kafka.sasl_password.get_secret_value()


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """The TLS context: `ssl_cafile` (or the system CAs) and the client certificate."""
    cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile else None
    context = ssl.create_default_context(cafile=cafile)
    if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
        secret = kafka.ssl_keyfile_password_file
        context.load_cert_chain(
            kafka.ssl_certfile,
            kafka.ssl_keyfile,
            password=None if secret is None else read_secret(secret),
        )
    return context


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection keyword arguments shared by every aiokafka client we create."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in _TLS:
        options["ssl_context"] = ssl_context(kafka)
    if kafka.sasl_mechanism == "OAUTHBEARER":
        path = kafka.sasl_oauth_token_file
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_oauth_token_provider"] = FileTokenProvider(path) if path is not None else None
    elif kafka.sasl_mechanism is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = password(kafka)
    return options
