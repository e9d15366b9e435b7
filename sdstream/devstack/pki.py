"""The secured broker's certificates, made with the `openssl` CLI: a CA, the broker's
certificate (SAN 127.0.0.1 and localhost) and one client certificate per principal.

EC P-256 keys: each one costs milliseconds, so a fresh PKI per `devstack up` adds
nothing noticeable to start-up. Keys are unencrypted PKCS#8 PEM (what `openssl req
-nodes` writes), which both Python's `ssl` and Kafka's PEM keystore read; the broker's
keystore is its key and certificate chain in one file (`ssl.keystore.type=PEM`).
Certificates are valid for 30 days: a devstack lives for hours.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sdstream.devstack import build
from sdstream.devstack.errors import DevstackError

_DAYS = "30"
KEYSTORE = "broker.keystore.pem"  # beside ca.crt
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
# Our own extension sections rather than the system openssl.cnf's, whose `req -x509`
# defaults would make every leaf a CA.
_CONFIG = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


@dataclass(frozen=True)
class KafkaPki:
    ca: Path
    broker_keystore: Path  # PEM: the broker's key, then its certificate and the CA's
    clients: dict[str, ClientCert]  # principal -> its certificate (CN=principal) and key


def write(directory: Path, *, clients: Iterable[str]) -> KafkaPki:
    """A CA, the broker's keystore and a client certificate per name in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(_CONFIG)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    _openssl(["req", "-x509", *_EC, "-keyout", ca_key, "-out", ca, "-days", _DAYS, "-config",
              config, "-extensions", "ca", "-subj", "/CN=sdstream devstack CA"])  # fmt: skip
    ca_key.chmod(0o600)
    signer = [config, ca, ca_key]
    broker = _signed(directory, "broker", signer=signer, cn="localhost",
                     san="subjectAltName=IP:127.0.0.1,DNS:localhost")  # fmt: skip
    keystore = directory / KEYSTORE
    keystore.write_bytes(broker.key.read_bytes() + broker.cert.read_bytes() + ca.read_bytes())
    keystore.chmod(0o600)
    certs = {name: _signed(directory, name, signer=signer, cn=name) for name in clients}
    return KafkaPki(ca=ca, broker_keystore=keystore, clients=certs)


def _signed(
    directory: Path, name: str, *, signer: list[Path], cn: str, san: str | None = None
) -> ClientCert:
    """A key and a certificate for it, CN=`cn`, signed by `signer` (config, CA, CA key)."""
    config, ca, ca_key = signer
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    extensions = ["-addext", san] if san else []
    _openssl(["req", "-x509", *_EC, "-keyout", key, "-out", cert, "-days", _DAYS,
              "-config", config, "-extensions", "leaf", "-subj", f"/CN={cn}",
              "-CA", ca, "-CAkey", ca_key, *extensions])  # fmt: skip
    key.chmod(0o600)
    return ClientCert(cert=cert, key=key)


def _openssl(args: Sequence[str | Path]) -> None:
    openssl = build.require_tool("openssl", why="to make the Kafka certificates")
    done = subprocess.run(
        [openssl, *(str(a) for a in args)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DevstackError(f"openssl failed: {done.stderr.strip()[:200]}")
