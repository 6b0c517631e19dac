"""Evolution wired into the live agent loop: real ``POST /v1/agents/{id}/messages`` traffic split by a
canary, outcomes and feedback per revision, the revision in the prompt, the sleep-time trigger, and
the agent-step Lambda's per-version CloudWatch metrics under moto.

The scripted world (tests/integration/evolution/task.py) answers from the system prompt it receives,
so a reply tells which revision's prompt reached the model: one word from the candidate, a wordy
sentence from the base.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from o.agent import runs
from o.agent.runner import drive
from o.agent.step import advance
from o.aws.alias import LambdaAlias
from o.aws.metrics import CloudWatchOutcomes
from o.config import SleeptimeSettings
from o.evolution import evaluator, loop, routing, sleeptime
from o.evolution.rollout import CANARY_ENV, LocalRouter
from o.store.db import Database
from o.store.evolution import Evolution
from tests import emf, wiring
from tests.integration.conftest import new_org_key
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.lambdas import REGION, Context, aws_credentials, fresh_handler, service_environment
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

REVISION_LINE = "You are running revision {n} of your configuration"
COUNTRIES = list(task.CAPITALS)


def _suite() -> evaluator.Suite:
    """The task's suite, its canary judged on errors and feedback: live latencies on a busy test machine
    are too noisy for the default 2x latency limit to decide anything here."""
    suite = task.suite()
    return suite.model_copy(
        update={
            "gate": suite.gate.model_copy(
                update={"canary": suite.gate.canary.model_copy(update={"max_latency_ratio": 1000.0})}
            )
        }
    )


def _agent(api: TestClient, server: OpenAIServer) -> dict[str, Any]:
    response = api.post(
        "/v1/agents/",
        json={
            "name": "geo",
            "system": task.BASE_SYSTEM,
            "llm_config": {
                "model": "gpt-4o-mini",
                "model_endpoint_type": "openai",
                "model_endpoint": server.base_url,
                "context_window": 128000,
            },
            "memory_blocks": [
                {"label": "persona", "value": "I know capitals.", "limit": 500},
                {"label": "human", "value": "Unknown user.", "limit": 500},
            ],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def _app(db: Database, deps: loop.EvolutionDeps) -> Any:
    return wiring.app(db, evolution=deps)


@pytest.fixture
def live_deps(db: Database) -> loop.EvolutionDeps:
    return task.make_deps(db, canary_weight=0.3)


@pytest.fixture
def api(db: Database, live_deps: loop.EvolutionDeps) -> Iterator[TestClient]:
    with TestClient(_app(db, live_deps), headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        yield client


def _ask(api: TestClient, agent_id: str, country: str) -> tuple[str, str]:
    """(run id, reply) of one real request."""
    sent = api.post(
        f"/v1/agents/{agent_id}/messages",
        json={"messages": [{"role": "user", "content": f"What is the capital of {country}?"}]},
    )
    assert sent.status_code == 200, sent.text
    body = sent.json()
    reply = next(m["content"] for m in body["messages"] if m["message_type"] == "assistant_message")
    (run_id,) = body["usage"]["run_ids"]
    return run_id, reply


def _run_meta(db: Database, run_id: str) -> dict[str, Any]:
    with db.transaction() as conn:
        return conn.execute("SELECT metadata FROM runs WHERE id = %s", (run_id,)).fetchone()["metadata"]


def _org_of(db: Database, agent_id: str) -> str:
    with db.transaction() as conn:
        return conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()[
            "organization_id"
        ]


def _live_prompts(server: OpenAIServer, n: int) -> list[str]:
    """System prompts of the live agent's LLM calls served on revision ``n`` (shadow copies carry no revision)."""
    systems = [task._text(r["messages"][0].get("content")) for r in server.requests if r.get("messages")]
    return [s for s in systems if REVISION_LINE.format(n=n) in s]


