"""Judge scores on a sample of live replies, on real Postgres with real runs of the live agent: the evolution's
judge (the scripted OpenAI-wire server) scores a deterministic share of both revisions' replies over the canary's
window, the scores join the canary evidence, and a canary the judge finds worse is rolled back — also while its
promotion waits for the owner's approval, which then fails with a 409 that says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o.agent import runs
from o.agent.runner import drive
from o.evolution import evaluator, live_judge, loop, owner
from o.evolution.evaluator import JUDGE_MARKER
from o.store import evolution as evolution_store
from o.store import orgs
from o.store.db import Database
from o.store.evolution import Evolution
from tests import wiring
from tests.integration.evolution import task
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, Script


class WordyJudgeWorld(task.World):
    """The task's world whose judge, once the canary is live (``live``), likes wordy replies: the one-word
    candidate that passed the gate then scores worse on live traffic."""

    live: bool = False

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        system = messages[0].get("content") if messages else ""
        if self.live and isinstance(system, str) and system.startswith(JUDGE_MARKER):
            shown = json.loads(messages[-1]["content"])
            score = 1.0 if len(shown["assistant_reply"]) > 40 else 0.1
            return Reply(text=json.dumps({"score": score, "reason": "wordy is better"}), usage=(300, 20))
        return super().__call__(body)


@pytest.fixture
def wordy() -> WordyJudgeWorld:
    return WordyJudgeWorld()


@pytest.fixture
def wordy_server(wordy: WordyJudgeWorld) -> Any:
    with OpenAIServer(Script(default=wordy)) as s:
        yield s


# live turns per test: the canary's half of them is a stable hash of random run ids, so with 16 turns one
# side got fewer than the judge's 3 scores in ~0.4% of runs (a suite run saw it); with 24, ~0.004%
TURNS = 24


def _judged_suite(**canary: Any) -> evaluator.Suite:
    suite = task.suite()
    rules = suite.gate.canary.model_copy(update={"judge_sample": 1.0, "min_judged": 3, "judge_alpha": 0.05, **canary})
    return suite.model_copy(update={"gate": suite.gate.model_copy(update={"canary": rules})})


def _agent(db: Database, server: OpenAIServer, suite: evaluator.Suite, **policy: Any) -> tuple[str, str]:
    org, agent_id = task.make_agent(db, server)
    with db.transaction() as conn:
        evaluator.save_suite(conn, org, agent_id, suite)
        owner.save(conn, org, agent_id, owner.OwnerPolicy(**policy))
    return org, agent_id


def _live_turns(deps: loop.EvolutionDeps, org: str, agent_id: str, count: int) -> list[str]:
    """Real turns of the live agent: the canary router sends each to its revision, the run's end records it."""
    countries = list(task.CAPITALS)
    ids = []
    for i in range(count):
        with deps.db.transaction() as conn:
            text = f"What is the capital of {countries[i % len(countries)]}?"
            started = runs.start(conn, org, agent_id, [runs.InputMessage("user", text)], {"max_steps": 5})
        drive(deps.engine.deps(), started.run.id)
        ids.append(started.run.id)
    return ids


def _evolution(db: Database, evolution_id: str) -> Evolution:
    with db.transaction() as conn:
        evo = evolution_store.get(conn, evolution_id)
    assert evo is not None
    return evo


def _to_canary(deps: loop.EvolutionDeps, org: str, agent_id: str) -> Evolution:
    evo = loop.start(deps, org, agent_id, trigger="api")
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        loop.step(deps, evo.id, action)
    return _evolution(deps.db, evo.id)


def test_sampling_is_deterministic_per_evolution_and_run() -> None:
    picks = [live_judge.sampled("evolution-a", f"run-{i}", 0.3) for i in range(2000)]
    assert picks == [live_judge.sampled("evolution-a", f"run-{i}", 0.3) for i in range(2000)]
    assert 0.25 < sum(picks) / len(picks) < 0.35
    assert picks != [live_judge.sampled("evolution-b", f"run-{i}", 0.3) for i in range(2000)]
    assert not any(live_judge.sampled("evolution-a", f"run-{i}", 0.0) for i in range(100))


