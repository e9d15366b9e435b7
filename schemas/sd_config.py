"""The job-config contract: Prometheus `scrape_configs` with `kubernetes_sd_configs`.

A user pastes an existing Prometheus job. sdstream accepts it where Prometheus would
(same keys, the config-load errors that still make sense) and keeps what discovery needs:
the role, namespaces, selectors and attach_metadata, which the consumer applies because
one producer's stream feeds many jobs. Rules, checked by Prometheus at
discovery/kubernetes/kubernetes.go and config/config.go (v3.14 and main d15adb9):

- Unknown keys are errors naming the field (Prometheus's YAML is strict). Errors never
  echo input values: watch settings may hold secrets.
- `role` is one of the six roles; selector roles are allowed per role
  (`schemas.discovery_roles`), never repeated; label and field selectors are parsed at load,
  and field names are checked against what the API server supports for the kind, which
  Prometheus leaves to the server (it then fails every list, forever).
- Watch settings (`api_server`, `kubeconfig_file`, the inlined HTTP client) are accepted
  with Prometheus's exclusivity checks but not used: the producer decides how to reach the
  API server. `KubernetesSDConfig.watching_fields` lists the ones set, for the CLI to
  report. Nested auth settings (inside basic_auth, oauth2...) are not checked.
- `relabel_configs` are loaded and checked as Prometheus does (`schemas.relabel`); the
  consumer applies them and serves final targets (docs/relabeling.md).
- Every other scrape_config key (scrape_interval, static_configs and the other
  `*_sd_configs`...) is accepted and ignored; `ScrapeJob.ignored_keys` lists them.

sdstream's own decisions:
- `job_name`: 1-128 characters of `[A-Za-z0-9_.:-]`, starting with a letter, digit or
  `_`. Job names go into Kafka keys `<job>/<cluster>/<source>`, whose separator is `/`,
  and into file names; a Prometheus Operator name like `serviceMonitor/ns/name/0` must be
  renamed (e.g. `serviceMonitor_ns_name_0`). Relaxing this later stays compatible.
- `namespaces.names` entries must be namespace names (DNS-1123 labels); Prometheus would
  watch an empty namespace, or all of them for "".
- A job needs at least one kubernetes_sd_config: it is all sdstream serves.
- `clusters`: omitted means every cluster; listed names must be cluster names.
- `cluster_label`: a Prometheus label name that collides with nothing discovery or the
  scrape layer sets (`job`, `instance`, `__address__`, `__meta_kubernetes_*`...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from schemas import prom_duration
from schemas.discovery_roles import Role as Role  # re-exported: the config names roles
from schemas.relabel import RelabelConfig
from schemas.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    checked_label_selector,
    parse_field_selector,
    parse_label_selector,
)
from schemas.topics import check_name

# Inputs stay out of error messages: watch settings carry passwords and tokens.
_STRICT = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
_JOB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCRAPE_LABELS = {"job", "instance", "__address__", "__scheme__", "__metrics_path__"}
RESERVED_LABELS: Final = frozenset(_SCRAPE_LABELS | {"__scrape_interval__", "__scrape_timeout__"})
RESERVED_LABEL_PREFIXES: Final = ("__meta_kubernetes_", "__param_")


def _none_as_empty(value: object) -> object:
    """YAML `key:` with nothing after it is null; Go reads it as the empty value."""
    return () if value is None else value


def _none_as_blank(value: object) -> object:
    return "" if value is None else value


def _check_namespace(value: str) -> str:
    if not _NAMESPACE.fullmatch(value):
        raise ValueError(
            f"namespace {value!r} is not a namespace name (DNS-1123 label: lower-case "
            "alphanumerics and '-', 1-63 characters); omit `names` to watch all namespaces"
        )
    return value


def _check_job_name(value: str) -> str:
    if not _JOB_NAME.fullmatch(value):
        raise ValueError(
            f"job name {value!r}: use 1-128 letters, digits, '_', '.', ':' or '-', starting "
            "with a letter, digit or '_'; it becomes part of Kafka keys <job>/<cluster>/"
            "<source> (so no '/') and of file names"
        )
    return value


def _check_cluster(value: str) -> str:
    return check_name("cluster", value)


def check_some_clusters(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """`clusters`: absent is every cluster; an empty list is refused, not read as none."""
    if value is not None and not value:
        raise ValueError("an empty list reads no cluster; omit `clusters` for all clusters")
    return value


def check_cluster_label(value: str) -> str:
    if not _LABEL_NAME.fullmatch(value):
        raise ValueError(f"cluster_label {value!r} is not a Prometheus label name")
    if value in RESERVED_LABELS or value.startswith(RESERVED_LABEL_PREFIXES):
        raise ValueError(f"cluster_label {value!r} collides with a label sdstream or scraping set")
    return value


NamespaceName = Annotated[str, AfterValidator(_check_namespace)]
JobName = Annotated[str, AfterValidator(_check_job_name)]
ClusterName = Annotated[str, AfterValidator(_check_cluster)]
Blank = BeforeValidator(_none_as_blank)
EmptyIfNull = BeforeValidator(_none_as_empty)


class NamespaceDiscovery(BaseModel):
    """Empty `names` and no `own_namespace`: all namespaces."""

    model_config = _STRICT

    names: Annotated[tuple[NamespaceName, ...], EmptyIfNull] = ()
    own_namespace: bool = Field(
        False, description="Also the consumer's own namespace (passed in when jobs compile)"
    )


class SelectorConfig(BaseModel):
    """`{role, label, field}`: the selectors Prometheus sends with one resource's watches."""

    model_config = _STRICT

    role: Role
    label: Annotated[str, Blank] = ""
    field: Annotated[str, Blank] = ""

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return checked_label_selector(value)

    @field_validator("field")
    @classmethod
    def _field(cls, value: str, info: ValidationInfo) -> str:
        role = info.data.get("role")
        if role is None:  # the role's own error is reported
            return value
        try:
            parse_field_selector(value, kind=Role(role).resource)
        except SelectorError as exc:
            raise ValueError(f"invalid field selector: {exc}") from exc
        return value

    def label_selector(self) -> LabelSelector:
        return parse_label_selector(self.label)

    def field_selector(self) -> FieldSelector:
        return parse_field_selector(self.field, kind=self.role.resource)


