"""The one place that reads the environment and config files.

Precedence, highest first: command-line flags, `SDSTREAM_*` environment
variables, the YAML config file, defaults. Nested groups use one `_` after the
group name: `SDSTREAM_KAFKA_BOOTSTRAP`, `SDSTREAM_LEADER_ENABLED`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from schemas.config import ConsumerSettings, ProducerSettings

ENV_PREFIX = "SDSTREAM_"
_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    env_nested_delimiter="_",
    env_nested_max_split=1,
    frozen=True,
    extra="forbid",
)


class _FromFile(BaseSettings):
    config_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cls.config_path))
        return tuple(sources)


class ProducerAppSettings(ProducerSettings, _FromFile):
    model_config = _CONFIG


class ConsumerAppSettings(ConsumerSettings, _FromFile):
    model_config = _CONFIG


class SettingsError(Exception):
    """Bad configuration; the message lists each bad field by its path."""


S = TypeVar("S", bound=_FromFile)


def load(kind: type[S], *, config_file: Path | None = None, **flags: Any) -> S:
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file {config_file} does not exist")
    kind.config_path = config_file
    try:
        return kind(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from exc
    finally:
        kind.config_path = None


def describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    ]
    return "invalid settings: " + "; ".join(problems)


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
