"""The model catalog's decisions: provider names and handles, which endpoint and key, what a listing
holds, and how long an answer (or a failure) is kept."""

from __future__ import annotations

import pytest

from o.config import settings_from
from o.llm.catalog import ModelCatalog, Source
from o.llm.client import LLMError
from o.llm.config import LLMConfig, parse_handle
from o.llm.discovery import Discovered, DiscoveryError, classify
from o.llm.endpoints import EndpointRefused, EndpointRules, Route, base_url_for
from o.llm.keys import NoKeys, StaticKeySource
from o.llm.providers import api_key_for
from o.net.outbound import OutboundPolicy


def test_letta_names_for_local_servers_map_to_o_types() -> None:
    assert parse_handle("lmstudio_openai/qwen/qwen3-8b") == ("lmstudio", "qwen/qwen3-8b")
    assert LLMConfig.from_handle("llamacpp/gemma-3").model_endpoint_type == "vllm"
    config = LLMConfig.model_validate({"model": "m", "model_endpoint_type": "lmstudio-chatcompletions"})
    assert config.model_endpoint_type == "lmstudio" and config.handle == "lmstudio/m"
    assert LLMConfig.from_handle("bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0").context_window == 200_000


def test_servers_the_operator_did_not_configure_are_refused_naming_the_variable() -> None:
    rules = EndpointRules.for_llm(settings_from({}).llm)
    for provider, variable in (("vllm", "VLLM_API_BASE"), ("lmstudio", "LMSTUDIO_BASE_URL"), ("bedrock", "BEDROCK")):
        with pytest.raises(EndpointRefused, match=variable):
            rules.route(provider, None)
    configured = EndpointRules.for_llm(settings_from({"VLLM_API_BASE": "http://gpu:8000"}).llm)
    # a config carrying the default endpoint (what a handle fills in) means the operator's server
    assert configured.route("vllm", "http://localhost:8000/v1") == Route("http://gpu:8000", operator=True)


def test_openai_base_url_configures_chat_and_embeddings() -> None:
    settings = settings_from({"OPENAI_BASE_URL": "http://box:8080/v1", "OLLAMA_BASE_URL": "http://ol:11434"})
    assert EndpointRules.for_llm(settings.llm).operator_endpoint("openai") == "http://box:8080/v1"
    embedding = EndpointRules.for_embeddings(settings.embedding, settings.llm)
    assert embedding.operator_endpoint("openai") == "http://box:8080/v1"
    assert embedding.operator_endpoint("ollama") == "http://ol:11434"


def test_a_key_is_needed_only_by_the_providers_own_api() -> None:
    custom = Route("http://box:8080/v1", operator=True)
    assert api_key_for(custom, "openai", NoKeys()) == "no-key"
    assert api_key_for(Route("http://gpu:8000", operator=True), "vllm", NoKeys()) == "no-key"
    assert api_key_for(Route("http://gpu:8000", operator=True), "vllm", StaticKeySource({"VLLM_API_KEY": "k"})) == "k"
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        api_key_for(Route("https://api.openai.com/v1", operator=True), "openai", NoKeys())


def test_base_urls_of_local_servers() -> None:
    assert base_url_for("http://gpu:8000", "vllm") == "http://gpu:8000/v1"
    assert base_url_for("http://gpu:8000/", "lmstudio") == "http://gpu:8000/v1"
    assert base_url_for("http://gpu:8000/openai/v1", "vllm") == "http://gpu:8000/openai/v1"
    assert base_url_for("http://gpu:8000", "openai") == "http://gpu:8000"


