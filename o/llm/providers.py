"""Pick and build the client for an agent's :class:`~o.llm.config.LLMConfig`.

SDK clients hold an HTTP connection pool, so they are cached per (endpoint, key,
options) and reused across steps instead of reconnecting (and re-doing TLS) each time.
Each provider's module is imported on first use: importing the ``anthropic`` SDK takes
about 1.5 s and ``openai`` 0.7 s, which a Lambda cold start should pay only for the
provider its agents actually use.
"""

from __future__ import annotations

import threading

from o.llm.client import ClientOptions, LLMClient, LLMError
from o.llm.config import LLMConfig
from o.llm.keys import ENV_NAMES, KEYLESS, KeySource, NoKeys

_CACHE_LIMIT = 64
_cache: dict[tuple[object, ...], LLMClient] = {}
_lock = threading.Lock()


def client_for(
    config: LLMConfig,
    keys: KeySource | None = None,
    options: ClientOptions | None = None,
) -> LLMClient:
    """The client for ``config``; raises :class:`LLMError` when the provider's API key is missing."""
    keys = keys if keys is not None else NoKeys()
    options = options if options is not None else ClientOptions()
    provider = config.model_endpoint_type
    api_key = keys.api_key(provider)
    if api_key is None:
        if provider not in KEYLESS:
            raise LLMError(
                f"no API key for {provider}: set {ENV_NAMES[provider]} (or O_LLM_KEYS_SECRET_ARN in AWS)",
                provider=provider,
            )
        # The OpenAI SDK refuses an empty key; Ollama ignores whatever it is sent.
        api_key = "ollama"
    cache_key = (config.model_dump_json(), api_key, options)
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            return cached
        client: LLMClient
        if provider == "anthropic":
            from o.llm.anthropic_native import AnthropicClient

            client = AnthropicClient(config, api_key, options)
        else:
            from o.llm.openai_compat import OpenAICompatClient

            client = OpenAICompatClient(config, api_key, options)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.pop(next(iter(_cache)))
        _cache[cache_key] = client
        return client
