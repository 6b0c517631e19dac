"""Reading agents: an agent row with what the API shows beside it (its blocks, tools, tool variables
and identities).

Apart from :mod:`o.agent.lifecycle`, which creates, changes and deletes agents: a GET of an agent (the request
an API Lambda's cold start serves most) imports neither the tools' catalog nor the base tools nor archival
memory, which only changing an agent needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from o.errors import NotFound
from o.store import agents as agent_store
from o.store.db import Conn
from o.store.pages import Page


@dataclass
class AgentView:
    """An agent row with what the API shows beside it."""

    agent: dict[str, Any]
    blocks: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_env: list[dict[str, Any]] = field(default_factory=list)
    identity_ids: list[str] = field(default_factory=list)


def get(conn: Conn, organization_id: str, agent_id: str) -> AgentView:
    found = agent_store.with_related(conn, organization_id, [agent_id])
    if agent_id not in found:
        raise NotFound(f"agent {agent_id} not found")
    return _view(found[agent_id])


def require(conn: Conn, organization_id: str, agent_id: str, *, for_update: bool = False) -> dict[str, Any]:
    """The agent row, or NotFound: also how another organization's ids stay invisible."""
    return agent_store.require(conn, organization_id, agent_id, for_update=for_update)


# What the API's reads cache an agent's JSON by (o/api/serialized.py): the versions of the rows it is
# made of, one text per agent (o.store.agents.SHOWN_VERSION)


def listed_versions(conn: Conn, organization_id: str, page: Page, **filters: Any) -> list[tuple[str, str]]:
    """(id, version) of each agent of a page of the organization's agents (filtered), in the page's order."""
    rows = agent_store.list_page_versions(conn, organization_id, page, **filters)
    return [(row["id"], row[agent_store.SHOWN_VERSION]) for row in rows]


def versions(conn: Conn, organization_id: str, agent_ids: list[str]) -> dict[str, str]:
    """The version of each of these agents of the organization that exists, by id."""
    return agent_store.shown_versions(conn, organization_id, agent_ids)


def versioned_views(conn: Conn, organization_id: str, agent_ids: list[str]) -> dict[str, tuple[str, AgentView]]:
    """These agents of the organization that exist, each with its version as read with it, by id."""
    found = agent_store.with_related(conn, organization_id, agent_ids, versions=True)
    return {i: (row.pop(agent_store.SHOWN_VERSION), _view(row)) for i, row in found.items()}


def _view(row: dict[str, Any]) -> AgentView:
    blocks = row.pop("related_blocks")
    tools = row.pop("related_tools")
    env = row.pop("related_env")
    identity_ids = row.pop("related_identity_ids", [])
    return AgentView(row, blocks, tools, env, identity_ids)
