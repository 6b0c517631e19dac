"""The deterministic evolution task: promote the better candidate, roll back every bad one, keep history."""

from __future__ import annotations

import time
from typing import Any

import pytest

from o.agent import revisions
from o.evolution import evaluator, loop
from o.store import evolution as evolution_store
from o.store.db import Database
from o.store.evolution import Evolution
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.servers.openai_server import OpenAIServer


def _run(deps: loop.EvolutionDeps, org: str, agent: str, **kw: Any) -> Evolution:
    evo = loop.start(deps, org, agent, budget=kw.pop("budget", None))
    return loop.run_local(deps, evo.id, sleep=lambda _s: None, during_bake=task.live_traffic(deps), **kw)


def _agent(db: Database, agent_id: str) -> dict:
    with db.transaction() as conn:
        return conn.execute("SELECT * FROM agents WHERE id = %s", (agent_id,)).fetchone()


def _memory(db: Database, agent_id: str) -> list[dict]:
    with db.transaction() as conn:
        return conn.execute(
            "SELECT text, tags, metadata, embedding_dim FROM passages WHERE agent_id = %s AND 'evolution' = ANY(tags)",
            (agent_id,),
        ).fetchall()


def _no_scratch_left(db: Database) -> None:
    with db.transaction() as conn:
        left = conn.execute("SELECT count(*) AS n FROM organizations WHERE name LIKE 'o-scratch/%'").fetchone()
    assert left["n"] == 0


def test_better_candidate_is_promoted_and_remembered(db: Database, server: OpenAIServer, world: World, deps) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    final = _run(deps, org, agent_id)
    assert final.decision == "promoted", final.reason
    assert final.status == "promoted" and final.completed_at is not None
    shadow = final.figures["shadow"]
    assert shadow["candidate"]["score"] > shadow["current"]["score"]
    assert shadow["current"]["n"] == 2 + len(task.GATE_COUNTRIES)
    canary = final.figures["canary"]
    assert canary["candidate"]["turns"] >= 3 and canary["base"]["turns"] >= 1
    assert canary["candidate"]["feedback"] > canary["base"]["feedback"]

    agent = _agent(db, agent_id)
    assert agent["revision"] == final.candidate_revision == 2
    assert task.ONE_WORD in agent["system"]
    assert agent["metadata"]["revision"] == 2
    with db.transaction() as conn:
        rev = revisions.get(conn, org, agent_id, 2)
    assert rev["author"] == "agent" and rev["parent"] == 1 and rev["evolution_id"] == final.id
    assert "+" in rev["diff"]["system"] and task.ONE_WORD in rev["diff"]["system"]

    [memory] = _memory(db, agent_id)
    assert "promoted" in memory["tags"] and final.id in memory["text"] and task.ONE_WORD in memory["text"]
    assert memory["metadata"]["evolution_id"] == final.id
    assert memory["embedding_dim"] == 384  # stored through archival memory, embedded, searchable
    with db.transaction() as conn:
        phases = [e["phase"] for e in evolution_store.events(conn, final.id)]
    assert phases[:2] == ["started", "reflected"] and phases[-1] == "promoted"
    assert {"proposed", "shadowed", "gated", "canary"} <= set(phases)
    _no_scratch_left(db)

    # the next reflection recalls this evolution from the agent's memory
    world.propose(task.WORSE)
    again = _run(deps, org, agent_id)
    assert final.id in again.reflection["history"][0]
    proposer_request = next(
        r for r in reversed(server.requests) if r["messages"][0]["content"].startswith("You propose")
    )
    assert final.id in proposer_request["messages"][1]["content"]


