"""ServiceMonitor / PodMonitor -> the scrape jobs prometheus-operator generates.

The operator turns each endpoint of a selected monitor into one Prometheus job: a
kubernetes_sd config and a fixed list of relabel rules (selector, port filter, the
namespace/service/pod/container labels, `job`, `endpoint`, sharding) followed by the
monitor's own `relabelings`. sdstream applies those rules itself, so it serves the same
final targets the operator's Prometheus would scrape. This module is the translation,
pure: a trimmed monitor object in, the jobs out, as the operator's YAML shapes (dicts
with its keys in its order), so tests compare them with the operator's golden files.

Source: prometheus-operator v0.89.0 `pkg/prometheus/promcfg.go`
(`generateServiceMonitorConfig`, `generatePodMonitorConfig`, `generateK8SSDConfig`,
`initRelabelings`, `appendShardingRelabelingWithLabel`); reference notes in the
shared reference prometheus-relabel-and-monitors.md, sections 5-6. What this does not
generate: the Prometheus CR's options (scrape classes, enforcedNamespaceLabel,
ignoreNamespaceSelectors, CR podTargetLabels, shards > 1, DaemonSet mode) and the
authentication of the scrape itself, which never changes the targets.

`$(SHARD)` is a literal in the operator's rules (its config reloader substitutes it).
`rules` substitutes `0`, as the OTel collector does: one shard keeps every target. The
operator's first rule copies `job` to `__tmp_prometheus_job_name`; sdstream, like
Prometheus, sets `job` to the job name before relabeling (the scrape defaults,
`select.scrape_defaults`), so the rule runs as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from schemas.objects import KubeObject, meta
from schemas.relabel import RelabelConfig
from schemas.topics import Resource

KINDS: Final = {"ServiceMonitor": Resource.SERVICEMONITORS, "PodMonitor": Resource.PODMONITORS}
PREFIX: Final = {Resource.SERVICEMONITORS: "serviceMonitor", Resource.PODMONITORS: "podMonitor"}
ENDPOINTS_FIELD: Final = {
    Resource.SERVICEMONITORS: "endpoints",
    Resource.PODMONITORS: "podMetricsEndpoints",
}
Rule = dict[str, Any]
_JOB_NAME_RULE: Final[Rule] = {
    "source_labels": ["job"],
    "target_label": "__tmp_prometheus_job_name",
}
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


class MonitorError(ValueError):
    """A monitor the operator would reject or cannot translate; it gets no jobs."""


def sanitize(name: str) -> str:
    """The operator's `sanitizeLabelName`: every code point outside [a-zA-Z0-9_] -> `_`."""
    return _UNSAFE.sub("_", name)


def job_names(resource: Resource, monitor: KubeObject) -> list[str]:
    """`serviceMonitor/<ns>/<name>/<i>` per endpoint, as the operator names its jobs."""
    m = meta(monitor)
    spec = _dict(monitor.get("spec"))
    count = len(_list(spec.get(ENDPOINTS_FIELD[resource])))
    return [f"{PREFIX[resource]}/{m.get('namespace')}/{m.get('name')}/{i}" for i in range(count)]


def generate(
    resource: Resource, monitor: KubeObject, *, endpoint_role: str = "endpoints"
) -> list[dict[str, Any]]:
    """The monitor's jobs (`job_name`, `kubernetes_sd_configs`, `relabel_configs`), in
    endpoint order. `endpoint_role` is the Prometheus CR's serviceDiscoveryRole
    (`endpoints` or `endpointslice`); a ServiceMonitor's own one wins."""
    spec = _dict(monitor.get("spec"))
    namespace = str(meta(monitor).get("namespace", ""))
    jobs = []
    names = job_names(resource, monitor)
    for name, endpoint in zip(names, _list(spec.get(ENDPOINTS_FIELD[resource])), strict=True):
        ep = _dict(endpoint)
        if resource is Resource.SERVICEMONITORS:
            role = _service_role(spec, endpoint_role)
            relabels = _service_rules(spec, ep, role=role)
        else:
            role = "pod"
            relabels = _pod_rules(spec, ep, job=f"{namespace}/{meta(monitor).get('name')}")
        sd: dict[str, Any] = {"role": role}
        names_ = _namespaces(spec, namespace)
        if names_ is not None:
            sd["namespaces"] = {"names": names_}
        attach = _dict(spec.get("attachMetadata"))
        if "node" in attach:
            sd["attach_metadata"] = {"node": bool(attach["node"])}
        jobs.append({"job_name": name, "kubernetes_sd_configs": [sd], "relabel_configs": relabels})
    return jobs


