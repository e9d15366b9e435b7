"""The server's two hooks on real loopback sockets: `ssl_context` serves TLS (with a
self-signed certificate made by the openssl CLI) and `guard` decides, before routing,
which requests are answered, probes and /metrics included."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from schemas.config import HttpSettings
from sdstream import http
from tests.unit.consumers.sinks.http_client import fetch

LOOPBACK = HttpSettings(host="127.0.0.1", port=0)
TOKEN = "s3cret"


@dataclass
class BearerOnly:
    """A trivial guard: a bearer token for everything but /healthz."""

    seen: list[http.Request] = field(default_factory=list)

    async def check(self, request: http.Request) -> http.Reply | None:
        self.seen.append(request)
        if request.path == "/healthz" or request.headers.get("authorization") == f"Bearer {TOKEN}":
            return None
        return http.Reply(401, b"unauthorized\n", {"WWW-Authenticate": 'Bearer realm="sdstream"'})

    async def trusted(self, request: http.Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"


@dataclass(frozen=True)
class Pki:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    cert, key = _self_signed(tmp_path_factory.mktemp("pki"))
    return Pki(server=_server_context(cert, key), client=ssl.create_default_context(cafile=cert))


def _self_signed(where: Path) -> tuple[Path, Path]:
    where.mkdir(parents=True, exist_ok=True)
    cert, key = where / "cert.pem", where / "key.pem"
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl CLI makes the test certificate"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
async def guarded(pki: Pki) -> AsyncIterator[tuple[http.HttpServer, BearerOnly, CollectorRegistry]]:
    guard, registry = BearerOnly(), CollectorRegistry()
    server = http.HttpServer(
        LOOPBACK, registry=registry, ready=lambda: None, ssl_context=pki.server, guard=guard
    )
    async with server:
        yield server, guard, registry


async def test_tls_serves_probes_and_metrics(
    pki: Pki, guarded: tuple[http.HttpServer, BearerOnly, CollectorRegistry]
) -> None:
    server, _, _ = guarded
    auth = {"Authorization": f"Bearer {TOKEN}"}
    health = await fetch(server.address, path="/healthz", ssl=pki.client)
    metrics = await fetch(server.address, path="/metrics", headers=auth, ssl=pki.client)

    assert (health.status, health.body) == (200, b"ok\n")
    assert metrics.status == 200
    assert b"sdstream_http_requests_total" in metrics.body


async def test_plain_http_to_a_tls_port_gets_no_answer(
    guarded: tuple[http.HttpServer, BearerOnly, CollectorRegistry],
) -> None:
    server, _, _ = guarded
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(10):
        data = await reader.read()
    writer.close()
    assert not data.startswith(b"HTTP/1.1 200")


async def test_an_unknown_certificate_is_refused_by_the_client(
    guarded: tuple[http.HttpServer, BearerOnly, CollectorRegistry],
) -> None:
    server, _, _ = guarded
    with pytest.raises(ssl.SSLCertVerificationError):
        await fetch(server.address, path="/healthz", ssl=ssl.create_default_context())


async def test_the_guard_answers_before_routing_and_is_counted(
    pki: Pki, guarded: tuple[http.HttpServer, BearerOnly, CollectorRegistry]
) -> None:
    server, guard, registry = guarded
    refused = await fetch(server.address, path="/metrics", ssl=pki.client)
    nowhere = await fetch(server.address, path="/nowhere?a=1", ssl=pki.client)
    posted = await fetch(
        server.address, b"POST /readyz HTTP/1.1\r\nHost: x\r\n\r\n", ssl=pki.client
    )
    allowed = await fetch(
        server.address, path="/readyz?x=1&x=2", headers={"AUTHORIZATION": f"Bearer {TOKEN}"},
        ssl=pki.client,
    )  # fmt: skip

    assert (refused.status, refused.headers["www-authenticate"]) == (401, 'Bearer realm="sdstream"')
    assert refused.body == b"unauthorized\n"
    assert (nowhere.status, posted.status, allowed.status) == (401, 401, 200)
    last = guard.seen[-1]
    assert (last.method, last.path, last.query) == ("GET", "/readyz", {"x": ["1", "2"]})
    assert last.headers["authorization"] == f"Bearer {TOKEN}"  # names in lower case
    assert [r.path for r in guard.seen] == ["/metrics", "/nowhere", "/readyz", "/readyz"]
    counted = registry.get_sample_value(
        "sdstream_http_requests_total", {"route": "/metrics", "status": "401"}
    )
    assert counted == 1


async def test_beyond_max_connections_over_tls_is_a_503(pki: Pki) -> None:
    settings = HttpSettings(host="127.0.0.1", port=0, max_connections=1)
    registry = CollectorRegistry()
    server = http.HttpServer(
        settings, registry=registry, ready=lambda: None, ssl_context=pki.server
    )
    async with server:
        _, holder = await asyncio.open_connection(*server.address, ssl=pki.client)
        async with asyncio.timeout(5):
            while not server.in_flight:  # noqa: ASYNC110 - no event for "accepted"
                await asyncio.sleep(0)
        extra = await fetch(server.address, path="/healthz", ssl=pki.client)
        holder.close()

    assert extra.status == 503
    assert registry.get_sample_value("sdstream_http_refused_connections_total") == 1


async def test_certificates_loaded_into_the_context_serve_new_connections(tmp_path: Path) -> None:
    """The hook's reload path: the server keeps its context; new certificates loaded
    into it are what the next handshake presents."""
    old_cert, old_key = _self_signed(tmp_path / "old")
    new_cert, new_key = _self_signed(tmp_path / "new")
    context = _server_context(old_cert, old_key)
    trusts_new = ssl.create_default_context(cafile=new_cert)
    server = http.HttpServer(LOOPBACK, registry=CollectorRegistry(), ready=lambda: None,
                             ssl_context=context)  # fmt: skip
    async with server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await fetch(server.address, path="/healthz", ssl=trusts_new)
        context.load_cert_chain(new_cert, new_key)
        reply = await fetch(server.address, path="/healthz", ssl=trusts_new)
    assert reply.status == 200


@dataclass
class OpenReadyz(BearerOnly):
    """The bearer guard with /readyz open, as `http.open_probes` makes it."""

    async def check(self, request: http.Request) -> http.Reply | None:
        return None if request.path == "/readyz" else await super().check(request)


async def test_an_open_readyz_tells_only_the_trusted_why() -> None:
    """The reason names principals, brokers and files: an anonymous prober learns only
    that the process is not ready."""
    reason = "Kafka refused SASL user 'fold' at 10.0.0.9:9093"
    server = http.HttpServer(LOOPBACK, registry=CollectorRegistry(), ready=lambda: reason,
                             guard=OpenReadyz())  # fmt: skip
    async with server:
        anonymous = await fetch(server.address, path="/readyz")
        trusted = await fetch(
            server.address, path="/readyz", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert anonymous.status == trusted.status == 503
    assert b"fold" not in anonymous.body
    assert reason.encode() in trusted.body


async def test_a_ready_but_degraded_process_answers_200_naming_why_to_the_trusted() -> None:
    """A refusal after the first sync keeps the process in its Service: /readyz is 200 and
    names it (only to those with credentials, like a reason)."""
    note = "Kafka denied SASL user 'fold' access to topic sd.b.pods"
    server = http.HttpServer(LOOPBACK, registry=CollectorRegistry(), ready=lambda: None,
                             degraded=lambda: note, guard=OpenReadyz())  # fmt: skip
    async with server:
        anonymous = await fetch(server.address, path="/readyz")
        trusted = await fetch(
            server.address, path="/readyz", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert anonymous.status == trusted.status == 200
    assert anonymous.body == b"ready\n"
    assert trusted.body == f"ready, degraded: {note}\n".encode()
