"""The endpoints roles' joins: the pods an endpoint's targetRef names, and node blocks.

Both are memoised for one build: a slice's endpoints share few nodes, and a pod named by
several endpoint ports is resolved once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consumers.roles import lookups
from consumers.roles.labels import (
    ADDRESS,
    POD_CONTAINER_IMAGE,
    POD_CONTAINER_INIT,
    POD_CONTAINER_NAME,
    POD_CONTAINER_PORT_NAME,
    POD_CONTAINER_PORT_NUMBER,
    POD_CONTAINER_PORT_PROTOCOL,
    containers,
    join_host_port,
    node_block,
    pod_block,
    uint_text,
)
from schemas.objects import KubeObject
from schemas.targets import LabelSet
from schemas.topics import ObjectKey, Resource


@dataclass(slots=True)
class JoinedPod:
    """A pod an endpoint's targetRef resolved to, with what its targets reuse.

    `ports` holds every container port as (number, container labels), containers then init
    containers; `by_number` the labels a matching endpoint port gets: the first matching
    port of the last container that has one (Prometheus scans them all, later wins).
    """

    key: tuple[str, str]
    ip: str
    block: LabelSet
    ports: list[tuple[int, LabelSet]]
    by_number: dict[int, LabelSet]
    seen: set[int] = field(default_factory=set)


def _container_ports(container: Mapping[str, Any], init: str) -> list[tuple[int, LabelSet]]:
    """Each port of a container with its `pod_container_*` labels (container protocol)."""
    name: str = container.get("name") or ""
    image: str = container.get("image") or ""
    return [
        (
            port.get("containerPort") or 0,
            {
                POD_CONTAINER_NAME: name,
                POD_CONTAINER_IMAGE: image,
                POD_CONTAINER_PORT_NAME: port.get("name") or "",
                POD_CONTAINER_PORT_NUMBER: uint_text(port.get("containerPort")),
                POD_CONTAINER_PORT_PROTOCOL: port.get("protocol") or "",
                POD_CONTAINER_INIT: init,
            },
        )
        for port in container.get("ports") or ()
    ]


def _joined(
    key: tuple[str, str], pod: KubeObject, *, lookup: lookups.Lookup, attach: lookups.Attach
) -> JoinedPod:
    ports: list[tuple[int, LabelSet]] = []
    by_number: dict[int, LabelSet] = {}
    for container, init in containers(pod.get("spec") or {}):
        if container.get("ports"):
            found = _container_ports(container, init)
            ports.extend(found)
            by_number.update(dict(reversed(found)))  # per container, its first port wins
    status = pod.get("status") or {}
    block = pod_block(pod, lookup=lookup, attach=attach)
    return JoinedPod(key, status.get("podIP") or "", block, ports, by_number)


class PodJoin:
    """The endpoints roles' pod join, for one build: resolved pods and their extra targets.

    A pod joins when a target with its targetRef is built (`use`); pods only looked at
    never give extra pod-port targets, matching Prometheus's per-target bookkeeping.
    """

    __slots__ = ("_attach", "_lookup", "_resolved", "_used")

    def __init__(self, *, lookup: lookups.Lookup, attach: lookups.Attach) -> None:
        self._lookup = lookup
        self._attach = attach
        self._resolved: dict[tuple[str, str], JoinedPod | None] = {}
        self._used: dict[tuple[str, str], JoinedPod] = {}

    def resolve(self, ref: Mapping[str, Any] | None) -> JoinedPod | None:
        """The cached pod a `Pod` targetRef names (looked up by the ref's own namespace)."""
        if ref is None or ref.get("kind") != "Pod":
            return None
        key = (ref.get("namespace") or "", ref.get("name") or "")
        if key in self._resolved:
            return self._resolved[key]
        pod = self._lookup.get(Resource.PODS, lookups.key(*key))
        joined = None
        if pod is not None:
            joined = _joined(key, pod, lookup=self._lookup, attach=self._attach)
        self._resolved[key] = joined
        return joined

    def use(self, joined: JoinedPod, number: int | None) -> None:
        """Record that a target for `joined` was built on endpoint port `number`."""
        self._used.setdefault(joined.key, joined)
        if number is not None:
            joined.seen.add(number)

    def extra_targets(self) -> list[LabelSet]:
        """Targets for container ports no endpoint port covered, pods in first-use order.

        Prometheus iterates a Go map here, so its order is random; compare as a multiset.
        """
        out: list[LabelSet] = []
        for joined in self._used.values():
            if not joined.ip:
                continue
            for number, container in joined.ports:
                if number not in joined.seen:
                    target = joined.block.copy()  # copying beats merging into a new dict
                    target.update(container)
                    target[ADDRESS] = join_host_port(
                        joined.ip, container[POD_CONTAINER_PORT_NUMBER]
                    )
                    out.append(target)
        return out


class NodeBlocks:
    """Joined node blocks, memoised for one build (many endpoints share few nodes)."""

    __slots__ = ("_cache", "_lookup")

    def __init__(self, lookup: lookups.Lookup) -> None:
        self._lookup = lookup
        self._cache: dict[str, LabelSet | None] = {}

    def add(self, out: LabelSet, name: str | None) -> None:
        """Merge the block of node `name` into `out`; nothing for None or an unknown node."""
        if name is None:
            return
        if name not in self._cache:
            node = self._lookup.get(Resource.NODES, ObjectKey(name))
            self._cache[name] = None if node is None else node_block(node)
        block = self._cache[name]
        if block is not None:
            out.update(block)