def test_a_canary_the_judge_finds_worse_is_rolled_back(
    db: Database, wordy_server: OpenAIServer, wordy: WordyJudgeWorld
) -> None:
    deps = task.make_deps(db)
    org, agent_id = _agent(db, wordy_server, _judged_suite())
    wordy.propose(task.BETTER)
    evo = _to_canary(deps, org, agent_id)
    assert evo.status == "canary", evo.reason
    wordy.live = True
    _live_turns(deps, org, agent_id, TURNS)
    done = loop.step(deps, evo.id, "evaluate")
    final = _evolution(db, evo.id)
    assert done.status == "rolled_back", final.reason
    assert "canary judge score 0.10 vs 1.00" in (final.reason or "")
    canary = final.figures["canary"]
    assert canary["checks"]["judge"]["failed"] is True and canary["checks"]["errors"]["failed"] is False
    assert canary["judge"]["judged"] == canary["judge"]["sampled"] == TURNS and canary["judge"]["fraction"] == 1.0
    # the judge's spend is the evolution's: 320 tokens a score at gpt-4o-mini's input and output prices
    assert final.figures["live_judge"]["tokens"] == TURNS * 320
    assert final.figures["live_judge"]["usd"] == pytest.approx(TURNS * (300 * 0.15 + 20 * 0.60) / 1e6)
    # each sampled reply keeps its score; the decision's history passage in the agent's memory names the judge
    with db.transaction() as conn:
        scored = conn.execute(
            "SELECT count(*) AS n FROM revision_outcomes WHERE agent_id = %s AND score IS NOT NULL", (agent_id,)
        ).fetchone()
        passage = conn.execute(
            "SELECT text FROM passages WHERE id = %s", (final.figures["memory_passage_id"],)
        ).fetchone()
    assert scored["n"] == TURNS
    assert "canary judge score" in passage["text"]
    assert f"Live judge: {TURNS} sampled live replies scored" in passage["text"]


def test_a_sound_canary_is_judged_and_not_rolled_back(db: Database, server: OpenAIServer, world: task.World) -> None:
    # the task's own judge likes the one-word candidate: its sample of live replies holds the canary up
    deps = task.make_deps(db)
    org, agent_id = _agent(db, server, _judged_suite(judge_sample=0.5))
    world.propose(task.BETTER)
    evo = _to_canary(deps, org, agent_id)
    run_ids = _live_turns(deps, org, agent_id, TURNS)
    done = loop.step(deps, evo.id, "evaluate")
    final = _evolution(db, evo.id)
    assert done.status == "promoted", final.reason
    expected = sum(live_judge.sampled(evo.id, r, 0.5) for r in run_ids)
    assert 0 < final.figures["canary"]["judge"]["judged"] == expected < TURNS


def test_the_canary_is_judged_again_while_its_promotion_waits(
    db: Database, wordy_server: OpenAIServer, wordy: WordyJudgeWorld
) -> None:
    deps = task.make_deps(db)
    org, agent_id = _agent(db, wordy_server, _judged_suite(), approval="promotion")
    wordy.propose(task.BETTER)
    evo = _to_canary(deps, org, agent_id)
    # healthy evidence (no replies the judge could read yet): the promotion waits for the owner
    task.live_traffic(deps)(_evolution(db, evo.id))
    assert loop.step(deps, evo.id, "evaluate").next == "await"
    assert loop.step(deps, evo.id, "await").next == "await"  # still healthy, still waiting
    # live traffic goes on while it waits, and the judge finds the canary worse: rolled back before approval
    wordy.live = True
    _live_turns(deps, org, agent_id, TURNS)
    done = loop.step(deps, evo.id, "await")
    final = _evolution(db, evo.id)
    assert done.status == "rolled_back"
    assert "while its promotion waited for approval: canary judge score" in (final.reason or "")
    assert final.figures["canary_evaluations"][-1]["awaiting"] == "promotion"
    # the owner's approval then finds nothing to approve, and says why
    with db.transaction() as conn:
        _, secret = orgs.create_api_key(conn, org)
    with TestClient(wiring.app(db, evolution=deps), headers={"Authorization": f"Bearer {secret}"}) as client:
        answer = client.post(f"/v1/agents/{agent_id}/evolutions/{evo.id}/approval", json={"approve": True})
    assert answer.status_code == 409, answer.text
    assert "was rolled back while its promotion waited for approval" in answer.text
    assert "nothing left to approve" in answer.text
