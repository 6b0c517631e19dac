from __future__ import annotations

from o.llm.anthropic_native import (
    CONVERSATION_START,
    AnthropicClient,
    thinking_for,
    to_anthropic,
    to_anthropic_tool_choice,
)
from o.llm.config import LLMConfig
from o.llm.types import ChatMessage, ChatRequest, ToolCall, ToolSpec
from tests.servers.anthropic_server import check_request


def _valid(system: str | None, turns: list[dict[str, object]]) -> None:
    body: dict[str, object] = {"model": "m", "max_tokens": 10, "messages": turns}
    if system:
        body["system"] = system
    assert check_request(body) is None, check_request(body)


def test_system_prompt_is_split_out_and_joined() -> None:
    system, turns = to_anthropic(
        [ChatMessage.system("You are O."), ChatMessage.system("Memory: x"), ChatMessage.user("hi")]
    )
    assert system == "You are O.\n\nMemory: x"
    assert turns == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_tool_use_and_tool_results_become_blocks_in_alternating_turns() -> None:
    calls = [
        ToolCall("t1", "core_memory_append", '{"label": "human", "content": "likes tea"}'),
        ToolCall("t2", "send_message", '{"message": "ok"}'),
    ]
    system, turns = to_anthropic(
        [
            ChatMessage.system("sys"),
            ChatMessage.user("remember I like tea"),
            ChatMessage.assistant("thinking about it", calls),
            ChatMessage.tool("t1", "OK", name="core_memory_append"),
            ChatMessage.tool("t2", "boom", name="send_message", is_error=True),
        ]
    )
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "text", "text": "thinking about it"},
        {
            "type": "tool_use",
            "id": "t1",
            "name": "core_memory_append",
            "input": {"label": "human", "content": "likes tea"},
        },
        {"type": "tool_use", "id": "t2", "name": "send_message", "input": {"message": "ok"}},
    ]
    # Both results merged into one user turn, in order.
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "OK"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True},
    ]
    _valid(system, turns)


def test_consecutive_same_role_messages_merge_and_tool_results_come_first() -> None:
    _, turns = to_anthropic(
        [
            ChatMessage.user("one"),
            ChatMessage.user("two"),
            ChatMessage.assistant(None, [ToolCall("a", "f", "{}")]),
            ChatMessage.user("interjection"),
            ChatMessage.tool("a", "result"),
            ChatMessage.assistant("done"),
            ChatMessage.assistant("and more"),
        ]
    )
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert [b["text"] for b in turns[0]["content"]] == ["one", "two"]
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "text"]
    assert [b["text"] for b in turns[3]["content"]] == ["done", "and more"]
    _valid(None, turns)


def test_conversation_starting_with_assistant_gets_a_user_opening() -> None:
    system, turns = to_anthropic([ChatMessage.system("s"), ChatMessage.assistant("Hello! I'm O.")])
    assert turns[0] == {"role": "user", "content": [{"type": "text", "text": CONVERSATION_START}]}
    assert turns[1]["role"] == "assistant"
    _valid(system, turns)


def test_empty_conversation_still_has_a_user_turn() -> None:
    system, turns = to_anthropic([ChatMessage.system("only a system prompt")])
    assert system == "only a system prompt"
    _valid(system, turns)


def test_later_system_messages_and_orphan_tool_results_become_user_text() -> None:
    # After summarisation the assistant turn holding tool_use "gone" may have been evicted.
    system, turns = to_anthropic(
        [
            ChatMessage.system("sys"),
            ChatMessage.tool("gone", "old result", name="archival_memory_search"),
            ChatMessage.system("[summary] earlier the user said hi"),
            ChatMessage.assistant("ok"),
        ]
    )
    assert turns[0]["content"] == [
        {"type": "text", "text": "[archival_memory_search result] old result"},
        {"type": "text", "text": "[summary] earlier the user said hi"},
    ]
    _valid(system, turns)


