"""What the HTTP server's `ssl_context` and `guard` hooks get, from the `http` settings.

`build(http, registry=...)` reads `http.web_config_file` (Prometheus's web configuration
file, `schemas.web_config`) and `http.bearer_token_file` once, at start, and returns the
server's TLS context (reloading its files, `server_tls`) and its guard (`guard`). The web
config file itself is not re-read: changing users or TLS options takes a restart, while
certificates and the bearer token are picked up live.

Relative paths in the web config file are resolved against the file's directory, as
Prometheus does. Every problem is a `settings.SettingsError` naming the file and the field
path: the caller prints it on one line and exits 2, before anything is served.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from schemas.config import HttpSettings
from schemas.web_config import TlsServerConfig, WebConfig
from sdstream import guard, server_tls, settings

logger = logging.getLogger(__name__)

WHAT = "web config file"
SettingsError = settings.SettingsError  # what `load` and `build` raise


def load(path: Path) -> WebConfig:
    """The web config file, relative paths resolved. SettingsError naming the field path."""
    data = settings.read_file(path, what=WHAT)
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise settings.SettingsError(settings.describe(exc, heading=f"{WHAT} {path}")) from exc
    if config.tls_server_config is not None:
        tls = _resolved(config.tls_server_config, path.parent)
        config = config.model_copy(update={"tls_server_config": tls})
        if tls.curve_preferences:
            logger.warning(
                "%s %s: tls_server_config.curve_preferences is not applied (Python's ssl sets "
                "no preference list); OpenSSL's default groups are used.", WHAT, path,
                extra={"path": str(path)},
            )  # fmt: skip
    return config


def _resolved(tls: TlsServerConfig, directory: Path) -> TlsServerConfig:
    paths = {"cert_file": tls.cert_file, "key_file": tls.key_file,
             "client_ca_file": tls.client_ca_file}  # fmt: skip
    joined = {name: directory / path for name, path in paths.items() if path is not None}
    return tls.model_copy(update=joined)


@dataclass(frozen=True)
class WebSecurity:
    """The server's hooks; None where nothing is configured (plain HTTP, no credentials)."""

    tls: server_tls.ReloadingTls | None = None
    guard: guard.AuthGuard | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return None if self.tls is None else self.tls.context


def build(http: HttpSettings, *, registry: CollectorRegistry) -> WebSecurity:
    """Read the files `http` names and build the hooks. SettingsError naming the field."""
    config = WebConfig() if http.web_config_file is None else load(http.web_config_file)
    security = WebSecurity(tls=_tls(config, http, registry), guard=_guard(config, http, registry))
    if security.guard is not None and security.tls is None:
        logger.warning(
            "Credentials are required but the HTTP server has no tls_server_config: "
            "passwords and tokens cross the network in clear text."
        )
    return security


def _tls(
    config: WebConfig, http: HttpSettings, registry: CollectorRegistry
) -> server_tls.ReloadingTls | None:
    if config.tls_server_config is None:
        return None
    try:
        return server_tls.ReloadingTls(config.tls_server_config, registry=registry)
    except server_tls.TlsFilesError as exc:
        raise settings.SettingsError(f"{WHAT} {http.web_config_file}: {exc}") from exc


def _guard(
    config: WebConfig, http: HttpSettings, registry: CollectorRegistry
) -> guard.AuthGuard | None:
    users = {name: hashed.get_secret_value() for name, hashed in config.basic_auth_users.items()}
    bearer = None
    if http.bearer_token_file is not None:
        try:
            bearer = guard.BearerToken(http.bearer_token_file)
        except (guard.TokenFileError, OSError) as exc:
            raise settings.SettingsError(f"http.bearer_token_file: {exc}") from exc
    if not users and bearer is None:
        return None
    metrics = guard.GuardMetrics.create(registry)
    basic = guard.BasicAuth(users, spent=metrics.bcrypt_seconds) if users else None
    return guard.AuthGuard(
        basic=basic, bearer=bearer, metrics=metrics, open_probes=http.open_probes
    )
