"""Names on the wire: object keys, group sources, target keys, topics and partitions.

Everything a producer and a consumer must agree on without talking to each other
lives here, so a reader in another language can reimplement it from one file.
"""

from __future__ import annotations

import re
import zlib
from typing import NewType
from urllib.parse import unquote

from schemas.resources import Resource as Resource  # re-exported: topics are named by it

ObjectKey = NewType("ObjectKey", str)  # "namespace/name", or "name" for cluster-scoped kinds
Source = NewType("Source", str)  # Prometheus's group source, e.g. "pod/ns/name"
TargetKey = NewType("TargetKey", str)  # "job/cluster/source"

TARGETS_SUFFIX = "targets"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def object_key(namespace: str | None, name: str) -> ObjectKey:
    """The key client-go's MetaNamespaceKeyFunc gives: "ns/name", or "name"."""
    return ObjectKey(f"{namespace}/{name}" if namespace else name)


def split_key(key: ObjectKey) -> tuple[str, str]:
    """(namespace, name); the namespace is "" for cluster-scoped objects."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def check_name(kind: str, value: str) -> str:
    """Cluster names and prefixes go into topic names: keep them DNS-label shaped.

    Kafka treats "." and "_" as colliding in metric names, so neither is allowed.
    """
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{kind} {value!r} must be lower-case letters, digits and '-', 1-63 characters"
        )
    return value


def object_topic(prefix: str, cluster: str, resource: Resource) -> str:
    """`<prefix>.<cluster>.<resource>`: one compacted topic per cluster and resource."""
    return f"{prefix}.{cluster}.{resource.value}"


def targets_topic(prefix: str) -> str:
    """`<prefix>.targets`: the compacted topic of target-group snapshots."""
    return f"{prefix}.{TARGETS_SUFFIX}"


def parse_object_topic(prefix: str, topic: str) -> tuple[str, Resource] | None:
    """(cluster, resource) of an object topic under `prefix`, or None if it is not one."""
    head = f"{prefix}."
    if not topic.startswith(head):
        return None
    cluster, _, resource = topic[len(head) :].rpartition(".")
    try:
        return (cluster, Resource(resource)) if cluster else None
    except ValueError:
        return None


TARGET_KEY_VERSION = 2  # 1: `<job>/<cluster>/<source>` with the job as is


def quote_job(job: str) -> str:
    """The job part of a target key: `%` -> `%25`, `/` -> `%2F`, nothing else, so that a
    key splits at its first two `/` even for monitor jobs (`serviceMonitor/ns/name/0`).
    Configured job names hold neither character: their keys are those of version 1."""
    return job.replace("%", "%25").replace("/", "%2F")


def target_key(job: str, cluster: str, source: Source) -> TargetKey:
    """`<job>/<cluster>/<source>`, the job quoted (`quote_job`; docs/ARCHITECTURE.md)."""
    return TargetKey(f"{quote_job(job)}/{cluster}/{source}")


def parse_target_key(key: TargetKey) -> tuple[str, str, str]:
    """(job, cluster, source) of `target_key`'s result; raises ValueError if malformed."""
    job, cluster, source = key.split("/", 2)
    return unquote(job), cluster, source


def partition_for(key: ObjectKey, partitions: int) -> int:
    """Partition by namespace, so one namespace's pods, services and slices meet.

    Cluster-scoped keys hash by name; every consumer reads those topics whole anyway.
    CRC-32 is stable across processes and languages (Python's hash() is not).
    """
    namespace, name = split_key(key)
    return zlib.crc32((namespace or name).encode()) % partitions
