"""Sleep-time passes: memory rewritten from the conversation, facts recorded, duplicates consolidated,
triggers (N messages, schedule), the scheduled Lambda handler, the local scheduler, evolution start."""

from __future__ import annotations

import time
from typing import Any

import pytest

from o.config import SleeptimeSettings
from o.evolution import loop, shadow, sleeptime
from o.ids import new_id
from o.memory import archival
from o.store import messages as message_store
from o.store.db import Database
from tests.integration.evolution import task
from tests.lambdas import Context, fresh_handler, service_environment
from tests.servers.openai_server import OpenAIServer


def _say(db: Database, org: str, agent_id: str, *texts: str) -> None:
    with db.transaction() as conn:
        message_store.insert_many(
            conn,
            [
                {
                    "id": new_id("message"),
                    "organization_id": org,
                    "agent_id": agent_id,
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": [{"type": "text", "text": t}],
                    "text": t,
                }
                for i, t in enumerate(texts)
            ],
        )


def _block(db: Database, agent_id: str, label: str) -> str:
    with db.transaction() as conn:
        return conn.execute(
            "SELECT b.value FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id "
            "WHERE ab.agent_id = %s AND ab.label = %s",
            (agent_id, label),
        ).fetchone()["value"]


def _policy(**kw: Any) -> SleeptimeSettings:
    return SleeptimeSettings(**{"every_n_messages": 3, "interval_seconds": 3600, **kw})


def test_pass_rewrites_memory_and_records_facts(db: Database, server: OpenAIServer, deps: loop.EvolutionDeps) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)
    _say(db, org, agent_id, "Hello, I am Ada.", "Nice to meet you, Ada.")
    result = sleeptime.run_pass(deps, org, agent_id, trigger="test", policy=_policy())
    assert result.status == "completed", result.error
    assert result.blocks_rewritten == ["human"] and result.facts_recorded == 1 and result.tool_calls == 3
    assert result.tokens > 0
    assert _block(db, agent_id, "human") == "The user is Ada."
    with db.transaction() as conn:
        facts = archival.list_passages(conn, org, agent_id, tags=["sleeptime"])
    assert [p.text for p in facts] == ["The user asks about capital cities."]
    calls = len(server.requests)
    # nothing new since: the next pass makes no LLM call
    again = sleeptime.run_pass(deps, org, agent_id, trigger="test", policy=_policy())
    assert again.status == "completed" and again.tool_calls == 0 and len(server.requests) == calls
    assert again.through_seq == result.through_seq > 0


def test_tool_errors_are_reported_to_the_model_not_fatal(
    db: Database,
    server: OpenAIServer,
    deps: loop.EvolutionDeps,
) -> None:
    from tests.servers.script import call

    org, agent_id = task.make_agent(db, server, with_suite=False)
    _say(db, org, agent_id, "x")
    server.push(
        call("memory_rethink", label="human", new_memory="y" * 600),
        call("memory_rethink", label="nope", new_memory="z"),
        call("finish_rethinking_memory"),
    )
    result = sleeptime.run_pass(deps, org, agent_id, policy=_policy())
    assert result.status == "completed" and result.blocks_rewritten == []
    tool_results = [m for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert "limit" in tool_results[0]["content"] and "nope" in tool_results[1]["content"]
    assert _block(db, agent_id, "human") == "Unknown user."


def test_budget_exhaustion_fails_the_pass_and_keeps_the_messages_for_the_next(
    db: Database,
    server: OpenAIServer,
    deps: loop.EvolutionDeps,
) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)
    _say(db, org, agent_id, "I am Bo.")
    failed = sleeptime.run_pass(deps, org, agent_id, policy=_policy(max_tokens=1))
    assert failed.status == "failed" and "token budget" in (failed.error or "")
    ok = sleeptime.run_pass(deps, org, agent_id, policy=_policy())
    assert ok.status == "completed" and ok.blocks_rewritten == ["human"]


def test_exact_duplicates_are_consolidated(db: Database, server: OpenAIServer, deps: loop.EvolutionDeps) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)
    with db.transaction() as conn:
        for text in ("Ada likes tea.", "ada  likes tea.", "Ada likes coffee."):
            archival.insert(conn, org, agent_id, text)
    assert sleeptime.dedupe_archival(db, agent_id) == 1
    with db.transaction() as conn:
        assert sorted(p.text for p in archival.list_passages(conn, org, agent_id)) == [
            "Ada likes coffee.",
            "Ada likes tea.",
        ]


