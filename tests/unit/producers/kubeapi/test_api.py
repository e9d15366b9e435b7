from __future__ import annotations

import pytest

from producers.kubeapi import api, errors
from schemas.topics import Resource


@pytest.mark.parametrize(
    ("resource", "namespace", "path"),
    [
        (Resource.PODS, None, "/api/v1/pods"),
        (Resource.PODS, "a", "/api/v1/namespaces/a/pods"),
        (Resource.NODES, "a", "/api/v1/nodes"),
        (Resource.ENDPOINTSLICES, "a", "/apis/discovery.k8s.io/v1/namespaces/a/endpointslices"),
        (Resource.INGRESSES, None, "/apis/networking.k8s.io/v1/ingresses"),
        (Resource.REPLICASETS, "b", "/apis/apps/v1/namespaces/b/replicasets"),
        (Resource.JOBS, None, "/apis/batch/v1/jobs"),
    ],
)
def test_collection_path(resource: Resource, namespace: str | None, path: str) -> None:
    assert api.collection_path(resource, namespace) == path


def test_every_resource_has_a_path() -> None:
    assert set(api.PATHS) == set(Resource)


def test_parse_event() -> None:
    line = b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}'
    event = api.parse_event(line, resource=Resource.PODS, namespace=None)
    assert event == {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            b'{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}}',
            errors.Expired,
        ),
        (
            b'{"type":"ERROR","object":{"kind":"Status","code":500,"message":"x"}}',
            errors.ServerError,
        ),
        (b'{"type":"ERROR","object":{"kind":"Status"}}', errors.ServerError),
        (b"{not json", errors.MalformedResponse),
        (b'{"type":"ADDED"}', errors.MalformedResponse),
        (b"[]", errors.MalformedResponse),
    ],
)
def test_bad_or_error_events_raise(line: bytes, error: type[errors.ApiError]) -> None:
    with pytest.raises(error):
        api.parse_event(line, resource=Resource.PODS, namespace=None)


def test_scope_query() -> None:
    scope = api.Scope("a", label_selector="app=web", field_selector="status.phase=Running")
    assert scope.query() == [
        ("labelSelector", "app=web"),
        ("fieldSelector", "status.phase=Running"),
    ]
    assert api.Scope().query() == []
