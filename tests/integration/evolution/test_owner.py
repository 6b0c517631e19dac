"""The owner's policy on real Postgres: what may change, budgets per pass and per day, the schedule,
approval gates (through the API's route), and the decision events (a webhook through the outbound policy)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o.errors import Conflict
from o.evolution import loop, owner
from o.evolution.notify import Webhook
from o.net.outbound import OutboundPolicy
from o.store import evolution as evolution_store
from o.store import orgs
from o.store.db import Database
from o.store.evolution import Evolution
from tests import wiring
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.servers.capture import CaptureServer
from tests.servers.openai_server import OpenAIServer


@pytest.fixture
def api(db: Database, deps: loop.EvolutionDeps) -> Callable[[str], AbstractContextManager[TestClient]]:
    """An API client acting for an organization (an API key of its own), on the same evolution deps."""
    app = wiring.app(db, evolution=deps)

    @contextmanager
    def client(org: str) -> Iterator[TestClient]:
        with db.transaction() as conn:
            _, secret = orgs.create_api_key(conn, org)
        with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as c:
            yield c

    return client


def _set(db: Database, org: str, agent_id: str, **policy: Any) -> None:
    with db.transaction() as conn:
        owner.save(conn, org, agent_id, owner.OwnerPolicy(**policy))


def _run(deps: loop.EvolutionDeps, org: str, agent_id: str, **start: Any) -> Evolution:
    evo = loop.start(deps, org, agent_id, trigger=start.pop("trigger", "api"), budget=start or None)
    return loop.run_local(deps, evo.id, sleep=lambda _s: None, during_bake=task.live_traffic(deps))


def _phases(db: Database, evolution_id: str) -> list[str]:
    with db.transaction() as conn:
        return [e["phase"] for e in evolution_store.events(conn, evolution_id)]


def test_a_proposal_outside_what_the_owner_allows_is_refused(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    _set(db, org, agent_id, may_change=["llm_config", "tool_rules"])
    world.propose(task.BETTER)  # a system prompt change
    final = _run(deps, org, agent_id)
    assert final.decision == "rolled_back" and final.candidate_revision is None
    assert "['system'], which the owner's policy does not let an evolution change" in (final.reason or "")
    # the proposer was told what it may change
    request = next(r for r in server.requests if "You propose one improvement" in json.dumps(r))
    assert "only these keys of the configuration: tool_rules, llm_config" in json.dumps(request)


def test_token_budgets_per_pass_and_per_day(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    _set(db, org, agent_id, max_tokens_per_pass=50_000, max_tokens_per_day=60)
    world.propose(task.BETTER)
    first = _run(deps, org, agent_id)
    # the day's 60 tokens were the pass's limit: spent by the proposal and the replays, then rolled back
    assert first.budget["max_tokens"] == 60
    assert first.decision == "rolled_back" and "token budget of 60 exhausted" in (first.reason or "")
    assert first.tokens_used > 60
    # the day's budget is spent: no other evolution starts today, whoever asks
    for trigger in ("api", "sleeptime"):
        with pytest.raises(Conflict, match="daily evolution budget is spent"):
            loop.start(deps, org, agent_id, trigger=trigger)
    # a dollar budget is counted in list-price dollars, input and output tokens each at its own price
    _set(db, org, agent_id, max_usd_per_pass=0.0004)
    with db.transaction() as conn:
        evolution_store.update(conn, first.id, {"tokens_used": 0})  # a new day, as far as the budget knows
        evolution_store.add_figures(conn, first.id, {"usd_used": 0.0})
    # the proposal reports 1,000 prompt and 500 completion tokens: at gpt-4o-mini's $0.15 / $0.60 per million
    # that is $0.00045, over the pass's $0.0004 (priced as input only it would have been $0.000225)
    world.proposal_usage = (1000, 500)
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id, trigger="api")
    assert evo.budget["max_usd"] == 0.0004 and evo.budget["max_tokens"] > 60
    loop.step(deps, evo.id, "reflect")
    stopped = loop.step(deps, evo.id, "propose")
    assert stopped.status == "rolled_back"
    spent = _evolution(db, evo.id)
    assert spent.figures["usd_used"] == pytest.approx(0.00045)
    assert "dollar budget of $0.000400 exhausted ($0.000450 used at list price)" in (spent.reason or "")
    # and the day's dollars: what the day's evolutions spent is subtracted, and a spent day starts none
    _set(db, org, agent_id, max_usd_per_day=0.0005)
    left = loop.start(deps, org, agent_id, trigger="api")
    assert left.budget["max_usd"] == pytest.approx(0.00005)
    loop.stop(deps, org, left.id)
    _set(db, org, agent_id, max_usd_per_day=0.0004)
    with pytest.raises(Conflict, match=r"daily evolution budget is spent \(\$0\.000450 of \$0\.0004 in 24 h\)"):
        loop.start(deps, org, agent_id, trigger="api")


def test_the_schedule_keeps_scheduled_evolutions_out(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    _set(db, org, agent_id, schedule="manual")
    with pytest.raises(Conflict, match="only manual evolutions"):
        loop.start(deps, org, agent_id, trigger="sleeptime")
    manual = loop.start(deps, org, agent_id, trigger="cli")
    loop.stop(deps, org, manual.id)
    _set(db, org, agent_id, min_hours_between=6)
    with pytest.raises(Conflict, match=r"less than 6\.0 h ago"):
        loop.start(deps, org, agent_id, trigger="sleeptime")


def test_the_canary_waits_for_approval_and_a_rejection_rolls_back(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps, api: Any
) -> None:
    org, agent_id = task.make_agent(db, server)
    _set(db, org, agent_id, approval="canary")
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id, trigger="api")
    for action in ("reflect", "propose", "shadow", "gate"):
        loop.step(deps, evo.id, action)
    waiting = loop.step(deps, evo.id, "canary")
    assert (waiting.status, waiting.next, waiting.bake_seconds) == ("gated", "await", 1)
    assert loop.step(deps, evo.id, "await").next == "await"  # nobody has decided yet
    with db.transaction() as conn:
        assert evolution_store.canary_for_agent(conn, agent_id) is None  # no live traffic before approval
    approvals = _evolution(db, evo.id).figures["approvals"]
    assert approvals["canary"]["status"] == "pending"

    # the owner approves through the API; the canary then starts
    with api(org) as client:
        answer = client.post(f"/v1/agents/{agent_id}/evolutions/{evo.id}/approval", json={"approve": True})
        assert answer.status_code == 200, answer.text
        assert answer.json()["figures"]["approvals"]["canary"]["status"] == "approved"
        again = client.post(f"/v1/agents/{agent_id}/evolutions/{evo.id}/approval", json={"approve": True})
        assert again.status_code == 409  # nothing waits any more
    assert loop.step(deps, evo.id, "await").next == "canary"
    assert loop.step(deps, evo.id, "canary").status == "canary"
    # with the canary gate, the promotion waits for its own approval too
    task.live_traffic(deps)(_evolution(db, evo.id))
    assert loop.step(deps, evo.id, "evaluate").next == "await"
    assert _evolution(db, evo.id).figures["approvals"]["promotion"]["status"] == "pending"
    with api(org) as client:
        rejected = client.post(
            f"/v1/agents/{agent_id}/evolutions/{evo.id}/approval", json={"approve": False, "comment": "not now"}
        )
    assert rejected.status_code == 200 and rejected.json()["decision"] == "rolled_back"
    final = _evolution(db, evo.id)
    assert "the owner rejected it: not now" in (final.reason or "")
    assert {"awaiting_approval", "approval", "rolled_back"} <= set(_phases(db, evo.id))


def test_an_approved_promotion_is_promoted(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    _set(db, org, agent_id, approval="promotion")
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id, trigger="api")
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        loop.step(deps, evo.id, action)
    task.live_traffic(deps)(_evolution(db, evo.id))
    assert loop.step(deps, evo.id, "evaluate").next == "await"
    owner_decision = _decide(deps, org, evo.id)
    assert owner_decision.figures["approvals"]["promotion"]["status"] == "approved"
    done = loop.step(deps, evo.id, "await")
    assert (done.status, done.next) == ("promoted", "done")
    assert "approved by the owner; canary healthy" in (_evolution(db, evo.id).reason or "")


def _decide(deps: loop.EvolutionDeps, org: str, evolution_id: str) -> Evolution:
    from o.evolution import approval

    return approval.decide(deps, org, evolution_id, True, "ship it")


def _evolution(db: Database, evolution_id: str) -> Evolution:
    with db.transaction() as conn:
        evo = evolution_store.get(conn, evolution_id)
    assert evo is not None
    return evo


def test_decisions_are_told_to_the_owners_webhook_through_the_outbound_policy(
    db: Database, server: OpenAIServer, world: World, deps: loop.EvolutionDeps
) -> None:
    org, agent_id = task.make_agent(db, server)
    with CaptureServer() as hook:
        _set(db, org, agent_id, webhook_url=hook.url("/o-events"))
        deps.events = Webhook(OutboundPolicy(allow_loopback=True))
        world.propose(task.WORSE)
        refused = _run(deps, org, agent_id)
        assert refused.decision == "rolled_back"
        [posted] = hook.requests
        assert (posted.method, posted.path) == ("POST", "/o-events")
        body = json.loads(posted.body)
        assert body["source"] == "o.evolution" and body["detail-type"] == "Evolution rolled back"
        assert body["detail"]["evolution_id"] == refused.id and body["detail"]["agent_id"] == agent_id
        assert _evolution(db, refused.id).figures["notice"] == {"sent": True, "type": "Evolution rolled back"}

        # an address the outbound policy does not allow is never called; the decision stands, the failure is kept
        deps.events = Webhook(OutboundPolicy(allow_loopback=False))
        world.propose(task.WORSE)
        second = _run(deps, org, agent_id)
        assert second.decision == "rolled_back" and len(hook.requests) == 1
        notice = _evolution(db, second.id).figures["notice"]
        assert notice["sent"] is False and "OutboundDenied" in notice["error"]
