"""The monitor -> job translation against prometheus-operator's own golden outputs
(tests/fixtures/monitors: v0.89.0 inputs and the configs it generated from them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.monitors import jobs, select
from consumers.relabel import engine
from schemas.topics import Resource

FIXTURES = Path(__file__).parents[3] / "fixtures" / "monitors"
PRESENT = "__meta_kubernetes_pod_labelpresent_"
CASES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "cases.yaml").read_text())


def _golden_jobs(name: str) -> list[dict[str, Any]]:
    config = yaml.safe_load((FIXTURES / name).read_text())
    keys = ("job_name", "kubernetes_sd_configs", "relabel_configs")
    result = [{k: job[k] for k in keys} for job in config["scrape_configs"]]
    for job in result:  # YAML reads an unquoted `regex: 1024` as a number; it is a string
        for rule in job["relabel_configs"]:
            if isinstance(rule.get("regex"), int):
                rule["regex"] = str(rule["regex"])
    return result


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["golden"])
def test_jobs_are_the_operator_s(case: dict[str, Any]) -> None:
    resource = jobs.KINDS[case["kind"]]
    assert jobs.generate(resource, case) == _golden_jobs(case["golden"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["golden"])
def test_generated_rules_compile_and_keep_shard_zero(case: dict[str, Any]) -> None:
    (job,) = jobs.generate(jobs.KINDS[case["kind"]], case)
    rules = engine.compile_rules(jobs.rules(job))
    labels = {
        "__address__": "10.0.0.1:8080",
        "job": job["job_name"],
        "__meta_kubernetes_namespace": "default",
        "__meta_kubernetes_pod_name": "p",
        "__meta_kubernetes_pod_container_name": "c",
        "__meta_kubernetes_pod_phase": "Running",
    }
    outcome = engine.process(labels, rules)
    if outcome.final is not None:  # selectors may drop it; sharding must not
        assert outcome.final["namespace"] == "default"


def _service_monitor(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "team"}, "spec": spec}


def test_one_job_per_endpoint_named_as_the_operator_does() -> None:
    monitor = _service_monitor(endpoints=[{"port": "a"}, {"targetPort": 9090}])
    names = [j["job_name"] for j in jobs.generate(Resource.SERVICEMONITORS, monitor)]
    assert names == ["serviceMonitor/team/web/0", "serviceMonitor/team/web/1"]
    assert jobs.job_names(Resource.SERVICEMONITORS, monitor) == names


def test_namespace_selector_any_and_match_names() -> None:
    any_ns = _service_monitor(namespaceSelector={"any": True, "matchNames": ["x"]}, endpoints=[{}])
    (job,) = jobs.generate(Resource.SERVICEMONITORS, any_ns)
    assert job["kubernetes_sd_configs"] == [{"role": "endpoints"}]
    names = _service_monitor(namespaceSelector={"matchNames": ["x", "y"]}, endpoints=[{}])
    (job,) = jobs.generate(Resource.SERVICEMONITORS, names, endpoint_role="endpointslice")
    assert job["kubernetes_sd_configs"] == [
        {"role": "endpointslice", "namespaces": {"names": ["x", "y"]}}
    ]


def test_selector_operators_and_unescaped_values() -> None:
    selector = {
        "matchLabels": {"app.kubernetes.io/name": "a.b"},
        "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["x", "y"]},
            {"key": "env", "operator": "Exists"},
            {"key": "old", "operator": "DoesNotExist"},
        ],
    }
    (job,) = jobs.generate(Resource.PODMONITORS, {
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {"selector": selector, "podMetricsEndpoints": [{"port": "web"}]},
    })  # fmt: skip
    rules = job["relabel_configs"][2:6]
    assert rules == [
        {"action": "keep", "regex": "(a.b);true", "source_labels": [
            "__meta_kubernetes_pod_label_app_kubernetes_io_name",
            "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"]},
        {"action": "drop", "regex": "(x|y);true", "source_labels": [
            "__meta_kubernetes_pod_label_tier", "__meta_kubernetes_pod_labelpresent_tier"]},
        {"action": "keep", "regex": "true", "source_labels": [PRESENT + "env"]},
        {"action": "drop", "regex": "true", "source_labels": [PRESENT + "old"]},
    ]  # fmt: skip


def test_unknown_operator_and_role_selector_are_refused() -> None:
    bad = _service_monitor(
        selector={"matchExpressions": [{"key": "a", "operator": "Gt"}]}, endpoints=[{}]
    )
    with pytest.raises(jobs.MonitorError, match="Gt"):
        jobs.generate(Resource.SERVICEMONITORS, bad)
    role = _service_monitor(selectorMechanism="RoleSelector", endpoints=[{}])
    with pytest.raises(jobs.MonitorError, match="RoleSelector"):
        jobs.generate(Resource.SERVICEMONITORS, role)


def test_an_invalid_own_rule_names_the_job() -> None:
    monitor = _service_monitor(
        endpoints=[{"relabelings": [{"action": "hashmod", "targetLabel": "x"}]}]
    )
    (job,) = jobs.generate(Resource.SERVICEMONITORS, monitor)
    with pytest.raises(jobs.MonitorError, match="serviceMonitor/team/web/0"):
        jobs.rules(job)


def test_the_job_name_rule_reads_the_job_default_as_in_prometheus() -> None:
    """Prometheus sets `job` before relabeling, and so does sdstream (the scrape
    defaults): the operator's first rule runs as written."""
    (job,) = jobs.generate(Resource.SERVICEMONITORS, _service_monitor(endpoints=[{}]))
    assert job["relabel_configs"][0] == {
        "source_labels": ["job"],
        "target_label": "__tmp_prometheus_job_name",
    }
    defaults = select.scrape_defaults(job["job_name"], {})
    rules = engine.compile_rules(jobs.rules(job)[:1])
    first = engine.process({"__address__": "a:1"}, rules, defaults=defaults)
    assert first.final is not None
    assert first.final["__tmp_prometheus_job_name"] == "serviceMonitor/team/web/0"
