"""The fields the API server lets a field selector name, per kind, and their values.

Each kind's set is what its registry strategy's `GetAttrs` puts in the field set
(`pkg/apis/core/v1/conversion.go` and siblings); a row of `schemas.resources` names its
kind's set, and `schemas.selectors` parses and matches against it. Values are as the
server formats them: booleans "true"/"false", a missing field "".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from schemas.objects import KubeObject

Getter = Callable[[KubeObject], str]
FieldSet = Mapping[str, Getter]


def _dig(obj: object, path: tuple[str, ...]) -> object:
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def _text(*path: str) -> Getter:
    def get(obj: KubeObject) -> str:
        value = _dig(obj, path)
        return value if isinstance(value, str) else ""

    return get


def _flag(*path: str) -> Getter:
    return lambda obj: "true" if _dig(obj, path) is True else "false"


def _pod_ip(pod: KubeObject) -> str:
    """status.podIP wins over podIPs[0] (the v1 conversion), as the server's field set has it."""
    ips = _dig(pod, ("status", "podIPs"))
    first = _dig(ips[0], ("ip",)) if isinstance(ips, list) and ips else None
    return _text("status", "podIP")(pod) or (first if isinstance(first, str) else "")


def _service_account(pod: KubeObject) -> str:
    return _text("spec", "serviceAccountName")(pod) or _text("spec", "serviceAccount")(pod)


NAME: Final[FieldSet] = {"metadata.name": _text("metadata", "name")}
NAMESPACED: Final[FieldSet] = {**NAME, "metadata.namespace": _text("metadata", "namespace")}
POD: Final[FieldSet] = {
    **NAMESPACED,
    "spec.nodeName": _text("spec", "nodeName"),
    "spec.restartPolicy": _text("spec", "restartPolicy"),
    "spec.schedulerName": _text("spec", "schedulerName"),
    "spec.serviceAccountName": _service_account,
    "spec.hostNetwork": _flag("spec", "hostNetwork"),
    "status.phase": _text("status", "phase"),
    "status.podIP": _pod_ip,
    "status.podIPs": lambda _: "",
    "status.nominatedNodeName": _text("status", "nominatedNodeName"),
}
SERVICE: Final[FieldSet] = {
    **NAMESPACED,
    "spec.clusterIP": _text("spec", "clusterIP"),
    "spec.type": _text("spec", "type"),
}
NODE: Final[FieldSet] = {**NAME, "spec.unschedulable": _flag("spec", "unschedulable")}
NAMESPACE: Final[FieldSet] = {**NAME, "status.phase": _text("status", "phase")}
