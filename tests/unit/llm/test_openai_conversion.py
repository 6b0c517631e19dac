from __future__ import annotations

from o.llm.config import LLMConfig
from o.llm.openai_compat import OpenAICompatClient, base_url_for, to_openai_message
from o.llm.types import ChatMessage, ChatRequest, ToolCall, ToolSpec
from tests.servers.openai_server import check_conversation

TOOL = ToolSpec("send_message", "Send", {"type": "object", "properties": {"message": {"type": "string"}}})


def test_messages_convert_to_chat_completions_format() -> None:
    messages = [
        ChatMessage.system("sys"),
        ChatMessage.user("hi", name="ana"),
        ChatMessage.assistant(None, [ToolCall("c1", "send_message", '{"message": "yo"}')]),
        ChatMessage.tool("c1", "sent"),
        ChatMessage.assistant("bye"),
    ]
    wire = [to_openai_message(m) for m in messages]
    assert wire == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi", "name": "ana"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "send_message", "arguments": '{"message": "yo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sent"},
        {"role": "assistant", "content": "bye"},
    ]
    assert check_conversation(wire) is None


def test_request_body_uses_max_completion_tokens_for_openai_and_max_tokens_elsewhere() -> None:
    request = ChatRequest([ChatMessage.user("u")], [TOOL], "send_message", temperature=0.1)
    openai_body = OpenAICompatClient(LLMConfig.from_handle("openai/gpt-4o-mini"), "k").request_body(request)
    assert openai_body["max_completion_tokens"] == 4096 and "max_tokens" not in openai_body
    assert openai_body["temperature"] == 0.1
    assert openai_body["tool_choice"] == {"type": "function", "function": {"name": "send_message"}}
    assert openai_body["parallel_tool_calls"] is False
    groq_body = OpenAICompatClient(LLMConfig.from_handle("groq/llama-3.3-70b"), "k").request_body(request)
    assert groq_body["max_tokens"] == 4096 and "max_completion_tokens" not in groq_body


def test_reasoning_models_get_effort_and_no_temperature() -> None:
    config = LLMConfig.from_handle("openai/o3-mini", reasoning_effort="high")
    body = OpenAICompatClient(config, "k").request_body(ChatRequest([ChatMessage.user("u")]))
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body and "tools" not in body


def test_ollama_endpoint_gets_v1_suffix() -> None:
    assert base_url_for("http://box:11434", "ollama") == "http://box:11434/v1"
    assert base_url_for(LLMConfig.from_handle("ollama/llama3").endpoint, "ollama") == "http://localhost:11434/v1"
    assert base_url_for("http://box:8000/v1/", "openai") == "http://box:8000/v1"


def test_participant_names_are_made_acceptable_to_openai() -> None:
    wire = to_openai_message(ChatMessage.user("hi", name="Ana María (admin)"))
    assert wire["name"] == "Ana_Mar_a__admin_"
    assert check_conversation([wire]) is None
    assert check_conversation([{"role": "user", "content": "x", "name": "has space"}]) is not None
