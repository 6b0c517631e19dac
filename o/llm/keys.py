"""Where provider API keys come from: the :class:`KeySource` port.

Locally the keys are settings (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GROQ_API_KEY``, read by
:mod:`o.config`): :class:`SettingsKeySource`. In AWS one Secrets Manager secret holds them
(:class:`o.aws.secrets.SecretsManagerKeySource`). The composition root picks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from o.config import ProviderKeys

ENV_NAMES: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "groq": "GROQ_API_KEY",
    "ollama": "OLLAMA_API_KEY",
    "vllm": "VLLM_API_KEY",
    "lmstudio": "LMSTUDIO_API_KEY",
    # web_search's hosted providers (o/tools/web/search.py), keyed like the models
    "exa": "EXA_API_KEY",
    "tavily": "TAVILY_API_KEY",
}

# Providers that accept requests without a key: servers the operator runs (Ollama, vLLM, LM Studio; a
# key is sent when one is set), and Bedrock, whose calls are signed with the process's AWS credentials.
KEYLESS: frozenset[str] = frozenset({"ollama", "vllm", "lmstudio", "bedrock"})


def placeholder_key(provider: str) -> str:
    """What is sent where no key is due: it authorises nothing. The SDKs refuse to send a request without
    a key (and the openai SDK would fall back to ``OPENAI_ADMIN_KEY`` from the environment)."""
    return "ollama" if provider == "ollama" else "no-key"


def key_optional(provider: str, endpoint: str, public: str | None) -> bool:
    """Whether a call may go without the operator's key: to a keyless provider, or to an operator's
    endpoint that is not the provider's own API (``OPENAI_BASE_URL`` naming a local OpenAI-compatible
    server, which usually takes none)."""
    if provider in KEYLESS:
        return True
    # only "openai" stands for any OpenAI-compatible server; another provider's custom endpoint (a gateway
    # in front of Groq, say) still wants that provider's key
    if provider != "openai" or public is None:
        return False
    return endpoint.rstrip("/").removesuffix("/v1") != public.rstrip("/").removesuffix("/v1")


class KeySource(Protocol):
    def api_key(self, provider: str) -> str | None:
        """The key for ``provider`` ("openai", "anthropic", "groq", "ollama"), or None if there is none."""
        ...


def key_in(values: Mapping[str, object], provider: str) -> str | None:
    """The provider's key in a mapping keyed by the env-var name or the provider name."""
    for name in (ENV_NAMES.get(provider, ""), provider):
        value = values.get(name) if name else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class SettingsKeySource:
    """The keys the process's settings hold (local mode)."""

    def __init__(self, keys: ProviderKeys) -> None:
        self._keys = keys

    def api_key(self, provider: str) -> str | None:
        return self._keys.get(provider)


class StaticKeySource:
    """Keys given directly, by provider name or env-var name (tests, one-off scripts)."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)

    def api_key(self, provider: str) -> str | None:
        return key_in(self._keys, provider)


class NoKeys:
    """No provider keys at all: only keyless providers work."""

    def api_key(self, provider: str) -> str | None:
        del provider
        return None
