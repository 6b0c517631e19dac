"""Stored messages → Letta's message union (user_message, assistant_message, tool_call_message, ...).

One stored assistant message can carry reasoning text and several tool calls; Letta shows
each as its own item, with ``send_message`` calls shown as ``assistant_message``.

The models are the contract: the routes name them as ``response_model`` (so the OpenAPI document
shows the union), FastAPI validates against them where a route returns plain data, and the unit
tests validate every builder's output. Each stored role has a builder that gives its messages as
JSON-ready fields in the models' order; GET messages writes those as they are, as the other hot
paths do (o/api/responses.py): validating 50 models per page cost 8% of its throughput.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

ASSISTANT_TOOL = "send_message"
ASSISTANT_KWARG = "message"


# ISO 8601 as Python writes it ("+00:00"), as the API always has: kept as text so the JSON is written
# without a call back into Python per message (pydantic would write a datetime's UTC offset as "Z").
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class LettaMessageBase(BaseModel):
    """What every Letta message carries. Items derived from one stored message share its id, so
    cursors stay real message ids."""

    id: str
    date: Timestamp | None
    message_type: str
    otid: str | None = None
    sender_id: str | None = None
    step_id: str | None = None
    run_id: str | None = None
    name: str | None = None
    seq_id: int | None = None


class UserMessage(LettaMessageBase):
    message_type: Literal["user_message"] = "user_message"
    content: str


class SystemMessage(LettaMessageBase):
    message_type: Literal["system_message"] = "system_message"
    content: str


class AssistantMessage(LettaMessageBase):
    message_type: Literal["assistant_message"] = "assistant_message"
    content: str


class ReasoningMessage(LettaMessageBase):
    message_type: Literal["reasoning_message"] = "reasoning_message"
    reasoning: str
    source: Literal["reasoner_model", "non_reasoner_model"] = "reasoner_model"


class ToolCall(BaseModel):
    name: str | None
    arguments: str
    tool_call_id: str | None


class _CallsMessage(LettaMessageBase):
    tool_call: ToolCall
    tool_calls: list[ToolCall]


class ToolCallMessage(_CallsMessage):
    message_type: Literal["tool_call_message"] = "tool_call_message"


class ApprovalRequestMessage(_CallsMessage):
    """A tool call that waits for a human's decision."""

    message_type: Literal["approval_request_message"] = "approval_request_message"


class ToolReturnMessage(LettaMessageBase):
    message_type: Literal["tool_return_message"] = "tool_return_message"
    tool_return: str
    status: Literal["success", "error"]
    tool_call_id: str | None
    stdout: list[str] | None = None
    stderr: list[str] | None = None


class ApprovalResponseMessage(LettaMessageBase):
    message_type: Literal["approval_response_message"] = "approval_response_message"
    approve: bool | None
    approval_request_id: str | None
    reason: str | None


LettaMessage = Annotated[
    UserMessage
    | SystemMessage
    | AssistantMessage
    | ReasoningMessage
    | ToolCallMessage
    | ApprovalRequestMessage
    | ToolReturnMessage
    | ApprovalResponseMessage,
    Field(discriminator="message_type"),
]


# one Letta message as a builder gives it: the fields of one of LettaMessage's models, in order
Fields = dict[str, Any]


def _text(content: list[dict[str, Any]] | None) -> str:
    return "".join([part.get("text", "") for part in content or () if part.get("type") == "text"])


def _common(row: dict[str, Any], message_type: str) -> Fields:
    return {
        "id": row["id"],
        "date": created.isoformat() if (created := row.get("created_at")) else None,
        "message_type": message_type,
        "otid": row.get("otid"),
        "sender_id": row.get("sender_id"),
        "step_id": row.get("step_id"),
        "run_id": row.get("run_id"),
        "name": row.get("name"),
        "seq_id": row.get("seq"),
    }


def _user(row: dict[str, Any], use_assistant_message: bool) -> list[Fields]:
    return [{**_common(row, "user_message"), "content": _text(row.get("content"))}]


def _system(row: dict[str, Any], use_assistant_message: bool) -> list[Fields]:
    return [{**_common(row, "system_message"), "content": _text(row.get("content"))}]


def _tool(row: dict[str, Any], use_assistant_message: bool) -> list[Fields]:
    first = (row.get("tool_returns") or [{}])[0]
    status = first.get("status", "success")
    # send_message's return is noise once its call shows as an assistant_message; a failure is not
    if use_assistant_message and row.get("name") == ASSISTANT_TOOL and status != "error":
        return []
    return [
        {
            **_common(row, "tool_return_message"),
            "tool_return": first.get("func_response", _text(row.get("content"))),
            "status": status,
            "tool_call_id": row.get("tool_call_id"),
            "stdout": first.get("stdout"),
            "stderr": first.get("stderr"),
        }
    ]


def _approval(row: dict[str, Any], use_assistant_message: bool) -> list[Fields]:
    meta = row.get("metadata") or {}
    return [
        {
            **_common(row, "approval_response_message"),
            "approve": meta.get("approve"),
            "approval_request_id": meta.get("approval_request_id"),
            "reason": meta.get("reason"),
        }
    ]


def _assistant(row: dict[str, Any], use_assistant_message: bool) -> list[Fields]:
    reasoning = _text(row.get("content"))
    calls = row.get("tool_calls") or []
    if reasoning and not calls and use_assistant_message:
        # A reply without tool calls is the agent talking to the user (it ended the turn).
        return [{**_common(row, "assistant_message"), "content": reasoning}]
    out: list[Fields] = []
    if reasoning:
        out.append({**_common(row, "reasoning_message"), "reasoning": reasoning, "source": "reasoner_model"})
    pending = (row.get("metadata") or {}).get("requires_approval") or []
    out.extend(_call(row, call, pending, use_assistant_message) for call in calls)
    return out


def _call(row: dict[str, Any], call: dict[str, Any], pending: list[str], use_assistant_message: bool) -> Fields:
    fn = call.get("function", {})
    name, arguments = fn.get("name"), fn.get("arguments", "{}")
    if use_assistant_message and name == ASSISTANT_TOOL:
        return {**_common(row, "assistant_message"), "content": said(arguments)}
    tool_call = {"name": name, "arguments": arguments, "tool_call_id": call.get("id")}
    kind = "approval_request_message" if call.get("id") in pending else "tool_call_message"
    return {**_common(row, kind), "tool_call": tool_call, "tool_calls": [tool_call]}


def said(arguments: str) -> str:
    """What a ``send_message`` call says: its ``message`` argument, or the raw arguments when they
    are not a JSON object whose ``message`` is text."""
    try:
        message = json.loads(arguments).get(ASSISTANT_KWARG, "")
    except (ValueError, AttributeError):
        return arguments
    return message if isinstance(message, str) else arguments


_BUILDERS: dict[str, Callable[[dict[str, Any], bool], list[Fields]]] = {
    "user": _user,
    "system": _system,
    "tool": _tool,
    "approval": _approval,
    "assistant": _assistant,
}


def to_letta(row: dict[str, Any], *, use_assistant_message: bool = True) -> list[Fields]:
    # any other stored role reads as the agent's own message, as it always has
    build = _BUILDERS.get(row["role"], _assistant)
    return build(row, use_assistant_message)


def to_letta_list(rows: list[dict[str, Any]], *, use_assistant_message: bool = True) -> list[Fields]:
    return [m for row in rows for m in to_letta(row, use_assistant_message=use_assistant_message)]
