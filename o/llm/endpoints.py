"""Where a provider call goes, and whether the operator's key may go with it.

The operator has one endpoint per provider: the provider's own API, or the base URL the operator
configured (``O_LLM_OPENAI_BASE_URL`` …; for embeddings ``OPENAI_BASE_URL`` and ``OLLAMA_BASE_URL``).
The operator's key for a provider is sent there and nowhere else. A tenant's
``llm_config.model_endpoint`` or ``embedding_config.embedding_endpoint`` that names another endpoint
is called only if the operator allows it (``O_LLM_ALLOWED_ENDPOINTS``: host names, or URL prefixes),
and then without the operator's key. Anything else is refused before any request is made.

Letta fills every config with the provider's public endpoint (``https://api.openai.com/v1``), so
that endpoint stands for "the provider" and is routed to the operator's endpoint for it.

Everything here is a pure decision over URLs; :mod:`o.llm.providers` and
:mod:`o.memory.embeddings` act on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from o.config import EmbeddingSettings, LLMSettings, env_name
from o.errors import InvalidInput
from o.llm.config import DEFAULT_ENDPOINTS

# The providers' own embedding endpoints (Ollama's is a local server; Letta stores it without /v1).
DEFAULT_EMBEDDING_ENDPOINTS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "ollama": "http://localhost:11434",
}


# Providers whose calls are signed with the operator's own credentials (Bedrock: SigV4 with the
# function's role): a request signed for another endpoint could be replayed against AWS, so only the
# operator's endpoint is ever called, whatever O_LLM_ALLOWED_ENDPOINTS says.
OPERATOR_ONLY: frozenset[str] = frozenset({"bedrock"})

# The variable that configures each provider's endpoint, for messages that say what to set.
ENDPOINT_VARIABLES: dict[str, str] = {
    "vllm": "VLLM_API_BASE",
    "lmstudio": "LMSTUDIO_BASE_URL",
    "bedrock": env_name("llm", "bedrock_region"),
}


def bedrock_endpoint(settings: LLMSettings) -> str | None:
    """The operator's Bedrock Runtime endpoint, or None when Bedrock is not configured."""
    if settings.bedrock_endpoint_url:
        return settings.bedrock_endpoint_url
    if settings.bedrock_region:
        return f"https://bedrock-runtime.{settings.bedrock_region}.amazonaws.com"
    return None


class EndpointRefused(InvalidInput):
    """A config names an endpoint that is neither the operator's for its provider nor one tenants may name."""

    code = "endpoint_not_allowed"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a call goes. ``operator``: the operator's endpoint for the provider, where its key may go."""

    url: str
    operator: bool


# scheme, host, port, path without trailing slashes
_Parts = tuple[str, str, int, str]


