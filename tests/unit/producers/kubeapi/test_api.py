from __future__ import annotations

import asyncio
from typing import Any

import orjson
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


class Response:
    """What KubeApi reads of an aiohttp response; `read` waits until `gate` opens."""

    def __init__(self, body: bytes, gate: asyncio.Event, cancelled: list[str], token: str) -> None:
        self.status = 200
        self._body = body
        self._gate = gate
        self._cancelled = cancelled
        self._token = token

    async def read(self) -> bytes:
        try:
            await self._gate.wait()
        except asyncio.CancelledError:
            self._cancelled.append(self._token)
            raise
        return self._body

    def release(self) -> None:
        pass


class PagedClient:
    """A kubernetes.aio ApiClient stand-in serving a LIST of `pages` pages, one pod each."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.requested: list[str] = []  # continue tokens, "" for the first page
        self.asked = asyncio.Condition()
        self.gates: dict[str, asyncio.Event] = {}
        self.cancelled: list[str] = []

    async def param_serialize(self, **call: Any) -> tuple[Any, ...]:
        return (dict(call["query_params"]).get("continue", ""),)

    async def call_api(self, token: str, **_: Any) -> Any:
        number = int(token or "0")
        following = str(number + 1) if number + 1 < self.pages else ""
        body = orjson.dumps({
            "metadata": {"resourceVersion": "7", "continue": following},
            "items": [{"metadata": {"name": f"p{number}", "namespace": "ns"}}],
        })  # fmt: skip
        gate = self.gates.setdefault(token, asyncio.Event())
        async with self.asked:
            self.requested.append(token)
            self.asked.notify_all()
        return type("Rest", (), {"response": Response(body, gate, self.cancelled, token)})()

    async def until_requested(self, token: str) -> None:
        async with asyncio.timeout(5), self.asked:
            await self.asked.wait_for(lambda: token in self.requested)

    async def close(self) -> None:
        pass


async def test_the_next_page_is_requested_while_the_caller_holds_this_one() -> None:
    client = PagedClient(pages=3)
    kube = api.KubeApi(client)
    client.gates[""] = asyncio.Event()
    client.gates[""].set()
    pages = kube.pages(Resource.PODS, api.Scope())
    first = await anext(pages)
    assert [o["metadata"]["name"] for o in first.items] == ["p0"]
    await client.until_requested("1")  # asked for before the caller wants it
    for token in ("1", "2"):
        client.gates.setdefault(token, asyncio.Event()).set()
    rest = [page.items[0]["metadata"]["name"] async for page in pages]
    assert rest == ["p1", "p2"]
    assert client.requested == ["", "1", "2"]


async def test_closing_a_listing_early_cancels_the_page_read_ahead() -> None:
    client = PagedClient(pages=3)
    kube = api.KubeApi(client)
    client.gates[""] = asyncio.Event()
    client.gates[""].set()
    pages = kube.pages(Resource.PODS, api.Scope())
    await anext(pages)
    await client.until_requested("1")
    await pages.aclose()
    assert client.cancelled == ["1"]
    assert client.requested == ["", "1"]
