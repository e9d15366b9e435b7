"""Label pieces the roles share, so every role spells and fills them the same way.

Prometheus builds the same blocks in several roles (docs/kubernetes-sd-contract.md §3): an
object's metadata block, the pod block with its owner chain, the joined node, namespace and
service blocks, and the pod join of the endpoints roles. They live here, with sanitising and Go's
host:port join. Label names are full literals so users can grep for them.

Everything here runs per object or per target on the consumer's hot path: sanitised names
are cached per prefix, blocks are plain dicts, and nothing is validated twice.

**Sanitisation collisions.** Two keys of one map can sanitise to the same label name
(`app.kubernetes.io/name` and `app_kubernetes_io_name`). Prometheus writes them in Go map
order, so its winner is random. Ours is deterministic: keys are written in sorted
(code point) order, so the greatest original key wins. The same rule covers node address
types; node condition types come from a list, where Prometheus's last entry wins, as here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from consumers.roles import lookups
from schemas.objects import KubeObject, ObjectMeta, meta
from schemas.targets import LabelSet
from schemas.topics import ObjectKey, Resource

ADDRESS = "__address__"
INSTANCE = "instance"
NAMESPACE = "__meta_kubernetes_namespace"
TRUE = "true"
FALSE = "false"

POD_IP = "__meta_kubernetes_pod_ip"
POD_READY = "__meta_kubernetes_pod_ready"
POD_PHASE = "__meta_kubernetes_pod_phase"
POD_NODE_NAME = "__meta_kubernetes_pod_node_name"
POD_HOST_IP = "__meta_kubernetes_pod_host_ip"
POD_UID = "__meta_kubernetes_pod_uid"
POD_CONTROLLER_KIND = "__meta_kubernetes_pod_controller_kind"
POD_CONTROLLER_NAME = "__meta_kubernetes_pod_controller_name"
POD_DEPLOYMENT_NAME = "__meta_kubernetes_pod_deployment_name"
POD_JOB_NAME = "__meta_kubernetes_pod_job_name"
POD_CRONJOB_NAME = "__meta_kubernetes_pod_cronjob_name"
POD_CONTAINER_NAME = "__meta_kubernetes_pod_container_name"
POD_CONTAINER_IMAGE = "__meta_kubernetes_pod_container_image"
POD_CONTAINER_INIT = "__meta_kubernetes_pod_container_init"
POD_CONTAINER_PORT_NAME = "__meta_kubernetes_pod_container_port_name"
POD_CONTAINER_PORT_NUMBER = "__meta_kubernetes_pod_container_port_number"
POD_CONTAINER_PORT_PROTOCOL = "__meta_kubernetes_pod_container_port_protocol"

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_CACHE_LIMIT = 1 << 16
_UINT64 = 1 << 64


def sanitize(name: str) -> str:
    """Each code point other than an ASCII letter, digit or `_` becomes one `_` (§3).

    Case is kept and nothing is collapsed. An invalid UTF-8 byte reaches Python as one
    lone surrogate (`surrogateescape`), so it too becomes exactly one `_`, as in Go.
    """
    return _INVALID.sub("_", name)


def go_lower(text: str) -> str:
    """Go's `strings.ToLower`: per code point, so `İ` gives `i`, and no final-sigma rule."""
    if text.isascii():
        return text.lower()
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in text)


def join_host_port(host: str, port: str) -> str:
    """Go's `net.JoinHostPort`: a host containing `:` is bracketed."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def int_text(value: Any) -> str:
    """An int32 field as Go's FormatInt writes it; a missing field is 0."""
    return str(value or 0)


def uint_text(value: Any) -> str:
    """An int32 port as Prometheus writes it with FormatUint(uint64(...)); missing is 0."""
    number: int = value or 0
    return str(number if number >= 0 else number + _UINT64)


def bool_text(value: Any) -> str:
    return TRUE if value else FALSE


