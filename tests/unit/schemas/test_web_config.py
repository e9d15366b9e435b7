"""The web configuration file's model: Prometheus's format, strict, and honest about what
Python's ssl cannot do (refused by name rather than served weaker than written)."""

from __future__ import annotations

from typing import Any

import bcrypt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.web_config import CIPHERS, WebConfig, bcrypt_cost_ok

HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"  # the toolkit docs' own
AUTH_TYPE = "tls_server_config.client_auth_type"
FILES = {"cert_file": "server.crt", "key_file": "server.key"}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        WebConfig.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


def tls(**fields: Any) -> dict[str, Any]:
    return {"tls_server_config": {**FILES, **fields}}


def test_an_empty_file_is_plain_http_without_users() -> None:
    config = WebConfig.model_validate({})
    assert (config.tls_server_config, config.basic_auth_users) == (None, {})
    assert config.http_server_config.headers == {}


def test_the_defaults_are_prometheus_defaults() -> None:
    config = WebConfig.model_validate(tls()).tls_server_config
    assert config is not None
    assert (config.client_auth_type, config.min_version, config.max_version) == (
        "NoClientCert", "TLS12", "TLS13",
    )  # fmt: skip
    assert config.prefer_server_cipher_suites
    assert config.openssl_ciphers is None


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"tls_server_config": {"cert_file": "a"}}, "tls_server_config"),
        ({"tls_server_config": {"key_file": "a"}}, "tls_server_config"),
        ({"tls_server_config": {}}, "tls_server_config"),
        ({"tls_sever_config": {}}, "tls_sever_config"),
        (tls(cert_fiel="x"), "tls_server_config.cert_fiel"),
        ({"http_server_config": {"http3": True}}, "http_server_config.http3"),
    ],
)
def test_missing_and_unknown_keys_name_their_path(data: dict[str, Any], where: str) -> None:
    assert [path for path, _ in problems(data)] == [where]


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"cert": "PEM"}, "tls_server_config.cert", "files"),
        ({"key": "PEM"}, "tls_server_config.key", "files"),
        ({"client_allowed_sans": ["a"]}, "tls_server_config.client_allowed_sans", "SANs"),
        ({"client_auth_type": "RequestClientCert"}, AUTH_TYPE, "not supported"),
        ({"client_auth_type": "RequireAnyClientCert"}, AUTH_TYPE, "not supported"),
        ({"client_auth_type": "RequireClientCert"}, AUTH_TYPE, "not supported"),
        ({"client_auth_type": "Whatever"}, AUTH_TYPE, "Input should be"),
    ],
)  # fmt: skip
def test_what_python_cannot_honour_is_refused(
    fields: dict[str, Any], where: str, says: str
) -> None:
    [(path, message)] = problems(tls(**fields))
    assert path == where
    assert says in message


def test_rate_limit_is_refused_not_ignored() -> None:
    [(path, message)] = problems({"rate_limit": {"interval": "1s", "burst": 5}})
    assert path == "rate_limit"
    assert "not supported" in message


@pytest.mark.parametrize("mode", ["VerifyClientCertIfGiven", "RequireAndVerifyClientCert"])
def test_verifying_client_certificates_needs_a_ca(mode: str) -> None:
    [(_, message)] = problems(tls(client_auth_type=mode))
    assert "needs client_ca_file" in message
    for ca in ({"client_ca_file": "ca.crt"}, {"client_ca": "PEM"}):
        config = WebConfig.model_validate(tls(client_auth_type=mode, **ca)).tls_server_config
        assert config is not None
        assert config.client_auth_type == mode


def test_a_client_ca_without_verification_is_refused() -> None:
    [(_, message)] = problems(tls(client_ca_file="ca.crt"))
    assert "NoClientCert" in message


def test_client_ca_and_client_ca_file_exclude_each_other() -> None:
    both = tls(client_ca="PEM", client_ca_file="ca.crt", client_auth_type="VerifyClientCertIfGiven")
    [(_, message)] = problems(both)
    assert "give one of them" in message


