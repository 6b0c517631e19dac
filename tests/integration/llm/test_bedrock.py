"""The Bedrock adapter (o/aws/bedrock.py): the real boto3 client against the local Bedrock Runtime server,
Converse for chat and ConverseStream (AWS event-stream encoding) for streaming, tool calls included,
wired as the composition root wires it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from o import runtime
from o.config import settings_from
from o.errors import InvalidInput
from o.llm.client import ClientOptions, LLMClient, LLMError, RetryPolicy
from o.llm.config import LLMConfig
from o.llm.keys import NoKeys
from o.llm.providers import client_for
from o.llm.types import ChatMessage, ChatRequest, Completed, ReasoningDelta, TextDelta, ToolCallDelta, ToolSpec
from o.net.outbound import OutboundPolicy
from tests.servers.bedrock_server import BedrockServer
from tests.servers.script import Reply, ScriptedCall, call, fail, say

MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0"
SEND = ToolSpec(
    "send_message",
    "Sends a message to the human user.",
    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)


@pytest.fixture
def bedrock() -> Iterator[BedrockServer]:
    with BedrockServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the function's role provides on AWS; the server checks that requests are SigV4-signed
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _client(server: BedrockServer, model: str = MODEL) -> LLMClient:
    settings = settings_from(
        {
            "O_LLM_BEDROCK_REGION": "us-east-1",
            "O_LLM_BEDROCK_ENDPOINT_URL": server.endpoint_url,
            "O_LLM_MAX_RETRIES": "2",
        }
    )
    options = runtime.llm_options(settings, OutboundPolicy(allow_loopback=True))
    options = replace(options, retry=RetryPolicy(2, 0.001, 0.005))
    return client_for(LLMConfig.from_handle(f"bedrock/{model}"), NoKeys(), options)


def _conversation() -> list[ChatMessage]:
    return [ChatMessage.system("You are O."), ChatMessage.user("Hi, I'm Ana.")]


def test_converse_with_tool_calls_round_trips(bedrock: BedrockServer) -> None:
    client = _client(bedrock)
    bedrock.push(call("send_message", _id="tu_1", _text="Greeting.", message="Hello Ana"), say("Done."))
    first = client.chat(ChatRequest(_conversation(), tools=[SEND]))
    assert first.finish_reason == "tool_calls" and first.content == "Greeting."
    assert [(c.id, c.name, c.parsed_arguments()) for c in first.tool_calls] == [
        ("tu_1", "send_message", {"message": "Hello Ana"})
    ]
    assert first.usage.total_tokens > 0 and first.id
    sent = bedrock.requests[-1]
    assert sent["modelId"] == MODEL and bedrock.paths[-1].endswith("/converse")
    assert sent["system"] == [{"text": "You are O."}]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == SEND.parameters
    assert sent["toolConfig"]["toolChoice"] == {"auto": {}}
    # the tool's result goes back as a toolResult block answering the toolUse (the server checks it)
    history = [*_conversation(), first.as_message(), ChatMessage.tool("tu_1", "sent", name="send_message")]
    second = client.chat(ChatRequest(history, tools=[SEND]))
    assert second.content == "Done." and second.finish_reason == "stop"
    turns = bedrock.requests[-1]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[2]["content"][0]["toolResult"] == {
        "toolUseId": "tu_1",
        "content": [{"text": "sent"}],
        "status": "success",
    }


def test_converse_stream_decodes_the_event_stream(bedrock: BedrockServer) -> None:
    client = _client(bedrock, "us.anthropic.claude-3-7-sonnet-20250219-v1:0")
    bedrock.push(
        Reply(
            text="Let me answer.",
            reasoning="She said hi.",
            tool_calls=(ScriptedCall("send_message", {"message": "Hello Ana, welcome"}, "tu_9"),),
            chunk_size=5,
        )
    )
    events = list(client.stream(ChatRequest(_conversation(), tools=[SEND], tool_choice="send_message")))
    assert bedrock.paths[-1].endswith("/converse-stream")
    assert bedrock.requests[-1]["toolConfig"]["toolChoice"] == {"tool": {"name": "send_message"}}
    texts = [e.text for e in events if type(e) is TextDelta]
    assert "".join(texts) == "Let me answer." and len(texts) > 1
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "She said hi."
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert fragments[0].id == "tu_9" and fragments[0].name == "send_message" and len(fragments) > 2
    done = events[-1]
    assert isinstance(done, Completed)
    response = done.response
    assert response.finish_reason == "tool_calls" and response.reasoning_signature == "sig-1"
    assert json.loads(response.tool_calls[0].arguments) == {"message": "Hello Ana, welcome"}
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


def test_throttling_is_retried_and_validation_errors_are_not(bedrock: BedrockServer) -> None:
    client = _client(bedrock)
    bedrock.push(fail(429, "Too many requests"), say("after the throttle"))
    assert client.chat(ChatRequest(_conversation())).content == "after the throttle"
    assert len(bedrock.requests) == 2
    bedrock.push(fail(400, "Input is too long for requested model."))
    with pytest.raises(LLMError) as caught:
        client.chat(ChatRequest(_conversation()))
    error = caught.value
    assert error.status == 400 and not error.retryable and error.context_overflow
    assert "ValidationException" in str(error) and "too long" not in str(error)  # no upstream text
    assert len(bedrock.requests) == 3


def test_a_stream_that_fails_midway_is_a_retryable_error(bedrock: BedrockServer) -> None:
    client = _client(bedrock)
    bedrock.push(Reply(text="a long answer that breaks", chunk_size=3, cut_after_events=3))
    with pytest.raises(LLMError) as caught:
        list(client.stream(ChatRequest(_conversation())))
    assert caught.value.retryable and caught.value.status == 500


def test_bedrock_goes_only_to_the_operator_endpoint(bedrock: BedrockServer) -> None:
    # a tenant naming another endpoint is refused even where tenants may name endpoints: the request
    # would be signed with the operator's AWS credentials
    settings = settings_from(
        {
            "O_LLM_BEDROCK_REGION": "us-east-1",
            "O_LLM_BEDROCK_ENDPOINT_URL": bedrock.endpoint_url,
            "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.2",
        }
    )
    options = runtime.llm_options(settings, OutboundPolicy(allow_loopback=True))
    config = LLMConfig.from_handle(f"bedrock/{MODEL}", model_endpoint="http://127.0.0.2:9/")
    with pytest.raises(InvalidInput, match="not an endpoint this server calls for bedrock"):
        client_for(config, NoKeys(), options)
    # and a server without Bedrock says how to turn it on
    with pytest.raises(InvalidInput, match="O_LLM_BEDROCK_REGION"):
        client_for(LLMConfig.from_handle(f"bedrock/{MODEL}"), NoKeys(), ClientOptions())
