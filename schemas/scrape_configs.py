"""The `monitors.scrape_configs:` settings: how `GET /scrape_configs` describes sdstream.

Each monitor job in that document reads its targets from sdstream's `/http_sd/<job>`, so
the document must say how the user's Prometheus reaches sdstream: the URL it is
advertised at, and the TLS and authorization of sdstream's own HTTP (`http.*`), as file
references the user's Prometheus resolves. Secret values never appear here: the models
have no field for one (`credentials`, `password` are refused as unknown keys), so the
document, which anyone allowed to read it sees whole, cannot carry one. Also where the
Secrets and ConfigMaps a monitor names are mounted (`secrets_dir`, docs/monitors.md).

`monitors.target_allocator:` (`TargetAllocatorSettings`) names the OpenTelemetry
collectors among which the Target Allocator API (`/jobs/<job>/targets?collector_id=`)
shares each job's targets, as the allocator's own config names its allocation strategy;
the allocator finds its collectors by watching their pods, sdstream is told their names
(a list, or a StatefulSet's name and replicas).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas import prom_duration

_FROZEN = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
OPERATOR_TLS_DIR = "/etc/prometheus/certs"  # prometheus-operator's tlsAssetsDir
# Collectors a job's targets are shared among: each target's owner is found by hashing it
# once per collector (rendezvous hashing), so a job's first allocation costs targets x
# collectors hashes (~1.4 us each).
MAX_COLLECTORS = 64
# A collector_id: what the collector sends (usually its pod name, a DNS-1123 subdomain).
_COLLECTOR = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


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


CollectorName = Annotated[str, Field(pattern=_COLLECTOR)]


class TargetAllocatorSettings(BaseModel):
    """How `/jobs/<job>/targets?collector_id=<id>` shares a job's targets among collectors
    (docs/monitors.md). Either `collectors`, or `collector_name` and `collector_replicas`
    (a StatefulSet's pods, `<name>-0` .. `<name>-<replicas-1>`)."""

    model_config = _FROZEN

    allocation_strategy: Literal["consistent-hashing"] = Field(
        "consistent-hashing",
        description="As the allocator's default strategy: each target (by __address__) to one "
        "collector, a collector added or removed moving only ~1/N of them (rendezvous hashing)",
    )
    collectors: tuple[CollectorName, ...] | None = Field(
        None,
        description="The collector_ids (the collectors' pod names) to share targets among",
        min_length=1,
        max_length=MAX_COLLECTORS,
    )
    collector_name: CollectorName | None = Field(
        None, description="A StatefulSet of collectors: its name (with collector_replicas)"
    )
    collector_replicas: int | None = Field(
        None, ge=1, le=MAX_COLLECTORS, description="A StatefulSet of collectors: its replicas"
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        named = self.collector_name is not None, self.collector_replicas is not None
        if self.collectors is not None and any(named):
            raise ValueError("collectors, or collector_name with collector_replicas, not both")
        if self.collectors is None and not all(named):
            raise ValueError("collectors, or collector_name with collector_replicas")
        if self.collectors is not None and len(set(self.collectors)) < len(self.collectors):
            raise ValueError("collectors: each name once")
        return self

    def names(self) -> tuple[str, ...]:
        """The collector_ids, sorted."""
        if self.collectors is not None:
            return tuple(sorted(self.collectors))
        return tuple(
            sorted(f"{self.collector_name}-{i}" for i in range(self.collector_replicas or 0))
        )
