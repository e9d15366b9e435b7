"""Raw API object -> the fields discovery reads, and nothing else.

A whitelist per resource (its registry row's `trim`, see `schemas.trims`; the fields of
docs/kubernetes-sd-contract.md §6):
whatever is not listed (managedFields, env, volumes, secrets, probes, ...) never
reaches Kafka. Null and empty are kept apart: a present
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

from schemas import resources
from schemas.objects import KubeObject
from schemas.topics import ObjectKey, Resource, object_key
from schemas.trims import META, Spec

SPECS: Final[Mapping[Resource, Spec]] = {r: row.trim for r, row in resources.ROWS.items()}


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
    trimmed = _project(obj, _COMPILED[resource])
    meta = _project(obj["metadata"], _META)
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


@dataclass(frozen=True)
class _Node:
    """A spec, compiled once: each field with its own node (None: kept whole), and the
    path error messages name. Trimming runs for every listed object, so the walk
    builds no path strings and asks no spec value for its type."""

    fields: tuple[tuple[str, _Node | None], ...]
    path: str


def _compile(spec: Spec, path: str) -> _Node:
    fields = tuple(
        (name, None if isinstance(sub, bool) else _compile(sub, f"{path}.{name}"))
        for name, sub in spec.items()
    )
    return _Node(fields, path)


_COMPILED: Final[Mapping[Resource, _Node]] = {r: _compile(s, "") for r, s in SPECS.items()}
_META: Final = _compile(META, "metadata")


def _project(value: Any, node: _Node, path: str | None = None) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for field, sub in node.fields:
            if field in value:
                child = value[field]
                out[field] = child if sub is None else _project(child, sub)
        return out
    if isinstance(value, list):
        inner = f"{path or node.path}[]"
        return [_project(item, node, inner) for item in value]
    if value is None:
        return None
    where = path or node.path or "object"
    raise TrimError(f"{where} is {type(value).__name__}, expected an object")