def rules(job: Mapping[str, Any]) -> tuple[RelabelConfig, ...]:
    """A generated job's relabel rules as sdstream runs them: `$(SHARD)` is shard 0.
    Raises MonitorError (naming the rule) for a rule Prometheus would refuse."""
    result = []
    for i, rule in enumerate(job["relabel_configs"]):
        fixed = {k: v.replace("$(SHARD)", "0") if k == "regex" else v for k, v in rule.items()}
        try:
            result.append(RelabelConfig.model_validate(fixed))
        except ValueError as exc:
            raise MonitorError(f"{job['job_name']}: relabel_configs[{i}]: {exc}") from None
    return tuple(result)


def _service_role(spec: Mapping[str, Any], default: str) -> str:
    own = spec.get("serviceDiscoveryRole")
    chosen = own if isinstance(own, str) and own else default
    return "endpointslice" if chosen.lower() == "endpointslice" else "endpoints"


def _namespaces(spec: Mapping[str, Any], namespace: str) -> list[str] | None:
    """`getNamespacesFromNamespaceSelector`: None (all) for `any`, else the names or the
    monitor's own namespace."""
    selector = _dict(spec.get("namespaceSelector"))
    if selector.get("any"):
        return None
    names = [str(n) for n in _list(selector.get("matchNames"))]
    return names or [namespace]


def _selector_rules(spec: Mapping[str, Any], kind: str) -> list[Rule]:
    """5.4 step 2: matchLabels (sorted keys), then matchExpressions in order. Values are
    not regex-escaped, as in the operator. None with the RoleSelector mechanism."""
    if spec.get("selectorMechanism") == "RoleSelector":
        raise MonitorError("selectorMechanism RoleSelector is not supported yet")
    selector = _dict(spec.get("selector"))
    label = f"__meta_kubernetes_{kind}_label_"
    present = f"__meta_kubernetes_{kind}_labelpresent_"
    result: list[Rule] = []
    for key, value in sorted(_dict(selector.get("matchLabels")).items()):
        k = sanitize(key)
        sources = [label + k, present + k]
        result.append({"action": "keep", "source_labels": sources, "regex": f"({value});true"})
    for expression in _list(selector.get("matchExpressions")):
        exp = _dict(expression)
        k = sanitize(str(exp.get("key", "")))
        values = "|".join(str(v) for v in _list(exp.get("values")))
        match exp.get("operator"):
            case "In":
                action, sources, regex = "keep", [label + k, present + k], f"({values});true"
            case "NotIn":
                action, sources, regex = "drop", [label + k, present + k], f"({values});true"
            case "Exists":
                action, sources, regex = "keep", [present + k], "true"
            case "DoesNotExist":
                action, sources, regex = "drop", [present + k], "true"
            case other:
                raise MonitorError(f"selector: unknown matchExpressions operator {other!r}")
        result.append({"action": action, "source_labels": sources, "regex": regex})
    return result


def _copy(source: str, target: str) -> Rule:
    return {"source_labels": [source], "target_label": target}


def _label_from(source: str, target: str) -> Rule:
    return {
        "source_labels": [source],
        "target_label": target,
        "regex": "(.+)",
        "replacement": "${1}",
    }


_RUNNING: Final[Rule] = {
    "action": "drop",
    "source_labels": ["__meta_kubernetes_pod_phase"],
    "regex": "(Failed|Succeeded)",
}


def _target_port_rule(ep: Mapping[str, Any]) -> list[Rule]:
    target = ep.get("targetPort")
    if isinstance(target, str) and target:
        return [_keep("__meta_kubernetes_pod_container_port_name", target)]
    if isinstance(target, int) and target != 0:
        return [_keep("__meta_kubernetes_pod_container_port_number", str(target))]
    return []


def _keep(source: str, regex: str) -> Rule:
    return {"action": "keep", "source_labels": [source], "regex": regex}


def _endpoint_label(port: object, target: object) -> list[Rule]:
    if isinstance(port, str) and port:
        return [{"target_label": "endpoint", "replacement": port}]
    if isinstance(target, str | int) and not isinstance(target, bool) and str(target) != "":
        return [{"target_label": "endpoint", "replacement": str(target)}]  # int 0 too
    return []