@pytest.mark.parametrize(
    "proposal, reason",
    [
        (task.WORSE, "gate refused"),
        (task.CRASHING, "gate refused"),
        (task.TAMPERING, "evaluator"),
        ("this is not json", "propose failed"),
    ],
)
def test_bad_candidates_are_rolled_back(
    proposal: object,
    reason: str,
    db: Database,
    server: OpenAIServer,
    world: World,
    deps,
) -> None:
    org, agent_id = task.make_agent(db, server)
    before = _agent(db, agent_id)
    world.propose(proposal)  # type: ignore[arg-type]
    final = _run(deps, org, agent_id)
    assert final.decision == "rolled_back" and final.status == "rolled_back"
    assert reason in final.reason, final.reason
    after = _agent(db, agent_id)
    assert after["revision"] == 1 and after["system"] == before["system"]
    assert after["llm_config"] == before["llm_config"]
    [memory] = _memory(db, agent_id)
    assert "rolled_back" in memory["tags"] and final.reason[:40] in memory["text"]
    _no_scratch_left(db)
    if proposal is task.CRASHING:
        assert final.figures["shadow"]["candidate"]["error_rate"] == 1.0
    if proposal is task.TAMPERING:
        with db.transaction() as conn:
            assert evaluator.current_hash(conn, agent_id) == final.evaluator_hash


def test_timing_out_candidate_is_rolled_back_within_budget(
    db: Database,
    server: OpenAIServer,
    world: World,
    deps,
) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.TIMING_OUT)
    t0 = time.monotonic()
    final = _run(deps, org, agent_id, budget={"max_seconds": 1.0})
    elapsed = time.monotonic() - t0
    assert final.decision == "rolled_back"
    assert "time budget" in final.reason, final.reason
    assert elapsed < 1.0 + task.SLOW_SECONDS
    assert _agent(db, agent_id)["revision"] == 1
    # the abandoned replay still removes its scratch copy
    time.sleep(task.SLOW_SECONDS + 0.3)
    _no_scratch_left(db)


def test_token_budget_rolls_back(db: Database, server: OpenAIServer, world: World, deps) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    final = _run(deps, org, agent_id, budget={"max_tokens": 50})
    assert final.decision == "rolled_back" and "token budget" in final.reason


def test_evaluator_changed_mid_evolution_is_refused(db: Database, server: OpenAIServer, world: World, deps) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id)
    for action in ("reflect", "propose", "shadow"):
        assert loop.step(deps, evo.id, action).status != "rolled_back"
    # something (a tool, a person) loosens the gate while the candidate is being judged
    relaxed = task.suite().model_copy(update={"gate": evaluator.Gate(min_improvement=-1.0)})
    with db.transaction() as conn:
        evaluator.save_suite(conn, org, agent_id, relaxed)
    result = loop.step(deps, evo.id, "gate")
    assert result.status == "rolled_back" and result.next == "done"
    with db.transaction() as conn:
        final = evolution_store.get(conn, evo.id)
    assert "evaluator" in final.reason


def test_stop_rolls_back_a_running_canary(db: Database, server: OpenAIServer, world: World, deps) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id)
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        loop.step(deps, evo.id, action)
    with db.transaction() as conn:
        assert evolution_store.get(conn, evo.id).status == "canary"
    final = loop.stop(deps, org, evo.id)
    assert final.decision == "rolled_back" and final.stop_requested
    assert _agent(db, agent_id)["revision"] == 1
    # a late step of the stopped evolution changes nothing
    assert loop.step(deps, evo.id, "evaluate").next == "done"
    assert _agent(db, agent_id)["revision"] == 1


def test_one_evolution_per_agent(db: Database, server: OpenAIServer, deps) -> None:
    from o.errors import Conflict

    org, agent_id = task.make_agent(db, server)
    loop.start(deps, org, agent_id)
    with pytest.raises(Conflict):
        loop.start(deps, org, agent_id)


def test_held_out_score_improves_after_promotion(db: Database, server: OpenAIServer, world: World, deps) -> None:
    org, agent_id = task.make_agent(db, server)
    before = task.held_out_score(deps, org, agent_id, 1)
    world.propose(task.BETTER)
    final = _run(deps, org, agent_id)
    after = task.held_out_score(deps, org, agent_id, final.candidate_revision)
    assert before < 0.6 < 0.99 < after


