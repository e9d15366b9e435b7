"""The one place that reads the environment and config files.

Precedence, highest first: command-line flags, `SDSTREAM_*` environment
variables, the YAML config file, defaults. Nested groups use one `_` after the
group name: `SDSTREAM_KAFKA_BOOTSTRAP`, `SDSTREAM_LEADER_ENABLED`. Lists of names
(`SDSTREAM_RESOURCES`, `SDSTREAM_NAMESPACES`, ...) take JSON or commas: `pods,services`;
lists of regexes (`SDSTREAM_DROP_ANNOTATION_PATTERNS`) take JSON only, since a regex may
hold a comma (`a{1,3}`).

Settings are strict (an unknown `SDSTREAM_*` variable or file key is an error, so a typo
never passes silently), with one exception: Kubernetes injects docker-links variables for
every Service in the pod's namespace (`<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT=tcp://...`,
...), so a Service named `sdstream-kafka` or `sdstream-http` would otherwise make both
processes exit at start. Variables of exactly those shapes are ignored and logged.
"""

from __future__ import annotations

import logging
import re
import ssl
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

from kafka_access.kafka_options import read_secret, ssl_context
from schemas.config import ConsumerSettings, KafkaSettings, ProducerSettings

logger = logging.getLogger(__name__)

ENV_PREFIX = "SDSTREAM_"
_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    env_nested_delimiter="_",
    env_nested_max_split=1,
    frozen=True,
    extra="forbid",
    hide_input_in_errors=True,  # a bad field next to a password must not echo it
)

# Kubernetes' service-link variables (kubelet's envvars.FromServices), for a Service `svc`
# with a port 9092/TCP: SVC_SERVICE_HOST, SVC_SERVICE_PORT, SVC_SERVICE_PORT_<NAME>,
# SVC_PORT=tcp://10.0.0.1:9092, SVC_PORT_9092_TCP=tcp://..., SVC_PORT_9092_TCP_PROTO,
# SVC_PORT_9092_TCP_PORT, SVC_PORT_9092_TCP_ADDR.
_LINK_NAME = re.compile(
    r"(?:_SERVICE_HOST|_SERVICE_PORT(?:_[A-Z0-9_]+)?|_PORT_\d+_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?)$",
    re.IGNORECASE,
)
_LINK_URL = re.compile(r"(?:tcp|udp|sctp)://(?:\[[0-9a-f:.]+\]|[^:/\s]+):\d+", re.IGNORECASE)
# Lists of regexes: a comma may be part of one (`a{1,3}`), so never split on commas.
_JSON_ONLY = frozenset({"drop_annotation_patterns"})


def service_link(name: str, value: str | None, *, settings: frozenset[str]) -> bool:
    """Whether `name=value` is a Kubernetes service-link variable, not one of `settings`
    (upper-case names). `<SVC>_PORT` is one only with a `tcp://host:port` value, since
    `SDSTREAM_HTTP_PORT` is both a setting and what a Service `sdstream-http` injects."""
    upper = name.upper()
    if upper.endswith("_PORT") and value is not None and _LINK_URL.fullmatch(value.strip()):
        return True
    return upper not in settings and _LINK_NAME.search(upper) is not None


def _string_tuple(annotation: Any) -> bool:
    """tuple[str, ...] and tuples of str enums/NewTypes (`tuple[Resource, ...]`), items
    validated or not (`tuple[Annotated[str, AfterValidator(...)], ...]`)."""
    if typing.get_origin(annotation) is not tuple:
        return False
    args = typing.get_args(annotation)
    if len(args) != 2 or args[1] is not Ellipsis:
        return False
    item = args[0]
    if typing.get_origin(item) is typing.Annotated:
        item = typing.get_args(item)[0]
    return isinstance(item, type) and issubclass(item, str)


