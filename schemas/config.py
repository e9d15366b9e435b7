"""Settings groups shared by the processes: Kafka, Kubernetes access, producer, consumer.

Frozen models only; `sdstream.settings` is the one place that reads the
environment and files and builds these.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.monitors import MonitorsSettings
from schemas.resources import ROWS
from schemas.sd_config import ScrapeJob
from schemas.selectors import SelectorError, checked_label_selector, parse_field_selector
from schemas.topics import Resource, check_name, parse_object_topic, targets_topic

_FROZEN = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
# Prometheus shards scrapers with hashmod over tens of replicas; 1024 is far above any
# fleet yet keeps a hostile `shards=` a cheap filter (one modulo per target, whatever N).
MAX_SHARDS = 1024
# 4 MiB: ~8x the largest group a real cluster builds (a 1000-pod Endpoints with a few ports
# is ~0.5 MB) and within what Kafka moves without client tuning (fetches return an
# oversized batch whole), while each served or written copy of a group stays small.
MAX_GROUP_BYTES = 4 << 20


class KafkaSettings(BaseModel):
    model_config = _FROZEN

    bootstrap: str = Field("127.0.0.1:9092", description="Comma-separated host:port list")
    topic_prefix: str = Field("sdstream", description="Prefix of every topic sdstream uses")
    client_id: str = "sdstream"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = Field(
        None,
        description="File holding the SASL password (one trailing newline is dropped); "
        "read at start and by each new client; exclusive with sasl_password",
    )
    sasl_oauth_token_file: Path | None = Field(
        None,
        description="File holding the OAUTHBEARER token (a JWT; one trailing newline is "
        "dropped), for sasl_mechanism OAUTHBEARER; read at each authentication, so a token "
        "rotated by a sidecar is used by the next connection",
    )
    ssl_cafile: Path | None = Field(None, description="PEM CA bundle; system CAs when unset")
    ssl_certfile: Path | None = Field(
        None, description="PEM client certificate (chain) for mutual TLS; needs ssl_keyfile"
    )
    ssl_keyfile: Path | None = Field(
        None, description="PEM private key of ssl_certfile; needs ssl_certfile"
    )
    ssl_keyfile_password_file: Path | None = Field(
        None, description="File holding the password of an encrypted ssl_keyfile"
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description="Replicas of each partition of the topics sdstream creates (object topics "
        "by producers, the targets topic by the fold); 1 suits one broker only, production "
        "wants 3. An existing topic with another factor is used, with a warning naming it",
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of the topics sdstream creates: replicas that must "
        "have a write before Kafka acknowledges it (sdstream writes with acks=all); at most "
        "replication_factor. Unset: the broker's default. An existing topic with another "
        "value is used, with a warning naming it and the command that changes it",
    )
    create_topics: bool = Field(
        True,
        description="Create missing topics (compacted). false: never create any; a missing "
        "or unusable topic is one error at start (exit 2) naming each and the command that "
        "creates or fixes it",
    )
    compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = Field(
        "zstd",
        description="Codec for records sdstream writes; zstd is >10x faster than gzip's level 9"
        " (aiokafka's) at a better ratio, and every Kafka >= 2.1 client reads it",
    )

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_name("topic prefix", value)

    def compression_type(self) -> str | None:
        """`compression` as aiokafka's producers take it."""
        return None if self.compression == "none" else self.compression

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        problem = kafka_inconsistency(self)
        if problem is not None:
            raise PydanticCustomError("kafka_settings", problem)
        return self


_TLS: Final = ("SSL", "SASL_SSL")
_SASL: Final = ("SASL_PLAINTEXT", "SASL_SSL")
_SASL_FIELDS: Final = ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file",
                       "sasl_oauth_token_file")  # fmt: skip
_PASSWORD_FIELDS: Final = ("sasl_username", "sasl_password", "sasl_password_file")
_TLS_FIELDS: Final = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_keyfile_password_file")


