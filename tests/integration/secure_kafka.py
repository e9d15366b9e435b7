"""The session broker's secured listeners, as tests use them (fixture `secure_kafka`).

The session stack is started with `secure=True`: its PLAINTEXT listener (`kafka_bootstrap`)
is unchanged and unauthenticated (a super user), and beside it an SSL listener requiring
client certificates and a SASL_SSL listener (SCRAM-SHA-512/256, PLAIN, OAUTHBEARER
unsecured) serve the principals `producer-a`, `producer-b`, `fold` and `sink`. ACLs are
per topic prefix: a test grants them for its own prefix with `await secure_kafka.grant(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from schemas.config import KafkaSettings
from sdstream.devstack import kafka_acls, secure
from sdstream.devstack.stack import Stack

Method = Literal["scram", "scram-plaintext", "mtls"]


@dataclass(frozen=True)
class SecureKafka:
    stack: Stack

    @property
    def ssl_bootstrap(self) -> str:
        """SSL listener: TLS, client certificate required; principal = certificate CN."""
        return self.stack.kafka_ssl_bootstrap

    @property
    def sasl_bootstrap(self) -> str:
        """SASL_SSL listener: TLS without client certificate, then SASL."""
        return self.stack.kafka_sasl_bootstrap

    @property
    def sasl_plaintext_bootstrap(self) -> str:
        """SASL_PLAINTEXT listener: SASL without TLS."""
        return self.stack.kafka_sasl_plaintext_bootstrap

    @property
    def ca(self) -> Path:
        return Path(self.stack.kafka_ca)

    def password_file(self, principal: str) -> Path:
        return Path(self.stack.passwords[principal])

    def cert(self, principal: str) -> tuple[Path, Path]:
        """(certificate, key) of `principal`'s client certificate (CN=principal)."""
        cert, key = self.stack.certs[principal]
        return Path(cert), Path(key)

    def settings_file(self, principal: str, method: Literal["scram", "mtls"]) -> Path:
        """The ready-made YAML settings file (`kafka:` section) `devstack up` wrote."""
        return Path(self.stack.client_settings[f"{principal}.{method}"])

    def settings(self, principal: str, method: Method, **overrides: object) -> KafkaSettings:
        """`principal`'s KafkaSettings: "scram" = SASL_SSL + SCRAM-SHA-512 with its password
        file, "scram-plaintext" = the same over SASL_PLAINTEXT, "mtls" = SSL with its client
        certificate; `overrides` (e.g. topic_prefix, sasl_mechanism="PLAIN") replace fields."""
        bootstrap = {"scram": self.sasl_bootstrap, "mtls": self.ssl_bootstrap,
                     "scram-plaintext": self.sasl_plaintext_bootstrap}[method]  # fmt: skip
        return secure.client_settings(
            self.stack.secrets(), principal, method, bootstrap=bootstrap, **overrides
        )

    async def grant(self, prefix: str, clusters: tuple[str, ...] = ("a", "b")) -> None:
        """ACLs for topic prefix `prefix` (see `sdstream.devstack.kafka_acls`)."""
        await kafka_acls.grant(self.stack, prefix=prefix, clusters=clusters)
