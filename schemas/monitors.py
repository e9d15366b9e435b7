"""The consumer's `monitors:` section: which Prometheus Operator monitors become jobs.

It mirrors the Prometheus custom resource a user would otherwise run: the same four
selectors (`serviceMonitorSelector`, `serviceMonitorNamespaceSelector` and the PodMonitor
pair), with the same meaning of null (prometheus-operator `resource_selector.go`):
- a monitor selector that is null selects **no** monitor, `{}` selects every one;
- a namespace selector that is null means only `namespace` (where the Prometheus CR
  would live), `{}` every namespace, otherwise the namespaces whose labels match.
Selectors are Kubernetes LabelSelectors (matchLabels, matchExpressions) and are parsed
into `schemas.selectors.LabelSelector`, so a bad key or operator is refused at start
with its field path. Used by `consumers.monitors`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from schemas import selectors
from schemas.scrape_configs import ScrapeConfigsSettings, TargetAllocatorSettings
from schemas.sd_config import ClusterName, check_cluster_label, check_some_clusters
from schemas.selectors import SelectorError, key_problem, parse_label_selector, value_problem

_FROZEN = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
_OPERATORS = {"In": "in", "NotIn": "notin"}


class Requirement(BaseModel):
    model_config = _FROZEN | ConfigDict(populate_by_name=True)

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


class LabelSelector(BaseModel):
    """A Kubernetes LabelSelector; `{}` matches everything."""

    model_config = _FROZEN | ConfigDict(populate_by_name=True)

    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: tuple[Requirement, ...] = Field((), alias="matchExpressions")

    def text(self) -> str:
        """The same selector in `kubectl -l` syntax."""
        terms = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for r in self.match_expressions:
            if r.operator in _OPERATORS:
                terms.append(f"{r.key} {_OPERATORS[r.operator]} ({','.join(r.values)})")
            else:
                terms.append(r.key if r.operator == "Exists" else f"!{r.key}")
        return ",".join(terms)

    def parsed(self) -> selectors.LabelSelector:
        return parse_label_selector(self.text())

    @field_validator("match_expressions")
    @classmethod
    def _values_fit_operators(cls, value: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
        for r in value:
            if (r.operator in _OPERATORS) != bool(r.values):
                raise ValueError(
                    f"{r.key}: {r.operator} needs values" if r.operator in _OPERATORS
                    else f"{r.key}: {r.operator} takes no values"
                )  # fmt: skip
        return value


class ArbitraryFSAccessThroughSMs(BaseModel):
    """The Prometheus CR's `arbitraryFSAccessThroughSMs`: whether a ServiceMonitor may
    name files on the scraper's host (bearerTokenFile, tlsConfig caFile/certFile/keyFile),
    which the scraper would read and send to the monitor's targets."""

    model_config = _FROZEN

    deny: bool = Field(
        True,
        description="Reject ServiceMonitors naming files on the scraper's host "
        "(bearerTokenFile, tlsConfig caFile/certFile/keyFile), as the operator does with "
        "deny: true; default true here, false in the operator (docs/monitors.md)",
    )


class MonitorsSettings(BaseModel):
    """Which ServiceMonitors and PodMonitors become jobs, as a Prometheus CR selects them."""

    model_config = _FROZEN

    service_monitor_selector: LabelSelector | None = Field(
        None, description="ServiceMonitors by label; null: none, {}: all"
    )
    service_monitor_namespace_selector: LabelSelector | None = Field(
        None, description="Namespaces of ServiceMonitors by label; null: `namespace` only, {}: all"
    )
    pod_monitor_selector: LabelSelector | None = Field(
        None, description="PodMonitors by label; null: none, {}: all"
    )
    pod_monitor_namespace_selector: LabelSelector | None = Field(
        None, description="Namespaces of PodMonitors by label; null: `namespace` only, {}: all"
    )
    namespace: str = Field(
        "default",
        description="The namespace a Prometheus CR would live in: with a null namespace "
        "selector only monitors there are selected",
    )
    clusters: tuple[ClusterName, ...] | None = Field(
        None, description="Clusters whose monitors become jobs; omitted: every cluster"
    )
    cluster_label: Annotated[str, AfterValidator(check_cluster_label)] = Field(
        "cluster", description="Label carrying the cluster name on every target"
    )
    scrape_configs: ScrapeConfigsSettings = Field(
        ScrapeConfigsSettings(),
        description="How GET /scrape_configs points scrapers at sdstream and where they "
        "mount the Secrets monitors name (docs/monitors.md)",
    )
    target_allocator: TargetAllocatorSettings | None = Field(
        None,
        description="The collectors the Target Allocator API shares each job's targets "
        "among; omitted: every collector gets every target",
    )
    arbitrary_fs_access_through_sms: ArbitraryFSAccessThroughSMs = Field(
        ArbitraryFSAccessThroughSMs(),
        description="As the Prometheus CR's arbitraryFSAccessThroughSMs; deny by default",
    )
    service_discovery_role: Literal["endpoints", "endpointslice"] = Field(
        "endpoints",
        description="kubernetes_sd role of ServiceMonitor jobs, as the CR's "
        "serviceDiscoveryRole (a ServiceMonitor's own one wins)",
    )

    @field_validator(
        "service_monitor_selector",
        "service_monitor_namespace_selector",
        "pod_monitor_selector",
        "pod_monitor_namespace_selector",
    )
    @classmethod
    def _parses(cls, value: LabelSelector | None) -> LabelSelector | None:
        if value is not None:
            pairs = [*value.match_labels.items()]
            pairs += [(r.key, v) for r in value.match_expressions for v in r.values or ("",)]
            for key, text in pairs:
                problem = key_problem(key) or value_problem(text)
                if problem:
                    raise ValueError(f"{key!r}={text!r}: {problem}")
            try:
                value.parsed()
            except SelectorError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("clusters")
    @classmethod
    def _some_clusters(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_some_clusters(value)

    def reads_cluster(self, cluster: str) -> bool:
        return self.clusters is None or cluster in self.clusters
