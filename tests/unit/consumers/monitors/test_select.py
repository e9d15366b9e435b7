"""Which monitors a `monitors:` section selects, as a Prometheus CR would (null selects
nothing; a null namespace selector means the CR's own namespace), and their jobs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from consumers.monitors import select
from schemas.config import ConsumerSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource

SM, PM = Resource.SERVICEMONITORS, Resource.PODMONITORS
NAMESPACES = {
    ("c1", "team-a"): {"team": "a"},
    ("c1", "default"): {},
    ("c2", "team-a"): {"team": "a"},
}
JOB = "serviceMonitor/team-a/m/0"


def _labels(cluster: str, namespace: str) -> dict[str, str] | None:
    return NAMESPACES.get((cluster, namespace))


def _monitor(namespace: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    spec.setdefault("endpoints", [{"port": "web"}])
    spec.setdefault("podMetricsEndpoints", [{"port": "web"}])
    return {"metadata": {"name": "m", "namespace": namespace, "labels": labels or {}}, "spec": spec}


def _settings(**values: Any) -> MonitorsSettings:
    return MonitorsSettings.model_validate(values)


def test_a_null_monitor_selector_selects_nothing_and_empty_selects_all() -> None:
    monitor = _monitor("default")
    assert not select.selected(_settings(), "c1", SM, monitor, _labels)
    assert select.selected(_settings(service_monitor_selector={}), "c1", SM, monitor, _labels)
    assert not select.selected(_settings(service_monitor_selector={}), "c1", PM, monitor, _labels)


def test_a_null_namespace_selector_means_the_own_namespace() -> None:
    settings = _settings(service_monitor_selector={}, namespace="team-a")
    assert select.selected(settings, "c1", SM, _monitor("team-a"), _labels)
    assert not select.selected(settings, "c1", SM, _monitor("default"), _labels)


def test_namespace_and_monitor_label_selectors() -> None:
    settings = _settings(
        pod_monitor_selector={"matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["x"]}]},
        pod_monitor_namespace_selector={"matchLabels": {"team": "a"}},
    )  # fmt: skip
    assert select.selected(settings, "c1", PM, _monitor("team-a"), _labels)
    assert not select.selected(settings, "c1", PM, _monitor("team-a", {"tier": "x"}), _labels)
    assert not select.selected(settings, "c1", PM, _monitor("default"), _labels)
    assert not select.selected(settings, "c1", PM, _monitor("unknown-ns"), _labels)


def test_clusters_limit_and_jobs_are_per_cluster() -> None:
    settings = _settings(service_monitor_selector={}, service_monitor_namespace_selector={},
                         clusters=["c1", "c2"], cluster_label="k8s")  # fmt: skip
    found, rejected = select.all_jobs(
        settings,
        [("c1", SM, _monitor("team-a")), ("c2", SM, _monitor("team-a")),
         ("c3", SM, _monitor("team-a"))],
        _labels,
    )  # fmt: skip
    assert sorted(found) == [
        ("serviceMonitor/team-a/m/0", "c1"),
        ("serviceMonitor/team-a/m/0", "c2"),
    ]
    assert rejected == []
    job = found[(JOB, "c1")]
    assert job.cluster_label == "k8s"
    assert job.sd_config.role.value == "endpoints"


def test_a_monitor_prometheus_would_refuse_is_rejected_and_the_rest_go_on() -> None:
    settings = _settings(service_monitor_selector={}, service_monitor_namespace_selector={})
    bad = _monitor(
        "team-a", endpoints=[{"relabelings": [{"action": "hashmod", "targetLabel": "x"}]}]
    )
    bad["metadata"]["name"] = "bad"
    found, rejected = select.all_jobs(
        settings, [("c1", SM, bad), ("c1", SM, _monitor("default"))], _labels
    )
    assert list(found) == [("serviceMonitor/default/m/0", "c1")]
    (reject,) = rejected
    assert (reject.key, reject.resource) == ("team-a/bad", SM)
    assert "serviceMonitor/team-a/bad/0" in reject.reason


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ({"bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
         "endpoints[1]: it accesses file system via bearer token file"),
        ({"tlsConfig": {"caFile": "/etc/ssl/ca.pem"}},
         "endpoints[1]: it accesses file system via tls config"),
        ({"tlsConfig": {"certFile": "/c.pem", "keyFile": "/k.pem"}}, "via tls config"),
    ],
)  # fmt: skip
def test_a_service_monitor_naming_files_on_the_scrapers_host_is_rejected_unless_allowed(
    endpoint: dict[str, Any], reason: str
) -> None:
    """As the operator's arbitraryFSAccessThroughSMs.deny (`testForArbitraryFSAccess`),
    on by default here: the whole monitor makes no job."""
    on = {"service_monitor_selector": {}, "service_monitor_namespace_selector": {}}
    monitor = _monitor("team-a", endpoints=[{"port": "web"}, {"port": "web", **endpoint}])
    found, rejected = select.all_jobs(_settings(**on), [("c1", SM, monitor)], _labels)
    assert found == {}
    (reject,) = rejected
    assert reason in reject.reason
    assert reject.reason.endswith("which Prometheus specification prohibits")
    allowed = _settings(**on, arbitrary_fs_access_through_sms={"deny": False})
    found, rejected = select.all_jobs(allowed, [("c1", SM, monitor)], _labels)
    assert (sorted(found), rejected) == ([(JOB, "c1"), ("serviceMonitor/team-a/m/1", "c1")], [])


def test_a_pod_monitor_has_no_file_fields_to_deny() -> None:
    """A PodMonitor's SafeTLSConfig has no caFile: the operator ignores it (so do we)."""
    on = {"pod_monitor_selector": {}, "pod_monitor_namespace_selector": {}}
    endpoint = {"port": "web", "tlsConfig": {"caFile": "/ca"}}
    monitor = _monitor("team-a", podMetricsEndpoints=[endpoint])
    found, rejected = select.all_jobs(_settings(**on), [("c1", PM, monitor)], _labels)
    assert (list(found), rejected) == ([("podMonitor/team-a/m/0", "c1")], [])


