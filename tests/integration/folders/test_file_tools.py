"""The file tools through the agent loop: a scripted model greps, searches by meaning and opens a
window of a file; each answer cites file names and line numbers, and the open window is in the
next compiled context, within the caps."""

from __future__ import annotations

import json

from letta_client import Letta

from o.memory.files import views
from tests.integration.folders.conftest import Live, settled, upload
from tests.servers.script import call


def _agent_with_folder(letta: Letta, live: Live) -> str:
    folder = letta.folders.create(name="kb")
    for name in ("guide.md", "scheduler.js", "handbook.pdf"):
        assert settled(letta, folder.id, upload(letta, folder.id, name).id).processing_status == "completed"
    agent = letta.agents.create(llm_config=live.llm_config(), memory_blocks=[{"label": "human", "value": "Ada"}])
    letta.agents.folders.attach(folder.id, agent_id=agent.id)
    return agent.id


def test_grep_search_and_open_through_the_loop(letta: Letta, live: Live) -> None:
    agent_id = _agent_with_folder(letta, live)
    live.model.script.reset()
    live.model.script.push(
        call("grep_files", pattern=r"backoff\w*\(", context_lines=1, request_heartbeat=True),
        call("semantic_search_files", query="how much is the daily meal allowance", limit=2, request_heartbeat=True),
        call(
            "open_files", file_requests=[{"file_name": "guide.md", "offset": 16, "length": 3}], request_heartbeat=True
        ),
        call("send_message", message="done"),
    )
    response = letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": "look it up"}])
    assert len(live.model.script.requests) == 4, response.messages
    requests = live.model.script.requests
    offered = {t["function"]["name"] for t in requests[0]["tools"]}
    assert {"open_files", "grep_files", "semantic_search_files", "close_files"} <= offered
    grep_result = json.dumps(requests[1]["messages"][-1])
    assert "scheduler.js:25: function backoffDelay" in grep_result
    assert "scheduler.js:24-" in grep_result  # the context line before the match
    search_result = json.dumps(requests[2]["messages"][-1])
    assert "handbook.pdf lines" in search_result and "page 2" in search_result and "45 euros" in search_result
    system = requests[3]["messages"][0]["content"]
    assert '<file name="kb/guide.md" lines="16-18 of' in system
    assert "18: New versions take 10 percent of traffic" in system
    assert "1: # Deployment guide" not in system  # only the window is shown


def test_open_files_are_capped(letta: Letta, live: Live, db: object) -> None:
    folder = letta.folders.create(name="many")
    ids = []
    for i in range(views.MAX_OPEN_FILES + 2):
        meta = letta.folders.files.upload(folder.id, file=(f"note{i}.txt", f"note {i}\n".encode() * 3))
        ids.append(meta.id)
    for file_id in ids:
        assert settled(letta, folder.id, file_id).processing_status == "completed"
    agent = letta.agents.create(llm_config=live.llm_config(), memory_blocks=[{"label": "human", "value": "Ada"}])
    letta.agents.folders.attach(folder.id, agent_id=agent.id)
    closed: list[str] = []
    for file_id in ids:
        closed += letta.agents.files.open(file_id, agent_id=agent.id)
    assert closed == ["note0.txt", "note1.txt"]  # least recently used first
    open_now = letta.agents.files.list(agent.id, is_open=True, limit=100).files
    assert len(open_now) == views.MAX_OPEN_FILES