@pytest.mark.parametrize(
    ("provider", "model", "kind"),
    [
        ("openai", "gpt-4o-mini", "llm"),
        ("openai", "o3-mini", "llm"),
        ("openai", "text-embedding-3-large", "embedding"),
        ("openai", "whisper-1", None),
        ("openai", "dall-e-3", None),
        ("openai", "gpt-4o-realtime-preview", None),
        ("openai", "babbage-002", None),
        ("vllm", "meta-llama/Llama-3.1-8B-Instruct", "llm"),
        ("vllm", "BAAI/bge-small-en-v1.5-embed", "embedding"),
        ("groq", "whisper-large-v3", None),
    ],
)
def test_what_a_listed_model_is_for(provider: str, model: str, kind: str | None) -> None:
    assert classify(provider, model) == kind


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_answers_and_failures_are_kept_for_the_cache_time() -> None:
    asked = {"up": 0, "down": 0}

    def up() -> list[Discovered]:
        asked["up"] += 1
        return [Discovered("m1", "llm", context_window=4096), Discovered("e1", "embedding", embedding_dim=8)]

    def down() -> list[Discovered]:
        asked["down"] += 1
        raise DiscoveryError("http://down/v1/models answered HTTP 502")

    clock = Clock()
    catalog = ModelCatalog(
        [Source("vllm", "http://up", up), Source("lmstudio", "http://down", down)], cache_s=30, clock=clock
    )
    llms = catalog.models("llm")
    assert [(m.handle, m.context_window, m.provider_type) for m in llms] == [("vllm/m1", 4096, "vllm")]
    assert [(m.handle, m.embedding_dim) for m in catalog.models("embedding")] == [("vllm/e1", 8)]
    assert asked == {"up": 1, "down": 1}
    clock.now = 29.0
    catalog.models("llm")
    assert asked == {"up": 1, "down": 1}
    clock.now = 31.0
    catalog.models("llm")
    assert asked == {"up": 2, "down": 2}


def test_what_is_configured_is_what_is_asked() -> None:
    settings = settings_from({"O_LLM_BEDROCK_REGION": "eu-west-1", "O_LLM_BEDROCK_MODELS": "a.b:0"})
    keys = StaticKeySource({"ANTHROPIC_API_KEY": "k"})
    catalog = ModelCatalog.from_settings(settings.llm, settings.embedding, keys, OutboundPolicy(), local=False)
    # hosted providers with a key (Anthropic), Bedrock (no key); no Ollama off this machine
    assert [s.provider for s in catalog.sources] == ["anthropic", "bedrock"]
    assert [m.handle for m in catalog.models("llm")] == ["bedrock/a.b:0"]
    assert catalog.sources[1].endpoint == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    local = ModelCatalog.from_settings(settings.llm, settings.embedding, NoKeys(), OutboundPolicy(), local=True)
    assert [s.provider for s in local.sources] == ["ollama", "bedrock"]


def test_a_handle_is_checked_against_the_providers_own_listing_and_aliases() -> None:
    listings = {
        "anthropic": [Discovered("claude-sonnet-4-5-20250929", "llm"), Discovered("claude-3-5-haiku-20241022", "llm")],
        "openai": [Discovered("gpt-4o", "llm"), Discovered("llama-3-8b", "other"), Discovered("whisper-1", "other")],
        "groq": None,  # did not answer
        "vllm": [],  # listed nothing
    }
    sources = [Source(p, f"http://{p}", lambda p=p: listings[p]) for p in listings]
    catalog = ModelCatalog(sources)
    # Anthropic's aliases of its dated snapshots
    assert catalog.unlisted("anthropic", "claude-sonnet-4-5", None) is None
    assert catalog.unlisted("anthropic", "claude-3-5-haiku-latest", None) is None
    assert catalog.unlisted("anthropic", "claude-opus-9", None) is not None
    # any model the server lists, chat-like name or not (an OpenAI-compatible server behind OPENAI_BASE_URL)
    assert catalog.unlisted("openai", "llama-3-8b", None) is None
    unknown = catalog.unlisted("openai", "gpt-4", None)
    assert unknown is not None and unknown.close == ["openai/gpt-4o"] and unknown.listed == ["openai/gpt-4o"]
    # no answer, an empty answer, an endpoint of the agent's own, a provider not configured: cannot be told
    assert catalog.unlisted("groq", "anything", None) is None
    assert catalog.unlisted("vllm", "anything", None) is None
    assert catalog.unlisted("openai", "gpt-4", "http://elsewhere/v1") is None
    assert catalog.unlisted("ollama", "anything", None) is None
    # the failed answer is not shown as models
    assert [m.handle for m in catalog.models("llm")][:2] == [
        "anthropic/claude-sonnet-4-5-20250929",
        "anthropic/claude-3-5-haiku-20241022",
    ]