def kafka_inconsistency(kafka: KafkaSettings) -> str | None:
    """Why these Kafka client settings cannot work together (naming the fields), or None.

    aiokafka ignores SASL settings under a non-SASL protocol and TLS files under a non-TLS
    one, so each would otherwise connect silently in a way the operator did not mean."""
    return (
        _sasl_inconsistency(kafka) or _tls_inconsistency(kafka) or _durability_inconsistency(kafka)
    )


def _durability_inconsistency(kafka: KafkaSettings) -> str | None:
    """More in-sync replicas than replicas: Kafka would refuse every acks=all write."""
    insync, replicas = kafka.min_insync_replicas, kafka.replication_factor
    if insync is not None and insync > replicas:
        return (
            f"min_insync_replicas {insync} exceeds replication_factor {replicas}: Kafka would "
            "refuse every write (NotEnoughReplicas); lower it or raise replication_factor"
        )
    return None


def _ignored(
    kafka: KafkaSettings, fields: tuple[str, ...], protocols: tuple[str, ...], why: str
) -> str | None:
    """Fields set under a protocol that ignores them, or None."""
    named = [name for name in fields if getattr(kafka, name) is not None]
    if named and kafka.security_protocol not in protocols:
        return (
            f"{', '.join(named)} set but security_protocol is {kafka.security_protocol}, which "
            f"{why}: use {' or '.join(protocols)}, or unset them"
        )
    return None


def _sasl_inconsistency(kafka: KafkaSettings) -> str | None:
    protocol = kafka.security_protocol
    problem = _ignored(kafka, _SASL_FIELDS, _SASL, "sends no SASL credentials")
    if problem is not None:
        return problem
    if kafka.sasl_password is not None and kafka.sasl_password_file is not None:
        return "sasl_password and sasl_password_file both set: set one"
    if kafka.sasl_mechanism == "OAUTHBEARER" or kafka.sasl_oauth_token_file is not None:
        return _oauth_inconsistency(kafka)
    missing = [name for name in ("sasl_mechanism", "sasl_username") if getattr(kafka, name) is None]
    if kafka.sasl_password is None and kafka.sasl_password_file is None:
        missing.append("sasl_password (or sasl_password_file)")
    if protocol in _SASL and missing:
        return f"security_protocol {protocol} needs {', '.join(missing)}"
    return None


def _oauth_inconsistency(kafka: KafkaSettings) -> str | None:
    """OAUTHBEARER takes the principal from the token: no user or password beside it."""
    protocol, mechanism = kafka.security_protocol, kafka.sasl_mechanism
    if mechanism != "OAUTHBEARER":
        return f"sasl_oauth_token_file set but sasl_mechanism is {mechanism}: use OAUTHBEARER"
    if protocol in _SASL and kafka.sasl_oauth_token_file is None:
        return f"security_protocol {protocol} with OAUTHBEARER needs sasl_oauth_token_file"
    extra = [name for name in _PASSWORD_FIELDS if getattr(kafka, name) is not None]
    if extra:
        return (
            f"{', '.join(extra)} set with sasl_mechanism OAUTHBEARER, which takes the "
            "principal from the token: unset them"
        )
    return None


def _tls_inconsistency(kafka: KafkaSettings) -> str | None:
    problem = _ignored(kafka, _TLS_FIELDS, _TLS, "does not use TLS")
    if problem is not None:
        return problem
    if (kafka.ssl_certfile is None) != (kafka.ssl_keyfile is None):
        return "ssl_certfile and ssl_keyfile go together: set both or neither"
    if kafka.ssl_keyfile_password_file is not None and kafka.ssl_keyfile is None:
        return "ssl_keyfile_password_file set without ssl_keyfile"
    return None


