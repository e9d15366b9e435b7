"""Loading the web config file and the bearer token into the server's hooks: one-line
errors naming the file and field, paths relative to the file, nothing configured ->
no hooks at all."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import bcrypt
import pytest
from prometheus_client import CollectorRegistry

from schemas.config import HttpSettings
from sdstream import settings, web_config
from sdstream.http import Request
from tests.pki import Pki

HASHED = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = Pki(tmp_path_factory.mktemp("pki"))
    made.ca("ca")
    made.leaf("server", ca="ca")
    return made


def build(tmp_path: Path, text: str | None = None, **http: object) -> web_config.WebSecurity:
    if text is not None:
        (tmp_path / "web.yml").write_text(text)
        http.setdefault("web_config_file", tmp_path / "web.yml")
    return web_config.build(HttpSettings.model_validate(http), registry=CollectorRegistry())


def error(tmp_path: Path, text: str | None = None, **http: object) -> str:
    with pytest.raises(settings.SettingsError) as caught:
        build(tmp_path, text, **http)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_nothing_configured_means_no_hooks(tmp_path: Path) -> None:
    security = build(tmp_path)
    assert (security.ssl_context, security.guard) == (None, None)
    empty = build(tmp_path, "")
    assert (empty.ssl_context, empty.guard) == (None, None)


def test_paths_are_relative_to_the_files_directory(pki: Pki, tmp_path: Path) -> None:
    text = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    (pki.directory / "web.yml").write_text(text)
    loaded = web_config.load(pki.directory / "web.yml")
    assert loaded.tls_server_config is not None
    assert loaded.tls_server_config.cert_file == pki.directory / "server.crt"
    security = build(tmp_path, web_config_file=pki.directory / "web.yml")
    assert isinstance(security.ssl_context, ssl.SSLContext)
    assert security.guard is None


def test_absolute_paths_stay(pki: Pki, tmp_path: Path) -> None:
    crt, key = pki.directory / "server.crt", pki.directory / "server.key"
    loaded = build(tmp_path, f"tls_server_config: {{cert_file: {crt}, key_file: {key}}}\n")
    assert loaded.tls is not None


def test_users_make_a_guard_with_the_probe_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        security = build(tmp_path, f"basic_auth_users:\n  prom: '{HASHED}'\n", open_probes=False)
    assert "clear text" in caplog.text  # no tls_server_config
    assert security.guard is not None
    refused = asyncio.run(security.guard.check(Request("GET", "/healthz", {}, {})))
    assert refused is not None
    assert refused.status == 401


def test_a_bearer_token_alone_makes_a_guard(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abc\n")
    security = build(tmp_path, bearer_token_file=tmp_path / "token")
    assert security.guard is not None
    allowed = Request("GET", "/x", {}, {"authorization": "Bearer abc"})
    assert asyncio.run(security.guard.check(allowed)) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("tls_server_config: {cert_file: a.crt}\n", "tls_server_config: Value error, missing key"),
        ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: Nope}\n",
         "tls_server_config.client_auth_type: Input should be"),
        ("basic_auth_users: {prom: plain-password}\n", "basic_auth_users.prom: Value error, not a"),
        ("basic_auth_user: {}\n", "basic_auth_user: Extra inputs are not permitted"),
        ("tls_server_config: [a]\n", "tls_server_config: Input should be a valid dictionary"),
        ("- a\n", "expected a mapping of settings, got a list"),
        ("a: [\n", "invalid YAML at line"),
    ],
)  # fmt: skip
def test_bad_files_are_one_line_naming_the_file_and_field(
    tmp_path: Path, text: str, says: str
) -> None:
    message = error(tmp_path, text)
    assert message.startswith(f"web config file {tmp_path / 'web.yml'}")
    assert says in message
    assert "plain-password" not in message


def test_certificates_that_do_not_load_name_the_file_and_fields(tmp_path: Path) -> None:
    (tmp_path / "a.crt").write_text("nope\n")
    message = error(tmp_path, "tls_server_config: {cert_file: a.crt, key_file: a.key}\n")
    assert message.startswith(
        f"web config file {tmp_path / 'web.yml'}: tls_server_config.cert_file"
    )
    assert str(tmp_path / "a.crt") in message


def test_a_missing_web_config_file_is_named(tmp_path: Path) -> None:
    message = error(tmp_path, web_config_file=tmp_path / "nope.yml")
    assert message == f"web config file {tmp_path / 'nope.yml'} does not exist"


@pytest.mark.parametrize(("content", "says"), [(None, "No such file"), ("\n", "is empty")])
def test_a_bad_bearer_token_file_is_named(tmp_path: Path, content: str | None, says: str) -> None:
    if content is not None:
        (tmp_path / "token").write_text(content)
    message = error(tmp_path, bearer_token_file=tmp_path / "token")
    assert message.startswith("http.bearer_token_file: ")
    assert says in message


def test_curve_preferences_warn_once(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crt, key = pki.directory / "server.crt", pki.directory / "server.key"
    text = (
        f"tls_server_config: {{cert_file: {crt}, key_file: {key}, curve_preferences: [X25519]}}\n"
    )
    with caplog.at_level(logging.WARNING):
        build(tmp_path, text)
    [warning] = caplog.records
    assert "curve_preferences is not applied" in warning.getMessage()


def test_the_settings_take_the_web_config_file_and_friends(tmp_path: Path) -> None:
    config = tmp_path / "consumer.yml"
    config.write_text(
        "http: {web_config_file: web.yml, bearer_token_file: t, open_probes: false}\n"
    )
    loaded = settings.load(settings.ConsumerAppSettings, config_file=config)
    assert (loaded.http.web_config_file, loaded.http.bearer_token_file) == (
        Path("web.yml"),
        Path("t"),
    )
    assert loaded.http.open_probes is False
    assert settings.load(settings.ConsumerAppSettings).http.open_probes is True
