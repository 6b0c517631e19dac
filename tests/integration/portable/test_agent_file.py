"""Letta's agent file through Letta's own SDK in strict mode: ``agents.export_file`` on one server and
``agents.import_file`` on another give the same agent (new ids); a file from the public agent-file
project imports; bad files are refused whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from letta_client import Letta, UnprocessableEntityError

from o.store.db import Database
from tests import wiring
from tests.integration.agent.conftest import make_engine
from tests.integration.conftest import new_org_key
from tests.integration.portable.conftest import normalized, rich_agent, served, without
from tests.servers.openai_server import OpenAIServer

FIXTURES = Path(__file__).parent / "fixtures"
# what differs between an agent and its import from a file, by design: the times it was made and
# edited, its revision history (a file carries the configuration, not its history)
_NEW = {"created_at", "updated_at", "date"}


def sdk(app: FastAPI, key: str) -> Iterator[Letta]:
    """Letta's SDK in strict mode, talking HTTP to ``app``."""
    with served(app) as url:
        yield Letta(base_url=url, api_key=key, max_retries=0, _strict_response_validation=True)


@pytest.fixture
def source_app(db: Database) -> FastAPI:
    return wiring.app(db, engine=make_engine(db))


@pytest.fixture
def source_sdk(source_app: FastAPI, db: Database) -> Iterator[Letta]:
    yield from sdk(source_app, new_org_key(db))


@pytest.fixture
def target_sdk(second_db: Database) -> Iterator[Letta]:
    yield from sdk(wiring.app(second_db), new_org_key(second_db))


def lax(client: Letta) -> Letta:
    """The same SDK without strict validation, for reading back: whether every agent response passes
    strict validation is tested by the strict-mode test of all operations, not here."""
    return Letta(base_url=str(client.base_url), api_key=client.api_key, max_retries=0)


def _agent_and_history(strict: Letta, agent_id: str) -> dict[str, Any]:
    client = lax(strict)
    agent = client.agents.retrieve(agent_id).model_dump(mode="json")
    messages = [m.model_dump(mode="json") for m in client.agents.messages.list(agent_id, limit=1000)]
    # run and step ids belong to the server that ran them; a file carries the messages alone
    return normalized(without({"agent": agent, "messages": messages}, _NEW | {"run_id", "step_id", "seq_id"}))


def test_an_exported_agent_file_imports_as_the_same_agent(
    source_app: FastAPI, source_sdk: Letta, target_sdk: Letta, db: Database, openai_server: OpenAIServer
) -> None:
    with TestClient(source_app, headers={"Authorization": f"Bearer {source_sdk.api_key}"}) as http:
        agent_id = rich_agent(http, openai_server, db)
    text = source_sdk.agents.export_file(agent_id)
    document = json.loads(text)
    custom = [t for t in document["tools"] if t["tool_type"] == "custom"]
    assert [t["name"] for t in custom] == ["lookup_order"] and "def lookup_order" in custom[0]["source_code"]
    # the base tools the agent has travel by name (no source: every server has its own)
    assert {t["name"] for t in document["tools"] if t["tool_type"].startswith("letta")} >= {"send_message"}
    assert {b["label"] for b in document["blocks"]} == {"persona", "human"}

    imported = target_sdk.agents.import_file(
        file=("porter.af", text.encode()), secrets=json.dumps({"ORDERS_TOKEN": "s3cret"})
    )
    [new_id] = imported.agent_ids
    assert new_id != agent_id
    after, before = _agent_and_history(target_sdk, new_id), _agent_and_history(source_sdk, agent_id)
    # the file carries the configuration, not its revision history: the import is its own revision 1
    assert (after["agent"]["metadata"].pop("revision"), before["agent"]["metadata"].pop("revision")) == (1, 2)
    assert after == before
    # the tool came with its source, and runs on the new server
    moved = list(lax(target_sdk).tools.list(name="lookup_order"))
    assert len(moved) == 1 and 'return "shipped"' in (moved[0].source_code or "")