class KubeSettings(BaseModel):
    """How to reach an API server; in-cluster config when nothing is set."""

    model_config = _FROZEN

    kubeconfig: Path | None = None
    context: str | None = None
    api_server: str | None = Field(None, description="URL; overrides the kubeconfig's server")
    token_file: Path | None = Field(None, description="Bearer token file, re-read on change")
    ca_file: Path | None = None
    insecure_skip_verify: bool = False


class LeaderSettings(BaseModel):
    model_config = _FROZEN

    enabled: bool = False
    namespace: str = "default"
    name: str = "sdstream-producer"
    lease_duration_s: float = Field(15.0, gt=0)
    renew_deadline_s: float = Field(10.0, gt=0)
    retry_period_s: float = Field(2.0, gt=0)


class HttpSettings(BaseModel):
    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_connections: int = Field(
        256,
        ge=1,
        description="Connections answered at once; beyond it a new one gets 503 and is closed "
        "at once (sdstream_http_refused_connections_total)",
    )
    write_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Deadline for a client to take each slice (about 1 MiB) of a response, "
        "and its last bytes at close; a client that takes none within it is cut off "
        "(sdstream_http_write_timeouts_total). A slow but reading client gets the whole answer",
    )
    web_config_file: Path | None = Field(
        None,
        description="Prometheus web configuration file (--web.config.file): "
        "tls_server_config (TLS, client certificates; certificate files reloaded when they "
        "change) and basic_auth_users (bcrypt hashes). Relative paths in it are relative to "
        "its directory. Read at start",
    )
    bearer_token_file: Path | None = Field(
        None,
        description="File holding a token that requests may present as "
        "'Authorization: Bearer <token>' (Prometheus's authorization.credentials_file); "
        "re-read when the file changes. With basic_auth_users, either one passes",
    )
    open_probes: bool = Field(
        True,
        description="/healthz and /readyz answer without credentials (kubelet probes send "
        "none); false: they need credentials like every other path",
    )


# Annotations known to carry a whole manifest (a copy of the object, often larger than
# everything discovery reads): kubectl apply's, kapp's original, Rancher/wrangler's applied.
MANIFEST_ANNOTATIONS: Final = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kapp.k14s.io/original",
    "objectset.rio.cattle.io/applied",
)


# Watched whatever the selectors say: Prometheus never filters these (owner chains,
# namespace metadata), so the producer's selectors do not apply to them.
UNFILTERED: Final = frozenset(r for r, row in ROWS.items() if not row.filtered)


def _drop_entry(entry: str) -> str:
    if not entry or "*" in entry[:-1]:
        raise ValueError(f"{entry!r}: an annotation key, or a key prefix ending in a single '*'")
    return entry


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from exc
    return pattern