def test_versions_must_be_known_and_ordered() -> None:
    assert "above max_version" in problems(tls(min_version="TLS13", max_version="TLS12"))[0][1]
    assert problems(tls(min_version="SSL3"))[0][0] == "tls_server_config.min_version"
    config = WebConfig.model_validate(tls(min_version="TLS13")).tls_server_config
    assert config is not None
    assert config.min_version == "TLS13"


def test_go_cipher_names_become_openssl_names_for_tls12() -> None:
    names = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]
    config = WebConfig.model_validate(tls(cipher_suites=names)).tls_server_config
    assert config is not None
    assert config.openssl_ciphers == "ECDHE-RSA-AES128-GCM-SHA256"  # 1.3 names change nothing
    [(path, message)] = problems(tls(cipher_suites=["TLS_RSA_WITH_RC4_128_SHA"]))
    assert (path, message) == (
        "tls_server_config.cipher_suites", "Value error, unknown cipher: TLS_RSA_WITH_RC4_128_SHA",
    )  # fmt: skip


def test_every_mapped_cipher_is_known_to_openssl() -> None:
    import ssl

    known = {c["name"] for c in ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()}
    known |= {c["name"] for c in _all_ciphers()}
    assert {name for name in CIPHERS.values() if name} <= known


def _all_ciphers() -> list[dict[str, Any]]:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context.get_ciphers()  # type: ignore[return-value] - typeshed: list of dicts


def test_curves_are_validated() -> None:
    config = WebConfig.model_validate(tls(curve_preferences=["X25519", "CurveP256"]))
    assert config.tls_server_config is not None
    assert problems(tls(curve_preferences=["CurveP999"]))[0][0].startswith(
        "tls_server_config.curve_preferences"
    )


def test_headers_are_refused_as_they_would_not_be_sent() -> None:
    assert WebConfig.model_validate({"http_server_config": {"headers": {}}})
    [(path, message)] = problems({"http_server_config": {"headers": {"X-Frame-Options": "deny"}}})
    assert path == "http_server_config.headers"
    assert "not supported" in message


def test_users_need_bcrypt_hashes_and_sane_names() -> None:
    config = WebConfig.model_validate({"basic_auth_users": {"prometheus": HASH}})
    assert config.basic_auth_users["prometheus"].get_secret_value() == HASH
    assert HASH not in repr(config)
    assert HASH not in config.model_dump_json()
    paths = [
        path for path, _ in problems({"basic_auth_users": {"u": "plain", "a:b": HASH, "": HASH}})
    ]
    assert sorted(paths) == [
        "basic_auth_users..[key]",
        "basic_auth_users.a:b.[key]",
        "basic_auth_users.u",
    ]


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_a_refused_hash_never_appears_in_the_error(secret: str) -> None:
    if bcrypt_cost_ok(secret):
        return
    data = {"basic_auth_users": {"u": secret}}
    with pytest.raises(ValidationError) as caught:
        WebConfig.model_validate(data)
    messages = " ".join(e["msg"] for e in caught.value.errors())
    assert len(secret) < 4 or secret not in messages


@settings(max_examples=10, deadline=None)
@given(st.integers(4, 6), st.sampled_from([b"2a", b"2b", b"2y"]))
def test_real_bcrypt_hashes_pass(cost: int, prefix: bytes) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(cost, prefix=b"2b")).replace(b"2b", prefix, 1)
    assert bcrypt_cost_ok(hashed.decode())


@pytest.mark.parametrize(
    "hashed",
    [HASH.replace("$10$", "$03$"), HASH.replace("$10$", "$32$"), HASH[:-1], "$2x$" + HASH[4:],
     HASH + "x", "$1$salt$hash"],
)  # fmt: skip
def test_bad_costs_and_shapes_are_no_hashes(hashed: str) -> None:
    assert not bcrypt_cost_ok(hashed)
