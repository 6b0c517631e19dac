"""Native reasoning: Anthropic signed thinking blocks, and OpenAI-compatible ``reasoning`` fields."""

from __future__ import annotations

import pytest

from o.llm.client import ClientOptions
from o.llm.keys import StaticKeySource
from o.llm.providers import client_for
from o.llm.types import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Completed,
    ReasoningDelta,
    TextDelta,
    ToolSpec,
)
from tests.servers.anthropic_server import AnthropicServer, sign
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, say

SEARCH = ToolSpec(
    "archival_memory_search",
    "Search archival memory.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
THOUGHT = "The user asks about tea; I should search my archival memory first."


def _turn(streaming: bool, client: object, request: ChatRequest) -> tuple[ChatResponse, list[object]]:
    if not streaming:
        return client.chat(request), []  # type: ignore[attr-defined]
    events = list(client.stream(request))  # type: ignore[attr-defined]
    assert isinstance(events[-1], Completed)
    return events[-1].response, events


@pytest.mark.parametrize("streaming", [False, True])
def test_anthropic_thinking_is_returned_signed_and_sent_back_with_tool_results(
    anthropic_server: AnthropicServer, llm_keys: StaticKeySource, llm_options: ClientOptions, streaming: bool
) -> None:
    config = anthropic_server.llm_config(enable_reasoner=True, max_reasoning_tokens=2048, max_tokens=1000)
    client = client_for(config, llm_keys, llm_options)
    anthropic_server.push(
        Reply(reasoning=THOUGHT, tool_calls=(ScriptedCall("archival_memory_search", {"query": "tea"}),), chunk_size=9),
        say("You like green tea."),
    )
    messages = [ChatMessage.system("sys"), ChatMessage.user("What tea do I like?")]
    first, events = _turn(streaming, client, ChatRequest(messages, [SEARCH]))
    assert first.reasoning == THOUGHT and first.reasoning_signature == sign(THOUGHT)
    assert first.content is None and first.tool_calls[0].name == "archival_memory_search"
    if streaming:
        pieces = [e.text for e in events if isinstance(e, ReasoningDelta)]
        assert len(pieces) > 3 and "".join(pieces) == THOUGHT
    sent = anthropic_server.requests[0]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] > 2048

    # The server rejects the continuation unless the signed thinking block leads the assistant turn.
    messages += [
        first.as_message(),
        ChatMessage.tool(first.tool_calls[0].id, "green tea", name="archival_memory_search"),
    ]
    second, _ = _turn(streaming, client, ChatRequest(messages, [SEARCH]))
    assert second.content == "You like green tea."
    resent = anthropic_server.requests[1]["messages"][1]["content"][0]
    assert resent == {"type": "thinking", "thinking": THOUGHT, "signature": sign(THOUGHT)}


def test_forced_tool_choice_turns_thinking_off_and_zero_budget_means_adaptive(
    anthropic_server: AnthropicServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    client = client_for(anthropic_server.llm_config(enable_reasoner=True), llm_keys, llm_options)
    anthropic_server.push(Reply(tool_calls=(ScriptedCall("archival_memory_search", {"query": "x"}),)), say("ok"))
    client.chat(ChatRequest([ChatMessage.user("q")], [SEARCH], tool_choice="archival_memory_search"))
    assert "thinking" not in anthropic_server.requests[0]
    client.chat(ChatRequest([ChatMessage.user("q")], [SEARCH]))
    assert anthropic_server.requests[1]["thinking"] == {"type": "adaptive"}


def test_tampered_thinking_is_rejected_by_the_server(
    anthropic_server: AnthropicServer, llm_keys: StaticKeySource, llm_options: ClientOptions
) -> None:
    from o.llm.client import LLMError

    client = client_for(anthropic_server.llm_config(), llm_keys, llm_options)
    anthropic_server.push(say("unused"))
    forged = ChatMessage.assistant("hi")
    forged.reasoning, forged.reasoning_signature = "edited thought", sign("original thought")
    with pytest.raises(LLMError) as info:
        client.chat(ChatRequest([ChatMessage.user("a"), forged, ChatMessage.user("b")]))
    assert (info.value.status, info.value.message) == (400, "anthropic returned HTTP 400 (invalid_request_error)")
    assert "Invalid `signature` in `thinking` block" in (info.value.upstream_message or "")


@pytest.mark.parametrize("streaming", [False, True])
def test_openai_compatible_reasoning_field_is_kept_apart_from_content(
    openai_server: OpenAIServer, llm_options: ClientOptions, streaming: bool
) -> None:
    config = openai_server.llm_config("qwen3-32b", "groq")
    client = client_for(config, StaticKeySource({"groq": "gsk"}), llm_options)
    openai_server.push(Reply(reasoning="Let me think this through.", text="Answer: 4", chunk_size=6))
    response, events = _turn(streaming, client, ChatRequest([ChatMessage.user("2+2?")]))
    assert (response.reasoning, response.content) == ("Let me think this through.", "Answer: 4")
    assert response.reasoning_signature is None
    if streaming:
        thoughts = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
        text = "".join(e.text for e in events if isinstance(e, TextDelta) and not isinstance(e, ReasoningDelta))
        assert (thoughts, text) == ("Let me think this through.", "Answer: 4")