class ProducerSettings(BaseModel):
    model_config = _FROZEN

    cluster: str
    resources: tuple[Resource, ...] = tuple(Resource)
    namespaces: tuple[str, ...] = Field((), description="Empty: all namespaces")
    label_selector: str | None = None
    field_selector: str | None = None
    drop_annotations: tuple[Annotated[str, AfterValidator(_drop_entry)], ...] = Field(
        MANIFEST_ANNOTATIONS,
        description="Annotation keys never published; an entry ending in '*' is a key prefix "
        "(e.g. 'kapp.k14s.io/*'). Setting it replaces the default, which drops annotations "
        "known to carry whole manifests",
    )
    drop_annotation_patterns: tuple[Annotated[str, AfterValidator(_regex)], ...] = Field(
        (),
        description="Regexes (Python syntax, full match) of annotation keys never published. "
        "In the environment a JSON list only, never comma-separated: a regex may hold a "
        "comma (a{1,3})",
    )
    partitions: int = Field(6, ge=1, description="Partitions of every namespaced topic")
    page_size: int = Field(500, ge=1)
    max_record_bytes: int = Field(
        1_000_000,
        ge=4096,
        description="Largest record published (key, value, headers and framing, before "
        "compression); also the Kafka producer's max_request_size. A larger object is "
        "skipped and counted (reason too_large) and its earlier record tombstoned. The "
        "default fits Kafka's default 1 MiB message.max.bytes; raise both together",
    )
    kafka: KafkaSettings = KafkaSettings()
    kube: KubeSettings = KubeSettings()
    leader: LeaderSettings = LeaderSettings()
    http: HttpSettings = HttpSettings()

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        return check_name("cluster", value)

    @field_validator("label_selector")
    @classmethod
    def _label_selector(cls, value: str | None) -> str | None:
        """The API server answers a bad selector with HTTP 400 on every list: fail at load."""
        return None if value is None else checked_label_selector(value)

    @field_validator("field_selector")
    @classmethod
    def _field_selector(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Valid for every filtered resource watched: the server checks fields per kind."""
        if value is None:
            return None
        for resource in (r for r in info.data.get("resources", ()) if r not in UNFILTERED):
            try:
                parse_field_selector(value, kind=resource)
            except SelectorError as exc:
                raise ValueError(f"invalid field selector for {resource.value}: {exc}") from exc
        return value


class ConsumerSettings(BaseModel):
    """`sdstream consume`: which clusters to fold, the jobs, and where to serve them."""

    model_config = _FROZEN

    clusters: tuple[str, ...] = Field((), description="Clusters to read; empty: use the pattern")
    cluster_pattern: str = Field(
        ".*", description="Regex of cluster names; new clusters' topics are picked up live"
    )
    group_id: str = "sdstream-consumer"
    group_instance_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Kafka static membership (KIP-345) of the fold: a name unique to this "
        "member of the group and stable across its restarts (a StatefulSet pod name). A "
        "member that comes back within session_timeout_s keeps its partitions, without "
        "rebalancing the group; one that leaves for good is noticed only after "
        "session_timeout_s. Two live members with the same name fence each other. Unset: "
        "dynamic membership, a rebalance at every stop and start",
    )
    session_timeout_s: float = Field(
        10.0,
        ge=6,
        le=1800,
        description="How long the group coordinator waits for a silent fold member before "
        "giving its partitions to the others (Kafka's session.timeout.ms, within the "
        "brokers' group.min/max.session.timeout.ms, 6 s to 30 min by default). With "
        "group_instance_id, make it longer than a restart takes",
    )
    commit_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often the fold commits its consumer-group offsets (and once at "
        "shutdown), so kafka-consumer-groups, Burrow or kminion show its lag: the offsets "
        "its published target groups reflect. Never used to resume: state is rebuilt from "
        "the compacted topics at every start",
    )
    mode: Literal["all", "fold", "serve"] = Field(
        "all", description="fold: build target groups; serve: HTTP SD and file SD; all: both"
    )
    own_namespace: str | None = Field(
        None, description="For jobs with namespaces.own_namespace: where this consumer runs"
    )
    targets_partitions: int = Field(6, ge=1, description="Partitions of <prefix>.targets")
    max_group_bytes: int = Field(
        MAX_GROUP_BYTES,
        ge=1 << 10,
        description="Largest target-group record (key and value, bytes) the fold publishes. "
        "A larger group is not published: its key gets a tombstone, and it is counted in "
        'sdstream_fold_groups_skipped_total{reason="too_large"}. The targets topic is '
        "created to take it",
    )
    targets_zstd_level: int | None = Field(
        None,
        ge=1,
        le=22,
        description="Have the broker compress the targets topic: the fold creates it with "
        "compression.type=zstd and compression.zstd.level=N (Kafka >= 3.8) and sends its "
        "records uncompressed, so the broker compresses each batch at level N (the fold's own "
        "zstd is level 3): fewer bytes on disk, for uncompressed bytes on the wire to the "
        "broker and the broker's CPU (docs/kafka-facts.md). "
        "A broker older than 3.8 refuses to create the topic. An existing targets topic "
        "with other compression configs is used as it is, with a warning naming the command "
        "that changes it, and the fold compresses (kafka.compression). Unset: the fold "
        "compresses, the topic keeps what it is sent",
    )
    targets_topic: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Topic of this consumer group's target groups; default <prefix>.targets. "
        "A group owns its targets topic: consumers that read the same clusters with other "
        "jobs need one of their own",
    )
    file_sd_dir: Path | None = Field(None, description="Write one file SD JSON file per job")
    file_sd_mode: str = Field(
        "0644",
        pattern=r"^0?[0-7]{3}$",
        description="Permission bits of file SD files, octal (0644: the scraper may run as "
        "another user)",
    )
    http_sd_max_shards: int = Field(
        MAX_SHARDS,
        ge=1,
        le=MAX_SHARDS,
        description="Largest shards=N an HTTP SD request may ask for; above it: 400",
    )
    http_sd_cache_bytes: int = Field(
        128 << 20,
        ge=0,
        description="Budget of the HTTP SD answer cache, bytes; least recently used answers "
        "go first (sdstream_sink_http_sd_cache_evictions_total)",
    )
    discovery_page: bool = Field(
        True,
        description="Where the fold runs, serve the discovery page (/ and /discovery/<job>): "
        "each target's discovered and final labels, and why a target is not served. For jobs "
        "with relabel_configs the fold then also holds each group as discovered.",
    )
    scrape_configs: tuple[ScrapeJob, ...] = Field(
        (), description="Jobs, as Prometheus scrape_configs with kubernetes_sd_configs"
    )
    monitors: MonitorsSettings | None = Field(
        None,
        description="Prometheus Operator ServiceMonitors and PodMonitors to serve as jobs, "
        "selected as a Prometheus CR selects them (docs/monitors.md); omitted: none",
    )
    kafka: KafkaSettings = KafkaSettings()
    http: HttpSettings = HttpSettings(port=8081)

    @model_validator(mode="after")
    def _targets_topic_is_no_object_topic(self) -> ConsumerSettings:
        topic = self.targets_topic
        if topic is not None and (
            topic in (".", "..") or parse_object_topic(self.kafka.topic_prefix, topic)
        ):
            raise ValueError(f"targets_topic {topic!r} would be read as an object topic")
        return self

    @field_validator("file_sd_mode", mode="before")
    @classmethod
    def _mode_as_octal_digits(cls, value: object) -> object:
        """YAML 1.1 reads an unquoted `0644` as the number 420: its octal digits again."""
        if isinstance(value, int) and not isinstance(value, bool):
            digits = format(value, "03o")
            if not re.fullmatch(r"[0-7]{3}", digits):
                raise ValueError(
                    f"{value} is not a file mode (octal {digits}): YAML reads 0644 as "
                    "octal but 644 as decimal; write '0644'"
                )
            return digits
        return value

    @field_validator("cluster_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        """Compiled as the fold uses it, inside a group of its topic pattern (so a global
        flag such as "(?i)" in the middle is refused too): a pattern that fails later
        fails inside the Kafka client, where it cannot be reported."""
        try:
            re.compile(rf"^p\.({value})\.r$")
        except re.error as exc:
            raise ValueError(f"not a usable regular expression: {exc}") from exc
        return value

    @property
    def file_sd_permissions(self) -> int:
        """`file_sd_mode` as permission bits."""
        return int(self.file_sd_mode, 8)

    @property
    def targets(self) -> str:
        """The targets topic's name (`targets_topic`, or `<prefix>.targets`)."""
        return self.targets_topic or targets_topic(self.kafka.topic_prefix)

    @field_validator("scrape_configs")
    @classmethod
    def _unique_jobs(cls, jobs: tuple[ScrapeJob, ...]) -> tuple[ScrapeJob, ...]:
        names = [job.job_name for job in jobs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"job_name repeated: {', '.join(repeated)}")
        return jobs
