"""Prometheus's web configuration file (`--web.config.file`), as sdstream reads it.

Operators already write this file for Prometheus and every exporter built on the
exporter-toolkit (`tls_server_config`, `http_server_config`, `basic_auth_users`), so
sdstream takes the same file rather than a format of its own. The model is strict: an
unknown key is an error, as the toolkit's `yaml.UnmarshalStrict` makes it.

What Python's `ssl` module cannot do is refused here, naming the key, rather than
silently served weaker than written:
- `cert`, `key` (inline PEM): `ssl` loads a certificate chain from files only, and
  writing a private key to a temporary file is not ours to decide. Use `cert_file`,
  `key_file`. Inline `client_ca` works (`cadata`).
- `client_auth_type` `RequestClientCert` / `RequireAnyClientCert`: `ssl` verifies every
  client certificate it asks for; the toolkit calls these insecure anyway.
- `client_allowed_sans`: `ssl` has no verification callback to match SANs in.
- `rate_limit`: not implemented.
- `http_server_config.headers`: the server's hooks (TLS context, guard) cannot add headers
  to answers, and HSTS or CSP written but not sent would be a false comfort.
`curve_preferences` is accepted and validated but not applied (Python 3.11's `ssl` sets
one ECDH curve, not a preference list): OpenSSL's default groups, which include all four
curves the toolkit knows, are used; the loader warns once. `http2` is accepted: the
server speaks HTTP/1.1, which Prometheus's HTTP SD client uses anyway.

Paths are kept as written; `sdstream.web_config` resolves relative ones against the
file's directory, as Prometheus does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

_STRICT = ConfigDict(frozen=True, extra="forbid")

TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
Curve = Literal["CurveP256", "CurveP384", "CurveP521", "X25519"]
VERIFYING: Final = ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
_UNVERIFIED: Final = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")

# Go's tls.CipherSuites() names -> OpenSSL's. Both Go and `SSLContext.set_ciphers` apply
# the list to TLS 1.2 and below only, so the TLS 1.3 names are accepted and change nothing.
CIPHERS: Final = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}
# Modular Crypt Format of bcrypt: $2a$/$2b$/$2y$, two-digit cost, 22 chars salt + 31 hash.
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


def _user_name(name: str) -> str:
    if not name or ":" in name:
        raise ValueError("a user name must be non-empty and without ':'")
    return name


def _bcrypt(hashed: SecretStr) -> SecretStr:
    if not bcrypt_cost_ok(hashed.get_secret_value()):
        raise ValueError("not a bcrypt hash ($2a$, $2b$ or $2y$, cost 4-31)")
    return hashed


def _unsupported(why: str) -> str:
    return f"not supported by sdstream: {why}"


class TlsServerConfig(BaseModel):
    model_config = _STRICT

    cert_file: Path | None = None
    key_file: Path | None = None
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: Path | None = None
    client_ca: str | None = Field(None, description="Inline PEM of the client CA(s)")
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"
    cipher_suites: tuple[str, ...] = Field((), description="Go's names; TLS 1.2 and below")
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[Curve, ...] = Field(
        (), description="Validated, not applied: OpenSSL's default groups are used"
    )
    cert: None = Field(None, description=_unsupported("inline PEM; use cert_file"))
    key: None = Field(None, description=_unsupported("inline PEM; use key_file"))
    client_allowed_sans: None = Field(None, description=_unsupported("no SAN matching"))

    @field_validator("cert", "key", mode="before")
    @classmethod
    def _files_only(cls, value: object) -> None:
        if value is not None:
            raise ValueError(_unsupported("Python's ssl loads certificates and keys from files"))

    @field_validator("client_allowed_sans", mode="before")
    @classmethod
    def _no_sans(cls, value: object) -> None:
        if value is not None:
            raise ValueError(_unsupported("Python's ssl cannot match client certificate SANs"))

    @field_validator("client_auth_type")
    @classmethod
    def _verified(cls, value: ClientAuthType) -> ClientAuthType:
        if value in _UNVERIFIED:
            raise ValueError(
                _unsupported(
                    f"{value} (Python's ssl verifies every client certificate it asks for); "
                    "use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
                )
            )
        return value

    @field_validator("cipher_suites")
    @classmethod
    def _known_ciphers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in CIPHERS]
        if unknown:
            raise ValueError(f"unknown cipher: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TlsServerConfig:
        if self.cert_file is None or self.key_file is None:
            missing = "cert_file" if self.cert_file is None else "key_file"
            raise ValueError(f"missing {missing}: TLS needs both cert_file and key_file")
        if self.client_ca_file is not None and self.client_ca is not None:
            raise ValueError("client_ca and client_ca_file: give one of them")
        has_ca = self.client_ca_file is not None or self.client_ca is not None
        if has_ca and self.client_auth_type == "NoClientCert":
            raise ValueError("a client CA is configured, but client_auth_type is NoClientCert")
        if self.client_auth_type in VERIFYING and not has_ca:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        order = ("TLS10", "TLS11", "TLS12", "TLS13")
        if order.index(self.min_version) > order.index(self.max_version):
            raise ValueError(f"min_version {self.min_version} is above max_version")
        return self

    @property
    def openssl_ciphers(self) -> str | None:
        """`cipher_suites` as an OpenSSL cipher string, or None for OpenSSL's defaults."""
        names = [CIPHERS[name] for name in self.cipher_suites]
        chosen = [name for name in names if name is not None]
        return ":".join(chosen) if chosen else None


class HttpServerConfig(BaseModel):
    model_config = _STRICT

    http2: bool = Field(True, description="Accepted; the server speaks HTTP/1.1")
    headers: dict[str, str] = Field(
        default_factory=dict, description=_unsupported("the server adds no configured headers")
    )

    @field_validator("headers")
    @classmethod
    def _no_headers(cls, value: dict[str, str]) -> dict[str, str]:
        if value:
            raise ValueError(
                _unsupported("the server adds no configured headers to its answers; remove them")
            )
        return value


class WebConfig(BaseModel):
    """The whole file. No `tls_server_config`: plain HTTP; no `basic_auth_users`: no
    basic authentication."""

    model_config = _STRICT

    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[
        Annotated[str, AfterValidator(_user_name)], Annotated[SecretStr, AfterValidator(_bcrypt)]
    ] = Field(default_factory=dict, description="User name -> bcrypt hash of the password")
    rate_limit: None = Field(None, description=_unsupported("rate_limit"))

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _no_rate_limit(cls, value: object) -> None:
        if value is not None:
            raise ValueError(_unsupported("rate_limit is not implemented"))


def bcrypt_cost_ok(hashed: str) -> bool:
    """Whether `hashed` is a bcrypt hash with a usable cost (4-31), as Go's bcrypt.Cost
    requires. The hash itself never appears in a message."""
    match = _BCRYPT.fullmatch(hashed)
    return match is not None and 4 <= int(match.group(1)) <= 31
