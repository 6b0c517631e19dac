"""The real openai and anthropic SDKs against the local wire-protocol servers."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest

from o.llm.client import ClientOptions, LLMClient, LLMError, RetryPolicy
from o.llm.config import LLMConfig
from o.llm.keys import StaticKeySource
from o.llm.providers import client_for
from o.llm.types import ChatMessage, ChatRequest, Completed, TextDelta, ToolCallDelta, ToolSpec
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.base import ScriptedServer
from tests.servers.fixtures import operator_at
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, call, calls, fail, say

SEND = ToolSpec(
    "send_message",
    "Sends a message to the human user.",
    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)
APPEND = ToolSpec(
    "core_memory_append",
    "Append to a memory block.",
    {
        "type": "object",
        "properties": {"label": {"type": "string"}, "content": {"type": "string"}},
        "required": ["label", "content"],
    },
)


@pytest.fixture(params=["openai", "anthropic"])
def server(request: pytest.FixtureRequest) -> ScriptedServer:
    return request.getfixturevalue(f"{request.param}_server")


def _client(server: ScriptedServer, keys: StaticKeySource, options: ClientOptions, **overrides: Any) -> LLMClient:
    assert isinstance(server, OpenAIServer | AnthropicServer)
    return client_for(server.llm_config(**overrides), keys, options)


def _conversation() -> list[ChatMessage]:
    return [ChatMessage.system("You are O. Persona: helpful."), ChatMessage.user("Hi, I'm Ana and I love tea.")]


def _prompt_text(server: ScriptedServer, body: dict[str, Any]) -> str:
    """Everything the model was shown, flattened, to assert on what was sent."""
    return json.dumps([body.get("system"), body["messages"]])


def test_chat_with_tool_calls_round_trips(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    server.push(
        calls(
            ScriptedCall("core_memory_append", {"label": "human", "content": "Name: Ana. Loves tea."}),
            ScriptedCall("send_message", {"message": "Nice to meet you, Ana!"}),
            text="Saving that.",
        ),
        Reply(text="All done.", usage=(321, 4)),
    )
    messages = _conversation()
    first = client.chat(ChatRequest(messages, [SEND, APPEND]))
    assert first.finish_reason == "tool_calls"
    assert first.content == "Saving that."
    assert [c.name for c in first.tool_calls] == ["core_memory_append", "send_message"]
    assert first.tool_calls[0].parsed_arguments() == {"label": "human", "content": "Name: Ana. Loves tea."}
    assert (
        first.usage.prompt_tokens > 0
        and first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    )
    assert first.latency_ms > 0

    messages += [first.as_message()] + [ChatMessage.tool(c.id, "OK", name=c.name) for c in first.tool_calls]
    second = client.chat(ChatRequest(messages, [SEND, APPEND]))
    assert (second.content, second.tool_calls, second.finish_reason) == ("All done.", [], "stop")
    assert (second.usage.prompt_tokens, second.usage.completion_tokens, second.usage.total_tokens) == (321, 4, 325)

    # The second prompt carried the system prompt, both tool calls and both results (validated by the server).
    sent = server.requests[1]
    prompt = _prompt_text(server, sent)
    assert "Persona: helpful." in prompt and "Loves tea." in prompt
    assert [t.get("name") or t.get("function", {}).get("name") for t in sent["tools"]] == [
        "send_message",
        "core_memory_append",
    ]
    assert sent["model"] == client.model


def test_streaming_text_deltas_and_usage(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    text = "Streaming tokens arrive one small piece at a time."
    server.push(Reply(text=text, chunk_size=5, usage=(40, 11)))
    events = list(client.stream(ChatRequest(_conversation())))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == len(range(0, len(text), 5))
    assert "".join(deltas) == text
    assert isinstance(events[-1], Completed)
    assert sum(isinstance(e, Completed) for e in events) == 1
    response = events[-1].response
    assert (response.content, response.finish_reason) == (text, "stop")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (40, 11)
    if isinstance(server, OpenAIServer):
        assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_streaming_tool_call_deltas_are_assembled(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    long_message = "x" * 50 + " — ünïcödé"
    server.push(
        Reply(
            text="Let me reply.",
            tool_calls=(
                ScriptedCall("send_message", {"message": long_message}),
                ScriptedCall("core_memory_append", {"label": "human", "content": "c"}),
            ),
            chunk_size=4,
        )
    )
    events = list(client.stream(ChatRequest(_conversation(), [SEND, APPEND])))
    tool_deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {d.index for d in tool_deltas} == {0, 1}
    firsts = [d for d in tool_deltas if d.id is not None]
    assert [(d.index, d.name) for d in firsts] == [(0, "send_message"), (1, "core_memory_append")]
    assert len([d for d in tool_deltas if d.index == 0 and d.arguments_delta]) > 5
    rebuilt = "".join(d.arguments_delta for d in tool_deltas if d.index == 0)
    response = events[-1].response  # type: ignore[union-attr]
    assert response.finish_reason == "tool_calls"
    assert response.content == "Let me reply."
    assert rebuilt == response.tool_calls[0].arguments
    assert response.tool_calls[0].parsed_arguments() == {"message": long_message}
    assert response.tool_calls[1].parsed_arguments() == {"label": "human", "content": "c"}
    assert response.tool_calls[0].id == firsts[0].id


def test_rate_limit_then_success_is_retried(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    server.push(fail(429, "slow down"), say("made it"))
    assert client.chat(ChatRequest(_conversation())).content == "made it"
    assert len(server.requests) == 2
    server.push(fail(503), Reply(text="streamed anyway"))
    events = list(client.stream(ChatRequest(_conversation())))
    assert events[-1].response.content == "streamed anyway"  # type: ignore[union-attr]
    assert len(server.requests) == 4


def test_retry_after_header_is_followed(
    openai_server: OpenAIServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    options = replace(llm_options, timeout_s=5, retry=RetryPolicy(max_retries=1, base_delay_s=0.0, max_delay_s=0.0))
    client = client_for(openai_server.llm_config(), llm_keys, options)
    openai_server.push(fail(429, retry_after=0.3), say("ok"))
    started = time.perf_counter()
    assert client.chat(ChatRequest(_conversation())).content == "ok"
    assert time.perf_counter() - started >= 0.3


def test_server_errors_exhaust_retries_into_llm_error(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    server.push(fail(500, "kaput"), fail(500, "kaput"), fail(500, "kaput"), say("never reached"))
    with pytest.raises(LLMError) as info:
        client.chat(ChatRequest(_conversation()))
    error = info.value
    assert (error.status, error.retryable, error.attempts) == (500, True, 3)
    # the provider, the status and its error type; what it said is for the operator's log only
    assert error.message.startswith(f"{client.provider} returned HTTP 500 (") and error.provider == client.provider
    assert "kaput" not in error.message and "kaput" in (error.upstream_message or "")
    assert server.script.pending == 1


def test_client_errors_are_not_retried(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    server.push(fail(400, "bad request"), say("unused"))
    with pytest.raises(LLMError) as info:
        client.chat(ChatRequest(_conversation()))
    assert (info.value.status, info.value.retryable, info.value.attempts) == (400, False, 1)
    assert len(server.requests) == 1


def test_timeout_surfaces_as_retryable_llm_error(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    retry = RetryPolicy(max_retries=1, base_delay_s=0.001)
    options = replace(llm_options, timeout_s=0.2, connect_timeout_s=0.2, retry=retry)
    client = _client(server, llm_keys, options)
    server.push(Reply(text="late", delay_s=1.0), Reply(text="late", delay_s=1.0))
    started = time.perf_counter()
    with pytest.raises(LLMError, match="timed out") as info:
        client.chat(ChatRequest(_conversation()))
    assert info.value.retryable and info.value.attempts == 2
    assert time.perf_counter() - started < 0.9


def test_stream_cut_midway_raises_retryable_error(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    server.push(Reply(text="this reply will be cut off halfway through", chunk_size=3, cut_after_events=5))
    seen: list[object] = []
    with pytest.raises(LLMError) as info:
        for event in client.stream(ChatRequest(_conversation())):
            seen.append(event)
    assert info.value.retryable
    assert any(isinstance(e, TextDelta) for e in seen)
    assert not any(isinstance(e, Completed) for e in seen)


def test_a_responder_reacts_to_the_prompt(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    """A scripted agent: answers from what it was sent, over several turns of one conversation."""

    def echo(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]
        content = last["content"]
        text = content if isinstance(content, str) else " ".join(b["text"] for b in content if b["type"] == "text")
        return call("send_message", message=f"you said: {text}")

    server.script.default = echo
    client = _client(server, llm_keys, llm_options)
    messages = [ChatMessage.system("sys")]
    for word in ("alpha", "beta", "gamma"):
        messages.append(ChatMessage.user(word))
        response = client.chat(ChatRequest(messages, [SEND], tool_choice="required"))
        assert response.tool_calls[0].parsed_arguments() == {"message": f"you said: {word}"}
        messages += [response.as_message(), ChatMessage.tool(response.tool_calls[0].id, "sent")]
    assert len(server.requests) == 3
    assert len(server.requests[-1]["messages"]) >= 5


def test_unscripted_call_fails_loudly(
    openai_server: OpenAIServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = client_for(openai_server.llm_config(), llm_keys, replace(llm_options, retry=RetryPolicy(max_retries=0)))
    with pytest.raises(LLMError, match="script_exhausted"):
        client.chat(ChatRequest(_conversation()))


def test_malformed_conversation_is_rejected_like_the_real_api(
    openai_server: OpenAIServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = client_for(openai_server.llm_config(), llm_keys, llm_options)
    openai_server.push(say("unused"))
    orphan = [ChatMessage.user("hi"), ChatMessage.tool("nope", "result")]
    with pytest.raises(LLMError) as info:
        client.chat(ChatRequest(orphan))
    assert info.value.status == 400 and not info.value.retryable
    assert "role 'tool' must be a response" in (info.value.upstream_message or "")


def test_groq_and_ollama_use_the_openai_compatible_client(
    openai_server: OpenAIServer, llm_options: ClientOptions
) -> None:
    # the server is the operator's Groq and Ollama endpoint, so the operator's Groq key goes to it
    llm_options = operator_at(llm_options, groq=openai_server.base_url, ollama=openai_server.base_url)
    keys = StaticKeySource({"groq": "gsk-1"})
    groq = client_for(openai_server.llm_config("llama-3.3-70b-versatile", "groq", max_tokens=99), keys, llm_options)
    ollama = client_for(openai_server.llm_config("llama3.2", "ollama"), StaticKeySource({}), llm_options)
    openai_server.push(say("from groq"), say("from ollama"))
    assert groq.chat(ChatRequest([ChatMessage.user("q")])).content == "from groq"
    assert ollama.chat(ChatRequest([ChatMessage.user("q")])).content == "from ollama"
    assert openai_server.requests[0]["max_tokens"] == 99
    assert openai_server.script.headers[0]["authorization"] == "Bearer gsk-1"
    # Ollama needs no key; the SDK still sends a placeholder.
    assert openai_server.script.headers[1]["authorization"] == "Bearer ollama"


def test_missing_key_names_the_variable(openai_server: OpenAIServer, llm_options: ClientOptions) -> None:
    # OpenAI's own API needs the operator's key (refused before any request)
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        client_for(LLMConfig.from_handle("openai/gpt-4o-mini"), StaticKeySource({}), llm_options)
    # an operator's own OpenAI-compatible server (OPENAI_BASE_URL) does not: a placeholder goes instead
    openai_server.push(say("keyless"))
    options = operator_at(llm_options, openai=openai_server.base_url)
    client = client_for(openai_server.llm_config(), StaticKeySource({}), options)
    assert client.chat(ChatRequest([ChatMessage.user("hi")])).content == "keyless"
    assert openai_server.script.headers[-1]["authorization"] == "Bearer no-key"


def test_clients_are_reused_per_config(
    openai_server: OpenAIServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    first = client_for(openai_server.llm_config(), llm_keys, llm_options)
    assert client_for(openai_server.llm_config(), llm_keys, llm_options) is first
    assert client_for(openai_server.llm_config(temperature=0.1), llm_keys, llm_options) is not first


def test_context_overflow_is_flagged_for_the_step_loop(
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
    llm_keys: StaticKeySource,
    llm_options: ClientOptions,
) -> None:
    openai_server.push(
        fail(400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded")
    )
    anthropic_server.push(fail(400, "prompt is too long: 210000 tokens > 200000 maximum"))
    for server in (openai_server, anthropic_server):
        with pytest.raises(LLMError) as info:
            client_for(server.llm_config(), llm_keys, llm_options).chat(ChatRequest(_conversation()))
        assert info.value.context_overflow and not info.value.retryable and info.value.attempts == 1
    anthropic_server.push(fail(400, "messages: roles must alternate"))
    with pytest.raises(LLMError) as other:
        client_for(anthropic_server.llm_config(), llm_keys, llm_options).chat(ChatRequest(_conversation()))
    assert not other.value.context_overflow


def test_abandoning_a_stream_releases_the_connection(
    server: ScriptedServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = _client(server, llm_keys, llm_options)
    server.push(Reply(text="a long reply " * 50, chunk_size=2), say("next"))
    stream = client.stream(ChatRequest(_conversation()))
    assert isinstance(next(stream), TextDelta | ToolCallDelta)
    stream.close()  # a cancelled run stops reading
    assert client.chat(ChatRequest(_conversation())).content == "next"
