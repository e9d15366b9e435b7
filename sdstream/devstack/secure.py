"""The secured broker of `devstack up --secure`: principals, listeners, client settings.

Beside the PLAINTEXT listener (tests' admin use; its principal User:ANONYMOUS, like the
controller's, is a super user) the broker gets:

- `SSL`: TLS with `ssl.client.auth=required`; the principal is the client certificate's
  CN (`ssl.principal.mapping.rules`), so a certificate `CN=fold` acts as `User:fold`,
  the same principal as the SCRAM user `fold`.
- `SASL_SSL`: TLS (no client certificate) with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN
  for the same users and passwords (SCRAM credentials are written at format time), and
  OAUTHBEARER with Kafka's built-in *unsecured* JWS validator (dev/test only: an
  unsigned token whose `sub` claim names the principal is accepted).
- `SASL_PLAINTEXT`: the same mechanisms and users without TLS, for testing that
  combination of client settings.

Every principal gets a random password in a 0600 file, a client certificate, and two
ready-to-use settings files (`<principal>.scram.yaml`, `<principal>.mtls.yaml`) with a
`kafka:` section for `sdstream produce|consume --config`. What each principal may do is
granted by `kafka_acls`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from schemas.config import KafkaSettings
from sdstream.devstack import pki

FOLD = "fold"
SINK = "sink"
METHODS = ("scram", "mtls")  # those with a settings file; also "scram-plaintext"
DEFAULT_CLUSTERS = ("a", "b")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER")
_SCRAM = ("SCRAM-SHA-512", "SCRAM-SHA-256")
_PRINCIPAL_CN = "RULE:^CN=([^,]+)$/$1/,DEFAULT"


def producer(cluster: str) -> str:
    """The principal of cluster `cluster`'s producer."""
    return f"producer-{cluster}"


def principals(clusters: tuple[str, ...]) -> list[str]:
    return [*(producer(c) for c in clusters), FOLD, SINK]


@dataclass(frozen=True)
class Secrets:
    """What the secured broker was made with: certificates and password files."""

    pki: pki.KafkaPki
    passwords: dict[str, Path]  # principal -> file holding its password


def write_secrets(directory: Path, *, users: list[str]) -> Secrets:
    """A fresh PKI and a random password per user under `directory` (0700)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    made = pki.write(directory / "pki", clients=users)
    passwords = {}
    for user in users:
        path = directory / "passwords" / f"{user}.password"
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(16) + "\n")
        path.chmod(0o600)
        passwords[user] = path
    return Secrets(pki=made, passwords=passwords)


def _password(path: Path) -> str:
    return path.read_text().strip()


def format_args(made: Secrets) -> list[str]:
    """`kafka-storage format` arguments creating every user's SCRAM credentials."""
    args = []
    for user, path in made.passwords.items():
        for mechanism in _SCRAM:
            args += ["--add-scram", f"{mechanism}=[name={user},password={_password(path)}]"]
    return args


def listener_properties(made: Secrets, *, ports: dict[str, int]) -> dict[str, str]:
    """server.properties entries of the SSL, SASL_SSL and SASL_PLAINTEXT listeners (their
    `ports`) and the authorizer; `_listeners` and `_protocols` are merged into
    `listeners` and the protocol map by `servers.start_kafka`."""
    properties = {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(made.pki.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(made.pki.ca),
        "ssl.principal.mapping.rules": _PRINCIPAL_CN,
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "_listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in ports.items()),
        "_protocols": ",".join(f"{name}:{name}" for name in ports),
    }
    for name in ports:
        if name.startswith("SASL_"):
            properties |= _sasl_listener(made, name.lower())
    return properties


def _sasl_listener(made: Secrets, listener: str) -> dict[str, str]:
    plain_users = " ".join(
        f'user_{user}="{_password(path)}"' for user, path in made.passwords.items()
    )
    jaas = f"listener.name.{listener}.{{}}.sasl.jaas.config"
    return {
        f"listener.name.{listener}.sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        jaas.format("scram-sha-512"): _module("scram.ScramLoginModule"),
        jaas.format("scram-sha-256"): _module("scram.ScramLoginModule"),
        jaas.format("plain"): _module("plain.PlainLoginModule", plain_users),
        jaas.format("oauthbearer"): _module(
            "oauthbearer.OAuthBearerLoginModule", 'unsecuredLoginStringClaim_sub="broker"'
        ),
    }


def _module(name: str, options: str = "") -> str:
    return f"org.apache.kafka.common.security.{name} required {options}".rstrip() + ";"


def client_settings(
    made: Secrets, principal: str, method: str, *, bootstrap: str, **overrides: object
) -> KafkaSettings:
    """`principal`'s Kafka settings for `method`: "scram" (SASL_SSL, SCRAM-SHA-512),
    "scram-plaintext" (SASL_PLAINTEXT, SCRAM-SHA-512) or "mtls" (SSL with its client
    certificate), for the bootstrap of that method's listener."""
    sasl: dict[str, object] = {
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": principal,
        "sasl_password_file": made.passwords[principal],
    }
    if method == "scram":
        options = {"security_protocol": "SASL_SSL", "ssl_cafile": made.pki.ca, **sasl}
    elif method == "scram-plaintext":
        options = {"security_protocol": "SASL_PLAINTEXT", **sasl}
    elif method == "mtls":
        cert = made.pki.clients[principal]
        options = {"security_protocol": "SSL", "ssl_cafile": made.pki.ca,
                   "ssl_certfile": cert.cert, "ssl_keyfile": cert.key}  # fmt: skip
    else:
        raise ValueError(f"unknown method {method!r}: scram, scram-plaintext or mtls")
    return KafkaSettings.model_validate({"bootstrap": bootstrap, **options, **overrides})


def write_client_files(
    made: Secrets, directory: Path, *, bootstraps: dict[str, str]
) -> dict[str, str]:
    """One settings file per principal and method; returns {"<principal>.<method>": path}."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for principal in made.passwords:
        for method in METHODS:
            settings = client_settings(made, principal, method, bootstrap=bootstraps[method])
            kafka = settings.model_dump(mode="json", exclude_defaults=True)
            path = directory / f"{principal}.{method}.yaml"
            path.write_text(yaml.safe_dump({"kafka": kafka}, sort_keys=False))
            written[f"{principal}.{method}"] = str(path)
    return written