class AttachMetadata(BaseModel):
    model_config = _STRICT

    node: bool = False
    namespace: bool = False
    deployment: bool = False
    job: bool = False
    cronjob: bool = False


_HTTP_CLIENT_FIELDS: Final = (
    "basic_auth",
    "authorization",
    "oauth2",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "follow_redirects",
    "enable_http2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
)
WATCHING_FIELDS: Final = ("api_server", "kubeconfig_file", *_HTTP_CLIENT_FIELDS)
_PRODUCER = "Watch setting, accepted for compatibility; the producer decides how to connect"


def _watch(**kwargs: Any) -> Any:
    return Field(None, repr=False, description=_PRODUCER, **kwargs)


class KubernetesSDConfig(BaseModel):
    """Prometheus `<kubernetes_sd_config>`; field names are Prometheus's."""

    model_config = _STRICT

    role: Role
    namespaces: NamespaceDiscovery = NamespaceDiscovery()
    selectors: Annotated[tuple[SelectorConfig, ...], EmptyIfNull] = ()
    attach_metadata: AttachMetadata = AttachMetadata()
    api_server: str | None = _watch()
    kubeconfig_file: str | None = _watch()
    basic_auth: dict[str, Any] | None = _watch()
    authorization: dict[str, Any] | None = _watch()
    oauth2: dict[str, Any] | None = _watch()
    bearer_token: SecretStr | None = _watch()
    bearer_token_file: str | None = _watch()
    tls_config: dict[str, Any] | None = _watch()
    follow_redirects: bool | None = _watch()
    enable_http2: bool | None = _watch()
    proxy_url: str | None = _watch()
    no_proxy: str | None = _watch()
    proxy_from_environment: bool | None = _watch()
    proxy_connect_header: dict[str, list[str]] | None = _watch()
    http_headers: dict[str, Any] | None = _watch()

    @field_validator("selectors")
    @classmethod
    def _selectors(
        cls, value: tuple[SelectorConfig, ...], info: ValidationInfo
    ) -> tuple[SelectorConfig, ...]:
        role: Role | None = info.data.get("role")
        seen: set[Role] = set()
        for index, selector in enumerate(value):
            if selector.role in seen:
                raise ValueError(f"selectors[{index}]: duplicated selector role: {selector.role}")
            seen.add(selector.role)
            allowed = role.spec.selector_roles if role else (selector.role,)
            if selector.role not in allowed:
                names = ", ".join(allowed)
                raise ValueError(f"selectors[{index}]: {role} role supports only {names} selectors")
        return value

    @model_validator(mode="after")
    def _access(self) -> KubernetesSDConfig:
        problem = _http_client_problem(self) or _access_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def watching_fields(self) -> tuple[str, ...]:
        """Watch settings given (not null): handled by the producer, unused here."""
        given = self.model_fields_set
        return tuple(n for n in WATCHING_FIELDS if n in given and getattr(self, n) is not None)

    @property
    def custom_http_fields(self) -> tuple[str, ...]:
        """HTTP client settings that differ from Prometheus's defaults."""
        return tuple(n for n in _HTTP_CLIENT_FIELDS if _is_custom(n, getattr(self, n)))

    def selector(self, role: Role) -> SelectorConfig | None:
        return next((s for s in self.selectors if s.role is role), None)


