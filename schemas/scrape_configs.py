"""The `monitors.scrape_configs:` settings: how `GET /scrape_configs` describes sdstream.

Each monitor job in that document reads its targets from sdstream's `/http_sd/<job>`, so
the document must say how the user's Prometheus reaches sdstream: the URL it is
advertised at, and the TLS and authorization of sdstream's own HTTP (`http.*`), as file
references the user's Prometheus resolves. Secret values never appear here: the models
have no field for one (`credentials`, `password` are refused as unknown keys), so the
document, which anyone allowed to read it sees whole, cannot carry one. Also where the
Secrets and ConfigMaps a monitor names are mounted (`secrets_dir`, docs/monitors.md).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas import prom_duration

_FROZEN = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
OPERATOR_TLS_DIR = "/etc/prometheus/certs"  # prometheus-operator's tlsAssetsDir


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r}: an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r}: no query, fragment or credentials in the URL")
    return value.rstrip("/")


def _absolute(value: str) -> str:
    if not value.startswith("/") or "\x00" in value or "\n" in value:
        raise ValueError(f"{value!r}: an absolute path")
    return value


def _duration(value: str) -> str:
    prom_duration.parse_ms(value)
    return value


Path = Annotated[str, AfterValidator(_absolute)]


class TlsReferences(BaseModel):
    """Prometheus `tls_config` for reaching sdstream: files only."""

    model_config = _FROZEN

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    insecure_skip_verify: bool | None = None


class AuthorizationReference(BaseModel):
    """Prometheus `authorization` with `credentials_file` (sdstream's `http.bearer_token_file`)."""

    model_config = _FROZEN

    type: str = Field("Bearer", pattern=r"^[A-Za-z0-9._~+-]+$")
    credentials_file: Path


class BasicAuthReference(BaseModel):
    """Prometheus `basic_auth` with `password_file` (a user of `basic_auth_users`)."""

    model_config = _FROZEN

    username: str = Field(min_length=1)
    password_file: Path


class HttpSdClient(BaseModel):
    """What each job's `http_sd_configs` entry carries besides its URL."""

    model_config = _FROZEN

    refresh_interval: Annotated[str, AfterValidator(_duration)] | None = Field(
        None, description="Prometheus http_sd refresh_interval; omitted: Prometheus's 60s"
    )
    tls_config: TlsReferences | None = None
    authorization: AuthorizationReference | None = None
    basic_auth: BasicAuthReference | None = None


class ScrapeConfigsSettings(BaseModel):
    """How `GET /scrape_configs` points scrapers at sdstream (docs/monitors.md)."""

    model_config = _FROZEN

    url: Annotated[str, AfterValidator(_base_url)] | None = Field(
        None,
        description="Base URL scrapers reach sdstream at (e.g. https://sdstream.monitoring:8080);"
        " each job's http_sd_configs URL is <url>/http_sd/<job>. Omitted: "
        "http(s)://<http.host>:<http.port>",
    )
    secrets_dir: Path = Field(
        OPERATOR_TLS_DIR,
        description="Where the scraper mounts the Secret and ConfigMap keys monitors name, as "
        "<dir>/0_<namespace>_<name>_<key> (Secret) and 1_<namespace>_<name>_<key> (ConfigMap): "
        "prometheus-operator's TLS assets layout",
    )
    http_sd: HttpSdClient = HttpSdClient()
