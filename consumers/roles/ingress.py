"""The `ingress` role: one target per rule path, at the rule's bare host.

The contract: docs/kubernetes-sd-contract.md §4.6.

Joins only the Ingress's Namespace (attach_metadata.namespace). Backends, `pathType` and
`spec.defaultBackend` play no part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consumers.roles import labels, lookups
from schemas.objects import KubeObject, meta
from schemas.targets import Group, LabelSet
from schemas.topics import Source

INGRESS_SCHEME = "__meta_kubernetes_ingress_scheme"
INGRESS_HOST = "__meta_kubernetes_ingress_host"
INGRESS_PATH = "__meta_kubernetes_ingress_path"
INGRESS_CLASS_NAME = "__meta_kubernetes_ingress_class_name"


def source(namespace: str, name: str) -> Source:
    return Source(f"ingress/{namespace}/{name}")


def matches_host(pattern: str, host: str) -> bool:
    """Equal, or `*.rest` against a host with as many dot-separated labels and equal `rest`."""
    if pattern == host:
        return True
    pattern_parts = pattern.split(".")
    host_parts = host.split(".")
    return (
        pattern_parts[0] == "*"
        and len(pattern_parts) == len(host_parts)
        and pattern_parts[1:] == host_parts[1:]
    )


def rule_paths(rule: Mapping[str, Any]) -> list[str]:
    """`/` for a rule without `http`; else its paths in order, `""` read as `/`."""
    http = rule.get("http")
    if http is None:
        return ["/"]
    return [path.get("path") or "/" for path in http.get("paths") or ()]


def _scheme(host: str, tls_hosts: Iterable[str]) -> str:
    return "https" if any(matches_host(pattern, host) for pattern in tls_hosts) else "http"


def _group_labels(
    ingress: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> LabelSet:
    m = meta(ingress)
    namespace: str = m.get("namespace") or ""
    out: LabelSet = {labels.NAMESPACE: namespace}
    class_name = (ingress.get("spec") or {}).get("ingressClassName")
    if class_name is not None:
        out[INGRESS_CLASS_NAME] = class_name
    labels.add_meta(out, m, labels.INGRESS_META)
    if attach.namespace:
        labels.add_namespace(out, lookup=lookup, namespace=namespace)
    return out


def build_group(ingress: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach) -> Group:
    """Rules in order, paths in order; `https` when a TLS host matches the rule host."""
    m = meta(ingress)
    spec = ingress.get("spec") or {}
    tls_hosts = [host or "" for tls in spec.get("tls") or () for host in tls.get("hosts") or ()]
    targets: list[LabelSet] = []
    for rule in spec.get("rules") or ():
        host: str = rule.get("host") or ""
        scheme = _scheme(host, tls_hosts)
        targets.extend(
            {labels.ADDRESS: host, INGRESS_SCHEME: scheme, INGRESS_HOST: host, INGRESS_PATH: path}
            for path in rule_paths(rule)
        )
    return Group(
        source(m.get("namespace") or "", m.get("name") or ""),
        _group_labels(ingress, lookup=lookup, attach=attach),
        targets,
    )
