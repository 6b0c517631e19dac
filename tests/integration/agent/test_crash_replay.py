"""A crash between the LLM reply and the tool result, then a resume, yields one copy of everything."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from o.agent import runs as run_api
from o.agent.engine import Engine
from o.agent.runner import drive
from o.agent.step import Outcome, SimulatedCrash, advance, execute, step_id_for
from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


def _start(db: Database, org: str, agent_id: str, text: str) -> str:
    with db.transaction() as conn:
        started = run_api.start(conn, org, agent_id, [run_api.InputMessage("user", text)], {"max_steps": 10})
    return started.run.id


def _messages(db: Database, agent_id: str) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return conn.execute("SELECT * FROM messages WHERE agent_id = %s ORDER BY seq", (agent_id,)).fetchall()


def _org_of(db: Database, agent_id: str) -> str:
    with db.transaction() as conn:
        row = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
    assert row is not None
    return row["organization_id"]


@pytest.fixture
def scripted(api, openai_server: OpenAIServer) -> tuple[str, str]:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call("core_memory_append", label="human", content="Likes tea.", request_heartbeat=True),
        call("send_message", message="Noted: tea."),
    )
    return agent["id"], _org_of(api.app.state.db, agent["id"])


def _assert_exactly_once(db: Database, agent_id: str) -> None:
    rows = _messages(db, agent_id)
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant", "tool"]
    assert all(n == 1 for n in Counter(r["id"] for r in rows).values())
    with db.transaction() as conn:
        value = conn.execute(
            """SELECT b.value FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id
               WHERE ab.agent_id = %s AND ab.label = 'human'""",
            (agent_id,),
        ).fetchone()["value"]
    # The append happened once, not once per attempt.
    assert value.count("Likes tea.") == 1


def test_phase_one_replay_does_not_call_the_llm_again(engine: Engine, scripted, openai_server) -> None:
    agent_id, org = scripted
    run_id = _start(engine.db, org, agent_id, "I like tea")
    deps = engine.deps()
    first = advance(deps, run_id, "step", 0)
    assert (first.next, first.iteration) == ("tools", 0)
    # The worker "dies" here: the state machine (or a fresh runner) retries the same action.
    assert advance(engine.deps(), run_id, "step", 0) == first
    assert execute(engine.deps(), run_id, 0, "step") == first
    assert len(openai_server.requests) == 1
    outcome = drive(engine.deps(), run_id)
    assert (outcome.next, outcome.stop_reason) == ("done", "end_turn")
    assert len(openai_server.requests) == 2
    _assert_exactly_once(engine.db, agent_id)


@pytest.mark.parametrize("point", ["before_tool_commit", "after_tool"])
def test_crash_around_the_tool_result_then_resume(engine: Engine, scripted, openai_server, point: str) -> None:
    agent_id, org = scripted
    run_id = _start(engine.db, org, agent_id, "I like tea")
    crashed = []

    def die_once(at: str) -> None:
        if at == point and not crashed:
            crashed.append(at)
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        drive(engine.deps(fault=die_once), run_id)
    assert crashed == [point]
    # A fresh runner picks the run up from its durable state.
    outcome = drive(engine.deps(), run_id)
    assert (outcome.next, outcome.stop_reason) == ("done", "end_turn")
    assert len(openai_server.requests) == 2
    _assert_exactly_once(engine.db, agent_id)


def test_crash_after_llm_before_storing_calls_llm_once_more(engine: Engine, scripted, openai_server) -> None:
    """Nothing was stored, so the retry asks the LLM again; still one copy of each message."""
    agent_id, org = scripted
    openai_server.script.reset()
    openai_server.push(
        call("core_memory_append", label="human", content="Likes tea.", request_heartbeat=True),
        call("core_memory_append", label="human", content="Likes tea.", request_heartbeat=True),
        call("send_message", message="Noted: tea."),
    )
    run_id = _start(engine.db, org, agent_id, "I like tea")
    with pytest.raises(SimulatedCrash):
        execute(
            engine.deps(fault=lambda at: (_ for _ in ()).throw(SimulatedCrash(at)) if at == "after_llm" else None),
            run_id,
            0,
            "step",
        )
    with engine.db.transaction() as conn:
        assert conn.execute("SELECT 1 FROM steps WHERE id = %s", (step_id_for(run_id, 0),)).fetchone() is None
    drive(engine.deps(), run_id)
    assert len(openai_server.requests) == 3
    _assert_exactly_once(engine.db, agent_id)


def test_replaying_tools_of_a_completed_step_changes_nothing(engine: Engine, scripted) -> None:
    agent_id, org = scripted
    run_id = _start(engine.db, org, agent_id, "I like tea")
    drive(engine.deps(), run_id)
    before = _messages(engine.db, agent_id)
    # late duplicates of any action of the finished run only report that it is done
    assert execute(engine.deps(), run_id, 0, "tools").next == "done"
    assert execute(engine.deps(), run_id, 1, "step").next == "done"
    assert advance(engine.deps(), run_id, "tools", 7) == Outcome(run_id, 7, "done", "end_turn")
    assert [r["id"] for r in _messages(engine.db, agent_id)] == [r["id"] for r in before]
    _assert_exactly_once(engine.db, agent_id)


def test_resume_stale_finishes_runs_left_behind(engine: Engine, scripted, openai_server) -> None:
    from o.agent.runner import resume_stale

    agent_id, org = scripted
    run_id = _start(engine.db, org, agent_id, "I like tea")
    assert advance(engine.deps(), run_id, "step").next == "tools"
    # the process "stops" here; on the next start the run is found and finished
    assert resume_stale(engine.deps(), idle_s=3600) == []  # still fresh: maybe a live worker has it
    with engine.db.transaction() as conn:
        conn.execute("UPDATE runs SET updated_at = now() - interval '2 hours' WHERE id = %s", (run_id,))
    outcomes = resume_stale(engine.deps(), idle_s=3600)
    assert [(o.run_id, o.next, o.stop_reason) for o in outcomes] == [(run_id, "done", "end_turn")]
    _assert_exactly_once(engine.db, agent_id)


def test_concurrent_replays_of_the_tools_phase_apply_each_edit_once(engine: Engine, scripted) -> None:
    """Two workers given the same tools action at once (a duplicated invocation)."""
    import threading

    agent_id, org = scripted
    run_id = _start(engine.db, org, agent_id, "I like tea")
    assert advance(engine.deps(), run_id, "step").next == "tools"
    barrier = threading.Barrier(2)
    outcomes: list[Outcome] = []

    def worker() -> None:
        barrier.wait()
        outcomes.append(execute(engine.deps(), run_id, 0, "tools"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [(o.next, o.iteration) for o in outcomes] == [("step", 1), ("step", 1)]
    drive(engine.deps(), run_id)
    _assert_exactly_once(engine.db, agent_id)


def test_concurrent_replays_of_the_llm_phase_store_one_reply(engine: Engine, scripted, openai_server) -> None:
    import threading

    agent_id, org = scripted
    openai_server.script.reset()

    def reply(body: dict[str, Any]) -> Any:
        # whoever asks first or second, the answer depends only on the conversation so far
        if body["messages"][-1]["role"] == "user":
            return call("core_memory_append", label="human", content="Likes tea.", request_heartbeat=True)
        return call("send_message", message="Noted: tea.")

    openai_server.script.default = reply
    run_id = _start(engine.db, org, agent_id, "I like tea")
    barrier = threading.Barrier(2)
    outcomes: list[Outcome] = []

    def worker() -> None:
        barrier.wait()
        outcomes.append(execute(engine.deps(), run_id, 0, "step"))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [o.next for o in outcomes] == ["tools", "tools"]
    drive(engine.deps(), run_id)
    _assert_exactly_once(engine.db, agent_id)


def test_a_run_deleted_with_its_agent_ends_the_loop(engine: Engine, scripted) -> None:
    agent_id, org = scripted
    run_id = _start(engine.db, org, agent_id, "I like tea")
    with engine.db.transaction() as conn:
        conn.execute("DELETE FROM agents WHERE id = %s", (agent_id,))
    assert advance(engine.deps(), run_id, "step", 4) == Outcome(run_id, 4, "failed", "error")
