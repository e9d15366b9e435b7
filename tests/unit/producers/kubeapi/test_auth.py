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


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://127.0.0.1:1111"}}
users:
- {name: u, user: {token: secret}}
contexts:
- {name: ca, context: {cluster: a, user: u}}
current-context: ca
"""


def settings_for(tmp_path: Path, case: str) -> KubeSettings:
    config = tmp_path / "config"
    config.write_text(KUBECONFIG)
    (tmp_path / "not-pem").write_text("hello\n")
    server = "https://127.0.0.1:9"
    return {
        "missing kubeconfig": KubeSettings(kubeconfig=tmp_path / "nope"),
        "kubeconfig not a mapping": KubeSettings(kubeconfig=tmp_path / "not-pem"),
        "unknown context": KubeSettings(kubeconfig=config, context="nope"),
        "missing token file": KubeSettings(api_server=server, token_file=tmp_path / "nope"),
        "missing CA file": KubeSettings(api_server=server, ca_file=tmp_path / "nope"),
        "CA file not PEM": KubeSettings(api_server=server, ca_file=tmp_path / "not-pem"),
    }[case]


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("missing kubeconfig", "kube.kubeconfig"),
        ("kubeconfig not a mapping", "kube.kubeconfig"),
        ("unknown context", "kube.context nope"),
        ("missing token file", "kube.token_file"),
        ("missing CA file", "kube.ca_file"),
        ("CA file not PEM", "kube.ca_file"),
    ],
)
async def test_settings_that_cannot_work_are_one_line_naming_the_setting(
    tmp_path: Path, case: str, named: str
) -> None:
    with pytest.raises(auth.KubeConfigError) as raised:
        await auth.connect(settings_for(tmp_path, case))

    assert named in str(raised.value)
    assert "\n" not in str(raised.value)
