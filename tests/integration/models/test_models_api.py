"""GET /v1/models/ and /v1/models/embedding through the letta-client SDK in strict mode: what the operator
configured, discovered from real protocol servers (Ollama's /api/tags and /api/show, OpenAI-compatible
/v1/models, Anthropic's /v1/models), and an agent whose handle names a discovered model chats with it."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import uvicorn
from letta_client import Letta, UnprocessableEntityError

from o import runtime
from o.api.app import create_app
from o.config import Settings, settings_from
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

VLLM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# an embedding model on the same vLLM server, whose vector width only the server knows
VLLM_EMBEDDING = "nomic-ai/nomic-embed-text-v1.5"
VLLM_WIDTH = 768
BEDROCK_MODELS = ("anthropic.claude-3-5-sonnet-20241022-v2:0", "us.amazon.nova-pro-v1:0")


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@dataclass
class World:
    settings: Settings
    ollama: OllamaServer
    vllm: OpenAIServer
    openai: OpenAIServer
    anthropic: AnthropicServer


@pytest.fixture
def world() -> Iterator[World]:
    vllm = OpenAIServer(
        models=(VLLM_MODEL, VLLM_EMBEDDING),
        model_fields={VLLM_MODEL: {"max_model_len": 32_768}},
        embedding_dim=VLLM_WIDTH,
    )
    with OllamaServer() as ollama, vllm, OpenAIServer() as openai, AnthropicServer() as anthropic:
        settings = settings_from(
            {
                "OLLAMA_BASE_URL": ollama.origin,
                "VLLM_API_BASE": vllm.origin,  # Letta's form: the server, without /v1
                "OPENAI_BASE_URL": openai.base_url,  # an OpenAI-compatible server: no key needed
                "ANTHROPIC_API_KEY": "sk-ant-test",
                "O_LLM_ANTHROPIC_BASE_URL": anthropic.origin,
                "LMSTUDIO_BASE_URL": f"http://127.0.0.1:{_closed_port()}",  # configured, but down
                "O_LLM_BEDROCK_REGION": "us-east-1",
                "O_LLM_BEDROCK_MODELS": ",".join(BEDROCK_MODELS),
                "O_LLM_DISCOVERY_TIMEOUT_S": "2",
                "O_LLM_MAX_RETRIES": "0",
            }
        )
        yield World(settings, ollama, vllm, openai, anthropic)


@pytest.fixture
def letta(world: World, db: Database) -> Iterator[Letta]:
    engine = runtime.agent_engine(world.settings, db, secrets=wiring.SECRETS)
    services = replace(wiring.services(db, engine=engine), model_catalog=runtime.model_catalog(world.settings))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield Letta(
        base_url=f"http://127.0.0.1:{port}", api_key=new_org_key(db), max_retries=0, _strict_response_validation=True
    )
    server.should_exit = True
    thread.join(5)


def test_models_lists_what_the_operator_configured(
    letta: Letta, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        models = letta.models.list()
    by_handle = {m.handle: m for m in models}
    assert set(by_handle) == {
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
        *(f"anthropic/{m}" for m in world.anthropic.models),
        "ollama/llama3.2:latest",
        "ollama/qwen2.5:7b",
        f"vllm/{VLLM_MODEL}",
        *(f"bedrock/{m}" for m in BEDROCK_MODELS),
    }
    # the windows the servers report: Ollama's model_info, vLLM's max_model_len; else O's defaults
    assert by_handle["ollama/llama3.2:latest"].max_context_window == 131_072
    assert by_handle["ollama/qwen2.5:7b"].context_window == 32_768
    assert by_handle[f"vllm/{VLLM_MODEL}"].max_context_window == 32_768
    assert by_handle["openai/gpt-4o"].context_window == 128_000
    assert by_handle[f"bedrock/{BEDROCK_MODELS[1]}"].context_window == 300_000
    ollama = by_handle["ollama/llama3.2:latest"]
    assert (ollama.name, ollama.provider_type, ollama.api_model_endpoint_type) == (
        "llama3.2:latest",
        "ollama",
        "ollama",
    )
    assert by_handle[f"vllm/{VLLM_MODEL}"].provider_type == "vllm"
    # LM Studio is configured but not running: left out, and the operator's log says so
    assert not any(m.provider_name == "lmstudio" for m in models)
    assert any(getattr(r, "provider", None) == "lmstudio" for r in caplog.records)
    # filters
    assert {m.handle for m in letta.models.list(provider_type="ollama")} == {
        "ollama/llama3.2:latest",
        "ollama/qwen2.5:7b",
    }
    assert [m.handle for m in letta.models.list(provider_name="vllm")] == [f"vllm/{VLLM_MODEL}"]
    assert letta.models.list(provider_category=["byok"]) == []


def test_embedding_models_list_local_and_discovered(letta: Letta) -> None:
    models = letta.models.embeddings.list()
    dims = {m.handle: m.embedding_dim for m in models}
    assert dims["openai/text-embedding-3-small"] == 1536
    assert dims["ollama/nomic-embed-text:latest"] == 768
    local = [m for m in models if m.provider_type == "hugging-face"]
    assert len(local) == 1 and local[0].embedding_dim == 384
    # the vLLM server's embedding model, sized by asking it for one vector
    assert dims[f"vllm/{VLLM_EMBEDDING}"] == VLLM_WIDTH
    assert not any(h.startswith("bedrock/") for h in dims)


def test_an_agent_embeds_with_a_listed_openai_compatible_model(letta: Letta, world: World) -> None:
    handle = f"vllm/{VLLM_EMBEDDING}"
    agent = letta.agents.create(name="vllm-embedder", model="ollama/llama3.2", embedding=handle)
    config = agent.embedding_config
    assert (config.embedding_endpoint_type, config.embedding_model, config.embedding_dim) == (
        "vllm",
        VLLM_EMBEDDING,
        VLLM_WIDTH,
    )
    before = len(world.vllm.embedding_requests)
    letta.agents.passages.create(agent.id, text="The deploy key lives in the blue vault.")
    assert [r["model"] for r in world.vllm.embedding_requests[before:]] == [VLLM_EMBEDDING]
    found = letta.agents.passages.search(agent.id, query="where is the deploy key?")
    assert "blue vault" in found.results[0].content
    # a handle nothing lists is still refused, naming it
    with pytest.raises(UnprocessableEntityError) as refused:
        letta.agents.create(name="unknown", embedding="vllm/not-served")
    assert "vllm/not-served" in str(refused.value)


def test_discovery_is_cached(letta: Letta, world: World) -> None:
    letta.models.list()
    shown = len(world.ollama.show_requests)
    assert shown == 3  # one /api/show per pulled model
    letta.models.list()
    letta.models.embeddings.list()
    assert len(world.ollama.show_requests) == shown


@pytest.mark.parametrize("provider", ["vllm", "ollama"])
def test_an_agent_chats_with_a_discovered_local_model(letta: Letta, world: World, provider: str) -> None:
    server = world.vllm if provider == "vllm" else world.ollama
    handle = next(m.handle for m in letta.models.list(provider_type=provider))
    agent = letta.agents.create(
        name=f"{provider}-agent", model=handle, memory_blocks=[{"label": "human", "value": "?"}]
    )
    assert agent.llm_config.handle == handle
    server.push(call("send_message", message="Hello from a local model"))
    response = letta.agents.messages.create(agent.id, messages=[{"role": "user", "content": "hi"}])
    assert response.messages[-1].content == "Hello from a local model"
    sent = server.requests[-1]
    assert sent["model"] == handle.split("/", 1)[1]
    # no key is configured for the local server: a placeholder that authorises nothing
    assert server.script.headers[-1]["authorization"] in ("Bearer no-key", "Bearer ollama")


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gtp/gpt-4o-mini"])
def test_a_handle_without_a_known_provider_is_told_the_servers_models(letta: Letta, model: str) -> None:
    with pytest.raises(UnprocessableEntityError) as refused:
        letta.agents.create(name="typo", model=model)
    body = refused.value.body
    assert isinstance(body, dict)
    (problem,) = [p for p in body["errors"] if p["loc"] == ["body", "model"]]
    assert "this server's models: " in problem["msg"] and "openai/gpt-4o-mini" in problem["msg"]
    assert "ollama/llama3.2:latest" in body["detail"]


def _refusal(refused: pytest.ExceptionInfo[UnprocessableEntityError]) -> dict[str, object]:
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_input"
    return body


def test_a_model_its_provider_does_not_list_is_refused_with_the_nearest_ones(letta: Letta, world: World) -> None:
    with pytest.raises(UnprocessableEntityError) as refused:
        letta.agents.create(name="typo", model="openai/gpt-4o-minii")
    body = _refusal(refused)
    assert "'openai/gpt-4o-minii' is not one this server's openai provider lists" in str(body["detail"])
    context = body["context"]
    assert isinstance(context, dict) and context["field"] == "model"
    assert context["close_matches"][0] == "openai/gpt-4o-mini"
    assert context["models"] == ["openai/gpt-4o-mini", "openai/gpt-4o"]  # its chat models, not the embedder
    with pytest.raises(UnprocessableEntityError) as refused:
        letta.agents.create(name="nothing-like-it", model="openai/gpt-nonexistent")
    assert "openai/gpt-4o-mini, openai/gpt-4o" in str(_refusal(refused)["detail"])
    # a local Ollama's list: a model that is not pulled is refused, its default tag is understood
    with pytest.raises(UnprocessableEntityError) as refused:
        letta.agents.create(name="nosuch", model="ollama/nosuch")
    assert _refusal(refused)["context"]["models"] == ["ollama/llama3.2:latest", "ollama/qwen2.5:7b"]  # type: ignore[index]
    assert letta.agents.create(name="tagless", model="ollama/llama3.2").llm_config.model == "llama3.2"
    assert letta.agents.create(name="listed", model=f"anthropic/{world.anthropic.models[0]}").id
    # nothing was created by the refusals
    assert {a.name for a in letta.agents.list()} == {"tagless", "listed"}


def test_an_update_to_an_unlisted_model_is_refused_and_changes_nothing(letta: Letta) -> None:
    agent = letta.agents.create(name="moving", model=f"vllm/{VLLM_MODEL}")
    with pytest.raises(UnprocessableEntityError) as refused:
        letta.agents.update(agent.id, model="vllm/meta-llama/Llama-3.1-8B-Instruc")
    assert _refusal(refused)["context"]["close_matches"] == [f"vllm/{VLLM_MODEL}"]  # type: ignore[index]
    assert letta.agents.retrieve(agent.id).llm_config.model == VLLM_MODEL
    assert letta.agents.update(agent.id, model="openai/gpt-4o").llm_config.model == "gpt-4o"


def test_a_provider_that_cannot_list_its_models_is_no_reason_to_refuse(letta: Letta) -> None:
    # LM Studio is configured but down: what it serves cannot be known, so the handle is taken as given
    assert letta.agents.create(name="lmstudio", model="lmstudio/qwen3-8b").llm_config.model == "qwen3-8b"
    # Bedrock's list is the operator's configuration, not Bedrock's answer: another model may well be callable
    assert letta.agents.create(name="bedrock", model="bedrock/us.amazon.nova-lite-v1:0").id
