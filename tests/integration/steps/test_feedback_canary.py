"""Step feedback is evidence for the evolution gate: a canary whose replies users thumb down is rolled back,
one they approve of is promoted. Real runs over the API, served by the canary router, rated through the
strict letta-client, judged by the evolution's own evaluate phase (the one code path of local and AWS:
feedback always comes from the feedback table, credited to the revision that served the rated run)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from o.evolution import loop
from o.store import evolution as evolution_store
from o.store import orgs
from o.store.db import Database
from tests import wiring
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.integration.steps.conftest import strict_client
from tests.served import served
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script

TURNS = 20


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def server(world: World) -> Iterator[OpenAIServer]:
    with OpenAIServer(Script(default=world)) as s:
        yield s


@pytest.fixture
def deps(db: Database) -> loop.EvolutionDeps:
    return task.make_deps(db)


@pytest.fixture
def base_url(db: Database, deps: loop.EvolutionDeps) -> Iterator[str]:
    with served(wiring.app(db, evolution=deps)) as url:
        yield url


def _canary(db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps) -> tuple[str, str, str]:
    """An agent whose better candidate (it passes the shadow gate) now takes half the traffic; (key, agent, evo)."""
    org, agent_id = task.make_agent(db, server)
    with db.transaction() as conn:
        _, key = orgs.create_api_key(conn, org)
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id)
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        loop.step(deps, evo.id, action)
    with db.transaction() as conn:
        current = evolution_store.get(conn, evo.id)
    assert current.status == "canary", current.reason
    return key, agent_id, evo.id


def _rate_turns(base_url: str, key: str, agent_id: str, verdicts: dict[int, str]) -> dict[int, int]:
    """TURNS live turns; each turn's step is rated with the verdict for the revision that served it."""
    letta = strict_client(base_url, key)
    served = {1: 0, 2: 0}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for i in range(TURNS):
            country = list(task.CAPITALS)[i % len(task.CAPITALS)]
            body = {"messages": [{"role": "user", "content": f"What is the capital of {country}?"}]}
            sent = http.post(f"/v1/agents/{agent_id}/messages", json=body)
            assert sent.status_code == 200, sent.text
            [run_id] = sent.json()["usage"]["run_ids"]
            revision = http.get(f"/v1/runs/{run_id}").json()["metadata"]["revision"]
            served[revision] += 1
            [step] = letta.steps.list(trace_ids=[run_id]).items
            assert letta.steps.feedback.create(step.id, feedback=verdicts[revision]).feedback == verdicts[revision]
    return served


def test_a_canary_collecting_negative_feedback_is_rolled_back(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps, base_url: str
) -> None:
    key, agent_id, evo_id = _canary(db, server, world, deps)
    served = _rate_turns(base_url, key, agent_id, {1: "positive", 2: "negative"})
    assert min(served.values()) >= 3, served  # both revisions served live turns
    result = loop.step(deps, evo_id, "evaluate")
    with db.transaction() as conn:
        final = evolution_store.get(conn, evo_id)
    assert result.status == "rolled_back" and final.decision == "rolled_back", final.reason
    assert "canary feedback 0.00 vs 1.00" in final.reason
    assert final.figures["canary"]["candidate"]["feedback_count"] == served[2]
    with db.transaction() as conn:
        assert conn.execute("SELECT revision FROM agents WHERE id = %s", (agent_id,)).fetchone()["revision"] == 1


def test_a_canary_with_positive_feedback_is_promoted(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps, base_url: str
) -> None:
    key, agent_id, evo_id = _canary(db, server, world, deps)
    served = _rate_turns(base_url, key, agent_id, {1: "positive", 2: "positive"})
    assert min(served.values()) >= 3, served
    result = loop.step(deps, evo_id, "evaluate")
    with db.transaction() as conn:
        final = evolution_store.get(conn, evo_id)
        events = [(e["phase"], e["message"]) for e in evolution_store.events(conn, evo_id)]
    assert final.decision == "promoted", (result, events[-2:], final.figures.get("canary"))
