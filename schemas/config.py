"""Settings groups shared by the processes: Kafka, Kubernetes access, producer, consumer.

Frozen models only; `sdstream.settings` is the one place that reads the
environment and files and builds these.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from schemas.sd_config import ScrapeJob
from schemas.topics import Resource, check_name, parse_object_topic, targets_topic

_FROZEN = ConfigDict(frozen=True, extra="forbid")
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
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    replication_factor: int = Field(1, ge=1, description="For topics sdstream creates")
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

    def client_options(self) -> dict[str, Any]:
        """Connection keyword arguments shared by every aiokafka client we create."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            cafile = str(self.ssl_cafile) if self.ssl_cafile else None
            options["ssl_context"] = ssl.create_default_context(cafile=cafile)
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return options


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


class ProducerSettings(BaseModel):
    model_config = _FROZEN

    cluster: str
    resources: tuple[Resource, ...] = tuple(Resource)
    namespaces: tuple[str, ...] = Field((), description="Empty: all namespaces")
    label_selector: str | None = None
    field_selector: str | None = None
    drop_annotations: tuple[str, ...] = ("kubectl.kubernetes.io/last-applied-configuration",)
    partitions: int = Field(6, ge=1, description="Partitions of every namespaced topic")
    page_size: int = Field(500, ge=1)
    kafka: KafkaSettings = KafkaSettings()
    kube: KubeSettings = KubeSettings()
    leader: LeaderSettings = LeaderSettings()
    http: HttpSettings = HttpSettings()

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        return check_name("cluster", value)


class ConsumerSettings(BaseModel):
    """`sdstream consume`: which clusters to fold, the jobs, and where to serve them."""

    model_config = _FROZEN

    clusters: tuple[str, ...] = Field((), description="Clusters to read; empty: use the pattern")
    cluster_pattern: str = Field(
        ".*", description="Regex of cluster names; new clusters' topics are picked up live"
    )
    group_id: str = "sdstream-consumer"
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
    targets_topic: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Topic of this consumer group's target groups; default <prefix>.targets. "
        "A group owns its targets topic: consumers that read the same clusters with other "
        "jobs need one of their own",
    )
    file_sd_dir: Path | None = Field(None, description="Write one file SD JSON file per job")
    scrape_configs: tuple[ScrapeJob, ...] = Field(
        (), description="Jobs, as Prometheus scrape_configs with kubernetes_sd_configs"
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
