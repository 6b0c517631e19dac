"""Pick and build the client for an agent's :class:`~o.llm.config.LLMConfig`.

This is where an agent's config meets the operator's rules: the endpoint it names is routed
(:mod:`o.llm.endpoints`), the operator's key goes only to the operator's endpoint for the provider,
and a URL the outbound policy refuses outright (:mod:`o.net.outbound`) is refused before any client
exists. The client's own HTTP client checks every address it connects to.

SDK clients hold an HTTP connection pool, so they are cached per (endpoint, key,
options) and reused across steps instead of reconnecting (and re-doing TLS) each time.
Each provider's module is imported on first use: importing the ``anthropic`` SDK takes
about 1.5 s and ``openai`` 0.7 s, which a Lambda cold start should pay only for the
provider its agents actually use.
"""

from __future__ import annotations

import threading

from o.llm.client import ClientOptions, LLMClient, LLMError
from o.llm.config import DEFAULT_ENDPOINTS, LLMConfig
from o.llm.endpoints import Route
from o.llm.keys import ENV_NAMES, KeySource, NoKeys, key_optional, placeholder_key

_CACHE_LIMIT = 64
_cache: dict[tuple[object, ...], LLMClient] = {}
_lock = threading.Lock()


def route_for(config: LLMConfig, options: ClientOptions) -> Route:
    """Where calls for ``config`` go; raises a 4xx error for an endpoint that is not allowed.

    Pure (no request is made): an API route can call it to refuse a config when it is saved.
    """
    route = options.endpoints.route(config.model_endpoint_type, config.model_endpoint, field="model_endpoint")
    options.outbound.check_url(route.url)
    return route


def api_key_for(route: Route, provider: str, keys: KeySource) -> str:
    """The key sent on ``route``: the operator's key only to the operator's endpoint of ``provider``."""
    if not route.operator:
        return placeholder_key(provider)
    api_key = keys.api_key(provider)
    if api_key is not None:
        return api_key
    if key_optional(provider, route.url, DEFAULT_ENDPOINTS.get(provider)):
        return placeholder_key(provider)
    raise LLMError(
        f"no API key for {provider}: set {ENV_NAMES[provider]} (or O_LLM_KEYS_SECRET_ARN in AWS)", provider=provider
    )


BEDROCK_OFF = "Bedrock is not configured on this server (set O_LLM_BEDROCK_REGION)"


def check_available(config: LLMConfig, keys: KeySource, options: ClientOptions) -> None:
    """Raise what :func:`client_for` would raise for ``config`` (a refused endpoint, a provider with no
    key or no adapter), without building a client: an agent saved with a model this server cannot call
    is refused when it is saved, not at its first message."""
    route = route_for(config, options)
    provider = config.model_endpoint_type
    if options.adapter(provider) is not None:
        return
    if provider == "bedrock":
        raise LLMError(BEDROCK_OFF, provider=provider)
    api_key_for(route, provider, keys)


def client_for(
    config: LLMConfig,
    keys: KeySource | None = None,
    options: ClientOptions | None = None,
) -> LLMClient:
    """The client for ``config``; raises :class:`LLMError` when the provider's API key is missing and a
    4xx :class:`~o.errors.InvalidInput` when its endpoint is not one this server may call."""
    keys = keys if keys is not None else NoKeys()
    options = options if options is not None else ClientOptions()
    provider = config.model_endpoint_type
    route = route_for(config, options)
    adapter = options.adapter(provider)
    if adapter is not None:
        # signed with the process's own credentials (Bedrock): no key, and its own client cache
        return adapter(config, route, options)
    if provider == "bedrock":
        raise LLMError(BEDROCK_OFF, provider=provider)
    api_key = api_key_for(route, provider, keys)
    cache_key = (config.model_dump_json(), route, api_key, options)
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            return cached
        client: LLMClient
        if provider == "anthropic":
            from o.llm.anthropic_native import AnthropicClient

            client = AnthropicClient(config, api_key, options, route)
        else:
            from o.llm.openai_compat import OpenAICompatClient

            client = OpenAICompatClient(config, api_key, options, route)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.pop(next(iter(_cache)))
        _cache[cache_key] = client
        return client
