"""The evolution state machine executed by moto's Step Functions, with the real handler in-process,
canaries on a (moto) Lambda alias, and per-version metrics in (moto) CloudWatch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from o.agent import runs
from o.agent.serving import Turn
from o.aws.metrics import CloudWatchOutcomes
from o.errors import Conflict
from o.evolution import approval, evaluator, owner, routing, statemachine
from o.evolution.rollout import CANARY_ENV
from o.ids import new_id
from o.store import evolution as evolution_store
from o.store.db import Database
from o.store.evolution import Evolution
from tests import emf
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.lambdas import (
    ACCOUNT,
    REGION,
    Context,
    LambdaService,
    aws_credentials,
    create_function,
    fresh_handler,
    service_environment,
)
from tests.servers.openai_server import OpenAIServer

EVOLUTION_FN = "o-evolution"
STEP_FN = "o-agent-step"


@dataclass
class Aws:
    handler: ModuleType
    sfn: Any
    lam: Any
    machine_arn: str
    calls: list[dict[str, Any]]
    fail_on: set[str]
    lambdas: LambdaService


@pytest.fixture
def aws(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    service_environment(
        monkeypatch,
        pg_url,
        OPENAI_API_KEY="sk-test",
        O_EVOLUTION_STEP_FUNCTION_NAME=STEP_FN,
        O_EVOLUTION_BAKE_SECONDS="1",
        O_EVOLUTION_CANARY_WEIGHT="0.2",
        O_EVOLUTION_MAX_BAKE_ROUNDS="40",
        O_EVOLUTION_REPLAY_SAMPLE="2",
        O_LLM_RETRY_BASE_DELAY_S="0.001",
    )
    aws_credentials(monkeypatch, REGION)
    lambdas = LambdaService().install(monkeypatch)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        evolution_arn = create_function(EVOLUTION_FN, "functions.evolution.handler.handler")
        create_function(STEP_FN, "functions.agent_step.handler.handler", environment={"O_RUNTIME": "lambda"})
        lam = boto3.client("lambda", region_name=REGION)
        v1 = lam.publish_version(FunctionName=STEP_FN)["Version"]
        lam.create_alias(FunctionName=STEP_FN, Name="live", FunctionVersion=v1)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="o-evolution",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/o-evolution",
            definition=json.dumps(statemachine.evolution_definition(evolution_arn)),
        )["stateMachineArn"]
        with fresh_handler("functions.evolution.handler") as handler:
            lambdas.serve(EVOLUTION_FN, handler.handler)
            yield Aws(handler, sfn, lam, machine, lambdas.events, lambdas.crash_on, lambdas)


def _wait(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _evolution(db: Database, evolution_id: str) -> Evolution:
    with db.transaction() as conn:
        row = evolution_store.get(conn, evolution_id)
    assert row is not None
    return row


def _execute(aws: Aws, db: Database, org: str, agent_id: str, steps: list[float] | None = None) -> tuple[str, str]:
    """Start an evolution and its state machine; its canary has one step unless ``steps`` says otherwise."""
    deps = aws.handler._deps
    evo = aws.handler.loop.start(deps, org, agent_id, trigger="test", budget={"canary_steps": steps or []})
    execution = aws.sfn.start_execution(
        stateMachineArn=aws.machine_arn, name=evo.id, input=json.dumps({"evolution_id": evo.id})
    )["executionArn"]
    return evo.id, execution


def _finished(aws: Aws, execution: str) -> dict[str, Any]:
    return _wait(lambda: (d := aws.sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d)


def test_better_candidate_promoted_through_the_alias(
    aws: Aws, db: Database, world: World, server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    evolution_id, execution = _execute(aws, db, org, agent_id)

    canary = _wait(lambda: (e := _evolution(db, evolution_id)).status == "canary" and e.canary, 30)
    assert canary["mode"] == "lambda" and canary["stable_version"] == "1" and canary["weight"] == 0.2
    alias = aws.lam.get_alias(FunctionName=STEP_FN, Name="live")
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {canary["version"]: 0.2}
    published = aws.lam.get_function_configuration(FunctionName=STEP_FN, Qualifier=canary["version"])
    assert published["Environment"]["Variables"][CANARY_ENV] == evolution_id
    assert CANARY_ENV not in aws.lam.get_function_configuration(FunctionName=STEP_FN)["Environment"]["Variables"]

    # users' scores, attributed to the revision that answered (before the turns: the decision waits for those)
    with db.transaction() as conn:
        for revision, score in ((1, 0.4), (2, 0.9), (2, 0.8)):
            evolution_store.insert_feedback(
                conn,
                {
                    "id": new_id("feedback"),
                    "organization_id": org,
                    "agent_id": agent_id,
                    "run_id": None,
                    "message_id": None,
                    "score": score,
                    "comment": None,
                    "revision": revision,
                },
            )

    # live turns as the agent-step versions would report them
    metrics = CloudWatchOutcomes(boto3.client("cloudwatch", region_name=REGION))
    capsys.readouterr()
    for _ in range(8):
        metrics.put_outcome(agent_id, "1", Turn(ok=True, latency_ms=120, tokens=90))
    for _ in range(4):
        metrics.put_outcome(agent_id, canary["version"], Turn(ok=True, latency_ms=100, tokens=60))
    # CloudWatch turns the EMF log lines into metrics
    assert emf.ingest(capsys.readouterr().out, metrics.client, namespace="O/Agents") == 12
    done = _finished(aws, execution)
    assert done["status"] == "SUCCEEDED", done
    final = _evolution(db, evolution_id)
    assert final.decision == "promoted", final.reason
    figures = final.figures["canary"]
    # the Wait state may end between two of the canary's metric writes: at least min_turns (3) were seen
    assert figures["candidate"]["turns"] in (3, 4) and figures["base"]["turns"] == 8
    assert figures["candidate"]["feedback"] == pytest.approx(0.85) and figures["candidate"]["feedback_count"] == 2
    assert figures["base"]["feedback"] == pytest.approx(0.4)
    alias = aws.lam.get_alias(FunctionName=STEP_FN, Name="live")
    assert alias["FunctionVersion"] == canary["version"]
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    with db.transaction() as conn:
        agent = conn.execute("SELECT revision, system FROM agents WHERE id = %s", (agent_id,)).fetchone()
    assert agent["revision"] == 2 and task.ONE_WORD in agent["system"]
    actions = [c["action"] for c in aws.calls]
    assert actions[:5] == ["reflect", "propose", "shadow", "gate", "canary"] and actions[-1] == "evaluate"


def test_gate_refusal_never_touches_the_alias(aws: Aws, db: Database, world: World, server: OpenAIServer) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.WORSE)
    evolution_id, execution = _execute(aws, db, org, agent_id)
    assert _finished(aws, execution)["status"] == "SUCCEEDED"
    final = _evolution(db, evolution_id)
    assert final.decision == "rolled_back" and "gate refused" in final.reason
    alias = aws.lam.get_alias(FunctionName=STEP_FN, Name="live")
    assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    versions = aws.lam.list_versions_by_function(FunctionName=STEP_FN)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]


def test_a_crashed_task_ends_in_rollback(aws: Aws, db: Database, world: World, server: OpenAIServer) -> None:
    org, agent_id = task.make_agent(db, server)
    world.propose(task.BETTER)
    aws.fail_on.add("evaluate")
    evolution_id, execution = _execute(aws, db, org, agent_id)
    assert _finished(aws, execution)["status"] == "SUCCEEDED"
    final = _evolution(db, evolution_id)
    assert final.decision == "rolled_back" and "workflow failed" in final.reason
    # the canary the crashed evolution had opened is withdrawn
    alias = aws.lam.get_alias(FunctionName=STEP_FN, Name="live")
    assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert [c["action"] for c in aws.calls][-1] == "rollback"
    with db.transaction() as conn:
        assert conn.execute("SELECT revision FROM agents WHERE id = %s", (agent_id,)).fetchone()["revision"] == 1


def _live_suite() -> evaluator.Suite:
    """The task's suite with live latency out of the judgement: test-machine latencies are too noisy for it."""
    suite = task.suite()
    canary = suite.gate.canary.model_copy(update={"max_latency_ratio": 1000.0})
    return suite.model_copy(update={"gate": suite.gate.model_copy(update={"canary": canary})})