@pytest.mark.parametrize(("users_like", "decision"), [("short", "promoted"), ("long", "rolled_back")])
def test_canary_splits_real_traffic_and_decides_on_its_outcomes(
    api: TestClient,
    db: Database,
    server: OpenAIServer,
    world: World,
    live_deps: loop.EvolutionDeps,
    users_like: str,
    decision: str,
) -> None:
    aid = _agent(api, server)["id"]
    assert api.put(f"/v1/agents/{aid}/evaluation", json=_suite().model_dump(mode="json")).status_code == 200
    # two earlier conversations: the shadow test replays them, and they run (and record) on revision 1
    for country in task.RECENT_COUNTRIES:
        _ask(api, aid, country)
    world.propose(task.BETTER)
    evo = loop.start(live_deps, _org_of(db, aid), aid, trigger="test")
    served: dict[str, tuple[int, str]] = {}

    def traffic(baking: Evolution) -> None:
        assert baking.status == "canary" and baking.canary is not None and baking.canary["mode"] == "local"
        for i in range(60):
            run_id, reply = _ask(api, aid, COUNTRIES[i % len(COUNTRIES)])
            served[run_id] = (_run_meta(db, run_id)["revision"], reply)
            # a user who scores what they read, knowing nothing of revisions
            short = len(reply) <= 40
            liked = short if users_like == "short" else not short
            fb = api.post(f"/v1/agents/{aid}/feedback", json={"run_id": run_id, "score": 0.9 if liked else 0.2})
            assert fb.status_code == 201, fb.text
            assert fb.json()["revision"] == served[run_id][0]

    final = loop.run_local(live_deps, evo.id, sleep=lambda _s: None, during_bake=traffic)

    # every run went exactly where the canary's router sends its id, and stayed there
    router = LocalRouter(0.3, evo.id)
    candidate = [r for r, (rev, _) in served.items() if rev == 2]
    assert {r: rev for r, (rev, _) in served.items()} == {r: 2 if router.to_candidate(r) else 1 for r in served}
    # 60 runs at 0.3: a share off by more than 0.22 is a 3.7-sigma event
    assert abs(len(candidate) / len(served) - 0.3) <= 0.22, len(candidate)
    # the candidate's system prompt reached the model for exactly the candidate's runs
    for rev, reply in served.values():
        assert (reply in task.CAPITALS.values()) == (rev == 2), (rev, reply)
    cand_prompts, base_prompts = _live_prompts(server, 2), _live_prompts(server, 1)
    assert len(cand_prompts) == len(candidate)
    assert all(task.ONE_WORD in s for s in cand_prompts) and not any(task.ONE_WORD in s for s in base_prompts)

    # one outcome per run, under the revision that served it; the canary figures are those outcomes
    with db.transaction() as conn:
        outcomes = {
            r["request_id"]: r for r in conn.execute("SELECT * FROM revision_outcomes WHERE agent_id = %s", (aid,))
        }
    assert {r: o["revision"] for r, o in outcomes.items() if r in served} == {r: v[0] for r, v in served.items()}
    assert all(o["ok"] and o["tokens"] > 0 and o["latency_ms"] > 0 for o in outcomes.values())
    figures = final.figures["canary"]
    assert figures["candidate"]["turns"] == len(candidate)
    assert figures["base"]["turns"] == len(served) - len(candidate)
    assert figures["candidate"]["feedback_count"] == len(candidate)
    cand_score, base_score = (0.9, 0.2) if users_like == "short" else (0.2, 0.9)
    assert figures["candidate"]["feedback"] == pytest.approx(cand_score)
    assert figures["base"]["feedback"] == pytest.approx(base_score)

    assert final.decision == decision, final.reason
    if decision == "rolled_back":
        assert "canary feedback" in final.reason
    # afterwards every request runs the decided revision, and feedback on a canary run still goes to
    # the revision that answered it, not to the agent's revision now
    after = 2 if decision == "promoted" else 1
    run_id, reply = _ask(api, aid, "Peru")
    assert _run_meta(db, run_id)["revision"] == after
    assert (reply == "Lima") == (after == 2)
    fb = api.post(f"/v1/agents/{aid}/feedback", json={"run_id": candidate[0], "score": 0.5})
    assert fb.status_code == 201 and fb.json()["revision"] == 2
    fb = api.post(f"/v1/agents/{aid}/feedback", json={"run_id": run_id, "score": 0.5})
    assert fb.json()["revision"] == after