class _Env(EnvSettingsSource):
    """Environment source that skips service links and reads comma-separated lists."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        loaded = super()._load_env_vars()
        names = frozenset(env_names(self.settings_cls))
        prefix = ENV_PREFIX.lower()
        links = {
            name for name, value in loaded.items()
            if name.lower().startswith(prefix) and service_link(name, value, settings=names)
        }  # fmt: skip
        if links:
            ignored = sorted(links)
            logger.info("Ignoring %d Kubernetes service-link variables: %s.", len(ignored),
                        ", ".join(n.upper() for n in ignored),
                        extra={"ignored": ignored})  # fmt: skip
        return {k: v for k, v in loaded.items() if k not in links}

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if (
            isinstance(value, str)
            and field_name not in _JSON_ONLY
            and _string_tuple(field.annotation)
        ):
            stripped = value.strip()
            if not stripped.startswith("["):
                return [part.strip() for part in stripped.split(",") if part.strip()]
        return super().decode_complex_value(field_name, field, value)


class _FromFile(BaseSettings):
    file_values: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, _Env(settings_cls)]
        if cls.file_values is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=cls.file_values))
        return tuple(sources)


class ProducerAppSettings(ProducerSettings, _FromFile):
    model_config = _CONFIG


class ConsumerAppSettings(ConsumerSettings, _FromFile):
    model_config = _CONFIG


class SettingsError(Exception):
    """Bad configuration; the message lists each bad field by its path."""


S = TypeVar("S", ProducerAppSettings, ConsumerAppSettings)


def load(kind: type[S], *, config_file: Path | None = None, **flags: Any) -> S:
    kind.file_values = None if config_file is None else read_file(config_file)
    try:
        loaded = kind(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from exc
    except SourceError as exc:  # a variable that does not parse (bad JSON, ...)
        raise SettingsError(_unparsed(exc)) from exc
    finally:
        kind.file_values = None
    _check_kafka_files(loaded.kafka)
    return loaded


def _check_kafka_files(kafka: KafkaSettings) -> None:
    """Read the password files and build the TLS context now, so a missing, unreadable or
    bad file is a settings error naming it at start rather than a traceback from the first
    Kafka client. A file's content never appears in the message."""
    for name in ("sasl_password_file", "sasl_oauth_token_file", "ssl_keyfile_password_file",
                 "ssl_certfile", "ssl_keyfile"):  # fmt: skip
        path: Path | None = getattr(kafka, name)
        if path is not None:
            _check_readable(f"kafka.{name}", path)
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return
    try:
        ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"kafka.ssl_cafile: {kafka.ssl_cafile}: {_one_line(exc)}") from exc
    try:
        ssl_context(kafka)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SettingsError(
            f"kafka.ssl_certfile, kafka.ssl_keyfile: {kafka.ssl_certfile}, {kafka.ssl_keyfile}: "
            f"not a certificate and its key (or wrong key password): {_one_line(exc)}"
        ) from exc


def _check_readable(field: str, path: Path) -> None:
    if path.is_dir():
        raise SettingsError(f"{field}: {path} is a directory")
    try:
        path.read_bytes()
        secret = field.endswith(("password_file", "token_file"))
        content = read_secret(path) if secret else "-"
    except OSError as exc:
        raise SettingsError(f"{field}: {path}: {exc.strerror or _one_line(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{field}: {path}: not UTF-8 text") from exc
    if not content:
        raise SettingsError(f"{field}: {path} is empty")


def read_file(path: Path, *, what: str = "config file") -> dict[str, Any]:
    """A YAML file of settings as a mapping (empty: no settings); SettingsError naming the
    file (and line) when it is missing, unreadable, not YAML, or not a mapping. `what` names
    the kind of file in messages (the config file, the web config file)."""
    if path.is_dir():
        raise SettingsError(f"{what} {path} is a directory")
    if not path.exists():
        raise SettingsError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{what} {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{what} {path}: not UTF-8 text ({exc.reason})") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{what} {path}: invalid YAML{_where(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"{what} {path}: expected a mapping of settings, got a {_yaml_kind(data)}"
        )
    return data


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {problem}" if problem else at


def _yaml_kind(data: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(data), type(data).__name__
    )


def _unparsed(exc: SourceError) -> str:
    field = re.search(r'field "([^"]+)"', str(exc))
    if field is None:
        return f"invalid settings: {_one_line(exc)}"
    name = f"{ENV_PREFIX}{field.group(1).upper()}"
    if field.group(1) in _JSON_ONLY:
        return f'invalid settings: {name} does not parse: write a JSON list: ["regex", ...]'
    return (f"invalid settings: {name} does not parse: write JSON "
            f"(lists may also be comma-separated: a,b,c)")  # fmt: skip


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def describe(exc: ValidationError, *, heading: str = "invalid settings") -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    ]
    return f"{heading}: " + "; ".join(problems)


def env_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> set[str]:
    """Every environment variable a settings model reads (for docs and compose checks)."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            names |= env_names(sub, f"{prefix}{name.upper()}_")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names