def test_export_without_messages(source_sdk: Letta, target_sdk: Letta) -> None:
    agent = lax(source_sdk).agents.create(name="quiet", memory_blocks=[{"label": "human", "value": "Ada"}])
    document = json.loads(source_sdk.agents.export_file(agent.id, scrub_messages=True))
    assert document["agents"][0]["messages"] == []
    # a file may carry tool variable values (Letta's may; O's never do)
    document["agents"][0]["tool_exec_environment_variables"] = {"TOKEN": "carried", "EMPTY": ""}
    imported = target_sdk.agents.import_file(file=("quiet.af", json.dumps(document).encode()), name="renamed")
    again = lax(target_sdk).agents.retrieve(imported.agent_ids[0])
    assert again.name == "renamed" and [b.value for b in again.blocks] == ["Ada"]
    assert [v.key for v in again.tool_exec_environment_variables or []] == ["TOKEN"]
    # another model for the copy; a handle O cannot call is refused, and nothing is made
    other = target_sdk.agents.import_file(file=("q.af", json.dumps(document).encode()), model="openai/gpt-4.1-mini")
    assert lax(target_sdk).agents.retrieve(other.agent_ids[0]).llm_config.model == "gpt-4.1-mini"
    with pytest.raises(UnprocessableEntityError, match="model"):
        target_sdk.agents.import_file(file=("q.af", json.dumps(document).encode()), model="nowhere/some-model")
    assert len(lax(target_sdk).agents.list(limit=100).items) == 2


def test_a_file_from_the_agent_file_project_imports(target_sdk: Letta) -> None:
    raw = (FIXTURES / "outreach_workflow_agent.af").read_bytes()
    source = json.loads(json.loads(raw))
    [agent_id] = target_sdk.agents.import_file(file=("outreach.af", raw)).agent_ids
    agent = lax(target_sdk).agents.retrieve(agent_id)
    # this agent clears its message buffer after each turn ("memory disabled"), and still does
    assert agent.message_buffer_autoclear is True
    # its file caps are the agent's own (Letta's defaults for its model)
    assert (agent.max_files_open, agent.per_file_view_window_char_limit) == (5, 15000)
    assert agent.name == "outreach_workflow_agent"
    assert agent.description == source["agents"][0]["description"]
    assert sorted(t.name for t in agent.tools) == sorted(t["name"] for t in source["tools"])
    assert [r.model_dump(mode="json", exclude_none=True)["tool_name"] for r in agent.tool_rules or []] == [
        r["tool_name"] for r in source["agents"][0]["tool_rules"]
    ]
    assert agent.llm_config.model == "gpt-4o-mini"
    for tool in lax(target_sdk).tools.list(tool_types=["custom"]):
        assert tool.source_code and f"def {tool.name}(" in tool.source_code
        assert tool.json_schema and tool.json_schema["name"] == tool.name


def _af(tool_source: str) -> dict[str, Any]:
    return {
        "agents": [
            {
                "id": "agent-0",
                "name": "broken",
                "tool_ids": ["tool-0"],
                "block_ids": ["block-0"],
                "messages": [{"id": "message-0", "role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "in_context_message_ids": ["message-0"],
            }
        ],
        "blocks": [{"id": "block-0", "label": "human", "value": "Ada", "limit": 100}],
        "tools": [{"id": "tool-0", "name": "fine", "tool_type": "custom", "source_code": tool_source}],
    }


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("tool that fails to parse", json.dumps(_af("def fine(:\n  pass")), "tool 'fine'"),
        ("not json", "{not json", "not JSON"),
        ("truncated", json.dumps(_af("def fine() -> str:\n    return 'x'\n"))[:-40], "not JSON"),
        ("no agents", json.dumps({"agents": []}), "no agents"),
        ("unknown block", json.dumps({**_af("def fine():\n  pass"), "blocks": []}), "block 'block-0'"),
        ("groups", json.dumps({**_af("def fine():\n  pass"), "groups": [{"id": "group-0"}]}), "groups"),
    ],
)
def test_a_bad_agent_file_is_refused_and_nothing_is_stored(
    target_sdk: Letta, name: str, content: str, says: str
) -> None:
    with pytest.raises(UnprocessableEntityError) as refused:
        target_sdk.agents.import_file(file=("bad.af", content.encode()))
    assert says in str(refused.value), (name, str(refused.value))
    reader = lax(target_sdk)
    assert reader.agents.list(limit=100).items == []
    assert list(reader.tools.list(name="fine")) == []
    assert list(reader.blocks.list()) == []


