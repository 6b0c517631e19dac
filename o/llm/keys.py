"""Where provider API keys come from.

Locally: environment variables (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``,
``GROQ_API_KEY``). In AWS: one Secrets Manager secret holding a JSON object, read
through Powertools Parameters (cached for ``keys_cache_s``) when
``O_LLM_KEYS_SECRET_ARN`` is set. The secret may use either the env-var names or the
provider names as keys: ``{"OPENAI_API_KEY": "..."}`` or ``{"openai": "..."}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from o.llm.config import LLMSettings

ENV_NAMES: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "groq": "GROQ_API_KEY",
    "ollama": "OLLAMA_API_KEY",
}

# Providers that accept requests without a key (a local Ollama server).
KEYLESS: frozenset[str] = frozenset({"ollama"})


class KeySource(Protocol):
    def api_key(self, provider: str) -> str | None:
        """The key for ``provider`` ("openai", "anthropic", "groq", "ollama"), or None if there is none."""
        ...


def _lookup(values: Mapping[str, object], provider: str) -> str | None:
    for name in (ENV_NAMES.get(provider, ""), provider):
        value = values.get(name) if name else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class EnvKeySource:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ

    def api_key(self, provider: str) -> str | None:
        return _lookup(self._environ, provider)


class StaticKeySource:
    """Keys given directly, by provider name or env-var name (tests, one-off scripts)."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)

    def api_key(self, provider: str) -> str | None:
        return _lookup(self._keys, provider)


class SecretsManagerKeySource:
    def __init__(self, secret_id: str, max_age_s: int = 300) -> None:
        self.secret_id = secret_id
        self.max_age_s = max_age_s

    def api_key(self, provider: str) -> str | None:
        # Imported here so local mode does not pay for loading boto3 until a key is needed.
        from aws_lambda_powertools.utilities import parameters

        # Powertools treats max_age=0 as "use the default"; zero here means never cache.
        values = parameters.get_secret(
            self.secret_id, transform="json", max_age=self.max_age_s, force_fetch=self.max_age_s == 0
        )
        if not isinstance(values, dict):
            raise ValueError(f"secret {self.secret_id} must hold a JSON object of API keys")
        return _lookup(values, provider)


def default_key_source(settings: LLMSettings | None = None) -> KeySource:
    settings = settings or LLMSettings()
    if settings.keys_secret_arn:
        return SecretsManagerKeySource(settings.keys_secret_arn, settings.keys_cache_s)
    return EnvKeySource()
