"""What a step reports while it works, for whoever follows the run live (the API's SSE stream).

The loop reports domain facts, not wire shapes: a message was stored, or a token delta arrived from
the provider. The API turns them into Letta's stream chunks (:mod:`o.api.stream`), so the domain
never depends on Letta's message types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from o.llm.types import TextDelta, ToolCallDelta


@dataclass(frozen=True)
class MessageStored:
    """A message of the run was stored (a reply, a tool call, a tool result)."""

    row: dict[str, Any]


@dataclass(frozen=True)
class TokenDelta:
    """A piece of the assistant message ``message_id`` as the provider streams it."""

    message_id: str
    step_id: str
    run_id: str
    started_at: datetime
    delta: TextDelta | ToolCallDelta


StepEvent = MessageStored | TokenDelta
