"""Letta's LettaRequest: the body of POST /v1/agents/{agent_id}/messages (+ /stream, /async).

Each item of ``messages`` is a message (``type`` "message", the default) or a human's decision on
the tool calls a run paused for (``type`` "approval"). Unknown fields Letta clients send are
accepted and ignored; a bad item is a 422 that names its place (``messages.0.message.role``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    # imported where a body is parsed: the agents' schemas name these models, and a GET of an agent
    # (the API's usual cold start) imports neither the runs' API nor the agent step behind it
    from o.agent import runs as run_api
    from o.agent.engine import Engine


class Lenient(BaseModel):
    """Letta clients send fields O has no use for (``batch_item_id``, ``group_id``, ...)."""

    model_config = ConfigDict(extra="ignore")


class TextContent(Lenient):
    type: Literal["text"] = "text"
    text: str


def _text_only(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # one clear sentence instead of an error per member of the union and per part
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "text_content", "must be a string or a list of text content parts (only text is supported)"
        ) from None


Content = Annotated[str | list[TextContent], WrapValidator(_text_only)]


def text_of(content: str | list[TextContent]) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


class MessageInput(Lenient):
    """Letta's MessageCreate."""

    type: Literal["message"] | None = "message"
    role: Literal["user", "system", "assistant"] = "user"
    content: Content
    name: str | None = None
    otid: str | None = None
    sender_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _has_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and "content" not in data:
            raise PydanticCustomError("missing", "content is required")
        return data

    def to_input(self) -> run_api.InputMessage:
        # Letta folds caller-sent system text into the conversation; a stored 'system' row is a summary.
        from o.agent import runs as run_api

        role = "assistant" if self.role == "assistant" else "user"
        return run_api.InputMessage(role, text_of(self.content), self.name, self.otid, self.sender_id)


class ApprovalDecision(Lenient):
    """Letta's ApprovalReturn: the answer to one pending tool call."""

    type: Literal["approval"] = "approval"
    tool_call_id: str = Field(min_length=1)
    approve: StrictBool
    reason: str | None = None


class ApprovalInput(Lenient):
    """Letta's ApprovalCreate: ``approvals`` answer pending calls one by one; the older form, a
    bare ``approve``, answers every pending call at once."""

    type: Literal["approval"]
    approvals: list[ApprovalDecision] | None = None
    approve: StrictBool | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _decides(self) -> ApprovalInput:
        if not self.approvals and self.approve is None:
            raise PydanticCustomError("missing", "an approval needs 'approvals' or 'approve' (bool)")
        return self

    def decisions(self) -> list[run_api.Decision]:
        from o.agent import runs as run_api

        if self.approvals:
            return [run_api.Decision(a.approve, a.tool_call_id, a.reason) for a in self.approvals]
        return [run_api.Decision(bool(self.approve), None, self.reason)]


def _item_type(item: Any) -> str | None:
    kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
    if kind is None:
        return "message"
    return kind if isinstance(kind, str) else None


InputItem = Annotated[
    Annotated[MessageInput, Tag("message")] | Annotated[ApprovalInput, Tag("approval")],
    Discriminator(
        _item_type,
        custom_error_type="unsupported_type",
        custom_error_message="type is not supported; use 'message' or 'approval'",
    ),
]


class SendMessages(Lenient):
    """Letta's LettaRequest."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"messages": [{"role": "user", "content": "Hi, I am Ada. Remember that."}]}]}
    )

    messages: list[InputItem] | None = None
    # Letta's short form: one user message
    input: Content | None = None
    max_steps: int | None = Field(default=None, ge=1, le=1000)
    use_assistant_message: bool = True
    assistant_message_tool_name: str = "send_message"
    assistant_message_tool_kwarg: str = "message"
    include_return_message_types: list[str] | None = None
    stream_tokens: bool = False
    streaming: bool = False
    background: bool = False
    include_pings: bool = False

    @model_validator(mode="after")
    def _messages_or_approval(self) -> SendMessages:
        inputs, decisions = self.parsed()
        if inputs and decisions:
            raise PydanticCustomError("invalid_input", "send either new messages or an approval, not both")
        if not inputs and not decisions:
            raise PydanticCustomError("invalid_input", "send at least one message in 'messages' (or 'input')")
        return self

    def parsed(self) -> tuple[list[run_api.InputMessage], list[run_api.Decision]]:
        """The new messages (``input`` first) and the approval decisions: exactly one is non-empty."""
        from o.agent import runs as run_api

        items = self.messages or []
        inputs = [run_api.InputMessage("user", text_of(self.input))] if self.input is not None else []
        inputs += [item.to_input() for item in items if isinstance(item, MessageInput)]
        decisions = [d for item in items if isinstance(item, ApprovalInput) for d in item.decisions()]
        return inputs, decisions

    def run_request(self, engine: Engine) -> dict[str, Any]:
        """The options the run keeps (its messages are shaped by them, also when resumed later)."""
        return {
            "max_steps": self.max_steps or engine.settings.default_max_steps,
            "use_assistant_message": self.use_assistant_message,
            "assistant_message_tool_name": self.assistant_message_tool_name,
            "assistant_message_tool_kwarg": self.assistant_message_tool_kwarg,
            "include_return_message_types": self.include_return_message_types,
            "stream_tokens": self.stream_tokens,
        }


class CancelRequest(Lenient):
    run_ids: list[str] | None = None
