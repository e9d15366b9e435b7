"""Selectors applied by the consumer, exactly as the API server would apply them.

Prometheus sends a job's selectors with its list and watch calls, so the API server
filters. sdstream's producers publish a cluster's objects unfiltered, because one stream
feeds many jobs; each job's selectors are therefore applied here, on the consumer side.

The selector language itself (parsing, the normal form, the fields each kind supports)
lives in `schemas.selectors`: the settings validate selectors at load time and `schemas`
may not import `consumers`. This module is the consumer's entry point: it re-exports that
API and evaluates it, as apimachinery does: a label selector against a label set
(`label_matches`), a field selector against an object as the server formats its fields
(`field_matches`, `field_value`), and `ObjectFilter`, one compiled `{label, field}` pair
tested against whole API objects.

    from consumers import selectors
    only_web = selectors.ObjectFilter.parse(Resource.PODS, label="app=web",
                                            field="status.phase=Running")
    only_web.matches(pod)  # labels from metadata.labels, fields as the server formats them

Pure: no logging, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.objects import KubeObject, meta
from schemas.selectors import FIELD_SETS, INT64_MAX
from schemas.selectors import FieldOperator as FieldOperator
from schemas.selectors import FieldSelector as FieldSelector
from schemas.selectors import FieldTerm as FieldTerm
from schemas.selectors import LabelSelector as LabelSelector
from schemas.selectors import Operator as Operator
from schemas.selectors import Requirement as Requirement
from schemas.selectors import SelectorError as SelectorError
from schemas.selectors import escape_field_value as escape_field_value
from schemas.selectors import parse_field_selector as parse_field_selector
from schemas.selectors import parse_label_selector as parse_label_selector
from schemas.topics import Resource

INT64_MIN = -(2**63)
_SIGNED_DECIMAL = re.compile(r"[+-]?[0-9]+")
_MEMBER = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN})
_NOT_MEMBER = frozenset({Operator.NOT_EQUALS, Operator.NOT_IN})


def label_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    return all(requirement_matches(r, labels) for r in selector.requirements)


def requirement_matches(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    key, op, values = requirement.key, requirement.operator, requirement.values
    present = key in labels
    if op in _MEMBER:
        return present and labels[key] in values
    if op in _NOT_MEMBER:
        return not present or labels[key] not in values
    if op is Operator.EXISTS:
        return present
    if op is Operator.DOES_NOT_EXIST:
        return not present
    actual = _parse_int(labels[key]) if present else None
    if actual is None:
        return False
    limit = int(values[0])
    return actual > limit if op is Operator.GREATER_THAN else actual < limit


def _parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): optional sign, decimal digits, int64 range."""
    if not _SIGNED_DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def field_matches(selector: FieldSelector, obj: KubeObject) -> bool:
    """Each term against the field as the server formats it."""
    return all(
        (field_value(selector.kind, obj, t.field) == t.value)
        is (t.operator is FieldOperator.EQUALS)
        for t in selector.terms
    )


def field_value(kind: Resource, obj: KubeObject, field: str) -> str:
    """The value the API server's field set holds for `field` of `obj`."""
    return FIELD_SETS[kind][field](obj)


def labels_of(obj: KubeObject) -> dict[str, str]:
    """metadata.labels, or {} when absent or malformed."""
    labels = meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """A label and a field selector on one kind; both must match."""

    label: LabelSelector
    field: FieldSelector

    @classmethod
    def parse(cls, kind: Resource, *, label: str = "", field: str = "") -> ObjectFilter:
        return cls(parse_label_selector(label), parse_field_selector(field, kind=kind))

    @property
    def kind(self) -> Resource:
        return self.field.kind

    @property
    def empty(self) -> bool:
        return self.label.empty and self.field.empty

    def matches(self, obj: KubeObject) -> bool:
        return label_matches(self.label, labels_of(obj)) and field_matches(self.field, obj)

    def __str__(self) -> str:
        return f"label={str(self.label)!r} field={str(self.field)!r}"