def test_shadow_replays_never_run_user_tools(db: Database, server: OpenAIServer) -> None:
    from o.agent import revisions
    from o.evolution import shadow
    from o.ids import new_id
    from tests.servers.script import call

    org, agent_id = task.make_agent(db, server)
    tool_id = new_id("tool")
    with db.transaction() as conn:
        conn.execute(
            """INSERT INTO tools (id, organization_id, name, source_code, json_schema) VALUES (%s, %s, 'wire_money',
               'def wire_money() -> str:\n    raise SystemExit(1)\n', %s::jsonb)""",
            (
                tool_id,
                org,
                '{"name": "wire_money", "description": "sends money", "parameters": '
                '{"type": "object", "properties": {}}}',
            ),
        )
        conn.execute("INSERT INTO agent_tools (agent_id, tool_id) VALUES (%s, %s)", (agent_id, tool_id))
        source = conn.execute("SELECT * FROM agents WHERE id = %s", (agent_id,)).fetchone()
        config = revisions.current(conn, org, agent_id)["config"]
    assert config["tool_ids"] == [tool_id]
    server.push(call("wire_money", request_heartbeat=True), call("send_message", message="done"))
    [result] = shadow.run_shadow(
        task.make_engine(db), "evolution-tools", source, config, [shadow.Replay("r", "pay Bob")], deadline=None
    )
    assert result.ok and result.reply == "done"
    tool_message = next(m for m in server.requests[-1]["messages"] if m["role"] == "tool")
    assert "[shadow test] user tool 'wire_money' is not run" in tool_message["content"]
    _no_scratch_left(db)


def test_an_interrupted_evolution_resumes_from_its_status(
    db: Database,
    server: OpenAIServer,
    world: World,
    deps: loop.EvolutionDeps,
) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id)
    for action in ("reflect", "propose", "shadow"):
        loop.step(deps, evo.id, action)
    calls = len(server.requests)
    # the process died here; a new one starts and picks the evolution up where it stood
    resumed = loop.resume_incomplete(deps)
    assert evo.id in resumed
    for thread in list(loop._threads):
        thread.join(30)
    with db.transaction() as conn:
        final = evolution_store.get(conn, evo.id)
    assert final.completed_at is not None
    # no canary traffic in this test: the canary is inconclusive and rolled back, after the gate passed
    assert final.decision == "rolled_back" and "inconclusive" in final.reason
    with db.transaction() as conn:
        phases = [e["phase"] for e in evolution_store.events(conn, evo.id)]
    assert phases.count("reflected") == 1 and phases.count("shadowed") == 1 and "gated" in phases
    # reflect, propose and shadow were not redone: no new proposer or shadow LLM calls
    assert len(server.requests) == calls


def test_a_step_that_cannot_finish_in_its_invocation_rolls_back(
    db: Database,
    server: OpenAIServer,
    world: World,
    deps: loop.EvolutionDeps,
) -> None:
    from dataclasses import replace

    org, agent_id = task.make_agent(db, server)
    world.propose(task.TIMING_OUT)
    evo = loop.start(deps, org, agent_id)  # a generous evolution budget (60 s) ...
    loop.step(deps, evo.id, "reflect")
    loop.step(deps, evo.id, "propose")
    # ... but the Lambda running the shadow step has one second left
    result = loop.step(replace(deps, step_deadline=time.monotonic() + 1.0), evo.id, "shadow")
    assert result.status == "rolled_back"
    with db.transaction() as conn:
        assert "time budget exhausted during the shadow test" in evolution_store.get(conn, evo.id).reason
    time.sleep(task.SLOW_SECONDS + 0.3)
    _no_scratch_left(db)