def test_prompt_names_the_revision_and_a_run_never_mixes_revisions(
    api: TestClient,
    db: Database,
    server: OpenAIServer,
    world: World,
    live_deps: loop.EvolutionDeps,
) -> None:
    aid = _agent(api, server)["id"]
    # an agent that never had a revision gets revision 1 on its first run, and knows it
    run_id, _ = _ask(api, aid, "France")
    assert _run_meta(db, run_id)["revision"] == 1
    assert REVISION_LINE.format(n=1) in task._text(server.requests[-1]["messages"][0]["content"])
    assert api.get(f"/v1/agents/{aid}").json()["metadata"]["revision"] == 1
    assert REVISION_LINE.format(n=1) in api.post(f"/v1/agents/{aid}/recompile").json()

    # a canary that sends every request to the candidate
    assert api.put(f"/v1/agents/{aid}/evaluation", json=_suite().model_dump(mode="json")).status_code == 200
    world.propose(task.BETTER)
    org = _org_of(db, aid)
    deps = task.make_deps(db, canary_weight=1.0)
    evo = loop.start(deps, org, aid, trigger="test")
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        result = loop.step(deps, evo.id, action)
    assert result.status == "canary"

    # a two-step run: its first step decides revision 2; the canary ends (rolled back) before its second
    server.push(
        call("core_memory_append", label="human", content="Likes maps.", request_heartbeat=True),
        call("send_message", message="Noted."),
    )
    engine = live_deps.engine
    with db.transaction() as conn:
        started = runs.start(conn, org, aid, [runs.InputMessage("user", "I like maps")], {"max_steps": 5})
    rid = started.run.id
    steps = engine.deps()
    assert advance(steps, rid, "step").next == "tools"
    assert advance(steps, rid, "step").next == "tools"  # a duplicated invocation changes nothing
    loop.stop(deps, org, evo.id, "test ends the canary mid-run")
    assert drive(steps, rid).next == "done"
    first, second = (task._text(r["messages"][0]["content"]) for r in server.requests[-2:])
    for prompt in (first, second):
        assert task.ONE_WORD in prompt and REVISION_LINE.format(n=2) in prompt
    assert _run_meta(db, rid)["revision"] == 2
    with db.transaction() as conn:
        recorded = conn.execute("SELECT revision FROM revision_outcomes WHERE request_id = %s", (rid,)).fetchall()
    assert recorded == [{"revision": 2}]
    # the next run is on the agent's revision again
    run_id, reply = _ask(api, aid, "Italy")
    assert _run_meta(db, run_id)["revision"] == 1 and reply != "Rome"


def test_sleeptime_pass_after_n_user_messages_off_the_request_path(
    db: Database,
    server: OpenAIServer,
    live_deps: loop.EvolutionDeps,
) -> None:
    trigger = sleeptime.RunEndTrigger(lambda: live_deps, SleeptimeSettings(every_n_messages=3))
    live_deps.engine.on_run_end = trigger
    with TestClient(_app(db, live_deps), headers={"Authorization": f"Bearer {new_org_key(db)}"}) as api:
        aid = _agent(api, server)["id"]
        for country in ("France", "Japan"):
            _ask(api, aid, country)
        trigger.drain()
        with db.transaction() as conn:
            assert (
                conn.execute("SELECT count(*) AS n FROM sleeptime_passes WHERE agent_id = %s", (aid,)).fetchone()["n"]
                == 0
            )
            # the finished runs' messages were embedded for conversation_search in the background
            pending = conn.execute(
                "SELECT count(*) AS n FROM messages WHERE agent_id = %s AND role = 'user' AND embedding_dim IS NULL",
                (aid,),
            ).fetchone()["n"]
        assert pending == 0
        _ask(api, aid, "I am Ada. What is the capital of Italy?")
        trigger.drain()
        deadline = time.monotonic() + 20
        while True:
            with db.transaction() as conn:
                passes = conn.execute(
                    "SELECT trigger, status FROM sleeptime_passes WHERE agent_id = %s", (aid,)
                ).fetchall()
            if passes and passes[0]["status"] != "running":
                break
            assert time.monotonic() < deadline, passes
            time.sleep(0.05)
        assert passes == [{"trigger": "messages", "status": "completed"}]
        human = api.get(f"/v1/agents/{aid}/core-memory/blocks/human").json()["value"]
        assert human == "The user is Ada."


# --- the agent-step Lambda on AWS (moto) ---------------------------------------------------------------------

STEP_FN = "o-agent-step"


def _context(version: str) -> Context:
    """What the runtime hands the handler when the live alias sends an invocation to ``version``."""
    return Context(STEP_FN, function_version=version, alias="live")


@pytest.fixture
def step_handler(pg_url: str, monkeypatch: pytest.MonkeyPatch, live_deps: loop.EvolutionDeps) -> Iterator[ModuleType]:
    """functions/agent_step/handler.py imported as Lambda imports it, inside moto."""
    service_environment(monkeypatch, pg_url)
    aws_credentials(monkeypatch, REGION)
    with mock_aws(), fresh_handler("functions.agent_step.handler") as module:
        module._engine = live_deps.engine  # the test's LLM keys and local server
        yield module


def _invoke_until_done(handler: ModuleType, run_id: str, versions: list[str]) -> dict[str, Any]:
    """The state machine's loop: one invocation per action, the n-th on ``versions[n]`` (the last repeats)."""
    event: dict[str, Any] = {"action": "step", "run_id": run_id, "iteration": 0}
    for n in range(20):
        result = handler.handler(event, _context(versions[min(n, len(versions) - 1)]))
        if result["next"] in ("done", "failed"):
            return result
        event = {"action": result["next"], "run_id": run_id, "iteration": result["iteration"]}
    raise AssertionError("the run did not end")


