"""Pinned versions of the real servers the devstack fetches and builds.

Bumping one rebuilds it: cached artefacts are keyed by these strings.
"""

from typing import Final

KAFKA: Final = "4.1.1"
LOG4J: Final = "2.24.3"  # Kafka 4.1 logs through slf4j 1.7 -> log4j-slf4j-impl
MAVEN_DEPENDENCY_PLUGIN: Final = "3.8.1"
ETCD: Final = "v3.6.14"
KUBERNETES: Final = "v1.36.3"  # staging modules are published as v0.36.3
PROMETHEUS_MODULE: Final = "v0.314.0"  # Prometheus v3.14.0
PROMETHEUS: Final = "3.14.0"
HELM: Final = "v4.3.2"  # helm.sh/helm/v4: `helm lint` / `helm template` of deploy/helm
# The monitoring.coreos.com CRDs (ServiceMonitor, PrometheusRule) for server-side dry-runs
# of the chart: the root module's newest version the Go module proxy serves.
PROMETHEUS_OPERATOR: Final = "v0.89.0"
# vmagent, the peer bench/consume.py measures beside promtool (never in the test run).
VICTORIAMETRICS: Final = "v1.151.0"


def kube_staging() -> str:
    """k8s.io/api & co. are tagged v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>."""
    return "v0." + KUBERNETES.removeprefix("v1.")
