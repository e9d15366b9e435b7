"""The HTTP server's TLS context, from `tls_server_config`, reloaded when its files change.

Certificates are rotated by replacing files (cert-manager, a Kubernetes secret mount), and
a process that must restart to pick them up serves an expired certificate the day someone
forgets. So, like the exporter-toolkit, new connections see the files as they are now:
every TLS handshake stats `cert_file`, `key_file` and `client_ca_file` (a few microseconds
against a handshake's milliseconds) from the context's `sni_callback`, which OpenSSL calls
for every ClientHello, with or without SNI. When a file changed, a fresh context is built
and swapped into that connection and every later one. A reload that fails (a key that
does not match its certificate half-way through a rotation, a missing file) keeps the old
context and logs one warning per change of the files; the next change is tried again.
Outcomes are counted: `sdstream_http_tls_reloads_total{result="ok"|"failed"}`.

`client_auth_type` maps to Python's verify modes: NoClientCert -> CERT_NONE,
VerifyClientCertIfGiven -> CERT_OPTIONAL, RequireAndVerifyClientCert -> CERT_REQUIRED
(the other toolkit values are refused by the model). A failed client verification ends
the handshake: no HTTP request is ever seen.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter

from schemas.web_config import TlsServerConfig

logger = logging.getLogger(__name__)

_VERSIONS: Final = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_VERIFY: Final = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class TlsFilesError(Exception):
    """A certificate, key or CA that does not load; the message names the field(s)."""


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())


def _encrypted() -> bytes:
    """Asked for only when the key is encrypted: without it OpenSSL would prompt on the
    terminal (and a reload from the handshake callback would hang the event loop)."""
    raise ValueError("the key is encrypted; the web config file takes an unencrypted key")


def build_context(config: TlsServerConfig) -> ssl.SSLContext:
    """A server context from the files as they are now. TlsFilesError naming the field."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[config.min_version]
    context.maximum_version = _VERSIONS[config.max_version]
    if config.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    ciphers = config.openssl_ciphers
    if ciphers is not None:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TlsFilesError(f"tls_server_config.cipher_suites: none usable: {exc}") from exc
    try:
        context.load_cert_chain(str(config.cert_file), str(config.key_file), password=_encrypted)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise TlsFilesError(
            f"tls_server_config.cert_file, tls_server_config.key_file: {config.cert_file}, "
            f"{config.key_file}: not a certificate and its key: {_one_line(exc)}"
        ) from exc
    context.verify_mode = _VERIFY[config.client_auth_type]
    if config.client_ca_file is not None or config.client_ca is not None:
        _load_client_ca(context, config)
    return context


def _load_client_ca(context: ssl.SSLContext, config: TlsServerConfig) -> None:
    where = (
        f"tls_server_config.client_ca_file: {config.client_ca_file}"
        if config.client_ca_file is not None
        else "tls_server_config.client_ca"
    )
    try:
        if config.client_ca_file is not None:
            context.load_verify_locations(cafile=str(config.client_ca_file))
        else:
            context.load_verify_locations(cadata=config.client_ca)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise TlsFilesError(f"{where}: no CA certificate loads: {_one_line(exc)}") from exc


Signature = tuple[tuple[int, int, int] | None, ...]


def _files(config: TlsServerConfig) -> tuple[Path, ...]:
    paths = (config.cert_file, config.key_file, config.client_ca_file)
    return tuple(path for path in paths if path is not None)


def _signature(paths: tuple[Path, ...]) -> Signature:
    """What tells a file changed: modification time, size, inode (None: cannot stat)."""
    signature: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            signature.append(None)
        else:
            signature.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(signature)


class ReloadingTls:
    """`ReloadingTls(config, registry=...).context` goes to the server; TlsFilesError at
    construction when the files do not load."""

    def __init__(self, config: TlsServerConfig, *, registry: CollectorRegistry) -> None:
        self._config = config
        self._paths = _files(config)
        self._signature = _signature(self._paths)
        self.context = build_context(config)
        self.context.sni_callback = self._hello
        self._current = self.context
        self._reloads = Counter(
            "sdstream_http_tls_reloads_total",
            "Reloads of the TLS certificate, key and client CA files, by result.",
            ["result"],
            registry=registry,
        )
        for result in ("ok", "failed"):
            self._reloads.labels(result)

    def _hello(self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        self.refresh()
        if self._current is not self.context:
            connection.context = self._current

    def refresh(self) -> ssl.SSLContext:
        """The context new connections get: rebuilt if a file changed since last time."""
        signature = _signature(self._paths)
        if signature == self._signature:
            return self._current
        self._signature = signature
        try:
            self._current = build_context(self._config)
        except TlsFilesError as exc:
            self._reloads.labels("failed").inc()
            logger.warning("Keeping the current TLS certificate: %s", exc,
                           extra={"reason": "tls_reload_failed"})  # fmt: skip
        else:
            self._reloads.labels("ok").inc()
            logger.info("Reloaded the TLS certificate from %s.", self._config.cert_file,
                        extra={"path": str(self._config.cert_file)})  # fmt: skip
        return self._current
