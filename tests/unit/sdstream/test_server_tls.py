"""The server's TLS context over real loopback handshakes: verify modes, versions, and
certificate, key and client CA files reloaded for new connections when they change."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.web_config import TlsServerConfig
from sdstream import server_tls
from tests.pki import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = Pki(tmp_path_factory.mktemp("pki"))
    for ca in ("ca1", "ca2"):
        made.ca(ca)
    made.leaf("srv1", ca="ca1")
    made.leaf("srv2", ca="ca2")
    made.leaf("cli1", ca="ca1", san="DNS:prometheus")
    made.leaf("cli2", ca="ca2", san="DNS:prometheus")
    return made


@pytest.fixture
def live(pki: Pki, tmp_path: Path) -> Path:
    """A directory the server reads its files from, starting with srv1 and ca1."""
    for name, target in (("srv1.crt", "server.crt"), ("srv1.key", "server.key"),
                         ("ca1.crt", "clients.crt")):  # fmt: skip
        shutil.copy(pki.directory / name, tmp_path / target)
    return tmp_path


def config(live: Path, **fields: Any) -> TlsServerConfig:
    return TlsServerConfig(cert_file=live / "server.crt", key_file=live / "server.key", **fields)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    cert = writer.get_extra_info("peercert")
    writer.write(b"with client cert" if cert else b"without client cert")
    await writer.drain()
    writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[asyncio.Server] = []

    async def start(context: ssl.SSLContext) -> int:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def hello(
    port: int, pki: Pki, *, trust: str, client: str | None = None, **options: Any
) -> tuple[str, bytes] | str:
    """(server certificate's CN, what the server said), or the error's class name."""
    context = ssl.create_default_context(cafile=pki.directory / f"{trust}.crt")
    if client is not None:
        context.load_cert_chain(pki.directory / f"{client}.crt", pki.directory / f"{client}.key")
    for name, value in options.items():
        setattr(context, name, value)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__
    try:
        subject = dict(pair[0] for pair in writer.get_extra_info("peercert")["subject"])
        said = await reader.read()
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__
    finally:
        writer.close()
    if not said:  # TLS 1.3: a refused client certificate shows after the handshake
        return "closed"
    return subject["commonName"], said


async def test_serves_its_certificate_without_asking_clients(
    pki: Pki, live: Path, serve: Any
) -> None:
    tls = server_tls.ReloadingTls(config(live), registry=CollectorRegistry())
    port = await serve(tls.context)
    assert await hello(port, pki, trust="ca1") == ("srv1", b"without client cert")
    assert await hello(port, pki, trust="ca2") == "SSLCertVerificationError"


async def test_required_client_certificates_are_verified(pki: Pki, live: Path, serve: Any) -> None:
    required = config(live, client_auth_type="RequireAndVerifyClientCert",
                      client_ca_file=live / "clients.crt")  # fmt: skip
    port = await serve(server_tls.ReloadingTls(required, registry=CollectorRegistry()).context)
    assert await hello(port, pki, trust="ca1", client="cli1") == ("srv1", b"with client cert")
    assert await hello(port, pki, trust="ca1") == "closed"
    assert await hello(port, pki, trust="ca1", client="cli2") == "closed"


async def test_optional_client_certificates_are_verified_if_given(
    pki: Pki, live: Path, serve: Any
) -> None:
    optional = config(live, client_auth_type="VerifyClientCertIfGiven",
                      client_ca=(live / "clients.crt").read_text())  # fmt: skip
    port = await serve(server_tls.ReloadingTls(optional, registry=CollectorRegistry()).context)
    assert await hello(port, pki, trust="ca1") == ("srv1", b"without client cert")
    assert await hello(port, pki, trust="ca1", client="cli1") == ("srv1", b"with client cert")
    assert await hello(port, pki, trust="ca1", client="cli2") == "closed"


async def test_versions_are_enforced(pki: Pki, live: Path, serve: Any) -> None:
    only13 = config(live, min_version="TLS13")
    port = await serve(server_tls.ReloadingTls(only13, registry=CollectorRegistry()).context)
    old = await hello(port, pki, trust="ca1", maximum_version=ssl.TLSVersion.TLSv1_2)
    assert old in ("SSLError", "ConnectionResetError")
    assert await hello(port, pki, trust="ca1") == ("srv1", b"without client cert")


def test_options_reach_the_context(live: Path) -> None:
    chosen = config(
        live, cipher_suites=["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
        prefer_server_cipher_suites=False, min_version="TLS12", max_version="TLS12",
    )  # fmt: skip
    context = server_tls.build_context(chosen)
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES128-GCM-SHA256"}
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2,) * 2
    assert server_tls.build_context(config(live)).options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert server_tls.build_context(config(live)).verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("breaks", "names"),
    [
        ("server.crt", "tls_server_config.cert_file, tls_server_config.key_file"),
        ("server.key", "tls_server_config.cert_file, tls_server_config.key_file"),
        ("clients.crt", "tls_server_config.client_ca_file"),
    ],
)
def test_files_that_do_not_load_name_their_field(live: Path, breaks: str, names: str) -> None:
    (live / breaks).write_text("not PEM\n")
    required = config(live, client_auth_type="RequireAndVerifyClientCert",
                      client_ca_file=live / "clients.crt")  # fmt: skip
    with pytest.raises(server_tls.TlsFilesError, match=names) as caught:
        server_tls.build_context(required)
    assert "\n" not in str(caught.value)


def test_a_missing_file_and_a_mismatched_key_are_clear(pki: Pki, live: Path) -> None:
    with pytest.raises(server_tls.TlsFilesError, match="No such file"):
        server_tls.build_context(config(live).model_copy(update={"cert_file": live / "nope"}))
    shutil.copy(pki.directory / "srv2.key", live / "server.key")
    with pytest.raises(server_tls.TlsFilesError, match="key"):
        server_tls.build_context(config(live))


def test_an_encrypted_key_is_an_error_not_a_terminal_prompt(live: Path) -> None:
    encrypted, openssl = live / "encrypted.key", shutil.which("openssl")
    assert openssl is not None
    subprocess.run(
        [openssl, "pkey", "-in", live / "server.key", "-aes256", "-passout", "pass:xyz",
         "-out", encrypted],
        check=True, capture_output=True,
    )  # fmt: skip
    with pytest.raises(server_tls.TlsFilesError, match="the key is encrypted"):
        server_tls.build_context(config(live).model_copy(update={"key_file": encrypted}))


def replace(source: Path, target: Path) -> None:
    """Replace `target` the way a secret mount or cert-manager does: a new file renamed."""
    staged = target.with_suffix(".staged")
    shutil.copy(source, staged)
    staged.replace(target)


async def test_new_connections_see_replaced_files(
    pki: Pki, live: Path, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    required = config(live, client_auth_type="RequireAndVerifyClientCert",
                      client_ca_file=live / "clients.crt")  # fmt: skip
    tls = server_tls.ReloadingTls(required, registry=registry)
    port = await serve(tls.context)
    assert await hello(port, pki, trust="ca1", client="cli1") == ("srv1", b"with client cert")

    for name, target in (("srv2.crt", "server.crt"), ("srv2.key", "server.key"),
                         ("ca2.crt", "clients.crt")):  # fmt: skip
        replace(pki.directory / name, live / target)

    assert await hello(port, pki, trust="ca2", client="cli2") == ("srv2", b"with client cert")
    assert await hello(port, pki, trust="ca2", client="cli1") == "closed"  # the old client CA
    assert await hello(port, pki, trust="ca1", client="cli1") == "SSLCertVerificationError"
    assert registry.get_sample_value("sdstream_http_tls_reloads_total", {"result": "ok"}) == 1

    replace(pki.directory / "srv1.key", live / "server.key")  # half a rotation: no match
    with caplog.at_level(logging.WARNING, logger="sdstream.server_tls"):
        for _ in range(3):
            assert await hello(port, pki, trust="ca2", client="cli2") == (
                "srv2",
                b"with client cert",
            )
    assert len([r for r in caplog.records if "Keeping the current" in r.getMessage()]) == 1
    assert registry.get_sample_value("sdstream_http_tls_reloads_total", {"result": "failed"}) == 1

    replace(pki.directory / "srv1.crt", live / "server.crt")  # the rotation completes
    replace(pki.directory / "ca1.crt", live / "clients.crt")
    assert await hello(port, pki, trust="ca1", client="cli1") == ("srv1", b"with client cert")