def _is_custom(name: str, value: object) -> bool:
    """Whether a setting breaks Go's DeepEqual with DefaultHTTPClientConfig."""
    if name in ("follow_redirects", "enable_http2"):
        return value is False
    if name in ("basic_auth", "authorization", "oauth2", "http_headers"):
        return value is not None  # pointers in Go: present, even empty, is custom
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    if name == "tls_config" and isinstance(value, dict):
        return any(v not in (None, "", False) for v in value.values())
    return bool(value)  # strings, proxy_from_environment, proxy_connect_header


def _http_client_problem(c: KubernetesSDConfig) -> str | None:
    """prometheus/common HTTPClientConfig.Validate, top-level checks only."""
    bearer = _is_custom("bearer_token", c.bearer_token) or bool(c.bearer_token_file)
    checks = (
        (_is_custom("bearer_token", c.bearer_token) and bool(c.bearer_token_file),
         "at most one of bearer_token & bearer_token_file must be configured"),
        ((c.basic_auth is not None or c.oauth2 is not None) and bearer,
         "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"),
        (c.authorization is not None and bearer,
         "authorization is not compatible with bearer_token & bearer_token_file"),
        (sum(x is not None for x in (c.basic_auth, c.oauth2, c.authorization)) > 1,
         "at most one of basic_auth, oauth2 & authorization must be configured"),
        (bool(c.proxy_connect_header) and not c.proxy_from_environment and not c.proxy_url,
         "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also "
         "be configured"),
        (bool(c.proxy_from_environment and c.proxy_url),
         "if proxy_from_environment is configured, proxy_url must not be configured"),
        (bool(c.proxy_from_environment and c.no_proxy),
         "if proxy_from_environment is configured, no_proxy must not be configured"),
        (bool(c.no_proxy) and not c.proxy_url,
         "if no_proxy is configured, proxy_url must also be configured"),
    )  # fmt: skip
    return next((message for failed, message in checks if failed), None)


def _access_problem(c: KubernetesSDConfig) -> str | None:
    """Prometheus SDConfig.UnmarshalYAML's checks on how the API server is reached."""
    custom_http = bool(c.custom_http_fields)
    own = c.namespaces.own_namespace
    checks = (
        (bool(c.api_server and c.kubeconfig_file),
         "cannot use 'kubeconfig_file' and 'api_server' simultaneously"),
        (bool(c.kubeconfig_file) and custom_http,
         "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"),
        (not c.api_server and custom_http,
         "to use custom HTTP client configuration please provide the 'api_server' URL "
         f"explicitly (set: {', '.join(c.custom_http_fields)})"),
        (bool(c.api_server) and own,
         "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"),
        (bool(c.kubeconfig_file) and own,
         "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously"),
    )  # fmt: skip
    return next((message for failed, message in checks if failed), None)


