"""Per-agent file caps (Letta's ``max_files_open`` and ``per_file_view_window_char_limit``) and the
hybrid file search (words and meaning fused, like archival search).

The caps are set on create and update, shown in AgentState, refused out of bounds with a 422, and
honoured by the open calls, the ``open_files`` tool (which names the files it closed: the least
recently used) and the ``<files>`` part of the compiled prompt."""

from __future__ import annotations

import json

import pytest
from letta_client import Letta, UnprocessableEntityError

from o.memory.embeddings import LOCAL_EMBEDDERS
from o.memory.files import views
from o.store.db import Database
from tests.integration.folders.conftest import Live, settled
from tests.servers.script import call


def _folder_of_notes(letta: Letta, name: str, notes: dict[str, str]) -> tuple[str, list[str]]:
    folder = letta.folders.create(name=name)
    ids = [letta.folders.files.upload(folder.id, file=(n, text.encode())).id for n, text in notes.items()]
    for file_id in ids:
        assert settled(letta, folder.id, file_id).processing_status == "completed"
    return folder.id, ids


def test_caps_are_the_agents_and_bounded(letta: Letta, live: Live) -> None:
    default = letta.agents.create(llm_config=live.llm_config())
    assert (default.max_files_open, default.per_file_view_window_char_limit) == (
        views.MAX_OPEN_FILES,
        views.MAX_WINDOW_CHARS,
    )
    agent = letta.agents.create(llm_config=live.llm_config(), max_files_open=2, per_file_view_window_char_limit=600)
    assert (agent.max_files_open, agent.per_file_view_window_char_limit) == (2, 600)
    updated = letta.agents.update(agent.id, max_files_open=3)
    assert (updated.max_files_open, updated.per_file_view_window_char_limit) == (3, 600)
    assert letta.agents.retrieve(agent.id).max_files_open == 3
    for bad in ({"max_files_open": 0}, {"max_files_open": 51}, {"per_file_view_window_char_limit": 10}):
        with pytest.raises(UnprocessableEntityError, match=next(iter(bad))):
            letta.agents.create(llm_config=live.llm_config(), **bad)  # type: ignore[arg-type]
        with pytest.raises(UnprocessableEntityError, match=next(iter(bad))):
            letta.agents.update(agent.id, **bad)  # type: ignore[arg-type]
    assert letta.agents.retrieve(agent.id).max_files_open == 3  # nothing changed


def test_caps_are_honoured_by_open_the_tool_and_the_prompt(letta: Letta, live: Live) -> None:
    long_line = "x" * 90
    notes = {f"n{i}.txt": "\n".join(f"note {i} line {j} {long_line}" for j in range(40)) for i in range(4)}
    folder_id, ids = _folder_of_notes(letta, "capped", notes)
    agent = letta.agents.create(
        llm_config=live.llm_config(),
        max_files_open=2,
        per_file_view_window_char_limit=1000,
        memory_blocks=[{"label": "human", "value": "Ada"}],
    )
    letta.agents.folders.attach(folder_id, agent_id=agent.id)
    assert letta.agents.files.open(ids[0], agent_id=agent.id) == []
    assert letta.agents.files.open(ids[1], agent_id=agent.id) == []
    assert letta.agents.files.open(ids[2], agent_id=agent.id) == ["n0.txt"]  # the least recently used
    shown = letta.agents.files.list(agent.id, is_open=True).files
    assert sorted(f.file_name for f in shown) == ["n1.txt", "n2.txt"]
    assert all(len(f.visible_content or "") <= 1000 + 80 for f in shown)  # the cut note follows the window
    assert all("cut at 1000 characters" in (f.visible_content or "") for f in shown)

    live.model.script.reset()
    live.model.script.push(
        call("open_files", file_requests=[{"file_name": "n3.txt"}, {"file_name": "n0.txt"}], request_heartbeat=True),
        call("send_message", message="done"),
    )
    letta.agents.messages.create(agent.id, messages=[{"role": "user", "content": "read"}])
    requests = live.model.script.requests
    answer = json.dumps(requests[1]["messages"][-1])
    assert "least recently used" in answer and "n1.txt" in answer and "n2.txt" in answer
    system = requests[1]["messages"][0]["content"]
    assert '<file name="capped/n3.txt"' in system and '<file name="capped/n0.txt"' in system
    assert 'capped/n1.txt" lines' not in system
    assert "cut at 1000 characters" in system

    live.model.script.reset()
    live.model.script.push(
        call("open_files", file_requests=[{"file_name": n} for n in notes], request_heartbeat=True),
        call("send_message", message="done"),
    )
    letta.agents.messages.create(agent.id, messages=[{"role": "user", "content": "read all"}])
    assert "at most 2 files can be open" in json.dumps(live.model.script.requests[1]["messages"][-1])


def test_an_exact_rare_token_is_found_first(letta: Letta, live: Live, db: Database) -> None:
    """A query naming a rare identifier: the vector half alone ranks passages about the same topic
    higher; the words half finds the one chunk that holds the token, and the fused ranking puts it first."""
    topic = "The deployment pipeline rolls out new versions of the service to production servers carefully."
    notes = {f"deploy{i}.md": f"# Deploy {i}\n\n{topic} Step {i} of the rollout.\n" for i in range(6)}
    notes["codes.md"] = "# Codes\n\nThe incident was filed as ZX9QK-4471 by the on-call engineer.\n"
    folder_id, _ = _folder_of_notes(letta, "rare", notes)
    agent = letta.agents.create(llm_config=live.llm_config())
    letta.agents.folders.attach(folder_id, agent_id=agent.id)
    other = letta.agents.create(llm_config=live.llm_config())  # another agent without the folder
    query = "deployment rollout ZX9QK-4471"
    with db.read() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent.id,)).fetchone()
        assert org is not None
        hits = views.search_hits(conn, org["organization_id"], agent.id, query, LOCAL_EMBEDDERS, 5)
        vector_only = sorted(hits, key=lambda h: h["vector_distance"])
        assert not views.search_hits(conn, org["organization_id"], other.id, query, LOCAL_EMBEDDERS, 5)
        # another organization's id finds nothing of this folder (tenant scope)
        assert not views.search_hits(conn, "org-nobody", agent.id, query, LOCAL_EMBEDDERS, 5)
    assert hits[0]["file_name"] == "codes.md" and hits[0]["lexical_rank"] == 1
    assert vector_only[0]["file_name"] != "codes.md"  # meaning alone would not have put it first
