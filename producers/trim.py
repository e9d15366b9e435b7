"""Raw API object -> the fields discovery reads, and nothing else.

A whitelist per resource, from docs/kubernetes-sd-contract.md §6 ("Fields read"):
whatever is not listed (managedFields, env, volumes, secrets, probes, ...) never
reaches Kafka. Fields a server-side field selector can name are kept as well,
so a consumer can emulate selectors. Null and empty are kept apart: a present
`null` or `{}` stays, an absent field stays absent.

Annotations are kept (roles publish them as labels) except the keys a
`DropAnnotations` names: exact keys, key prefixes (an entry ending in `*`) and
full-match regexes. Some tools keep whole manifests in annotations, which would
otherwise make a record as large as the object's manifest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas.objects import KubeObject
from schemas.topics import ObjectKey, Resource, object_key

# A spec maps a field to True (keep the value whole) or to a nested spec. A nested
# spec applied to a list applies to each element.
Spec = Mapping[str, "Spec | bool"]

_OWNER: Final[Spec] = {"apiVersion": True, "kind": True, "name": True, "controller": True}
_META: Final[Spec] = {
    "name": True,
    "namespace": True,
    "uid": True,
    "resourceVersion": True,
    "labels": True,
    "annotations": True,
    "ownerReferences": _OWNER,
}
_PORTS: Final[Spec] = {"name": True, "containerPort": True, "protocol": True}
_CONTAINER: Final[Spec] = {"name": True, "image": True, "ports": _PORTS, "restartPolicy": True}
_CONTAINER_STATUS: Final[Spec] = {"name": True, "containerID": True}
_CONDITION: Final[Spec] = {"type": True, "status": True}
_TARGET_REF: Final[Spec] = {"kind": True, "name": True, "namespace": True}
_EP_ADDRESS: Final[Spec] = {
    "ip": True,
    "hostname": True,
    "nodeName": True,
    "targetRef": _TARGET_REF,
}

_POD: Final[Spec] = {
    "spec": {
        "nodeName": True,
        "containers": _CONTAINER,
        "initContainers": _CONTAINER,
        # named by field selectors
        "restartPolicy": True,
        "schedulerName": True,
        "serviceAccountName": True,
        "hostNetwork": True,
    },
    "status": {
        "phase": True,
        "podIP": True,
        "podIPs": True,
        "hostIP": True,
        "nominatedNodeName": True,
        "conditions": _CONDITION,
        "containerStatuses": _CONTAINER_STATUS,
        "initContainerStatuses": _CONTAINER_STATUS,
    },
}
_SERVICE: Final[Spec] = {
    "spec": {
        "ports": {"name": True, "port": True, "protocol": True},
        "type": True,
        "clusterIP": True,
        "externalName": True,
        "loadBalancerIP": True,
        "ipFamilyPolicy": True,
        "ipFamilies": True,
    },
    "status": {"loadBalancer": {"ingress": {"ip": True, "hostname": True}}},
}
_ENDPOINTS: Final[Spec] = {
    "subsets": {
        "addresses": _EP_ADDRESS,
        "notReadyAddresses": _EP_ADDRESS,
        "ports": {"name": True, "port": True, "protocol": True},
    }
}
_ENDPOINTSLICE: Final[Spec] = {
    "addressType": True,
    "ports": {"name": True, "port": True, "protocol": True, "appProtocol": True},
    "endpoints": {
        "addresses": True,
        "conditions": {"ready": True, "serving": True, "terminating": True},
        "hostname": True,
        "nodeName": True,
        "zone": True,
        "targetRef": _TARGET_REF,
        "deprecatedTopology": True,
    },
}
_INGRESS: Final[Spec] = {
    "spec": {
        "ingressClassName": True,
        "tls": {"hosts": True},
        "rules": {"host": True, "http": {"paths": {"path": True}}},
    }
}
_NODE: Final[Spec] = {
    "spec": {"providerID": True, "unschedulable": True},
    "status": {
        "addresses": {"type": True, "address": True},
        "conditions": _CONDITION,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": True}},
    },
}

SPECS: Final[Mapping[Resource, Spec]] = {
    Resource.PODS: _POD,
    Resource.SERVICES: _SERVICE,
    Resource.ENDPOINTS: _ENDPOINTS,
    Resource.ENDPOINTSLICES: _ENDPOINTSLICE,
    Resource.INGRESSES: _INGRESS,
    Resource.NODES: _NODE,
    Resource.NAMESPACES: {},
    Resource.REPLICASETS: {},
    Resource.JOBS: {},
}


class TrimError(ValueError):
    """The object does not have the shape the API promises; skip it."""

    retriable = False


def key_of(obj: Any) -> ObjectKey:
    """The object's key; TrimError if it has no usable name."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise TrimError("object without metadata.name")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if namespace is not None and not isinstance(namespace, str):
        raise TrimError(f"{name}: metadata.namespace is not a string")
    return object_key(namespace, name)


@dataclass(frozen=True)
class DropAnnotations:
    """Annotation keys never published: exact keys, key prefixes, full-match regexes."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    # One compiled regex per pattern, not one alternation: a pattern is compiled here
    # exactly as settings validated it, so inline flags (`(?i)...`) work and a pattern
    # that passed load never fails at start ("global flags not at the start").
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str], patterns: Iterable[str] = ()) -> DropAnnotations:
        """Entries ending in `*` are prefixes, the others exact keys; patterns are regexes."""
        entries = list(entries)
        return cls(
            exact=frozenset(e for e in entries if not e.endswith("*")),
            prefixes=tuple(e[:-1] for e in entries if e.endswith("*")),
            patterns=tuple(re.compile(r) for r in patterns),
        )

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes or self.patterns)

    def drops(self, key: str) -> bool:
        return (
            key in self.exact
            or key.startswith(self.prefixes)
            or any(p.fullmatch(key) is not None for p in self.patterns)
        )


def trim(resource: Resource, obj: Any, *, drop_annotations: DropAnnotations) -> KubeObject:
    """The object reduced to SPECS[resource] plus metadata; TrimError on a bad shape."""
    key_of(obj)
    trimmed = _project(obj, SPECS[resource], "")
    meta = _project(obj["metadata"], _META, "metadata")
    _check_string_map(meta, "labels")
    annotations = _check_string_map(meta, "annotations")
    if annotations is not None and drop_annotations:
        kept = {k: v for k, v in annotations.items() if not drop_annotations.drops(k)}
        meta["annotations"] = kept
    return {"metadata": meta, **trimmed}


def _check_string_map(meta: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = meta.get(field)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TrimError(f"metadata.{field} is not a map of strings")
    return value


def _project(value: Any, spec: Spec, path: str) -> Any:
    if isinstance(value, list):
        return [_project(item, spec, f"{path}[]") for item in value]
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TrimError(f"{path or 'object'} is {type(value).__name__}, expected an object")
    out: dict[str, Any] = {}
    for field, sub in spec.items():
        if field in value:
            child = value[field]
            out[field] = child if isinstance(sub, bool) else _project(child, sub, f"{path}.{field}")
    return out
