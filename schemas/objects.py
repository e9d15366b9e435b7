"""Trimmed Kubernetes objects as they travel on object topics.

They are plain API JSON (dicts), typed loosely: the API server's own schema is
the contract, and the producer only removes fields, never renames them.
"""

from __future__ import annotations

from typing import Any, TypedDict

KubeObject = dict[str, Any]  # one object as Kubernetes API JSON


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[dict[str, Any]]


def meta(obj: KubeObject) -> ObjectMeta:
    """The object's metadata, or an empty one (Go zero value)."""
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}  # type: ignore[return-value]
