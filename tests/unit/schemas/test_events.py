"""The fold's fast event decoder accepts exactly what the ObjectEvent model accepts."""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import events
from schemas.topics import Resource

GOOD: dict[str, Any] = {
    "schema_version": 1,
    "type": "ADDED",
    "cluster": "c1",
    "resource": "pods",
    "resource_version": "42",
    "observed_at": 1.5,
    "object": {"metadata": {"name": "p", "namespace": "ns"}},
}

# Per field: values the model takes, values it refuses, and values it coerces.
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "1", "ADDED", "DELETED", "pods", "nodes", "bogus", "1.5"]),
    st.lists(st.integers(-5, 5), max_size=2),
    st.dictionaries(st.sampled_from(["a", "metadata"]), st.integers(-5, 5), max_size=2),
)


def model_path(value: bytes) -> tuple[str, Resource, dict[str, Any]]:
    event = events.decode(value)
    return event.cluster, event.resource, event.object


def outcome(decoder: Any, value: bytes) -> object:
    try:
        return decoder(value)
    except pydantic.ValidationError as exc:
        return ("invalid", [error["loc"] for error in exc.errors()])
    except orjson.JSONDecodeError:
        return "not json"


def test_a_producer_record_decodes_to_its_parts() -> None:
    cluster, resource, obj = events.decode_object(orjson.dumps(GOOD))
    assert (cluster, resource, obj) == ("c1", Resource.PODS, GOOD["object"])


@given(
    changes=st.dictionaries(st.sampled_from([*GOOD, "extra"]), odd_values, max_size=3),
    dropped=st.sets(st.sampled_from(list(GOOD)), max_size=2),
)
def test_fast_path_agrees_with_the_model(changes: dict[str, object], dropped: set[str]) -> None:
    raw = {k: v for k, v in {**GOOD, **changes}.items() if k not in dropped}
    value = orjson.dumps(raw)
    assert outcome(events.decode_object, value) == outcome(model_path, value)


@pytest.mark.parametrize("value", [b"[]", b"null", b"{", b'"x"', b"{}"])
def test_non_objects_fail_like_the_model(value: bytes) -> None:
    assert outcome(events.decode_object, value) == outcome(model_path, value)
    assert outcome(events.decode_object, value) != ("c1", Resource.PODS, {})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    obj=st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    kind=st.sampled_from(list(events.EventType)),
    resource=st.sampled_from(list(Resource)),
    version=st.text(max_size=5),
    observed_at=st.floats(0, 2e9) | st.integers(0, 2**31),
)
def test_encode_change_gives_the_models_bytes(
    obj: dict[str, Any],
    kind: events.EventType,
    resource: Resource,
    version: str,
    observed_at: float,
) -> None:
    fields: dict[str, Any] = {
        "type": kind, "cluster": "c1", "resource": resource, "resource_version": version,
        "observed_at": observed_at, "object": obj,
    }  # fmt: skip
    assert events.encode_change(**fields) == events.encode(events.ObjectEvent(**fields))