def url_parts(url: str) -> _Parts | None:
    """An http(s) URL taken apart for comparison (host lower-cased, port explicit), or None if it is none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.rstrip(".").lower(), port or default_port, parts.path.rstrip("/")


def same_endpoint(a: _Parts, b: _Parts) -> bool:
    """Whether two URLs name one API: Letta writes some endpoints with ``/v1`` and some without."""
    return a[:3] == b[:3] and a[3].removesuffix("/v1") == b[3].removesuffix("/v1")


def _host_entry(entry: str) -> str:
    return entry.strip().strip("[]").rstrip(".").lower()


def allows(entry: str, parts: _Parts) -> bool:
    """Whether an allowlist entry covers a URL: a host name or address (any scheme, port and path), or a
    URL prefix (same scheme, host and port; the path equal to or below the prefix's)."""
    if "://" not in entry:
        return _host_entry(entry) == parts[1]
    prefix = url_parts(entry)
    if prefix is None or prefix[:3] != parts[:3]:
        return False
    return parts[3] == prefix[3] or parts[3].startswith(prefix[3] + "/")


@dataclass(frozen=True, slots=True)
class EndpointRules:
    """The operator's endpoint of each provider, the endpoints that stand for it, and what tenants may name."""

    # provider -> the operator's endpoint (where its key goes)
    operator: tuple[tuple[str, str], ...]
    # provider -> its public default endpoint, which configs carry to mean "the provider"
    public: tuple[tuple[str, str], ...] = ()
    # host names or URL prefixes a tenant may name; called without the operator's keys
    allowed: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, operator: Mapping[str, str], public: Mapping[str, str] | None = None, allowed: Iterable[str] = ()
    ) -> EndpointRules:
        return cls(tuple(operator.items()), tuple((public or {}).items()), tuple(allowed))

    @classmethod
    def for_llm(cls, settings: LLMSettings | None = None) -> EndpointRules:
        """The chat endpoints: the providers' own APIs unless the operator configured others."""
        settings = settings or LLMSettings()
        configured = {
            "openai": settings.openai_base_url,
            "anthropic": settings.anthropic_base_url,
            "groq": settings.groq_base_url,
            "ollama": settings.ollama_base_url,
        }
        operator = {p: configured.get(p) or DEFAULT_ENDPOINTS[p] for p in configured}
        # servers the operator runs: only where configured
        optional = {
            "vllm": settings.vllm_base_url,
            "lmstudio": settings.lmstudio_base_url,
            "bedrock": bedrock_endpoint(settings),
        }
        operator.update({p: url for p, url in optional.items() if url})
        return cls.of(operator, DEFAULT_ENDPOINTS, settings.allowed_endpoints)

    @classmethod
    def for_embeddings(
        cls, embedding: EmbeddingSettings | None = None, llm: LLMSettings | None = None
    ) -> EndpointRules:
        """The embedding endpoints; tenants may name the same endpoints as for chat."""
        embedding = embedding or EmbeddingSettings()
        chat = llm or LLMSettings()
        operator = {
            "openai": embedding.openai_base_url or chat.openai_base_url or DEFAULT_EMBEDDING_ENDPOINTS["openai"],
            "ollama": embedding.ollama_base_url or chat.ollama_base_url or DEFAULT_EMBEDDING_ENDPOINTS["ollama"],
        }
        # OpenAI-compatible servers the operator runs serve embeddings at the same address as chat
        operator.update(
            {p: url for p, url in (("vllm", chat.vllm_base_url), ("lmstudio", chat.lmstudio_base_url)) if url}
        )
        allowed = llm.allowed_endpoints if llm is not None else ()
        return cls.of(operator, DEFAULT_EMBEDDING_ENDPOINTS, allowed)

    def operator_endpoint(self, provider: str) -> str | None:
        return dict(self.operator).get(provider)

    def route(self, provider: str, requested: str | None, *, field: str = "model_endpoint") -> Route:
        """Where a call for ``provider`` to ``requested`` (None: the provider's) goes; refuses what is not allowed."""
        mine = self.operator_endpoint(provider)
        if requested is None or not requested.strip():
            if mine is None:
                hint = f" (the operator sets {ENDPOINT_VARIABLES[provider]})" if provider in ENDPOINT_VARIABLES else ""
                raise EndpointRefused(f"no {provider} endpoint is configured on this server{hint}", field=field)
            return Route(mine, operator=True)
        asked = url_parts(requested)
        if asked is None:
            raise EndpointRefused(f"{field} {requested!r} is not an http or https URL", field=field)
        if mine is not None and self._stands_for(provider, mine, asked):
            return Route(mine, operator=True)
        if provider not in OPERATOR_ONLY and any(allows(entry, asked) for entry in self.allowed):
            return Route(requested.strip(), operator=False)
        if mine is None and provider in ENDPOINT_VARIABLES:
            raise EndpointRefused(
                f"no {provider} endpoint is configured on this server (the operator sets "
                f"{ENDPOINT_VARIABLES[provider]})",
                field=field,
                endpoint=requested,
            )
        raise EndpointRefused(
            f"{field} {requested!r} is not an endpoint this server calls for {provider}: it is neither the "
            f"operator's {provider} endpoint nor one the operator lets agents name "
            f"({env_name('llm', 'allowed_endpoints')})",
            field=field,
            endpoint=requested,
        )

    def _stands_for(self, provider: str, mine: str, asked: _Parts) -> bool:
        candidates = [mine]
        public = dict(self.public).get(provider)
        if public is not None:
            candidates.append(public)
        return any((parts := url_parts(c)) is not None and same_endpoint(parts, asked) for c in candidates)


def base_url_for(endpoint: str, endpoint_type: str) -> str:
    """The OpenAI-compatible base URL (``.../v1``) of an endpoint as configs and settings write it."""
    url = endpoint.rstrip("/")
    # Letta stores Ollama's endpoint without the OpenAI-compatible /v1 suffix. Letta's VLLM_API_BASE and
    # LMSTUDIO_BASE_URL name the server ("http://localhost:8000"); its OpenAI-compatible API is under
    # /v1. A URL with a path of its own is taken as it is.
    bare = not url.endswith("/v1") if endpoint_type == "ollama" else not urlsplit(url).path
    return url + "/v1" if bare and endpoint_type in ("ollama", "vllm", "lmstudio") else url
