"""Agents as the API shows them (Letta's AgentState), as JSON written once per version of the rows each is
made of (o/api/serialized.py): GET agent and a list of agents answer the same bytes an AgentState built and
serialized afresh would be. Building and writing them (an agent's blocks validated, its tools with their JSON
schemas) was three quarters of a list's CPU and half of a GET's."""

from __future__ import annotations

from pydantic_core import to_json

from o.agent import views
from o.agent.views import AgentView
from o.api.responses import SHARED_PLACEHOLDER, spliced_json
from o.api.schemas.agent_state import AgentState
from o.api.serialized import SerializedCache, assembled
from o.store.db import Conn

# 4 MiB: an agent with a dozen tools and their schemas is ~10 kB, so ~400 agents per process (the worker's RSS
# under load is ~140 MB of its 150 MB target)
_WRITTEN = SerializedCache(max_bytes=4 << 20)


def agents_json(conn: Conn, org: str, versions: list[tuple[str, str]]) -> list[bytes]:
    """The AgentState JSON of each agent of ``versions`` ((id, version), as o.agent.views reads them) that
    still exists, in that order."""
    ids = {f"{agent_id}|{version}": agent_id for agent_id, version in versions}

    def write(missing: list[str]) -> dict[str, tuple[str, bytes]]:
        found = views.versioned_views(conn, org, [ids[key] for key in missing])
        tool_json: dict[str, bytes] = {}  # each distinct tool serialized once, schema and all
        written = {}
        for key in missing:
            if (got := found.get(ids[key])) is not None:
                version, view = got
                written[key] = (f"{ids[key]}|{version}", _state_json(view, tool_json))
        return written

    return assembled(_WRITTEN, ids, write)


def _state_json(view: AgentView, tool_json: dict[str, bytes]) -> bytes:
    tools = [tool_json.get(t["id"]) or tool_json.setdefault(t["id"], to_json(t)) for t in view.tools]
    state = AgentState.from_view(view)
    state.tools = [SHARED_PLACEHOLDER]
    return spliced_json(state, tools)