_SCRAPE_KEYS: Final = (  # config/config.go ScrapeConfig, minus the HTTP client and what we read
    *("honor_labels", "honor_timestamps", "track_timestamps_staleness"),
    *("scrape_protocols", "fallback_scrape_protocol", "scrape_failure_log_file"),
    *("enable_compression", "body_size_limit", "sample_limit", "target_limit"),
    *("label_limit", "label_name_length_limit", "label_value_length_limit"),
    *("native_histogram_bucket_limit", "native_histogram_min_bucket_factor"),
    *("metric_name_validation_scheme", "metric_name_escaping_scheme"),
    *("extra_scrape_metrics", "metric_relabel_configs"),
)
_OTHER_SD_KEYS: Final = (  # discovery/install: every registered <name>_sd_configs but ours
    *("static_configs", "aws_sd_configs", "azure_sd_configs", "consul_sd_configs"),
    *("digitalocean_sd_configs", "dns_sd_configs", "docker_sd_configs"),
    *("dockerswarm_sd_configs", "ec2_sd_configs", "ecs_sd_configs", "elasticache_sd_configs"),
    *("eureka_sd_configs", "file_sd_configs", "gce_sd_configs", "hetzner_sd_configs"),
    *("http_sd_configs", "ionos_sd_configs", "kuma_sd_configs", "lightsail_sd_configs"),
    *("linode_sd_configs", "marathon_sd_configs", "msk_sd_configs", "nerve_sd_configs"),
    *("nomad_sd_configs", "oci_sd_configs", "openstack_sd_configs", "outscale_sd_configs"),
    *("ovhcloud_sd_configs", "puppetdb_sd_configs", "rds_sd_configs", "scaleway_sd_configs"),
    *("serverset_sd_configs", "stackit_sd_configs", "triton_sd_configs", "uyuni_sd_configs"),
    *("vultr_sd_configs",),
)
IGNORED_SCRAPE_KEYS: Final = frozenset((*_SCRAPE_KEYS, *_HTTP_CLIENT_FIELDS, *_OTHER_SD_KEYS))


def _document_ignored_keys(schema: JsonDict) -> None:
    properties = schema.setdefault("properties", {})
    if isinstance(properties, dict):  # always, for a model with fields
        for key in sorted(IGNORED_SCRAPE_KEYS):
            properties[key] = {"description": "Prometheus scrape_config key: accepted, ignored"}


GLOBAL_INTERVAL_MS: Final = 60_000  # config.go DefaultGlobalConfig
GLOBAL_TIMEOUT_MS: Final = 10_000


def _none_as_no_params(value: object) -> object:
    return {} if value is None else value


def _or(default: object) -> Callable[[object], object]:
    """A null scrape key is Prometheus's default."""
    return lambda value: default if value is None else value


def _duration(value: str) -> str:
    prom_duration.parse_ms(value)
    return value


def _no_null_rules(value: object) -> object:
    """config.go: a null rule is an error; a null list is no rules."""
    if value is None:
        return ()
    if isinstance(value, list | tuple) and any(rule is None for rule in value):
        raise ValueError("empty or null target relabeling rule in scrape config")
    return value


