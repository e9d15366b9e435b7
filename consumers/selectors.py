"""Selectors applied by the consumer, exactly as the API server would apply them.

Prometheus sends a job's selectors with its list and watch calls, so the API server
filters. sdstream's producers publish a cluster's objects unfiltered, because one stream
feeds many jobs; each job's selectors are therefore applied here, on the consumer side.

The selector language itself (parsing, label matching, the fields each kind supports and
how the server formats them) lives in `schemas.selectors`: the job config validates
selectors at load time and `schemas` may not import `consumers`. This module is the
consumer's entry point: it re-exports that API and adds `ObjectFilter`, one compiled
`{label, field}` pair tested against whole API objects.

    from consumers import selectors
    only_web = selectors.ObjectFilter.parse(Resource.PODS, label="app=web",
                                            field="status.phase=Running")
    only_web.matches(pod)  # labels from metadata.labels, fields as the server formats them

Pure: no logging, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.objects import KubeObject, meta
from schemas.selectors import FieldOperator as FieldOperator
from schemas.selectors import FieldSelector as FieldSelector
from schemas.selectors import FieldTerm as FieldTerm
from schemas.selectors import LabelSelector as LabelSelector
from schemas.selectors import Operator as Operator
from schemas.selectors import Requirement as Requirement
from schemas.selectors import SelectorError as SelectorError
from schemas.selectors import escape_field_value as escape_field_value
from schemas.selectors import field_value as field_value
from schemas.selectors import parse_field_selector as parse_field_selector
from schemas.selectors import parse_label_selector as parse_label_selector
from schemas.topics import Resource


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
        return self.label.matches(labels_of(obj)) and self.field.matches(obj)

    def __str__(self) -> str:
        return f"label={str(self.label)!r} field={str(self.field)!r}"
