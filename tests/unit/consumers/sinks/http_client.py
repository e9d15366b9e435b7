"""A one-request HTTP client on asyncio streams, for tests of `sdstream.http` and the sinks.

Raw sockets rather than a client library, so a test sees exactly the bytes the server
sent (status line, header names, Content-Length) and can send malformed requests.
"""

from __future__ import annotations

import asyncio
import ssl as tls
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


async def fetch(
    address: tuple[str, int],
    raw: bytes | None = None,
    *,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    ssl: tls.SSLContext | None = None,
) -> Response:
    """One request over a fresh connection (TLS with `ssl`); the server closes it after
    answering."""
    reader, writer = await asyncio.open_connection(*address, ssl=ssl)
    extra = [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines = [f"GET {path} HTTP/1.1", "Host: test", *extra]
    writer.write(raw if raw is not None else ("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    pairs = (line.split(":", 1) for line in header_lines)
    return Response(int(status_line.split()[1]), {k.lower(): v.strip() for k, v in pairs}, body)
