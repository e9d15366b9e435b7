"""Throw-away certificate authorities and certificates for TLS tests, made with openssl.

`Pki(tmp_path).ca("ca")` makes a self-signed CA; `.leaf("server", ca="ca", san=...)` a
certificate signed by it (EC P-256, valid one day). Files are `<name>.crt` / `<name>.key`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_SAN = "IP:127.0.0.1,DNS:localhost"


@dataclass(frozen=True)
class Pki:
    directory: Path

    def _run(self, *argv: str | Path) -> None:
        openssl = shutil.which("openssl")
        assert openssl is not None, "the TLS tests make their certificates with openssl"
        subprocess.run([openssl, *argv], check=True, capture_output=True, cwd=self.directory)

    def ca(self, name: str) -> Path:
        """A self-signed CA; the path of its certificate."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        return self.directory / f"{name}.crt"

    def leaf(self, name: str, *, ca: str, san: str = LOOPBACK_SAN) -> tuple[Path, Path]:
        """A certificate for `san` signed by `ca`: (certificate, key)."""
        self._run(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        )  # fmt: skip
        (self.directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        self._run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext",
        )  # fmt: skip
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"
