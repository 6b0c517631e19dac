from __future__ import annotations

from o.llm import tokens
from o.llm.types import ChatMessage, ToolCall, ToolSpec


def test_counts_match_o200k_reference_values() -> None:
    # Reference counts from tiktoken's published o200k_base encoding.
    assert tokens.count_text("hello world") == 2
    assert tokens.count_text("") == 0
    assert tokens.count_texts(["hello world", "hello world hello world"]) == [2, 4]
    # Special-token text is plain text, not a control token (it must never raise).
    assert tokens.count_text("<|endoftext|>") > 1


def test_encoding_round_trips_unicode() -> None:
    enc = tokens.encoding()
    text = "Grüße, 世界! 🎉 naïve café"
    assert enc.decode(enc.encode_ordinary(text)) == text


def test_count_messages_adds_framing_tool_calls_and_tools() -> None:
    user = ChatMessage.user("What is the capital of France?")
    base = tokens.count_messages([user])
    assert base == tokens.REPLY_PRIMING + tokens.TOKENS_PER_MESSAGE + tokens.count_text(user.content or "")
    call = ChatMessage.assistant(None, [ToolCall("call_1", "send_message", '{"message": "Paris"}')])
    with_call = tokens.count_messages([user, call])
    assert with_call > base + tokens.TOKENS_PER_TOOL_CALL
    tool = ToolSpec("send_message", "Sends a message to the human user.", {"type": "object", "properties": {}})
    assert tokens.count_messages([user], [tool]) > base + tokens.TOKENS_FOR_TOOLS


def test_other_providers_get_a_conservative_margin() -> None:
    messages = [ChatMessage.user("word " * 200)]
    openai = tokens.count_messages(messages)
    assert tokens.count_messages(messages, provider="anthropic") >= openai * 1.15
    assert tokens.count_messages(messages, provider="groq") > openai
    assert tokens.count_messages(messages, provider="openai", model="gpt-4-turbo") > openai
    assert tokens.count_messages(messages, provider="openai", model="gpt-4o") == openai
