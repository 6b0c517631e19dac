"""Typed settings from the environment, validated once at start.

Every process (``o serve``, a Lambda handler, a test) builds one :class:`Settings`
through :func:`load_settings`; a bad value fails fast with a message that names the
variable, instead of surfacing later as an obscure runtime error.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """The user's data directory (XDG on Linux, the platform's equivalent elsewhere)."""
    base = os.environ.get("XDG_DATA_HOME")
    if base:
        return Path(base) / "o"
    return Path.home() / ".local" / "share" / "o"


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a usable configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O_", extra="ignore", frozen=True)

    # Where memory lives. Empty means: start the embedded Postgres in ``data_dir``.
    database_url: str | None = Field(default=None, description="libpq URI of Postgres >= 15 with pgvector")
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8283, ge=1, le=65535)

    # Connection pool for long-running servers; Lambda uses one connection per environment.
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    # RDS Proxy pins connections that use server-side prepared statements.
    disable_prepared_statements: bool = False

    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest accepted request body")
    run_migrations: bool = True
    runtime: Literal["local", "lambda"] = "local"
    # Sleep-time compute inside `o serve` (EventBridge Scheduler does it in AWS).
    sleeptime: bool = True
    sleeptime_poll_seconds: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a libpq URI starting with postgresql://")
        return value


def build_settings(**overrides: object) -> Settings:
    """Validate the environment, with explicit overrides (e.g. command-line flags) on top."""
    return validated(Settings, **{k: v for k, v in overrides.items() if v is not None})


def validated(model: type[BaseSettings], **overrides: object) -> Any:
    """An instance of a settings model, or a ConfigError naming each bad variable."""
    try:
        return model(**overrides)
    except ValidationError as exc:
        prefix = str(model.model_config.get("env_prefix") or "")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Read and validate the environment once per process."""
    return build_settings()
