"""Which monitors a consumer serves, and the jobs they make: settings + objects -> jobs.

`MonitorsSettings` mirrors a Prometheus CR's four selectors (see `schemas.monitors` for
what null means). A selected monitor makes one job per endpoint (`consumers.monitors.jobs`)
in every cluster it exists in; the same monitor in two clusters makes the same job name
once per cluster, each with that cluster's rules (the monitors may differ). A monitor the
operator would reject (a rule Prometheus refuses, an unsupported selector mechanism) makes
no job and is reported, as the operator reports it with an event; so does a ServiceMonitor
naming files on the scraper's host while `arbitrary_fs_access_through_sms.deny` (the
default) is set (`file_access`).

Pure: no Kafka, no logging.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from consumers import selectors
from consumers.monitors import jobs, scrape
from schemas.monitors import LabelSelector, MonitorsSettings
from schemas.objects import KubeObject, meta
from schemas.relabel import RelabelConfig
from schemas.sd_config import KubernetesSDConfig, ScrapeJob
from schemas.topics import Resource

NamespaceLabels = Callable[[str, str], Mapping[str, str] | None]  # (cluster, ns) -> labels


@dataclass(frozen=True, slots=True)
class MonitorJob:
    """One monitor endpoint's job in one cluster, ready for the fold."""

    name: str  # serviceMonitor/<ns>/<name>/<i>
    cluster: str
    sd_config: KubernetesSDConfig
    rules: tuple[RelabelConfig, ...]  # the operator's, then the endpoint's own
    cluster_label: str
    resource: Resource = Resource.SERVICEMONITORS
    # The trimmed monitor as on Kafka, and the endpoint's index in it: its scrape
    # parameters are `endpoint_spec()` (interval, scheme, path, params, ...).
    monitor: KubeObject = field(default_factory=dict, compare=False, repr=False)
    endpoint: int = 0
    # The job's scrape parameters as prometheus.yml keys (`scrape.parameters`), secrets
    # as file references: what GET /scrape_configs serves for it.
    scrape: Mapping[str, Any] = field(default_factory=dict)
    # Prometheus's scrape defaults for this endpoint (job, scheme, path, params,
    # intervals), added before relabeling as Prometheus does (`scrape_defaults`).
    defaults: Mapping[str, str] = field(default_factory=dict, compare=False)

    def targets_equal(self, other: MonitorJob) -> bool:
        """Whether both make the same target groups (what the fold rebuilds on)."""
        mine = (self.sd_config, self.rules, self.cluster_label, self.defaults)
        return mine == (other.sd_config, other.rules, other.cluster_label, other.defaults)

    def endpoint_spec(self) -> Mapping[str, object]:
        """The monitor endpoint this job scrapes, as trimmed on Kafka."""
        spec = self.monitor.get("spec")
        endpoints = (
            spec.get(jobs.ENDPOINTS_FIELD[self.resource]) if isinstance(spec, dict) else None
        )
        if isinstance(endpoints, list) and self.endpoint < len(endpoints):
            found = endpoints[self.endpoint]
            return found if isinstance(found, dict) else {}
        return {}


@dataclass(frozen=True, slots=True)
class Rejected:
    cluster: str
    resource: Resource
    key: str
    reason: str


def _selectors(
    settings: MonitorsSettings, resource: Resource
) -> tuple[LabelSelector | None, LabelSelector | None]:
    if resource is Resource.SERVICEMONITORS:
        return settings.service_monitor_selector, settings.service_monitor_namespace_selector
    return settings.pod_monitor_selector, settings.pod_monitor_namespace_selector


def selected(
    settings: MonitorsSettings,
    cluster: str,
    resource: Resource,
    monitor: KubeObject,
    namespace_labels: NamespaceLabels,
) -> bool:
    """Whether the settings select this monitor, as the operator's `selectObjects` does."""
    if not settings.reads_cluster(cluster):
        return False
    selector, namespaces = _selectors(settings, resource)
    if selector is None:
        return False  # null selects nothing
    m = meta(monitor)
    labels = m.get("labels")
    if not selectors.label_matches(selector.parsed(), labels if isinstance(labels, dict) else {}):
        return False
    namespace = str(m.get("namespace", ""))
    if namespaces is None:
        return namespace == settings.namespace
    found = namespace_labels(cluster, namespace)
    return found is not None and selectors.label_matches(namespaces.parsed(), found)