def test_empty_and_whitespace_text_is_dropped_and_bad_json_arguments_are_kept_as_an_object() -> None:
    _, turns = to_anthropic(
        [
            ChatMessage.user("hi"),
            ChatMessage.assistant("  ", [ToolCall("x", "f", '{"a": ')]),
            ChatMessage.tool("x", ""),
            ChatMessage.user(""),
        ]
    )
    assert turns[1]["content"] == [{"type": "tool_use", "id": "x", "name": "f", "input": {"raw_arguments": '{"a": '}}]
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": "x"}]
    _valid(None, turns)


def test_tool_choice_mapping() -> None:
    assert to_anthropic_tool_choice("auto") == {"type": "auto"}
    assert to_anthropic_tool_choice("required") == {"type": "any"}
    assert to_anthropic_tool_choice("none") == {"type": "none"}
    assert to_anthropic_tool_choice("send_message") == {"type": "tool", "name": "send_message"}


def test_request_body_defaults_from_config_and_endpoint_without_v1() -> None:
    config = LLMConfig.model_validate(
        {"handle": "anthropic/claude-haiku-4-5", "model_endpoint": "https://api.anthropic.com/v1", "max_tokens": 512}
    )
    client = AnthropicClient(config, "key")
    assert str(client._sdk.base_url).rstrip("/") == "https://api.anthropic.com"
    tool = ToolSpec("send_message", "Send a message", {"type": "object", "properties": {}})
    body = client.request_body(ChatRequest([ChatMessage.system("s"), ChatMessage.user("u")], [tool], "required"))
    assert body["max_tokens"] == 512
    assert body["system"] == "s"
    assert body["tools"] == [{"name": "send_message", "description": "Send a message", "input_schema": tool.parameters}]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    no_tools = client.request_body(ChatRequest([ChatMessage.user("u")], max_tokens=7))
    assert "tools" not in no_tools and "tool_choice" not in no_tools
    assert no_tools["max_tokens"] == 7


def test_signed_reasoning_leads_the_assistant_turn_and_unsigned_is_not_resent() -> None:
    signed = ChatMessage.assistant("answer", [ToolCall("t", "f", "{}")])
    signed.reasoning, signed.reasoning_signature = "because", "sig-1"
    unsigned = ChatMessage.assistant("plain")
    unsigned.reasoning = "hidden thoughts from another provider"
    _, turns = to_anthropic([ChatMessage.user("q"), signed, ChatMessage.tool("t", "r"), unsigned])
    assert turns[1]["content"][0] == {"type": "thinking", "thinking": "because", "signature": "sig-1"}
    assert turns[3]["content"] == [{"type": "text", "text": "plain"}]


def test_reasoner_budget_raises_max_tokens_above_it() -> None:
    config = LLMConfig.from_handle("anthropic/claude-sonnet-4-5", enable_reasoner=True, max_reasoning_tokens=4000)
    body = AnthropicClient(config, "k").request_body(ChatRequest([ChatMessage.user("u")], max_tokens=500))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    assert body["max_tokens"] >= 4000 + 1024


def test_thinking_needs_the_reasoner_and_yields_to_a_forced_tool() -> None:
    reasoner = LLMConfig.from_handle("anthropic/claude-sonnet-4-5", enable_reasoner=True, max_reasoning_tokens=2048)
    assert thinking_for(reasoner, "auto", 8000) == ({"type": "enabled", "budget_tokens": 2048}, 8000)
    assert thinking_for(reasoner, "none", 100) == ({"type": "enabled", "budget_tokens": 2048}, 2048 + 1024)
    assert thinking_for(reasoner, "required", 100) == (None, 100)
    assert thinking_for(reasoner, "send_message", 100) == (None, 100)
    plain = LLMConfig.from_handle("anthropic/claude-sonnet-4-5", max_reasoning_tokens=2048)
    assert thinking_for(plain, "auto", 100) == (None, 100)


def test_a_budget_below_the_api_minimum_lets_the_model_decide() -> None:
    config = LLMConfig.from_handle("anthropic/claude-sonnet-4-5", enable_reasoner=True, max_reasoning_tokens=500)
    assert thinking_for(config, "auto", 100) == ({"type": "adaptive"}, 100)
