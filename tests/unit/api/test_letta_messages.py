"""Stored rows → Letta messages: the JSON is byte for byte what the API wrote before the shapes
became models (letta_messages.json was recorded from the old dict builder) on every path that
writes it: pydantic-core (GET messages), jsonable_encoder + json.dumps (the SSE stream), and
FastAPI validating against the models (run messages, POST messages)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_core
import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from o.api.schemas.messages import (
    AssistantMessage,
    LettaMessage,
    ReasoningMessage,
    ToolCallMessage,
    said,
    to_letta,
    to_letta_list,
)
from o.api.schemas.runs import LettaResponse, letta_response, stop_reason_of, usage_of
from o.store.records import Run
from tests.unit.api.message_rows import ROWS

RECORDED = json.loads((Path(__file__).parent / "letta_messages.json").read_text())


@pytest.mark.parametrize("use_assistant_message", [True, False])
def test_json_is_unchanged(use_assistant_message: bool) -> None:
    recorded = RECORDED[f"use_assistant_message={use_assistant_message}"]
    items = to_letta_list(ROWS, use_assistant_message=use_assistant_message)
    assert pydantic_core.to_json(items).decode() == recorded["json_of"]
    assert [json.dumps(jsonable_encoder(i)) for i in items] == recorded["sse"]


@pytest.mark.parametrize("use_assistant_message", [True, False])
def test_every_builder_gives_a_letta_message(use_assistant_message: bool) -> None:
    """The models are the contract the OpenAPI document shows: each builder's fields validate as
    one of them and write back the same bytes."""
    adapter = TypeAdapter(list[LettaMessage])
    items = to_letta_list(ROWS, use_assistant_message=use_assistant_message)
    models = adapter.validate_python(items)
    assert adapter.dump_json(models) == pydantic_core.to_json(items)
    assert adapter.validate_json(adapter.dump_json(models)) == models
    assert [type(m).__name__.removesuffix("Message") for m in models] == [
        "".join(w.title() for w in i["message_type"].split("_")[:-1]) for i in items
    ]


def test_send_message_calls_read_as_the_assistant_speaking() -> None:
    adapter = TypeAdapter(list[LettaMessage])
    [_, call] = adapter.validate_python(to_letta(ROWS[13], use_assistant_message=False))
    assert isinstance(call, ToolCallMessage) and call.tool_call.name == "send_message"
    [reasoning, spoken] = adapter.validate_python(to_letta(ROWS[13]))
    assert isinstance(spoken, AssistantMessage) and spoken.content == "Hi ✓"
    assert isinstance(reasoning, ReasoningMessage) and reasoning.reasoning == "Let me think."


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ('{"message": "hi"}', "hi"),
        ('{"other": 1}', ""),
        ("not json", "not json"),
        ("[1, 2]", "[1, 2]"),
        # Letta's assistant_message holds text: a non-text message shows the raw arguments
        ('{"message": 5}', '{"message": 5}'),
    ],
)
def test_said(arguments: str, text: str) -> None:
    assert said(arguments) == text


def test_routes_that_validate_against_the_union_write_the_same_bytes() -> None:
    """GET /v1/runs/{id}/messages and POST messages return encoded values that FastAPI validates
    against ``response_model`` and writes again; the bytes must match the unvalidated dicts'."""
    recorded = json.loads(RECORDED["use_assistant_message=True"]["json_of"])
    app = FastAPI()

    @app.get("/typed", response_model=list[LettaMessage])
    def typed() -> Any:
        return jsonable_encoder(to_letta_list(ROWS))

    @app.get("/plain")
    def plain() -> Any:
        return recorded

    client = TestClient(app)
    assert client.get("/typed").content == client.get("/plain").content


def test_letta_response_writes_what_the_dicts_did() -> None:
    now = datetime.now(UTC)
    run = Run.of(
        {
            "id": "run-1",
            "organization_id": "org-1",
            "agent_id": "agent-1",
            "status": "completed",
            "next_action": "done",
            "stop_reason": None,
            "usage": {"completion_tokens": 3, "prompt_tokens": 4, "total_tokens": 7, "step_count": 1},
            "request": {"include_return_message_types": ["assistant_message", "tool_return_message"]},
            "metadata": {},
            "created_at": now,
            "updated_at": now,
            "completed_at": now,
            "iteration": 0,
            "task_token": None,
            "execution_arn": None,
            "cancel_requested": False,
            "error": None,
        }
    )
    wanted = run.request["include_return_message_types"]
    app = FastAPI()

    @app.get("/typed", response_model=LettaResponse)
    def typed() -> Any:
        return jsonable_encoder(letta_response(run, ROWS))

    @app.get("/plain")
    def plain() -> Any:
        recorded = json.loads(RECORDED["use_assistant_message=True"]["json_of"])
        messages = [m for m in recorded if m["message_type"] in wanted]
        return {"messages": messages, "stop_reason": stop_reason_of(run), "usage": usage_of(run)}

    client = TestClient(app)
    assert client.get("/typed").content == client.get("/plain").content
    assert client.get("/typed").json()["stop_reason"] == {"message_type": "stop_reason", "stop_reason": "end_turn"}
