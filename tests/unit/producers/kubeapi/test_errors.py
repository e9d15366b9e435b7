from __future__ import annotations

import pytest

from producers.kubeapi import errors


@pytest.mark.parametrize(
    ("status", "cls", "retriable"),
    [
        (410, errors.Expired, True),
        (401, errors.Unauthorized, True),
        (404, errors.NotFound, False),
        (409, errors.Conflict, False),
        (400, errors.Invalid, False),
        (422, errors.Invalid, False),
        (429, errors.TooManyRequests, True),
        (500, errors.ServerError, True),
        (503, errors.ServerError, True),
        (418, errors.ApiError, False),
    ],
)
def test_status_maps_to_class(status: int, cls: type[errors.ApiError], retriable: bool) -> None:
    error = errors.from_status(status, "boom", verb="list", resource="pods")
    assert type(error) is cls
    assert error.retriable is retriable
    assert error.status == status


def test_forbidden_names_verb_and_resource() -> None:
    error = errors.from_status(403, "denied", verb="watch", resource="endpointslices")
    assert isinstance(error, errors.Forbidden)
    assert not error.retriable
    assert (error.verb, error.resource) == ("watch", "endpointslices")
    assert "'watch'" in str(error)
    assert "'endpointslices'" in str(error)
    assert "cluster-wide" in str(error)


def test_forbidden_in_a_namespace() -> None:
    error = errors.from_status(403, "x", verb="list", resource="pods", namespace="team-a")
    assert "namespace 'team-a'" in str(error)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind":"Status","message":"too old resource version"}', "too old resource version"),
        (b"not json", "not json"),
        (b'{"kind":"Status"}', '{"kind":"Status"}'),
    ],
)
def test_status_message(body: bytes, message: str) -> None:
    assert errors.status_message(body) == message
