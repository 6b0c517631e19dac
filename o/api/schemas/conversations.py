"""Letta's Conversation and the bodies of /v1/conversations (create, update, messages, compact, stream)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from o.api.schemas.agent_settings import ModelSettings, apply_model_settings
from o.api.schemas.common import Request, Timestamp
from o.api.schemas.model_configs import MAX_CONTEXT_WINDOW, Handle, llm_config_from_handle
from o.api.schemas.send import SendMessages


class ConversationFields(Request):
    """What create and update both set: the text about it and its model overrides."""

    summary: str | None = Field(default=None, max_length=100_000)
    description: str | None = Field(default=None, max_length=100_000)
    model: Handle | None = Field(default=None, description="a handle such as 'openai/gpt-4o-mini'")
    model_settings: ModelSettings | None = None
    context_window_limit: int | None = Field(default=None, ge=256, le=MAX_CONTEXT_WINDOW)


class ConversationCreate(ConversationFields):
    hidden: bool = False


class ConversationUpdate(ConversationFields):
    archived: bool | None = None
    last_message_at: Timestamp | None = None


def llm_overrides(agent_llm: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """What a conversation's ``model`` / ``model_settings`` / ``context_window_limit`` change in the
    agent's llm_config (a step applies them over it)."""
    limit = row.get("context_window_limit")
    llm = dict(agent_llm)
    if row.get("model"):
        llm = {**llm, **llm_config_from_handle(row["model"], limit or agent_llm.get("context_window"))}
    if limit:
        llm["context_window"] = limit
    if row.get("model_settings"):
        llm = apply_model_settings(llm, ModelSettings.model_validate(row["model_settings"]))
    return {k: v for k, v in llm.items() if agent_llm.get(k) != v}


class Conversation(BaseModel):
    """Letta's Conversation."""

    model_config = ConfigDict(extra="allow")

    id: str
    agent_id: str
    archived: bool
    archived_at: datetime | None = None
    context_window_limit: int | None = None
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    summary: str | None = None
    in_context_message_ids: list[str] | None = None
    last_message_at: datetime | None = None
    model: str | None = None
    model_settings: dict[str, Any] | None = None


def conversation_object(row: dict[str, Any], in_context_ids: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "agent_id": row["agent_id"],
        "archived": row["archived"],
        "archived_at": row["archived_at"],
        "context_window_limit": row["context_window_limit"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "description": row["description"],
        "summary": row["summary"],
        "in_context_message_ids": in_context_ids,
        "last_message_at": row["last_message_at"],
        "model": row["model"],
        "model_settings": row["model_settings"],
    }


class ConversationSend(SendMessages):
    """Letta's ConversationMessageRequest: a LettaRequest that streams unless told not to, with the
    agent of the ``default`` conversation."""

    agent_id: str | None = None
    streaming: bool = True


class ConversationStream(BaseModel):
    """Letta's body of POST /v1/conversations/{id}/stream: which run to follow, from where."""

    model_config = ConfigDict(extra="ignore")

    agent_id: str | None = None
    run_id: str | None = None
    otid: str | None = None
    starting_after: int = Field(default=0, ge=0)
    batch_size: int | None = None
    include_pings: bool | None = None
    poll_interval: float | None = None
