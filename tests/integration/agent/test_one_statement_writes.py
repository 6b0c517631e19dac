"""A reply step's writes go as one statement per phase, gated on the run as the phase read it: a crash
before the statement, or a run that moved meanwhile, still leaves one copy of everything."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from o.agent import runs as run_api
from o.agent.engine import Engine
from o.agent.runner import drive
from o.agent.step import SimulatedCrash, advance, step_id_for
from o.store import runs as run_store
from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


@pytest.fixture
def replying(api, openai_server: OpenAIServer) -> tuple[str, str, str]:
    """(agent, organization, run): an agent whose model answers with send_message, and a run sent to it."""
    agent = create_agent(api, openai_server)
    openai_server.push(call("send_message", message="Hello."))
    db: Database = api.app.state.db
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()
        started = run_api.start(
            conn, org["organization_id"], agent["id"], [run_api.InputMessage("user", "hi")], {"max_steps": 5}
        )
    return agent["id"], org["organization_id"], started.run.id


def _written(db: Database, agent_id: str, run_id: str) -> dict[str, Any]:
    with db.transaction() as conn:
        messages = conn.execute("SELECT * FROM messages WHERE agent_id = %s ORDER BY seq", (agent_id,)).fetchall()
        step = conn.execute("SELECT * FROM steps WHERE id = %s", (step_id_for(run_id, 0),)).fetchone()
        outcomes = conn.execute("SELECT * FROM revision_outcomes WHERE request_id = %s", (run_id,)).fetchall()
        run = run_store.get(conn, run_id)
    assert all(n == 1 for n in Counter(m["id"] for m in messages).values())
    return {"roles": [m["role"] for m in messages], "step": step, "outcomes": outcomes, "run": run}


def test_a_reply_step_stores_each_row_once_and_records_its_outcome(engine: Engine, replying) -> None:
    agent_id, _, run_id = replying
    deps = engine.deps()
    assert advance(deps, run_id, "step").next == "tools"
    assert advance(deps, run_id, "tools").next == "done"
    written = _written(engine.db, agent_id, run_id)
    assert written["roles"] == ["user", "assistant", "tool"]
    assert written["step"]["status"] == "completed" and written["step"]["tool_ms"] is not None
    assert [(o["revision"], o["ok"]) for o in written["outcomes"]] == [(1, True)]
    run = written["run"]
    assert (run.status, run.stop_reason, run.usage["step_count"]) == ("completed", "end_turn", 1)
    assert run.metadata["turn_recorded"] is True


def test_a_crash_before_the_last_result_is_stored_then_a_replay(engine: Engine, replying) -> None:
    agent_id, _, run_id = replying

    def die(at: str) -> None:
        if at == "before_tool_commit":
            raise SimulatedCrash(at)

    assert advance(engine.deps(), run_id, "step").next == "tools"
    with pytest.raises(SimulatedCrash):
        advance(engine.deps(fault=die), run_id, "tools")
    assert _written(engine.db, agent_id, run_id)["roles"] == ["user", "assistant"]
    assert drive(engine.deps(), run_id).stop_reason == "end_turn"
    written = _written(engine.db, agent_id, run_id)
    assert written["roles"] == ["user", "assistant", "tool"] and len(written["outcomes"]) == 1


def test_a_cancel_between_the_tools_phase_read_and_its_write(engine: Engine, replying) -> None:
    """The run moved after the phase read it: the one statement writes nothing, and the phase stores the
    result under the run's lock, which sees the cancel."""
    agent_id, org, run_id = replying
    cancelled: list[str] = []

    def cancel_once(at: str) -> None:
        if at == "before_tool_commit" and not cancelled:
            with engine.db.transaction() as conn:
                cancelled.extend(r.id for r in run_api.cancel(conn, org, agent_id, [run_id]))

    assert advance(engine.deps(), run_id, "step").next == "tools"
    outcome = advance(engine.deps(fault=cancel_once), run_id, "tools")
    assert cancelled == [run_id]
    assert (outcome.next, outcome.stop_reason) == ("done", "cancelled")
    written = _written(engine.db, agent_id, run_id)
    assert written["roles"] == ["user", "assistant", "tool"]
    assert written["step"]["status"] == "completed" and written["outcomes"] == []
    assert (written["run"].status, written["run"].stop_reason) == ("cancelled", "cancelled")


def test_a_cancel_while_the_llm_answers_stores_no_step(engine: Engine, replying) -> None:
    agent_id, org, run_id = replying

    def cancel(at: str) -> None:
        if at == "after_llm":
            with engine.db.transaction() as conn:
                run_api.cancel(conn, org, agent_id, [run_id])

    outcome = advance(engine.deps(fault=cancel), run_id, "step")
    assert (outcome.next, outcome.stop_reason) == ("done", "cancelled")
    written = _written(engine.db, agent_id, run_id)
    assert written["roles"] == ["user"] and written["step"] is None