def test_triggers_by_message_count_and_schedule(db: Database, server: OpenAIServer, deps: loop.EvolutionDeps) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)  # two recent user messages already
    policy = _policy(every_n_messages=3, interval_seconds=0)

    def due() -> dict[str, str]:
        return {a: trig for _o, a, trig in sleeptime.due_agents(db, policy)}

    assert due()[agent_id] == "schedule"  # the interval (0 s) elapsed and something is new
    _say(db, org, agent_id, "one more question")
    assert due()[agent_id] == "messages"
    sleeptime.run_pass(deps, org, agent_id, policy=policy)
    assert agent_id not in due()
    assert agent_id not in {a for _o, a, _t in sleeptime.due_agents(db, _policy(interval_seconds=3600))}

    # a shadow test's scratch copy, however chatty, is never due
    with db.transaction() as conn:
        scratch = new_id("org")
        conn.execute(
            "INSERT INTO organizations (id, name) VALUES (%s, %s)", (scratch, shadow.scratch_org_name("evolution-x"))
        )
        conn.execute(
            "INSERT INTO agents (id, organization_id, name) VALUES (%s, %s, 'copy')", (scratch + "-a", scratch)
        )
    _say(db, scratch, scratch + "-a", "a", "b", "c", "d", "e", "f")
    assert scratch + "-a" not in due()
    with db.transaction() as conn:
        conn.execute("DELETE FROM organizations WHERE id = %s", (scratch,))


def test_a_pass_may_start_an_evolution(
    db: Database, server: OpenAIServer, world: task.World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.WORSE)
    result = sleeptime.run_pass(deps, org, agent_id, policy=_policy(evolve_every_n_passes=1))
    assert result.evolution_id is not None
    for t in loop._threads:
        t.join(30)
    with db.transaction() as conn:
        evo = conn.execute("SELECT * FROM evolutions WHERE id = %s", (result.evolution_id,)).fetchone()
    assert evo["trigger"] == "sleeptime" and evo["decision"] == "rolled_back"


def test_local_scheduler_runs_due_passes(db: Database, server: OpenAIServer, deps: loop.EvolutionDeps) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)
    _say(db, org, agent_id, "I am Cy.")

    scheduler = sleeptime.start_local_scheduler(deps, _policy(poll_seconds=0.05))
    try:
        deadline = time.monotonic() + 20
        while _block(db, agent_id, "human") != "The user is Cy." and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert _block(db, agent_id, "human") == "The user is Cy."


def test_scheduled_handler_sweeps_due_agents(
    db: Database,
    pg_url: str,
    server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.sleeptime import DEFAULT_INPUT

    service_environment(
        monkeypatch, pg_url, OPENAI_API_KEY="sk-test", O_SLEEPTIME_EVERY_N_MESSAGES="3", O_LLM_MAX_RETRIES="0"
    )
    org, agent_id = task.make_agent(db, server, with_suite=False)
    _say(db, org, agent_id, "I am Di.")
    context = Context("o-sleeptime")
    with fresh_handler("functions.sleeptime.handler") as handler:
        out = handler.handler(dict(DEFAULT_INPUT), context)
        mine = [p for p in out["passes"] if p["agent_id"] == agent_id]
        assert mine and mine[0]["status"] == "completed" and mine[0]["trigger"] == "messages"
        assert _block(db, agent_id, "human") == "The user is Di."
        one = handler.handler({"agent_id": agent_id, "organization_id": org}, context)
        assert one["passes"][0]["status"] == "completed"
        with pytest.raises(ValueError):
            handler.handler({"agent_id": agent_id}, context)


def test_near_duplicates_are_consolidated_by_embedding(db: Database, server: OpenAIServer) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)
    for text in (
        "Ada likes green tea.",
        "Ada likes green tea!",
        "Ada really likes green tea.",
        "The Eiffel tower is in Paris.",
        "Ada's favourite drink is green tea.",
    ):
        with db.transaction() as conn:
            archival.insert(conn, org, agent_id, text)
    assert sleeptime.dedupe_near(db, agent_id, similarity=0.97, window=40) == 2
    with db.transaction() as conn:
        kept = sorted(p.text for p in archival.list_passages(conn, org, agent_id))
    assert kept == ["Ada likes green tea.", "Ada's favourite drink is green tea.", "The Eiffel tower is in Paris."]


def test_after_user_messages_trigger(db: Database, server: OpenAIServer, deps: loop.EvolutionDeps) -> None:
    org, agent_id = task.make_agent(db, server, with_suite=False)  # two user messages so far
    policy = _policy(every_n_messages=3)
    assert not sleeptime.after_user_messages(deps, org, agent_id, policy=policy, background=False)
    _say(db, org, agent_id, "I am Ed.")
    assert sleeptime.after_user_messages(deps, org, agent_id, policy=policy, background=False)
    assert _block(db, agent_id, "human") == "The user is Ed."
    # counted again from the pass just made
    assert not sleeptime.after_user_messages(deps, org, agent_id, policy=policy, background=False)