def test_lambda_records_per_version_outcomes_and_the_canary_uses_them(
    step_handler: ModuleType,
    db: Database,
    server: OpenAIServer,
    world: World,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org, aid = task.make_agent(db, server)
    with db.transaction() as conn:
        evaluator.save_suite(conn, org, aid, _suite())
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="o-step", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(
        FunctionName=STEP_FN,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {"X": "1"}},
    )
    stable = lam.publish_version(FunctionName=STEP_FN)["Version"]
    lam.create_alias(FunctionName=STEP_FN, Name="live", FunctionVersion=stable)
    cloudwatch = CloudWatchOutcomes(boto3.client("cloudwatch", region_name=REGION))
    deps = task.make_deps(db, canary_weight=0.2)
    deps.router, deps.metrics = LambdaAlias(lam, STEP_FN), cloudwatch

    world.propose(task.BETTER)
    evo = loop.start(deps, org, aid, trigger="test")
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        result = loop.step(deps, evo.id, action)
    assert result.status == "canary", result
    with db.transaction() as conn:
        canary = conn.execute("SELECT canary FROM evolutions WHERE id = %s", (evo.id,)).fetchone()["canary"]
    version = canary["version"]
    published = lam.get_function_configuration(FunctionName=STEP_FN, Qualifier=version)
    assert published["Environment"]["Variables"][CANARY_ENV] == evo.id

    def one_run(text: str) -> str:
        with db.transaction() as conn:
            return runs.start(conn, org, aid, [runs.InputMessage("user", text)], {"max_steps": 5}).run.id

    # the stable version serves revision 1: four runs, one of whose later actions the alias sent to the canary
    base_runs = [one_run(f"What is the capital of {c}?") for c in ("France", "Japan", "Italy", "Spain")]
    for i, rid in enumerate(base_runs):
        assert _invoke_until_done(step_handler, rid, [stable, version] if i == 0 else [stable])["next"] == "done"
        assert _run_meta(db, rid)["revision"] == 1
    # the canary version carries the evolution's marker in its environment (so in its settings) and serves
    # the candidate
    step_handler._engine.revisions = routing.CanaryRouter(evo.id)
    cand_runs = [one_run(f"What is the capital of {c}?") for c in ("Peru", "Egypt", "Kenya")]
    for rid in cand_runs:
        assert _invoke_until_done(step_handler, rid, [version])["next"] == "done"
        assert _run_meta(db, rid)["revision"] == 2 and _run_meta(db, rid)["version"] == version
    # a late duplicate invocation of a finished run publishes nothing more
    assert _invoke_until_done(step_handler, cand_runs[0], [version])["next"] == "done"
    step_handler._engine.revisions = routing.CanaryRouter()
    # CloudWatch turns the function's EMF log lines into metrics
    assert emf.ingest(capsys.readouterr().out, cloudwatch.client, namespace="O/Agents") == 7

    since = datetime.now(UTC) - timedelta(minutes=5)
    on_stable, on_canary = cloudwatch.stats(aid, stable, since), cloudwatch.stats(aid, version, since)
    # each run counted once, under the version that decided its revision (not the one that ended it)
    assert (on_stable.turns, on_canary.turns) == (4, 3)
    assert on_stable.error_rate == on_canary.error_rate == 0.0
    assert on_canary.tokens > 0 and on_stable.latency_ms > 0
    # the candidate's prompt reached the model on the canary version only
    assert _said(db, cand_runs) <= set(task.CAPITALS.values())
    assert not _said(db, base_runs) & set(task.CAPITALS.values())

    # the evolution's evaluate step judges the canary on those metrics and promotes it through the alias
    final = loop.run_local(deps, evo.id, sleep=lambda _s: None)
    assert final.decision == "promoted", final.reason
    assert final.figures["canary"]["candidate"]["turns"] == 3
    assert final.figures["canary"]["base"]["turns"] == 4
    assert lam.get_alias(FunctionName=STEP_FN, Name="live")["FunctionVersion"] == version


def _said(db: Database, run_ids: list[str]) -> set[str]:
    """What the agent told the user (send_message) in these runs."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT tool_calls FROM messages WHERE run_id = ANY(%s) AND role = 'assistant' AND tool_calls IS NOT NULL",
            (run_ids,),
        ).fetchall()
    said = {
        json.loads(c["function"]["arguments"])["message"]
        for r in rows
        for c in r["tool_calls"]
        if c["function"]["name"] == "send_message"
    }
    assert said
    return said
