"""The pieces every settings group is made of (see :mod:`o.config`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a usable configuration."""


def env(*names: str, **kwargs: Any) -> Any:
    """A field that also reads the variables ``names`` (besides its own ``O_…`` name)."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra["env"] = list(names)
    return Field(json_schema_extra=extra, **kwargs)


class Group(BaseModel):
    """A group of settings; its fields are ``O_<GROUP>_<FIELD>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def listed(value: Any) -> Any:
    """A list setting given as one variable: comma- or space-separated (``"a.example, 10.0.0.0/8"``)."""
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    return value


def default_data_dir() -> Path:
    """The user's data directory (XDG on Linux, the platform's equivalent elsewhere)."""
    base = os.environ.get("XDG_DATA_HOME")
    if base:
        return Path(base) / "o"
    return Path.home() / ".local" / "share" / "o"
