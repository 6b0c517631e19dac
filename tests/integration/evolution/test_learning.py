"""Proposals that learn, on real Postgres: the reflection reads failed and badly rated traces and the earlier
attempts, several candidates are shadow-tested per pass and chosen from the Pareto front, and a candidate
that repeats a rolled-back change is skipped before it costs a replay."""

from __future__ import annotations

import json
from typing import Any

from o.agent import runs
from o.evolution import loop
from o.store import evolution as evolution_store
from o.store.db import Database
from o.store.evolution import Evolution
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.servers.openai_server import OpenAIServer


def _run(deps: loop.EvolutionDeps, org: str, agent_id: str) -> Evolution:
    evo = loop.start(deps, org, agent_id, trigger="api")
    return loop.run_local(deps, evo.id, sleep=lambda _s: None, during_bake=task.live_traffic(deps))


def _proposer_reflection(server: OpenAIServer) -> dict[str, Any]:
    request = [r for r in server.requests if "You propose one improvement" in json.dumps(r)][-1]
    shown: dict[str, Any] = json.loads(task._text(request["messages"][-1]["content"]))["reflection"]
    return shown


def test_several_candidates_the_best_of_the_front_goes_on(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose({"candidates": [task.WORSE, task.BETTER]})
    final = _run(deps, org, agent_id)
    assert final.decision == "promoted", final.reason
    assert final.rationale == task.BETTER["rationale"] and final.candidate_revision == 3
    listed = {c["revision"]: c for c in final.figures["shadow"]["candidates"]}
    assert set(listed) == {2, 3}
    assert listed[3]["chosen"] and listed[3]["gate_passed"] and listed[3]["on_front"]
    assert not listed[2]["chosen"] and not listed[2]["gate_passed"]
    with db.transaction() as conn:
        shadow_events = [e["message"] for e in evolution_store.events(conn, final.id) if e["phase"] == "shadow"]
    # the current revision is replayed once, each candidate once
    assert [m.split(" revision ")[0].split(" the ")[-1] for m in shadow_events] == ["current", "candidate", "candidate"]


def test_a_rejected_change_is_not_tried_again_and_the_reflection_remembers_it(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.WORSE)
    first = _run(deps, org, agent_id)
    assert first.decision == "rolled_back" and "gate refused" in (first.reason or "")

    # a user rates one reply badly: the next reflection reads that trace
    with db.transaction() as conn:
        run_id = runs.start(conn, org, agent_id, [runs.InputMessage("user", "Capital of Chad?")], {}).run.id
        evolution_store.insert_feedback(
            conn,
            {
                "id": f"feedback-{first.id}",
                "organization_id": org,
                "agent_id": agent_id,
                "run_id": run_id,
                "message_id": None,
                "score": 0.0,
                "comment": "far too wordy",
                "revision": 1,
            },
        )
    world.propose(task.WORSE)
    again = _run(deps, org, agent_id)
    assert again.decision == "rolled_back"
    assert again.reason == f"no candidate left to test: repeats the change rolled back in {first.id}"
    assert again.candidate_revision is None  # skipped before any replay
    reflection = _proposer_reflection(server)
    [attempt] = reflection["attempts"]
    assert attempt["decision"] == "rolled_back" and attempt["rationale"] == task.WORSE["rationale"]
    assert "riddles" in attempt["change"] and attempt["reason"].startswith("gate refused")
    assert any(t["comment"] == "far too wordy" and t["score"] == 0.0 for t in reflection["failed_traces"])
    assert any(t["input"] == "Capital of Chad?" for t in reflection["failed_traces"])
