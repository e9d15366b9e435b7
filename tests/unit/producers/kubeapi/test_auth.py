from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from producers.kubeapi import auth, errors
from schemas.config import KubeSettings


class Cfg:
    def __init__(self) -> None:
        self.api_key: dict[str, str] = {}


def test_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("one\n")
    token = auth.TokenFile(path)
    cfg: Any = Cfg()
    token.hook(cfg)
    assert cfg.api_key["BearerToken"] == "Bearer one"
    path.write_text("two-rotated\n")
    os.utime(path, ns=(1, 1))
    token.hook(cfg)
    assert cfg.api_key["BearerToken"] == "Bearer two-rotated"


def test_an_empty_token_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("")
    with pytest.raises(errors.Unauthorized):
        auth.TokenFile(path).refresh()


async def test_explicit_server_with_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abc")
    settings = KubeSettings(
        api_server="https://127.0.0.1:6443/",
        token_file=tmp_path / "token",
        insecure_skip_verify=True,
    )
    cfg = await auth.configuration(settings)
    assert cfg.host == "https://127.0.0.1:6443"
    assert cfg.verify_ssl is False
    assert await cfg.get_api_key_with_prefix("BearerToken") == "Bearer abc"


async def test_kubeconfig_with_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://127.0.0.1:1111"}}
- {name: b, cluster: {server: "https://127.0.0.1:2222", insecure-skip-tls-verify: true}}
users:
- {name: u, user: {token: secret}}
contexts:
- {name: ca, context: {cluster: a, user: u}}
- {name: cb, context: {cluster: b, user: u}}
current-context: ca
"""
    )
    cfg = await auth.configuration(KubeSettings(kubeconfig=kubeconfig, context="cb"))
    assert cfg.host == "https://127.0.0.1:2222"
    assert cfg.verify_ssl is False
    assert await cfg.get_api_key_with_prefix("BearerToken") == "Bearer secret"