def _invoke_run(aws: Aws, step_handler: ModuleType, run_id: str, version: str) -> dict[str, Any]:
    """One run driven to its end through the agent-step function invoked by its qualified ARN (the version the
    alias chose), as the agent-loop state machine invokes it."""
    aws.lambdas.serve(STEP_FN, step_handler.handler, Context(STEP_FN, function_version=version, alias="live"))
    event: dict[str, Any] = {"action": "step", "run_id": run_id, "iteration": 0}
    for _ in range(20):
        answer = aws.lam.invoke(
            FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STEP_FN}:{version}", Payload=json.dumps(event)
        )
        result = json.loads(answer["Payload"].read())
        assert "FunctionError" not in answer, result
        if result["next"] in ("done", "failed"):
            return result
        event = {"action": result["next"], "run_id": run_id, "iteration": result["iteration"]}
    raise AssertionError("the run did not end")


def test_canary_steps_up_on_live_evidence_and_rolls_back_at_once(
    aws: Aws, db: Database, world: World, server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    org, agent_id = task.make_agent(db, server)
    with db.transaction() as conn:
        evaluator.save_suite(conn, org, agent_id, _live_suite())
    world.propose(task.BETTER)
    evolution_id, execution = _execute(aws, db, org, agent_id, steps=[0.5])
    canary = _wait(lambda: (e := _evolution(db, evolution_id)).status == "canary" and e.canary, 30)
    assert canary["weights"] == [0.2, 0.5] and canary["step"] == 0
    version = canary["version"]
    assert aws.lam.get_alias(FunctionName=STEP_FN, Name="live")["RoutingConfig"]["AdditionalVersionWeights"] == {
        version: 0.2
    }
    metrics = CloudWatchOutcomes(boto3.client("cloudwatch", region_name=REGION))

    def one_run(text: str) -> str:
        with db.transaction() as conn:
            return runs.start(conn, org, agent_id, [runs.InputMessage("user", text)], {"max_steps": 5}).run.id

    # step 1 (20%): real runs, each served by the version the alias picked, the canary's running the candidate
    with fresh_handler("functions.agent_step.handler") as step_handler:
        for country in ("France", "Japan", "Italy"):
            assert _invoke_run(aws, step_handler, one_run(f"What is the capital of {country}?"), "1")["next"] == "done"
        step_handler._engine.revisions = routing.CanaryRouter(evolution_id)  # what O_CANARY_EVOLUTION gives the version
        for country in ("Peru", "Egypt", "Kenya"):
            run_id = one_run(f"What is the capital of {country}?")
            assert _invoke_run(aws, step_handler, run_id, version)["next"] == "done"
    assert emf.ingest(capsys.readouterr().out, metrics.client, namespace="O/Agents") == 6
    # the evidence holds: the alias steps to 50%, with a fresh window
    stepped = _wait(lambda: (e := _evolution(db, evolution_id)).canary and e.canary["step"] == 1 and e.canary, 30)
    assert stepped["weight"] == 0.5
    assert aws.lam.get_alias(FunctionName=STEP_FN, Name="live")["RoutingConfig"]["AdditionalVersionWeights"] == {
        version: 0.5
    }
    first = _evolution(db, evolution_id).figures["canary_evaluations"][-1]
    assert first["step"] == 0 and first["candidate"]["turns"] == 3 and first["base"]["turns"] == 3
    assert not any(check["failed"] for check in first["checks"].values())
    assert first["checks"]["errors"]["test"].startswith("Mann-Whitney U")

    # step 2 (50%): every canary turn fails, as the versions report them; one evaluation rolls it back
    for revision, served_by, ok in ((1, "1", True), (2, version, False)):
        for _ in range(6):
            metrics.put_outcome(agent_id, served_by, Turn(ok=ok, latency_ms=100, tokens=60))
            with db.transaction() as conn:
                evolution_store.record_outcome(conn, agent_id, revision, ok=ok, latency_ms=100, tokens=60)
    assert emf.ingest(capsys.readouterr().out, metrics.client, namespace="O/Agents") == 12
    assert _finished(aws, execution)["status"] == "SUCCEEDED"
    final = _evolution(db, evolution_id)
    assert final.decision == "rolled_back" and "canary error rate 100.0% vs 0.0% (p = 0.0011)" in final.reason
    last = final.figures["canary_evaluations"][-1]
    assert last["step"] == 1 and last["round"] == 0 and last["checks"]["errors"]["failed"]
    alias = aws.lam.get_alias(FunctionName=STEP_FN, Name="live")
    assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    with db.transaction() as conn:
        assert conn.execute("SELECT revision FROM agents WHERE id = %s", (agent_id,)).fetchone()["revision"] == 1


def test_a_canary_turning_bad_while_its_promotion_waits_is_rolled_back(
    aws: Aws, db: Database, world: World, server: OpenAIServer
) -> None:
    org, agent_id = task.make_agent(db, server)
    with db.transaction() as conn:
        evaluator.save_suite(conn, org, agent_id, _live_suite())
        owner.save(conn, org, agent_id, owner.OwnerPolicy(approval="promotion"))
    world.propose(task.BETTER)
    evolution_id, execution = _execute(aws, db, org, agent_id)
    canary = _wait(lambda: (e := _evolution(db, evolution_id)).status == "canary" and e.canary, 30)

    def turns(revision: int, ok: bool, count: int) -> None:
        with db.transaction() as conn:
            for _ in range(count):
                evolution_store.record_outcome(conn, agent_id, revision, ok=ok, latency_ms=100, tokens=60)

    # healthy evidence on both sides: the promotion waits for the owner (a Wait state and the await task)
    with db.transaction() as conn:
        for revision in (1, 2):
            for _ in range(3):
                evolution_store.record_outcome(conn, agent_id, revision, ok=True, latency_ms=100, tokens=60)
    _wait(lambda: (_evolution(db, evolution_id).figures.get("approvals") or {}).get("promotion"), 30)
    _wait(lambda: [c["action"] for c in aws.calls].count("await") >= 2, 30)  # looked at again, still healthy
    assert _evolution(db, evolution_id).status == "canary"
    # the canary keeps its traffic while it waits, and its turns start failing: rolled back before any approval
    turns(1, True, 6)
    turns(2, False, 6)
    assert _finished(aws, execution)["status"] == "SUCCEEDED"
    final = _evolution(db, evolution_id)
    assert final.decision == "rolled_back"
    assert "while its promotion waited for approval: canary error rate 66.7% vs 0.0%" in (final.reason or "")
    assert final.figures["canary_evaluations"][-1]["awaiting"] == "promotion"
    alias = aws.lam.get_alias(FunctionName=STEP_FN, Name="live")
    assert alias["FunctionVersion"] == "1" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert canary["version"] != "1"
    with pytest.raises(Conflict, match="was rolled back while its promotion waited for approval"):
        approval.decide(aws.handler._deps, org, evolution_id, True, "ship it")