def _service_rules(spec: Mapping[str, Any], ep: Mapping[str, Any], *, role: str) -> list[Rule]:
    e = "endpointslice" if role == "endpointslice" else "endpoint"
    port = ep.get("port")
    result = [dict(_JOB_NAME_RULE), *_selector_rules(spec, "service")]
    if isinstance(port, str) and port:
        result.append(_keep(f"__meta_kubernetes_{e}_port_name", port))
    else:
        result += _target_port_rule(ep)
    target_ref = [f"__meta_kubernetes_{e}_address_target_kind",
                  f"__meta_kubernetes_{e}_address_target_name"]  # fmt: skip
    for kind, label in (("Node", "node"), ("Pod", "pod")):
        rule = {"source_labels": target_ref, "separator": ";", "regex": f"{kind};(.*)"}
        result.append({**rule, "replacement": "${1}", "target_label": label})
    result += [
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_service_name", "service"),
        _copy("__meta_kubernetes_pod_name", "pod"),
        _copy("__meta_kubernetes_pod_container_name", "container"),
    ]
    if ep.get("filterRunning", True) is not False:
        result.append(dict(_RUNNING))
    for label in _list(spec.get("targetLabels")):
        name = sanitize(str(label))
        result.append(_label_from(f"__meta_kubernetes_service_label_{name}", name))
    for label in _list(spec.get("podTargetLabels")):
        name = sanitize(str(label))
        result.append(_label_from(f"__meta_kubernetes_pod_label_{name}", name))
    result.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job",
                   "replacement": "${1}"})  # fmt: skip
    job_label = spec.get("jobLabel")
    if isinstance(job_label, str) and job_label:
        result.append(_label_from(f"__meta_kubernetes_service_label_{sanitize(job_label)}", "job"))
    result += _endpoint_label(port, ep.get("targetPort"))
    return result + _own(ep) + _sharding()


def _pod_rules(spec: Mapping[str, Any], ep: Mapping[str, Any], *, job: str) -> list[Rule]:
    port, number = ep.get("port"), ep.get("portNumber")
    result = [dict(_JOB_NAME_RULE)]
    if ep.get("filterRunning", True) is not False:
        result.append(dict(_RUNNING))
    result += _selector_rules(spec, "pod")
    if isinstance(port, str) and port:
        result.append(_keep("__meta_kubernetes_pod_container_port_name", port))
    elif isinstance(number, int) and number:
        result.append(_keep("__meta_kubernetes_pod_container_port_number", str(number)))
    else:
        result += _target_port_rule(ep)
    result += [
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_pod_container_name", "container"),
        _copy("__meta_kubernetes_pod_name", "pod"),
    ]
    for label in _list(spec.get("podTargetLabels")):
        name = sanitize(str(label))
        result.append(_label_from(f"__meta_kubernetes_pod_label_{name}", name))
    result.append({"target_label": "job", "replacement": job})  # static: not the service
    job_label = spec.get("jobLabel")
    if isinstance(job_label, str) and job_label:
        result.append(_label_from(f"__meta_kubernetes_pod_label_{sanitize(job_label)}", "job"))
    result += _endpoint_label(port, ep.get("targetPort"))
    return result + _own(ep) + _sharding()


def _own(ep: Mapping[str, Any]) -> list[Rule]:
    return relabel_configs(ep.get("relabelings"))


def relabel_configs(relabelings: object) -> list[Rule]:
    """A monitor's `relabelings` (or `metricRelabelings`) as `generateRelabelConfig`
    writes them: keys in its order, an empty regex omitted (so the default applies), the
    action lower-cased."""
    result = []
    for relabeling in _list(relabelings):
        r = _dict(relabeling)
        rule: Rule = {}
        if r.get("sourceLabels"):
            rule["source_labels"] = [str(s) for s in _list(r["sourceLabels"])]
        if r.get("separator") is not None:
            rule["separator"] = r["separator"]
        if r.get("targetLabel"):
            rule["target_label"] = r["targetLabel"]
        if r.get("regex"):
            rule["regex"] = r["regex"]
        if r.get("modulus"):
            rule["modulus"] = r["modulus"]
        if r.get("replacement") is not None:
            rule["replacement"] = r["replacement"]
        if r.get("action"):
            rule["action"] = str(r["action"]).lower()
        result.append(rule)
    return result


def _sharding() -> list[Rule]:
    return [
        {"source_labels": ["__address__", "__tmp_hash"], "target_label": "__tmp_hash",
         "regex": "(.+);", "replacement": "$1", "action": "replace"},
        {"source_labels": ["__tmp_hash"], "target_label": "__tmp_hash", "modulus": 1,
         "action": "hashmod"},
        {"source_labels": ["__tmp_hash", "__tmp_disable_sharding"],
         "regex": "$(SHARD);|.+;.+", "action": "keep"},
    ]  # fmt: skip


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> Sequence[Any]:
    return value if isinstance(value, list) else []
