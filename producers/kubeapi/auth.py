"""Settings -> an authenticated client of the official `kubernetes` package (asyncio flavour).

The package does the configuration and the auth (kubeconfig with context, token,
client certificates, exec and OIDC plugins; the in-cluster service account);
we only add what it lacks: an explicit API server URL with a bearer token file
re-read whenever it changes (projected tokens rotate), and a periodic refresh of
kubeconfig credentials (exec and OIDC tokens expire).

Settings that cannot work (a missing kubeconfig, an unknown context, a missing token or
CA file, no in-cluster service account) are `KubeConfigError`, raised by `connect` before
any request: the process says so in one line and exits 2.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes.aio import config as kube_config
from kubernetes.aio.client import ApiClient, Configuration

from producers.kubeapi import errors
from schemas.config import KubeSettings

logger = logging.getLogger(__name__)

KUBECONFIG_REFRESH_S = 60.0


class KubeConfigError(Exception):
    """The Kubernetes access settings cannot be used; the message names the setting."""


class TokenFile:
    """A bearer token file, re-read when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self.token = ""

    def refresh(self) -> bool:
        """Re-read the file if it changed; True if the token changed."""
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return False
        token = self.path.read_text().strip()
        if not token:
            raise errors.Unauthorized(f"token file {self.path} is empty")
        self._stamp = stamp
        changed = token != self.token
        self.token = token
        return changed

    def hook(self, configuration: Any) -> None:
        """For Configuration.refresh_api_key_hook: runs before every request."""
        if self.refresh():
            logger.info("Read bearer token from %s.", self.path, extra={"path": str(self.path)})
        configuration.api_key["BearerToken"] = f"Bearer {self.token}"


class KubeconfigRefresher:
    """Reloads kubeconfig credentials at most every `interval_s` (exec/OIDC tokens expire)."""

    def __init__(self, loader: Any, *, interval_s: float) -> None:
        self._loader = loader
        self._interval_s = interval_s
        self._last = time.monotonic()

    async def hook(self, configuration: Any) -> None:
        if time.monotonic() - self._last < self._interval_s:
            return
        self._last = time.monotonic()
        await self._loader.load_and_set(configuration)


async def configuration(settings: KubeSettings) -> Any:
    """A kubernetes.aio Configuration for `settings` (kubeconfig, explicit, or in-cluster)."""
    cfg: Any = Configuration()  # Any: the package types refresh_api_key_hook as None
    kubeconfig = _kubeconfig_path(settings)
    if kubeconfig is not None:
        loader = await kube_config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped upstream
            config_file=str(kubeconfig),
            context=settings.context,
            client_configuration=cfg,
            persist_config=False,
        )
        if "BearerToken" in cfg.api_key:
            refresher = KubeconfigRefresher(loader, interval_s=KUBECONFIG_REFRESH_S)
            cfg.refresh_api_key_hook = refresher.hook
    elif settings.api_server is None:
        kube_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    _apply_overrides(cfg, settings)
    return cfg


def _kubeconfig_path(settings: KubeSettings) -> Path | None:
    if settings.kubeconfig is not None:
        return settings.kubeconfig
    if settings.api_server is not None:
        return None
    default = Path(os.path.expanduser(kube_config.KUBE_CONFIG_DEFAULT_LOCATION))
    return default if default.exists() else None


def _apply_overrides(cfg: Any, settings: KubeSettings) -> None:
    if settings.api_server is not None:
        cfg.host = settings.api_server.rstrip("/")
    if settings.ca_file is not None:
        cfg.ssl_ca_cert = str(settings.ca_file)
    if settings.insecure_skip_verify:
        cfg.verify_ssl = False
    if settings.token_file is not None:
        token = TokenFile(settings.token_file)
        token.hook(cfg)
        cfg.refresh_api_key_hook = token.hook


async def connect(settings: KubeSettings) -> Any:
    """An ApiClient (kubernetes.aio); close it with `await client.close()`.
    KubeConfigError if the settings cannot work."""
    _check_files(settings)
    kubeconfig = _kubeconfig_path(settings)
    try:
        return ApiClient(configuration=await configuration(settings))
    except kube_config.ConfigException as exc:
        raise KubeConfigError(_config_problem(settings, kubeconfig, exc)) from exc
    except (OSError, ssl.SSLError) as exc:  # a file named inside the kubeconfig
        raise KubeConfigError(f"{_where(kubeconfig)}: {_one_line(exc)}") from exc
    except (yaml.YAMLError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # the package reads a malformed kubeconfig without checking its shape
        problem = f"malformed ({type(exc).__name__}: {_one_line(exc)})"
        raise KubeConfigError(f"{_where(kubeconfig)}: {problem}") from exc


def _where(kubeconfig: Path | None) -> str:
    return f"kube.kubeconfig {kubeconfig}" if kubeconfig else "in-cluster configuration"


def _check_files(settings: KubeSettings) -> None:
    """Files named by the settings exist and can be read (the CA file parses)."""
    for name, path in (("kubeconfig", settings.kubeconfig), ("token_file", settings.token_file),
                       ("ca_file", settings.ca_file)):  # fmt: skip
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise KubeConfigError(f"kube.{name}: {path}: {exc.strerror or exc}") from exc
    if settings.ca_file is not None:
        try:
            ssl.create_default_context(cafile=str(settings.ca_file))
        except ssl.SSLError as exc:
            raise KubeConfigError(f"kube.ca_file: {settings.ca_file}: no PEM certificate "
                                  f"({_one_line(exc)})") from exc  # fmt: skip


def _config_problem(settings: KubeSettings, kubeconfig: Path | None, exc: Exception) -> str:
    if kubeconfig is None:
        return (f"no kube.kubeconfig (nor ~/.kube/config) and no in-cluster service account: "
                f"{_one_line(exc)}")  # fmt: skip
    context = f" (kube.context {settings.context})" if settings.context else ""
    return f"kube.kubeconfig {kubeconfig}{context}: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
