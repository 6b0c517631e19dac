"""The models this server can call: what ``GET /v1/models/`` and ``/v1/models/embedding`` list.

What is listed is what the operator configured: OpenAI, Anthropic and Groq when their keys are set (or,
for OpenAI, when ``OPENAI_BASE_URL`` names another server, which needs none), the Ollama server
(``OLLAMA_BASE_URL``; on this machine by default), OpenAI-compatible servers (``VLLM_API_BASE``,
``LMSTUDIO_BASE_URL``) and Amazon Bedrock (``O_LLM_BEDROCK_REGION`` with ``O_LLM_BEDROCK_MODELS``).
Each provider is asked which models it serves (:mod:`o.llm.discovery`) at its operator endpoint
(:mod:`o.llm.endpoints`), through the outbound policy (:mod:`o.net`), all at once; a provider that
does not answer is left out and logged, never an error. Answers, and failures, are kept for
``O_LLM_MODELS_CACHE_S`` so that listing stays fast.

A listed model's handle is ``provider/model``, the same handle an agent's ``model`` takes. An agent created
or updated with a handle its provider does not list is refused (:meth:`ModelCatalog.check_listed`), with the
nearest listed handles; a provider that cannot be asked is never a reason to refuse.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from o.config import EmbeddingSettings, LLMSettings
from o.errors import InvalidInput
from o.llm import discovery
from o.llm.client import LLMError
from o.llm.config import LLMConfig
from o.llm.discovery import Discovered, DiscoveryError
from o.llm.endpoints import EndpointRefused, EndpointRules, Route, base_url_for
from o.llm.keys import KeySource
from o.llm.providers import api_key_for
from o.net.outbound import OutboundDenied, OutboundPolicy

logger = logging.getLogger(__name__)

# Letta's provider type for each endpoint type O calls (what the SDK's ``provider_type`` takes).
PROVIDER_TYPES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "groq": "groq",
    "ollama": "ollama",
    "vllm": "vllm",
    "lmstudio": "lmstudio_openai",
    "bedrock": "bedrock",
}


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model this server can call."""

    provider: str  # the endpoint type and handle prefix: "openai", "vllm", "bedrock", ...
    name: str
    kind: discovery.Kind
    endpoint: str
    context_window: int
    embedding_dim: int | None = None

    @property
    def handle(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def provider_type(self) -> str:
        return PROVIDER_TYPES[self.provider]


@dataclass(frozen=True, slots=True)
class Source:
    """A configured provider: where it is, and how to ask it for its models (None: not usable now,
    e.g. its key is not set)."""

    provider: str
    endpoint: str
    discover: Callable[[], list[Discovered] | None]
    # False: looked for without being configured (an Ollama on this machine), so its absence is no warning
    configured: bool = True


@dataclass(slots=True)
class _Cached:
    at: float
    models: list[Discovered] | None  # None: the provider did not list its models (down, refused, no key)


# Bedrock's list is the operator's O_LLM_BEDROCK_MODELS, not Bedrock's own answer (O does not ask its control
# plane): a model or inference profile left out of it may well be callable, so it is no reason to refuse.
_LISTING_IS_CONFIGURATION = frozenset({"bedrock"})


@dataclass(frozen=True, slots=True)
class Unlisted:
    """A handle whose provider answered its model listing without it."""

    handle: str
    close: list[str]  # the provider's listed handles nearest to it, best first
    listed: list[str]  # the provider's chat models, as handles

    def error(self) -> InvalidInput:
        hint = f"did you mean {', '.join(self.close)}? " if self.close else ""
        shown = ", ".join(self.listed[:20]) + (f" and {len(self.listed) - 20} more" if len(self.listed) > 20 else "")
        return InvalidInput(
            f"model {self.handle!r} is not one this server's {self.handle.split('/', 1)[0]} provider lists; {hint}"
            f"its models: {shown or 'none for chat'} (GET /v1/models/ lists every handle)",
            field="model",
            close_matches=self.close,
            models=self.listed,
        )


@dataclass(frozen=True, slots=True)
class ProviderCheck:
    """One configured provider, asked for its models now: reachable and its key accepted (``error`` None)."""

    provider: str
    endpoint: str
    configured: bool
    models: int
    error: str | None


class ModelCatalog:
    """The models of the configured providers, each provider's answer kept for ``cache_s`` seconds."""

    def __init__(
        self,
        sources: Sequence[Source] | Callable[[], Sequence[Source]],
        *,
        cache_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # a callable is asked at the first use: which providers have a key may take a Secrets Manager
        # call, which a Lambda's cold start should not make for requests that never list models
        self._sources = sources if callable(sources) else tuple(sources)
        self.cache_s = cache_s
        # which endpoints are the operator's (set by from_settings): only those are the listed providers
        self.rules: EndpointRules | None = None
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    @property
    def sources(self) -> tuple[Source, ...]:
        with self._lock:
            if callable(self._sources):
                self._sources = tuple(self._sources())
            return self._sources

    @classmethod
    def from_settings(
        cls,
        llm: LLMSettings,
        embedding: EmbeddingSettings,
        keys: KeySource,
        outbound: OutboundPolicy,
        *,
        local: bool,
    ) -> ModelCatalog:
        """The operator's providers. ``local``: this is `o serve` on a machine, where an Ollama on
        localhost is looked for even when ``OLLAMA_BASE_URL`` is not set."""
        rules = EndpointRules.for_llm(llm)
        catalog = cls(lambda: _configured_sources(llm, embedding, keys, outbound, local), cache_s=llm.models_cache_s)
        catalog.rules = rules
        return catalog

    def models(self, kind: discovery.Kind) -> list[ModelEntry]:
        """Every model of ``kind`` the configured providers serve now, providers in configuration order."""
        found = self._discover_all()
        entries: list[ModelEntry] = []
        for source in self.sources:
            for model in found.get(source.provider) or []:
                if model.kind == kind:
                    entries.append(_entry(source, model))
        return entries

    def embedding_config(self, handle: str) -> dict[str, Any] | None:
        """The embedding_config of a listed embedding model (``provider/model``), None when none is listed:
        how an agent is given a model whose size only its server knows (vLLM, LM Studio, a new Ollama model)."""
        entry = next((e for e in self.models("embedding") if e.handle == handle and e.embedding_dim), None)
        if entry is None:
            return None
        return {
            "embedding_endpoint_type": entry.provider,
            "embedding_endpoint": entry.endpoint,
            "embedding_model": entry.name,
            "embedding_dim": entry.embedding_dim,
            "embedding_chunk_size": 300,
            "handle": entry.handle,
        }

    def check(self) -> list[ProviderCheck]:
        """Each provider asked for its models now, bypassing the cache: a model list costs no tokens, and a
        provider answers it only when it is reachable and accepts the key (`o doctor`)."""
        if not self.sources:
            return []
        with ThreadPoolExecutor(max_workers=len(self.sources), thread_name_prefix="o-doctor") as pool:
            return list(pool.map(_check, self.sources))

    def check_listed(self, llm_config: dict[str, Any]) -> None:
        """Refuse (422, with the nearest listed handles) a model its provider's listing does not have."""
        try:
            config = LLMConfig.model_validate(llm_config)
        except ValueError:
            return  # not a usable config: the engine's own check says why
        unlisted = self.unlisted(config.model_endpoint_type, config.model, config.model_endpoint)
        if unlisted is not None:
            raise unlisted.error()

    def unlisted(self, provider: str, model: str, endpoint: str | None) -> Unlisted | None:
        """``provider/model`` when the provider's operator endpoint answered its listing without it. None when it
        is listed, and whenever that cannot be told: the provider is not one this server lists (no key: the
        engine refuses that by itself), its listing is the operator's configuration (Bedrock), the agent names
        an endpoint of its own, or the provider did not answer or listed nothing (down, key refused, a server
        without a model list) -- a model O cannot see is then no reason to refuse it."""
        source = next((s for s in self.sources if s.provider == provider), None)
        if source is None or provider in _LISTING_IS_CONFIGURATION or not self._is_operators(source, endpoint):
            return None
        listing = self._discover_all([source]).get(provider)
        if not listing:
            return None
        names = [m.name for m in listing]
        if _listed(provider, model, names):
            return None
        close = difflib.get_close_matches(model, names, n=5, cutoff=0.6)
        chat = [m.name for m in listing if m.kind == "llm"]
        return Unlisted(f"{provider}/{model}", [f"{provider}/{n}" for n in close], [f"{provider}/{n}" for n in chat])

    def _is_operators(self, source: Source, endpoint: str | None) -> bool:
        if self.rules is None:
            return endpoint is None or endpoint.rstrip("/") == source.endpoint.rstrip("/")
        try:
            route = self.rules.route(source.provider, endpoint)
        except EndpointRefused:
            return False  # the engine refuses it with its own reason
        return route.operator and route.url == source.endpoint

    def _discover_all(self, only: Sequence[Source] | None = None) -> dict[str, list[Discovered] | None]:
        now = self._clock()
        with self._lock:
            fresh = {p: c.models for p, c in self._cache.items() if now - c.at < self.cache_s}
        stale = [s for s in (self.sources if only is None else only) if s.provider not in fresh]
        if stale:
            # all at once: a slow provider costs its own timeout, not the sum of everyone's
            with ThreadPoolExecutor(max_workers=len(stale), thread_name_prefix="o-models") as pool:
                answers = list(pool.map(_ask, stale))
            with self._lock:
                for source, models in zip(stale, answers, strict=True):
                    self._cache[source.provider] = _Cached(now, models)
                    fresh[source.provider] = models
        return fresh


def _configured_sources(
    llm: LLMSettings, embedding: EmbeddingSettings, keys: KeySource, outbound: OutboundPolicy, local: bool
) -> list[Source]:
    rules = EndpointRules.for_llm(llm)
    asker = _Asker(keys, outbound, llm.discovery_timeout_s)
    sources: list[Source] = []
    for provider in ("openai", "anthropic", "groq", "vllm", "lmstudio"):
        endpoint = rules.operator_endpoint(provider)
        explicit = provider in ("vllm", "lmstudio")
        if endpoint is not None and (explicit or _keyed_or_custom(provider, endpoint, keys)):
            sources.append(Source(provider, endpoint, asker.of(provider, endpoint)))
    ollama = llm.ollama_base_url or embedding.ollama_base_url
    if ollama or local:
        endpoint = rules.operator_endpoint("ollama") or ""
        sources.append(Source("ollama", endpoint, asker.of("ollama", endpoint), configured=bool(ollama)))
    bedrock = rules.operator_endpoint("bedrock")
    if bedrock is not None:
        listed = [Discovered(model_id, "llm") for model_id in llm.bedrock_models]
        sources.append(Source("bedrock", bedrock, lambda: listed))
    return sources


def _listed(provider: str, model: str, names: Sequence[str]) -> bool:
    """Whether a provider that lists ``names`` serves ``model`` (each provider's own aliases included)."""
    if model in names:
        return True
    if provider == "ollama" and ":" not in model:
        return f"{model}:latest" in names  # Ollama's default tag
    if provider == "anthropic":
        # Anthropic lists dated snapshots; its API also takes their aliases (claude-sonnet-4-5, …-latest)
        alias = model.removesuffix("-latest") + "-"
        return any(name.startswith(alias) for name in names)
    return False


def _ask(source: Source) -> list[Discovered] | None:
    """The provider's models; None when it did not list them (not configured now, down, refused)."""
    try:
        return source.discover()
    except (DiscoveryError, OutboundDenied, LLMError, OSError, ValueError) as exc:
        reason = str(exc)
    except Exception as exc:  # the HTTP stack's own errors (timeouts, refused connections)
        reason = f"{type(exc).__name__}: {exc}"
    logger.log(
        logging.WARNING if source.configured else logging.INFO,
        "a model provider did not list its models; it is left out of GET /v1/models for now",
        extra={"provider": source.provider, "endpoint": source.endpoint, "reason": reason},
    )
    return None


def _check(source: Source) -> ProviderCheck:
    try:
        found = source.discover()
    except Exception as exc:  # whatever the provider or the HTTP stack raised: reported, not raised
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return ProviderCheck(source.provider, source.endpoint, source.configured, 0, reason[:300])
    if found is None:
        return ProviderCheck(source.provider, source.endpoint, source.configured, 0, "no key is set")
    usable = sum(1 for m in found if m.kind != "other")
    return ProviderCheck(source.provider, source.endpoint, source.configured, usable, None)


def _entry(source: Source, model: Discovered) -> ModelEntry:
    window = model.context_window
    if window is None and model.kind == "llm":
        # the window O would give an agent of this model
        window = LLMConfig.model_validate({"model": model.name, "model_endpoint_type": source.provider}).context_window
    return ModelEntry(
        source.provider, model.name, model.kind, source.endpoint, window or 0, embedding_dim=model.embedding_dim
    )


def _keyed_or_custom(provider: str, endpoint: str, keys: KeySource) -> bool:
    """A hosted provider is listed when its key is set, or when its endpoint is the operator's own server."""
    try:
        api_key_for(Route(endpoint, operator=True), provider, keys)
    except LLMError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Asker:
    keys: KeySource
    outbound: OutboundPolicy
    timeout_s: float

    def of(self, provider: str, endpoint: str) -> Callable[[], list[Discovered] | None]:
        return lambda: self.ask(provider, endpoint)

    def ask(self, provider: str, endpoint: str) -> list[Discovered] | None:
        self.outbound.check_url(endpoint)
        try:
            # looked up on every refresh: in AWS the key comes from Secrets Manager and may be rotated
            api_key = api_key_for(Route(endpoint, operator=True), provider, self.keys)
        except LLMError:
            return None  # its key is not set (any more): not configured, nothing to log
        from o.net.transport import http_client  # imported when a catalog first asks: not at the API's cold start

        with http_client(self.outbound) as client:
            if provider == "ollama":
                return discovery.ollama_models(client, endpoint, self.timeout_s)
            if provider == "anthropic":
                return discovery.anthropic_models(client, endpoint, api_key, self.timeout_s)
            base = base_url_for(endpoint, provider)
            return discovery.openai_models(client, base, api_key, provider, self.timeout_s)
