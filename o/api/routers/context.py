"""An agent's context window: PATCH /reset-messages, POST /summarize (the SDK's ``messages.compact``)
and GET /context (Letta's ContextWindowOverview)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from o.agent import lifecycle, overview
from o.api import errors
from o.api.deps import AgentEngine, Db, Org
from o.api.schemas.agent_state import AgentState

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["agents"], responses=errors.responses(401, 404))


class ResetMessages(BaseModel):
    model_config = ConfigDict(extra="ignore")

    add_default_initial_messages: bool = False


class CompactionSettings(BaseModel):
    """Letta's CompactionSettings. O summarises with the agent's own model and prompt, so ``model``,
    ``model_settings``, ``prompt``, ``prompt_acknowledgement`` and ``clip_chars`` are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    mode: Literal["all", "sliding_window", "self_compact_all", "self_compact_sliding_window"] = "sliding_window"
    # The share of the context window kept after summarising; unset: the loop's own target.
    sliding_window_percentage: float | None = Field(default=None, ge=0.0, lt=1.0)


class Compact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    compaction_settings: CompactionSettings | None = None


class CompactionResponse(BaseModel):
    num_messages_before: int
    num_messages_after: int
    summary: str


class ContextWindowOverview(BaseModel):
    context_window_size_max: int
    context_window_size_current: int
    num_messages: int
    num_archival_memory: int
    num_recall_memory: int
    num_tokens_external_memory_summary: int
    external_memory_summary: str
    num_tokens_system: int
    system_prompt: str
    num_tokens_core_memory: int
    core_memory: str
    num_tokens_memory_filesystem: int = 0
    memory_filesystem: str | None = None
    num_tokens_tool_usage_rules: int = 0
    tool_usage_rules: str | None = None
    num_tokens_directories: int = 0
    directories: str | None = None
    num_tokens_summary_memory: int
    summary_memory: str | None = None
    num_tokens_functions_definitions: int
    functions_definitions: list[dict[str, Any]] | None = None
    num_tokens_messages: int
    messages: list[dict[str, Any]]


@router.patch("/reset-messages", response_model=AgentState, responses=errors.responses(400))
def reset_messages(agent_id: str, org: Org, db: Db, body: ResetMessages | None = None) -> AgentState:
    """Every in-context message leaves the context window and stays in recall (searchable)."""
    with db.transaction() as conn:
        overview.reset_messages(
            conn, org, agent_id, add_default_initial_messages=bool(body and body.add_default_initial_messages)
        )
        return AgentState.from_view(lifecycle.get(conn, org, agent_id))


# 409: nothing to summarise; 502: the agent's model failed
@router.post("/summarize", response_model=CompactionResponse, responses=errors.responses(400, 409, 502))
def summarize(agent_id: str, org: Org, db: Db, engine: AgentEngine, body: Compact | None = None) -> CompactionResponse:
    """Summarise the oldest in-context messages now, as the loop does when the window fills."""
    settings = body.compaction_settings if body else None
    policy = engine.deps().context
    done = overview.compact(
        db,
        engine.llm,
        org,
        agent_id,
        policy,
        mode=settings.mode if settings else None,
        keep_share=settings.sliding_window_percentage if settings else None,
    )
    return CompactionResponse(
        num_messages_before=done.num_messages_before, num_messages_after=done.num_messages_after, summary=done.summary
    )


@router.get("/context", response_model=ContextWindowOverview)
def context_window(agent_id: str, org: Org, db: Db) -> ContextWindowOverview:
    with db.transaction() as conn:
        return ContextWindowOverview(**overview.overview(conn, org, agent_id))
