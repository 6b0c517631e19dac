"""The agent's own fields through the SDK, each checked by its effect: include_base_tools and
tool_rules (what the model is offered), initial_message_sequence (the history and the prompt),
timezone (the prompt's times), enable_sleeptime (which agents the sleep-time trigger sees), tags,
metadata and description."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from letta_client import Letta, UnprocessableEntityError

from o.evolution.shadow import SCRATCH_PREFIX
from o.store import sleeptime as sleeptime_store
from o.store.db import Database
from tests.integration.agent.conftest import system_prompt
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call, say

SOURCE = '''
def lookup(city: str) -> str:
    """Look a city up.

    Args:
        city: the city
    """
    return city
'''


def _offered(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def _turn(letta: Letta, openai: OpenAIServer, agent_id: str, *replies: Any) -> dict[str, Any]:
    """One user turn answered by ``replies``; the first chat request the provider received."""
    openai.push(*(replies or (call("send_message", message="ok"),)))
    seen = len(openai.requests)
    letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": "hello"}])
    return openai.requests[seen]


def test_include_base_tools_and_tool_rules(letta: Letta, openai: OpenAIServer) -> None:
    tool = letta.tools.create(source_code=SOURCE)
    default = letta.agents.create(model="openai/gpt-4o-mini", tool_ids=[tool.id])
    offered = _offered(_turn(letta, openai, default.id))
    assert {"send_message", "core_memory_append", "archival_memory_search", "lookup"} <= set(offered)

    bare = letta.agents.create(model="openai/gpt-4o-mini", include_base_tools=False, tool_ids=[tool.id])
    assert _offered(_turn(letta, openai, bare.id, say("plain answer"))) == ["lookup"]
    # built-ins named in `tools` are offered even without the base set
    chosen = letta.agents.create(
        model="openai/gpt-4o-mini",
        include_base_tools=False,
        tools=["send_message", "lookup"],
        tool_rules=[{"type": "run_first", "tool_name": "lookup"}, {"type": "exit_loop", "tool_name": "send_message"}],
    )
    first = _turn(letta, openai, chosen.id, call("lookup", city="Oslo"), call("send_message", message="done"))
    # run_first took effect: the first step may only call lookup, the next one any of the two
    assert _offered(first) == ["lookup"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert sorted(_offered(openai.requests[-1])) == ["lookup", "send_message"]
    assert [r.type for r in letta.agents.retrieve(chosen.id).tool_rules or []] == ["run_first", "exit_loop"]


def test_initial_message_sequence(letta: Letta, openai: OpenAIServer) -> None:
    agent = letta.agents.create(
        model="openai/gpt-4o-mini",
        initial_message_sequence=[
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
        ],
    )
    history = letta.agents.messages.list(agent.id, order="asc")
    shown = [(m.message_type, getattr(m, "content", None)) for m in history]
    assert shown == [("user_message", "My name is Ada."), ("assistant_message", "Nice to meet you, Ada.")]
    body = _turn(letta, openai, agent.id)
    texts = [m.get("content") for m in body["messages"][1:]]
    assert texts[:2] == ["My name is Ada.", "Nice to meet you, Ada."]
    # without the field an agent starts with no messages
    assert not letta.agents.messages.list(letta.agents.create(model="openai/gpt-4o-mini").id).items


def test_timezone(letta: Letta, openai: OpenAIServer) -> None:
    agent = letta.agents.create(
        model="openai/gpt-4o-mini", timezone="Asia/Tokyo", memory_blocks=[{"label": "human", "value": "Ada"}]
    )
    assert agent.timezone == "Asia/Tokyo"
    assert "+0900" in system_prompt(_turn(letta, openai, agent.id))  # the prompt's times are Tokyo's
    agent = letta.agents.update(agent.id, timezone="America/New_York")
    assert agent.timezone == "America/New_York"
    prompt = system_prompt(_turn(letta, openai, agent.id))
    assert "-0500" in prompt or "-0400" in prompt
    with pytest.raises(UnprocessableEntityError, match="Mars/Olympus"):
        letta.agents.update(agent.id, timezone="Mars/Olympus")
    with pytest.raises(UnprocessableEntityError, match="timezone"):
        letta.agents.create(model="openai/gpt-4o-mini", timezone="not a zone")
    assert letta.agents.retrieve(agent.id).timezone == "America/New_York"


def test_enable_sleeptime(letta: Letta, openai: OpenAIServer, db: Database) -> None:
    on = letta.agents.create(model="openai/gpt-4o-mini")
    off = letta.agents.create(model="openai/gpt-4o-mini", enable_sleeptime=False)
    assert (on.enable_sleeptime, off.enable_sleeptime) == (True, False)
    for agent in (on, off):
        _turn(letta, openai, agent.id)

    def news() -> dict[str, int]:
        with db.transaction() as conn:
            found = sleeptime_store.agents_with_news(conn, skip_org_prefix=SCRATCH_PREFIX)
            counted = {a: sleeptime_store.user_messages_since(conn, a, 0) for a in (on.id, off.id)}
        due = {n.agent_id for n in found}
        return {a: counted[a] if a in due else -1 for a in (on.id, off.id)}

    assert news() == {on.id: 1, off.id: -1}  # the scheduled sweep and the message trigger skip `off`
    letta.agents.update(off.id, enable_sleeptime=True)
    letta.agents.update(on.id, enable_sleeptime=False)
    assert news() == {on.id: -1, off.id: 1}


def test_message_buffer_autoclear(letta: Letta, openai: OpenAIServer) -> None:
    def users_seen(request: dict[str, Any]) -> int:
        return sum(1 for m in request["messages"] if m["role"] == "user")

    agent = letta.agents.create(
        model="openai/gpt-4o-mini", message_buffer_autoclear=True, memory_blocks=[{"label": "human", "value": "Ada"}]
    )
    assert agent.message_buffer_autoclear is True
    assert users_seen(_turn(letta, openai, agent.id)) == 1
    second = _turn(letta, openai, agent.id)
    # the first turn is out of context; memory is still in the prompt, and the history still in recall
    assert users_seen(second) == 1 and "Ada" in system_prompt(second)
    history = letta.agents.messages.list(agent.id, limit=100)
    assert sum(1 for m in history if m.message_type == "user_message") == 2
    letta.agents.update(agent.id, message_buffer_autoclear=False)
    assert letta.agents.retrieve(agent.id).message_buffer_autoclear is False
    _turn(letta, openai, agent.id)
    assert users_seen(_turn(letta, openai, agent.id)) == 2  # the turn before is kept again


def test_tags_metadata_description(letta: Letta, http: TestClient) -> None:
    agent = letta.agents.create(
        model="openai/gpt-4o-mini", tags=["blue", "team-a"], metadata={"owner": "ada", "n": 3}, description="helper"
    )
    # O adds the agent's revision number to its metadata
    assert agent.metadata is not None and {"owner": "ada", "n": 3}.items() <= agent.metadata.items()
    assert (agent.tags, agent.description) == (["blue", "team-a"], "helper")
    assert [a.id for a in letta.agents.list(tags=["team-a"])] == [agent.id]
    agent = letta.agents.update(agent.id, tags=["green"], metadata={"owner": "kim"}, description="other")
    assert agent.metadata is not None and agent.metadata.get("owner") == "kim" and "n" not in agent.metadata
    assert (agent.tags, agent.description) == (["green"], "other")
    assert not list(letta.agents.list(tags=["team-a"]))
