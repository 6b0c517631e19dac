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

from o.agent.serving import Turn
from o.aws.metrics import CloudWatchOutcomes
from o.evolution import statemachine
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
            yield Aws(handler, sfn, lam, machine, lambdas.events, lambdas.crash_on)


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


def _execute(aws: Aws, db: Database, org: str, agent_id: str) -> tuple[str, str]:
    deps = aws.handler._deps
    evo = aws.handler.loop.start(deps, org, agent_id, trigger="test")
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