@pytest.mark.parametrize(
    ("monitors", "path"),
    [
        ({"service_monitor_selector": {"matchLabels": {"bad key": "a"}}},
         "monitors.service_monitor_selector"),
        ({"pod_monitor_selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
         "monitors.pod_monitor_selector"),
        ({"pod_monitor_selector": {"matchExpressions": [
            {"key": "a", "operator": "Gt", "values": ["1"]}]}},
         "monitors.pod_monitor_selector"),
        ({"service_discovery_role": "pod"}, "monitors.service_discovery_role"),
        ({"clusters": []}, "monitors.clusters"),
        ({"cluster_label": "bad-label"}, "monitors.cluster_label"),
        ({"target_allocator": {"collectors": []}}, "monitors.target_allocator.collectors"),
        ({"target_allocator": {"collectors": ["Bad Name"]}},
         "monitors.target_allocator.collectors"),
        ({"target_allocator": {"collectors": ["a", "a"]}}, "monitors.target_allocator"),
        ({"target_allocator": {"collectors": ["a"], "collector_replicas": 2}},
         "monitors.target_allocator"),
        ({"target_allocator": {"collector_name": "otel"}}, "monitors.target_allocator"),
        ({"target_allocator": {"collector_name": "otel", "collector_replicas": 65}},
         "monitors.target_allocator.collector_replicas"),
        ({"target_allocator": {"collectors": ["a"], "allocation_strategy": "per-node"}},
         "monitors.target_allocator.allocation_strategy"),
        ({"arbitrary_fs_access_through_sms": {"deny": "maybe"}},
         "monitors.arbitrary_fs_access_through_sms.deny"),
    ],
)  # fmt: skip
def test_a_bad_monitors_section_is_refused_naming_its_path(monitors: Any, path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ConsumerSettings.model_validate({"monitors": monitors})
    located = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert any(loc.startswith(path) for loc in located), located


def test_collectors_are_listed_or_a_statefulset_s_pods() -> None:
    listed = MonitorsSettings.model_validate({"target_allocator": {"collectors": ["b", "a"]}})
    assert listed.target_allocator is not None
    assert listed.target_allocator.names() == ("a", "b")
    sts = {"collector_name": "otel-collector", "collector_replicas": 3}
    pods = MonitorsSettings.model_validate({"target_allocator": sts})
    assert pods.target_allocator is not None
    assert pods.target_allocator.names() == tuple(f"otel-collector-{i}" for i in range(3))
