"""Conversations: one agent, many threads at once, one shared memory (Letta's ``conversations``).

Each conversation has its own in-context messages, summaries and runs, and may override the agent's
model and context window; all of them share the agent's blocks, archival memory and tools. The
agent's own history is the ``default`` conversation (no row: messages and runs with no conversation),
so the agent-level message routes and ``conversations`` with ``default`` read and write the same one.

Runs of one conversation take turns (:mod:`o.agent.step.conversation`); runs of different
conversations of the agent go side by side. The compiled system prompt is never stored: every step
compiles it from the current blocks (cached by the agent's version, which a block edit bumps), so an
edit made in one conversation is in the next step of every other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from o.agent import lifecycle
from o.agent.prompt import compile_prompt
from o.errors import Conflict, InvalidInput, NotFound
from o.ids import new_id
from o.store import agents as agent_store
from o.store import conversations as store
from o.store.db import Conn
from o.store.pages import Page
from o.store.records import Run

DEFAULT = "default"


@dataclass(frozen=True)
class Target:
    """What a ``conversation_id`` of the API names: a conversation of an agent, or (``row`` None)
    the agent's own history."""

    agent_id: str
    row: dict[str, Any] | None

    @property
    def conversation_id(self) -> str | None:
        return self.row["id"] if self.row is not None else None


def require(conn: Conn, organization_id: str, conversation_id: str, *, for_update: bool = False) -> dict[str, Any]:
    row = store.get(conn, organization_id, conversation_id, for_update=for_update)
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return row


def resolve(conn: Conn, organization_id: str, conversation_id: str, agent_id: str | None) -> Target:
    """The conversation a request names: ``default`` with ``agent_id`` (or, as Letta still accepts, an
    agent's id in place of the conversation's) is the agent's own history; another organization's or
    an unknown id is a 404, as is a conversation of another agent than ``agent_id``."""
    if conversation_id == DEFAULT:
        if not agent_id:
            raise InvalidInput("the default conversation is an agent's own: give agent_id", field="agent_id")
        lifecycle.require(conn, organization_id, agent_id)
        return Target(agent_id, None)
    if conversation_id.startswith("agent-"):
        lifecycle.require(conn, organization_id, conversation_id)
        return Target(conversation_id, None)
    row = require(conn, organization_id, conversation_id)
    if agent_id and row["agent_id"] != agent_id:
        raise NotFound(f"conversation {conversation_id} not found for agent {agent_id}")
    return Target(row["agent_id"], row)


def create(conn: Conn, organization_id: str, agent_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    lifecycle.require(conn, organization_id, agent_id)
    row = {"id": new_id("conv"), "organization_id": organization_id, "agent_id": agent_id, **fields}
    return store.insert(conn, row)


def update(conn: Conn, organization_id: str, conversation_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    row = require(conn, organization_id, conversation_id, for_update=True)
    if "archived" in changes and bool(changes["archived"]) != row["archived"]:
        changes = {**changes, "archived_at": datetime.now(UTC) if changes["archived"] else None}
    return store.update(conn, conversation_id, changes) if changes else row


def delete(conn: Conn, organization_id: str, conversation_id: str) -> None:
    row = require(conn, organization_id, conversation_id, for_update=True)
    if store.active_runs(conn, row["agent_id"], conversation_id):
        raise Conflict(f"conversation {conversation_id} has a run going: cancel it before deleting the conversation")
    store.mark_deleted(conn, conversation_id)


def list_page(conn: Conn, organization_id: str, page: Page, **filters: Any) -> list[dict[str, Any]]:
    agent_id = filters.get("agent_id")
    if agent_id:
        lifecycle.require(conn, organization_id, agent_id)
    return store.list_page(conn, organization_id, page, **filters)


def in_context_ids(conn: Conn, target: Target) -> list[str]:
    return store.in_context_ids(conn, target.agent_id, target.conversation_id)


def fork(
    conn: Conn, organization_id: str, source: Target, *, message_id: str | None = None, hidden: bool = False
) -> dict[str, Any]:
    """A new conversation of the same agent with copies of the source's in-context messages (up to and
    including ``message_id`` when given: a 422 when it is not one of them). Its system prompt is
    compiled from the memory as it is now, on its first step, as for every conversation."""
    ids = in_context_ids(conn, source)
    if message_id is not None:
        if message_id not in ids:
            raise InvalidInput(
                f"message {message_id} is not in the context of the conversation being forked", field="message_id"
            )
        ids = ids[: ids.index(message_id) + 1]
    base = source.row or {}
    row = store.insert(
        conn,
        {
            "id": new_id("conv"),
            "organization_id": organization_id,
            "agent_id": source.agent_id,
            "summary": base.get("summary"),
            "description": base.get("description"),
            "model": base.get("model"),
            "model_settings": base.get("model_settings"),
            "context_window_limit": base.get("context_window_limit"),
            "llm_overrides": base.get("llm_overrides") or {},
            "hidden": hidden,
            "forked_from": source.conversation_id,
        },
    )
    store.copy_messages(conn, ids, row["id"])
    return row


def recompile(conn: Conn, organization_id: str, target: Target, *, dry_run: bool = False) -> str:
    """The system prompt the conversation's next step reads, compiled from the current memory. Every
    conversation of the agent shares it (blocks are the agent's); unless ``dry_run`` the agent's cached
    prompt is made stale so the next step of each conversation compiles it afresh."""
    agent = lifecycle.require(conn, organization_id, target.agent_id, for_update=not dry_run)
    if not dry_run:
        agent_store.touch(conn, target.agent_id)
        agent = lifecycle.require(conn, organization_id, target.agent_id)
    return compile_prompt(conn, agent).text


def open_for_sending(target: Target) -> None:
    """Refuse a send to an archived conversation (unarchive it first)."""
    if target.row is not None and target.row["archived"]:
        raise ConversationArchived(
            f"conversation {target.row['id']} is archived: unarchive it (PATCH archived=false) before sending to it"
        )


def sent(conn: Conn, target: Target) -> None:
    """Note a send (the conversation's ``last_message_at``)."""
    if target.row is not None:
        store.touch_last_message(conn, target.row["id"])


def active_runs(conn: Conn, target: Target) -> list[str]:
    return store.active_runs(conn, target.agent_id, target.conversation_id)


def effective_agent(conn: Conn, run: Run, agent: dict[str, Any]) -> dict[str, Any]:
    """The agent as a step of ``run`` sees it: its conversation's model overrides over its llm_config."""
    if run.conversation_id is None:
        return agent
    row = store.get(conn, run.organization_id, run.conversation_id)
    overrides = (row or {}).get("llm_overrides") or {}
    if not overrides:
        return agent
    return {**agent, "llm_config": {**agent["llm_config"], **overrides}}


class ConversationArchived(Conflict):
    code = "conversation_archived"