class Names:
    """Full label names for one map's keys: the value name and the `present` name.

    Caches the sanitised pair per key (bounded), since the same keys recur on every object.
    """

    __slots__ = ("cache", "present_prefix", "value_prefix")

    def __init__(self, value_prefix: str, present_prefix: str) -> None:
        self.value_prefix = value_prefix
        self.present_prefix = present_prefix
        self.cache: dict[str, tuple[str, str]] = {}  # read directly on the hot path

    def pair(self, key: str) -> tuple[str, str]:
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= _CACHE_LIMIT:
                self.cache.clear()
            clean = sanitize(key)
            found = (self.value_prefix + clean, self.present_prefix + clean)
            self.cache[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Meta:
    """The metadata block's names for one kind; `name` is "" where there is no name label."""

    name: str
    labels: Names
    annotations: Names


POD_META = Meta(
    "__meta_kubernetes_pod_name",
    Names("__meta_kubernetes_pod_label_", "__meta_kubernetes_pod_labelpresent_"),
    Names("__meta_kubernetes_pod_annotation_", "__meta_kubernetes_pod_annotationpresent_"),
)
SERVICE_META = Meta(
    "__meta_kubernetes_service_name",
    Names("__meta_kubernetes_service_label_", "__meta_kubernetes_service_labelpresent_"),
    Names("__meta_kubernetes_service_annotation_", "__meta_kubernetes_service_annotationpresent_"),
)
ENDPOINTS_META = Meta(
    "__meta_kubernetes_endpoints_name",
    Names("__meta_kubernetes_endpoints_label_", "__meta_kubernetes_endpoints_labelpresent_"),
    Names(
        "__meta_kubernetes_endpoints_annotation_",
        "__meta_kubernetes_endpoints_annotationpresent_",
    ),
)
ENDPOINTSLICE_META = Meta(
    "__meta_kubernetes_endpointslice_name",
    Names(
        "__meta_kubernetes_endpointslice_label_", "__meta_kubernetes_endpointslice_labelpresent_"
    ),
    Names(
        "__meta_kubernetes_endpointslice_annotation_",
        "__meta_kubernetes_endpointslice_annotationpresent_",
    ),
)
INGRESS_META = Meta(
    "__meta_kubernetes_ingress_name",
    Names("__meta_kubernetes_ingress_label_", "__meta_kubernetes_ingress_labelpresent_"),
    Names("__meta_kubernetes_ingress_annotation_", "__meta_kubernetes_ingress_annotationpresent_"),
)
NODE_META = Meta(
    "__meta_kubernetes_node_name",
    Names("__meta_kubernetes_node_label_", "__meta_kubernetes_node_labelpresent_"),
    Names("__meta_kubernetes_node_annotation_", "__meta_kubernetes_node_annotationpresent_"),
)
NAMESPACE_META = Meta(
    "",
    Names("__meta_kubernetes_namespace_label_", "__meta_kubernetes_namespace_labelpresent_"),
    Names(
        "__meta_kubernetes_namespace_annotation_",
        "__meta_kubernetes_namespace_annotationpresent_",
    ),
)


def add_pairs(out: LabelSet, mapping: Mapping[str, str] | None, names: Names) -> None:
    """Write `value name = value` and `present name = "true"` for each key of `mapping`.

    Fast path in the map's own order; if any name was written twice (a sanitisation
    collision), rewrite the whole map in sorted key order so the result is deterministic.
    """
    if not mapping:
        return
    before = len(out)
    cache = names.cache
    for key, value in mapping.items():
        value_name, present_name = cache.get(key) or names.pair(key)
        out[value_name] = value or ""
        out[present_name] = TRUE
    if len(out) - before != 2 * len(mapping):
        for key in sorted(mapping):
            value_name, present_name = names.pair(key)
            out[value_name] = mapping[key] or ""
            out[present_name] = TRUE


def add_meta(out: LabelSet, m: ObjectMeta, names: Meta) -> None:
    """The metadata block: `<R>_name` (unless the kind has none), labels, annotations."""
    if names.name:
        out[names.name] = m.get("name") or ""
    add_pairs(out, m.get("labels"), names.labels)
    add_pairs(out, m.get("annotations"), names.annotations)


def add_namespace(out: LabelSet, *, lookup: lookups.Lookup, namespace: str) -> None:
    """The namespace block (attach_metadata.namespace); nothing if the namespace is unknown."""
    found = lookup.get(Resource.NAMESPACES, ObjectKey(namespace))
    if found is not None:
        add_meta(out, meta(found), NAMESPACE_META)


def node_block(node: KubeObject) -> LabelSet:
    """The joined node block: `node_name` plus the node's labels and annotations only."""
    out: LabelSet = {}
    add_meta(out, meta(node), NODE_META)
    return out


def service_block(service: KubeObject) -> LabelSet:
    """`namespace`, `service_name` and the service's labels and annotations (§3)."""
    m = meta(service)
    out: LabelSet = {NAMESPACE: m.get("namespace") or ""}
    add_meta(out, m, SERVICE_META)
    return out


def controller_of(m: ObjectMeta) -> dict[str, Any] | None:
    """The first ownerReference with `controller: true`; the others are ignored."""
    for ref in m.get("ownerReferences") or ():
        if ref.get("controller") is True:
            return ref
    return None


def _owner_controller_kind(owner: KubeObject | None, kind: str) -> str | None:
    """The name of `owner`'s controller if that controller is of `kind`."""
    if owner is None:
        return None
    ref = controller_of(meta(owner))
    if ref is None or ref.get("kind") != kind:
        return None
    name: str = ref.get("name") or ""
    return name


def add_owner_chain(
    out: LabelSet,
    ref: Mapping[str, Any],
    *,
    namespace: str,
    lookup: lookups.Lookup,
    attach: lookups.Attach,
) -> None:
    """Deployment, Job and CronJob names from the pod's controller reference (§3)."""
    kind = ref.get("kind")
    name: str = ref.get("name") or ""
    if kind == "ReplicaSet" and attach.deployment:
        found = _owner_controller_kind(
            lookup.get(Resource.REPLICASETS, lookups.key(namespace, name)), "Deployment"
        )
        if found is not None:
            out[POD_DEPLOYMENT_NAME] = found
    elif kind == "Job":
        if attach.job:
            out[POD_JOB_NAME] = name
        if attach.cronjob:
            found = _owner_controller_kind(
                lookup.get(Resource.JOBS, lookups.key(namespace, name)), "CronJob"
            )
            if found is not None:
                out[POD_CRONJOB_NAME] = found


def first_values(
    entries: Iterable[Mapping[str, Any]] | None, *, key: str, value: str
) -> dict[str, str]:
    """`entry[value]` by `entry[key]` over a list of objects; the first entry of a key wins."""
    out: dict[str, str] = {}
    for entry in entries or ():
        out.setdefault(entry.get(key) or "", entry.get(value) or "")
    return out


def pod_ready(status: Mapping[str, Any]) -> str:
    """The first Ready condition's status, lower-cased; "unknown" without one."""
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return go_lower(condition.get("status") or "")
    return "unknown"


def pod_block(pod: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach) -> LabelSet:
    """The pod block (§3): no `namespace`, which the caller adds where the role has it."""
    m = meta(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    out: LabelSet = {
        POD_IP: status.get("podIP") or "",
        POD_READY: pod_ready(status),
        POD_PHASE: status.get("phase") or "",
        POD_NODE_NAME: spec.get("nodeName") or "",
        POD_HOST_IP: status.get("hostIP") or "",
        POD_UID: m.get("uid") or "",
    }
    add_meta(out, m, POD_META)
    ref = controller_of(m)
    if ref is not None:
        if ref.get("kind"):
            out[POD_CONTROLLER_KIND] = ref["kind"]
        if ref.get("name"):
            out[POD_CONTROLLER_NAME] = ref["name"]
        add_owner_chain(out, ref, namespace=m.get("namespace") or "", lookup=lookup, attach=attach)
    return out


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """`spec.containers` then `spec.initContainers` (sidecars included), with the init flag."""
    for container in spec.get("containers") or ():
        yield container, FALSE
    for container in spec.get("initContainers") or ():
        yield container, TRUE