class ScrapeJob(BaseModel):
    """One Prometheus `scrape_configs` entry, as sdstream reads it."""

    model_config = _STRICT | ConfigDict(json_schema_extra=_document_ignored_keys)

    job_name: JobName
    kubernetes_sd_configs: Annotated[tuple[KubernetesSDConfig, ...], EmptyIfNull]
    clusters: tuple[ClusterName, ...] | None = Field(
        None, description="Clusters this job reads; omitted: every cluster"
    )
    cluster_label: Annotated[str, AfterValidator(check_cluster_label)] = Field(
        "cluster", description="Label carrying the cluster name on every group"
    )
    relabel_configs: Annotated[tuple[RelabelConfig, ...], BeforeValidator(_no_null_rules)] = Field(
        (), description="Prometheus relabel_configs, applied before serving (docs/relabeling.md)"
    )
    # What Prometheus adds to each target before relabeling (docs/relabeling.md §1).
    scheme: Annotated[str, BeforeValidator(_or("http"))] = Field(
        "http", min_length=1, description="Prometheus scheme"
    )
    metrics_path: Annotated[str, BeforeValidator(_or("/metrics"))] = Field(
        "/metrics", min_length=1, description="Prometheus metrics_path"
    )
    scrape_interval: Annotated[str, AfterValidator(_duration)] | None = Field(
        None, description="Prometheus scrape_interval; omitted: the global default, 1m"
    )
    scrape_timeout: Annotated[str, AfterValidator(_duration)] | None = Field(
        None, description="Prometheus scrape_timeout; omitted: min(10s, scrape_interval)"
    )
    params: Annotated[dict[str, tuple[str, ...]], BeforeValidator(_none_as_no_params)] = Field(
        {}, description="Prometheus params: the first value of each is __param_<name>"
    )
    scrape_native_histograms: bool | None = None
    always_scrape_classic_histograms: bool | None = None
    convert_classic_histograms_to_nhcb: bool | None = None
    keep_dropped_targets: Annotated[int, BeforeValidator(_or(0))] = Field(  # null: Go's zero
        0,
        ge=0,
        description="Prometheus keep_dropped_targets: at most this many targets of the job "
        "that relabeling drops are kept for the discovery page (the rest are only counted); "
        "0: no limit",
    )
    keep_meta_labels: bool = Field(
        False,
        description="With relabel_configs: also serve the __meta_* labels left after "
        "relabeling (for debugging), which Prometheus removes",
    )
    _ignored_keys: tuple[str, ...] = PrivateAttr(())

    @model_validator(mode="wrap")
    @classmethod
    def _set_aside_prometheus_keys(
        cls, data: object, handler: ValidatorFunctionWrapHandler
    ) -> ScrapeJob:
        ignored: tuple[str, ...] = ()
        if isinstance(data, dict):
            ignored = tuple(key for key in data if key in IGNORED_SCRAPE_KEYS)
            data = {key: value for key, value in data.items() if key not in IGNORED_SCRAPE_KEYS}
        job: ScrapeJob = handler(data)
        if ignored:
            job._ignored_keys = ignored
        return job

    @field_validator("kubernetes_sd_configs")
    @classmethod
    def _some_kubernetes(
        cls, value: tuple[KubernetesSDConfig, ...]
    ) -> tuple[KubernetesSDConfig, ...]:
        if not value:
            raise ValueError("sdstream serves kubernetes_sd_configs only; this job has none")
        return value

    @field_validator("clusters")
    @classmethod
    def _clusters(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        value = check_some_clusters(value)
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"clusters are listed twice: {sorted(value)}")
        return value

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> ScrapeJob:
        interval, timeout = self.interval_timeout_ms()
        if timeout > interval:
            raise ValueError(
                "scrape timeout greater than scrape interval for scrape config with job name "
                f'"{self.job_name}"'
            )
        return self

    def interval_timeout_ms(self) -> tuple[int, int]:
        """config.go: a missing or zero value takes the global one (1m, 10s); a missing
        timeout is at most the interval."""
        interval = prom_duration.parse_ms(self.scrape_interval or "0") or GLOBAL_INTERVAL_MS
        timeout = prom_duration.parse_ms(self.scrape_timeout or "0")
        return interval, timeout or min(GLOBAL_TIMEOUT_MS, interval)

    def scrape_defaults(self) -> dict[str, str]:
        """`PopulateDiscoveredLabels`'s defaults (scrape/target.go), added to a target
        where it lacks the label, before relabeling."""
        interval, timeout = self.interval_timeout_ms()
        flags = (
            ("__convert_classic_histograms_to_nhcb__", self.convert_classic_histograms_to_nhcb),
            ("__always_scrape_classic_histograms__", self.always_scrape_classic_histograms),
            ("__scrape_native_histograms__", self.scrape_native_histograms),
        )
        return {
            "job": self.job_name,
            "__scrape_interval__": prom_duration.format_ms(interval),
            "__scrape_timeout__": prom_duration.format_ms(timeout),
            "__metrics_path__": self.metrics_path,
            "__scheme__": self.scheme,
            **{name: "true" if value else "false" for name, value in flags},
            **{f"__param_{name}": values[0] for name, values in self.params.items() if values},
        }

    @property
    def ignored_keys(self) -> tuple[str, ...]:
        """Prometheus scrape_config keys present in the input, which sdstream ignores."""
        return self._ignored_keys

    def reads_cluster(self, cluster: str) -> bool:
        return self.clusters is None or cluster in self.clusters
