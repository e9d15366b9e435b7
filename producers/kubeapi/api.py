"""Paged LIST and streaming WATCH as plain dicts, parsed with orjson.

The official client builds the request (URL, auth headers, refreshed tokens) and
owns the aiohttp session; we read the response body ourselves, so no model
class is ever built: a watch line goes from bytes to dict in one orjson call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson

from producers import heap
from producers.kubeapi import errors
from schemas import resources
from schemas.objects import KubeObject
from schemas.topics import Resource

logger = logging.getLogger(__name__)

# Resource -> API prefix; the plural is the resource itself
PATHS: Final[dict[Resource, str]] = {r: row.api for r, row in resources.ROWS.items()}
LEASES: Final = "/apis/coordination.k8s.io/v1"
Query = list[tuple[str, str]]
WatchEvent = dict[str, Any]  # {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK", "object": {...}}


@dataclass(frozen=True)
class Scope:
    """Where to list and watch: one namespace (or all), and server-side selectors."""

    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None

    def query(self) -> Query:
        query: Query = []
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        if self.field_selector:
            query.append(("fieldSelector", self.field_selector))
        return query


@dataclass(frozen=True)
class Call:
    """One HTTP request's parts."""

    method: str
    path: str
    query: Query = field(default_factory=list)
    verb: str = "get"
    what: str = ""
    scope: Scope = Scope()
    body: KubeObject | None = None


@dataclass(frozen=True)
class Page:
    """One page of a LIST; every page of one listing has the listing's resourceVersion."""

    items: list[KubeObject]
    resource_version: str


def collection_path(resource: Resource, namespace: str | None) -> str:
    base = PATHS[resource]
    if namespace and not resource.cluster_scoped:
        return f"{base}/namespaces/{namespace}/{resource.value}"
    return f"{base}/{resource.value}"


def parse_event(line: bytes, *, resource: Resource, namespace: str | None) -> WatchEvent:
    """One watch line -> event; ERROR events raise (410 -> Expired)."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedResponse(f"watch {resource}: bad JSON line: {exc}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise errors.MalformedResponse(f"watch {resource}: not an event: {line[:200]!r}")
    if event.get("type") == "ERROR":
        status = event["object"]
        code = status.get("code")
        message = str(status.get("message", ""))
        raise errors.from_status(
            code if isinstance(code, int) else 500,
            message,
            verb="watch",
            resource=resource.value,
            namespace=namespace,
        )
    return event


class KubeApi:
    """LIST, WATCH and small JSON requests over a kubernetes.aio ApiClient."""

    def __init__(self, client: Any, *, page_size: int = 500) -> None:
        self._client = client
        self._page_size = page_size

    async def close(self) -> None:
        await self._client.close()

    async def pages(self, resource: Resource, scope: Scope) -> AsyncIterator[Page]:
        """Every object, one page (limit/continue) at a time; 410 on an expired token.

        The next page is requested as soon as this one is parsed (its continue token is
        in it), so the API server sends page N+1 while the caller works on page N: only
        the current page is held parsed, the next one as the bytes received so far. A
        caller that stops early cancels that request.
        """
        path = collection_path(resource, scope.namespace)
        ahead = asyncio.ensure_future(self._body(self._list_call(resource, scope, path, "")))
        try:
            while True:
                page, token = _page(_object(await ahead, f"list {path}"), resource=resource)
                if token:
                    call = self._list_call(resource, scope, path, token)
                    ahead = asyncio.ensure_future(self._body(call))
                yield page
                if not token:
                    return
        finally:
            if not ahead.done():
                ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)

    def _list_call(self, resource: Resource, scope: Scope, path: str, token: str) -> Call:
        query = [("limit", str(self._page_size)), *scope.query()]
        if token:
            query.append(("continue", token))
        return Call("GET", path, query=query, verb="list", what=resource.value, scope=scope)

    async def watch(
        self, resource: Resource, scope: Scope, *, since: str, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        """Events after `since`, with bookmarks, until the server ends the watch."""
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", since),
            ("timeoutSeconds", str(timeout_s)),
            *scope.query(),
        ]
        path = collection_path(resource, scope.namespace)
        call = Call("GET", path, query=query, verb="watch", what=resource.value, scope=scope)
        response = await self._open(call, limit_s=timeout_s + 30)
        try:
            async for line in _lines(response, resource=resource):
                yield parse_event(line, resource=resource, namespace=scope.namespace)
        finally:
            response.release()

    async def request(
        self, method: str, path: str, *, body: KubeObject | None = None, verb: str, what: str
    ) -> KubeObject:
        """One JSON request (leases): the response object, or an ApiError."""
        return await self._json(Call(method, path, verb=verb, what=what, body=body))

    async def _json(self, call: Call) -> KubeObject:
        return _object(await self._body(call), f"{call.verb} {call.path}")

    async def _body(self, call: Call) -> bytes:
        response = await self._open(call, limit_s=60)
        try:
            data: bytes = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.ConnectionFailed(f"{call.verb} {call.path}: {exc!r}") from exc
        finally:
            response.release()
        return data

    async def _open(self, call: Call, *, limit_s: float) -> aiohttp.ClientResponse:
        client = self._client
        try:
            parts = await client.param_serialize(
                method=call.method,
                resource_path=call.path,
                query_params=call.query,
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=call.body,
                auth_settings=["BearerToken"],
            )
            rest = await client.call_api(*parts, _request_timeout=limit_s, _preload_content=False)
        except errors.ApiError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ConnectionFailed(f"{call.verb} {call.path}: {exc!r}") from exc
        response: aiohttp.ClientResponse = rest.response
        if response.status >= 400:
            data = await response.read()
            response.release()
            raise errors.from_status(
                response.status,
                errors.status_message(data),
                verb=call.verb,
                resource=call.what,
                namespace=call.scope.namespace,
            )
        return response


def _object(data: bytes, what: str) -> KubeObject:
    """A JSON object response, parsed; MalformedResponse otherwise."""
    try:
        with heap.paused():  # a LIST page: ~100 containers per object, no cycles
            value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedResponse(f"{what}: bad JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise errors.MalformedResponse(f"{what}: not an object")
    return value


def _page(body: KubeObject, *, resource: Resource) -> tuple[Page, str]:
    """A LIST response -> its page and its continue token ("" on the last page)."""
    try:
        items = list(body["items"] or ())
        token = str(body["metadata"].get("continue") or "")
        version = str(body["metadata"]["resourceVersion"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise errors.MalformedResponse(f"list {resource}: not a list") from exc
    return Page(items=items, resource_version=version), token


async def _lines(response: aiohttp.ClientResponse, *, resource: Resource) -> AsyncIterator[bytes]:
    """Newline-delimited chunks of a streaming body, whatever the chunk boundaries."""
    pending = bytearray()
    try:
        async for chunk in response.content.iter_any():
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) >= 0:
                if end > start:
                    yield bytes(pending[start:end])
                start = end + 1
            del pending[:start]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise errors.ConnectionFailed(f"watch {resource}: {exc!r}") from exc
    if pending.strip():
        yield bytes(pending)