def scrape_defaults(name: str, endpoint: Mapping[str, object]) -> dict[str, str]:
    """The labels Prometheus adds before relabeling for a monitor endpoint's job (the
    scrape parameters the operator writes into it); raises ValueError for a bad value."""
    given = {
        "scheme": str(endpoint.get("scheme") or "").lower(),  # the operator lower-cases it
        "metrics_path": endpoint.get("path"),
        "scrape_interval": endpoint.get("interval"),
        "scrape_timeout": endpoint.get("scrapeTimeout"),
        "params": endpoint.get("params"),
    }
    present = {key: value for key, value in given.items() if value}
    sd = {"role": "pod"}  # any: only the scrape parameters are read
    job = ScrapeJob.model_validate(
        {"job_name": "monitor", "kubernetes_sd_configs": [sd], **present}
    )
    return {**job.scrape_defaults(), "job": name}


def file_access(monitor: KubeObject) -> str | None:
    """Why the operator's `testForArbitraryFSAccess` (resource_selector.go) refuses a
    ServiceMonitor under `arbitraryFSAccessThroughSMs.deny`, or None: an endpoint naming
    a file on the scraper's host, which the scraper would read and send to the target.
    (A PodMonitor's endpoints have no such field.)"""
    spec = monitor.get("spec")
    endpoints = spec.get("endpoints") if isinstance(spec, dict) else None
    for i, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
        if not isinstance(endpoint, dict):
            continue
        if endpoint.get("bearerTokenFile"):
            return (f"endpoints[{i}]: it accesses file system via bearer token file which "
                    "Prometheus specification prohibits")  # fmt: skip
        tls = endpoint.get("tlsConfig")
        if isinstance(tls, dict) and any(tls.get(f) for f in ("caFile", "certFile", "keyFile")):
            return (f"endpoints[{i}]: it accesses file system via tls config which "
                    "Prometheus specification prohibits")  # fmt: skip
    return None


def monitor_jobs(
    settings: MonitorsSettings, cluster: str, resource: Resource, monitor: KubeObject
) -> list[MonitorJob]:
    """The jobs of a selected monitor in `cluster`; raises jobs.MonitorError."""
    if resource is Resource.SERVICEMONITORS and settings.arbitrary_fs_access_through_sms.deny:
        refused = file_access(monitor)
        if refused is not None:
            raise jobs.MonitorError(refused)
    result = []
    generated = jobs.generate(resource, monitor, endpoint_role=settings.service_discovery_role)
    secrets_dir = settings.scrape_configs.secrets_dir
    parameters = scrape.parameters(resource, monitor, secrets_dir=secrets_dir)
    for index, (job, scraping) in enumerate(zip(generated, parameters, strict=True)):
        (sd,) = job["kubernetes_sd_configs"]
        made = MonitorJob(
            name=job["job_name"],
            cluster=cluster,
            sd_config=KubernetesSDConfig.model_validate(sd),
            rules=jobs.rules(job),
            cluster_label=settings.cluster_label,
            resource=resource,
            monitor=monitor,
            endpoint=index,
            scrape=parameters_of(scraping),
        )
        defaults = scrape_defaults(made.name, made.endpoint_spec())
        result.append(dataclasses.replace(made, defaults=defaults))
    return result


def parameters_of(scraping: Mapping[str, Any]) -> Mapping[str, Any]:
    """Read-only: a MonitorJob is shared between the fold and the sinks."""
    return MappingProxyType(dict(scraping))


def all_jobs(
    settings: MonitorsSettings,
    monitors: Iterable[tuple[str, Resource, KubeObject]],
    namespace_labels: NamespaceLabels,
) -> tuple[dict[tuple[str, str], MonitorJob], list[Rejected]]:
    """Every job of every selected monitor, keyed (job name, cluster), and the rejects."""
    found: dict[tuple[str, str], MonitorJob] = {}
    rejected = []
    for cluster, resource, monitor in monitors:
        if not selected(settings, cluster, resource, monitor, namespace_labels):
            continue
        try:
            made = monitor_jobs(settings, cluster, resource, monitor)
        except (jobs.MonitorError, ValueError) as exc:
            m = meta(monitor)
            key = f"{m.get('namespace')}/{m.get('name')}"
            rejected.append(Rejected(cluster, resource, key, str(exc)))
            continue
        found.update({(job.name, cluster): job for job in made})
    return found, rejected
