"""What can go wrong talking to the API server, as one exception tree.

The watcher decides what to do from the class alone: `Expired` means re-list,
`retriable` errors mean back off and try again, the rest are reported clearly.

    ApiError
    ├── Expired            410 Gone: the watch's resourceVersion is too old (control flow)
    ├── Unauthorized       401: credentials rejected (retriable: tokens rotate)
    ├── Forbidden          403: RBAC lacks a verb on a resource (names both)
    ├── NotFound           404: the resource type or object is not served
    ├── Conflict           409: optimistic-concurrency conflict (leases)
    ├── Invalid            400/422: bad selector or request
    ├── TooManyRequests    429 (retriable)
    ├── ServerError        5xx (retriable)
    ├── ConnectionFailed   transport errors and timeouts (retriable)
    └── MalformedResponse  a body that is not the JSON we expect (retriable)
"""

from __future__ import annotations

from typing import ClassVar

import orjson


class ApiError(Exception):
    retriable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Expired(ApiError):
    """410 Gone. Not a failure: the caller re-lists."""

    retriable = True


class Unauthorized(ApiError):
    retriable = True


class Forbidden(ApiError):
    def __init__(self, message: str, *, verb: str, resource: str, namespace: str | None) -> None:
        where = f" in namespace {namespace!r}" if namespace else " cluster-wide"
        super().__init__(
            f"forbidden: the service account may not {verb!r} {resource!r}{where}; grant the "
            f"{verb!r} verb on {resource!r} in its (Cluster)Role ({message})",
            status=403,
        )
        self.verb = verb
        self.resource = resource
        self.namespace = namespace


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Invalid(ApiError):
    pass


class TooManyRequests(ApiError):
    retriable = True


class ServerError(ApiError):
    retriable = True


class ConnectionFailed(ApiError):
    retriable = True


class MalformedResponse(ApiError):
    retriable = True


_BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    410: Expired,
    422: Invalid,
    429: TooManyRequests,
}


def status_message(body: bytes) -> str:
    """The `message` of a Kubernetes Status body, or the body's start."""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace")
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return str(status["message"])
    return body[:200].decode(errors="replace")


def from_status(
    status: int, message: str, *, verb: str, resource: str, namespace: str | None = None
) -> ApiError:
    """The error for an HTTP status (or a watch ERROR event's Status code)."""
    if status == 403:
        return Forbidden(message, verb=verb, resource=resource, namespace=namespace)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(f"{verb} {resource}: HTTP {status}: {message}", status=status)