def test_letta_built_ins_o_lacks_are_reported_not_silently_dropped(target_sdk: Letta) -> None:
    document = _af('def fine() -> str:\n    """Fine."""\n    return \'x\'\n')
    document["tools"] += [
        {"id": "tool-1", "name": "send_message", "tool_type": "letta_core"},
        {"id": "tool-2", "name": "send_message_to_agents_matching_tags", "tool_type": "letta_multi_agent_core"},
    ]
    document["agents"][0]["tool_ids"] += ["tool-1", "tool-2"]
    imported = target_sdk.agents.import_file(file=("multi.af", json.dumps(document).encode()))
    [agent_id] = imported.agent_ids
    # an extra field of the response (the SDK's strict types accept it): what the agent was made without
    assert imported.model_extra == {"skipped_tools": {agent_id: ["send_message_to_agents_matching_tags"]}}
    assert sorted(t.name for t in lax(target_sdk).agents.retrieve(agent_id).tools) == ["fine", "send_message"]


def test_attached_archives_travel_in_the_files_metadata(source_sdk: Letta, target_sdk: Letta) -> None:
    """Letta's format has no archives: O's ride in the file's free-form top-level metadata, are embedded
    anew on import (the archive's model), attached to the imported agent and searched with its memory."""
    agent = lax(source_sdk).agents.create(name="librarian", memory_blocks=[{"label": "human", "value": "Ada"}])
    archive = source_sdk.archives.create(name="handbook", description="company rules")
    source_sdk.archives.passages.create_many(
        archive.id,
        passages=[
            {"text": "Travel expenses are refunded within 30 days.", "tags": ["travel"]},
            {"text": "The office dog is called Biscuit.", "metadata": {"page": 2}},
        ],
    )
    source_sdk.agents.archives.attach(archive.id, agent_id=agent.id)
    source_sdk.archives.create(name="unattached")  # not the agent's: stays home

    document = json.loads(source_sdk.agents.export_file(agent.id))
    [carried] = document["metadata"]["archives"]
    assert (carried["name"], carried["agent_ids"]) == ("handbook", ["agent-0"])
    assert [p["text"] for p in carried["passages"]] == [
        "Travel expenses are refunded within 30 days.",
        "The office dog is called Biscuit.",
    ]
    # every key a Letta file has is still there, as Letta writes it
    assert set(document) >= {"agents", "groups", "blocks", "files", "sources", "tools", "mcp_servers", "metadata"}

    [new_id] = target_sdk.agents.import_file(file=("librarian.af", json.dumps(document).encode())).agent_ids
    [moved] = list(target_sdk.archives.list(agent_id=new_id))
    assert (moved.name, moved.description) == ("handbook", "company rules") and moved.id != archive.id
    # O's GET /v1/archives/{id}/passages (the SDK has no method for it)
    passages = target_sdk.get(f"/v1/archives/{moved.id}/passages", cast_to=object)
    assert [(p["text"], p["tags"]) for p in passages] == [
        ("Travel expenses are refunded within 30 days.", ["travel"]),
        ("The office dog is called Biscuit.", []),
    ]
    found = lax(target_sdk).agents.passages.search(new_id, query="what is the dog's name").results
    assert found and found[0].content == "The office dog is called Biscuit."
    assert [a.name for a in target_sdk.archives.list()] == ["handbook"]

    # a malformed archive entry is refused by name, and nothing of the file is stored
    document["metadata"]["archives"][0]["passages"] = [{"text": ""}]
    with pytest.raises(UnprocessableEntityError, match=r"metadata\.archives\[0\]"):
        target_sdk.agents.import_file(file=("bad.af", json.dumps(document).encode()))
    assert len(lax(target_sdk).agents.list(limit=100).items) == 1
