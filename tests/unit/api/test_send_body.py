"""Letta's LettaRequest as O reads it: message and approval items, and the 422 each bad body gets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from o.agent.runs import Decision, InputMessage
from o.api.schemas.send import ApprovalInput, MessageInput, SendMessages


def test_messages_and_input() -> None:
    body = SendMessages.model_validate(
        {
            "input": [{"type": "text", "text": "first"}],
            "messages": [
                {"role": "user", "content": "hi", "otid": "o-1", "batch_item_id": "ignored"},
                {"type": "message", "role": "system", "content": [{"type": "text", "text": "a"}, {"text": "b"}]},
                {"type": None, "role": "assistant", "content": "earlier reply", "name": "bot"},
            ],
            "unknown_option": True,
        }
    )
    assert [type(m) for m in body.messages or []] == [MessageInput] * 3
    inputs, decisions = body.parsed()
    assert decisions == []
    assert inputs == [
        InputMessage("user", "first"),
        InputMessage("user", "hi", otid="o-1"),
        InputMessage("user", "ab"),  # caller-sent system text joins the conversation as the user's
        InputMessage("assistant", "earlier reply", name="bot"),
    ]


def test_approvals() -> None:
    many = SendMessages.model_validate(
        {
            "messages": [
                {
                    "type": "approval",
                    "approval_request_id": "ignored",
                    "approvals": [
                        {"type": "approval", "tool_call_id": "c1", "approve": True},
                        {"tool_call_id": "c2", "approve": False, "reason": "no"},
                    ],
                }
            ]
        }
    )
    assert isinstance((many.messages or [])[0], ApprovalInput)
    assert many.parsed() == ([], [Decision(True, "c1"), Decision(False, "c2", "no")])
    every = SendMessages.model_validate({"messages": [{"type": "approval", "approve": False, "reason": "later"}]})
    assert every.parsed() == ([], [Decision(False, None, "later")])


def _error(body: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as raised:
        SendMessages.model_validate(body)
    [error] = raised.value.errors()
    return error["loc"], error["msg"]


@pytest.mark.parametrize(
    ("body", "loc", "needle"),
    [
        ({}, (), "at least one message"),
        ({"messages": []}, (), "at least one message"),
        ({"input": "x", "messages": [{"type": "approval", "approve": True}]}, (), "not both"),
        ({"messages": [{"role": "tool", "content": "x"}]}, ("messages", 0, "message", "role"), "'user'"),
        ({"messages": [{"role": "user"}]}, ("messages", 0, "message"), "content is required"),
        ({"messages": [{"content": 5}]}, ("messages", 0, "message", "content"), "text content"),
        (
            {"messages": [{"content": [{"type": "image", "url": "x"}]}]},
            ("messages", 0, "message", "content"),
            "only text is supported",
        ),
        ({"input": [{"type": "text"}]}, ("input",), "text content"),
        ({"messages": [{"type": "weird"}]}, ("messages", 0), "not supported"),
        ({"messages": [{"type": ["x"]}]}, ("messages", 0), "not supported"),
        ({"messages": [{"type": "approval"}]}, ("messages", 0, "approval"), "'approvals' or 'approve'"),
        ({"messages": [{"type": "approval", "approvals": []}]}, ("messages", 0, "approval"), "'approve'"),
        (
            {"messages": [{"type": "approval", "approvals": [{"tool_call_id": "c", "approve": "yes"}]}]},
            ("messages", 0, "approval", "approvals", 0, "approve"),
            "boolean",
        ),
        (
            {"messages": [{"type": "approval", "approvals": [{"tool_call_id": "", "approve": True}]}]},
            ("messages", 0, "approval", "approvals", 0, "tool_call_id"),
            "at least 1 character",
        ),
        ({"input": "x", "max_steps": 0}, ("max_steps",), "greater than or equal to 1"),
    ],
)
def test_a_bad_body_names_the_field(body: dict[str, Any], loc: tuple[str | int, ...], needle: str) -> None:
    where, message = _error(body)
    assert where == loc and needle in message, (where, message)
