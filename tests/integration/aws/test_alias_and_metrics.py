"""The AWS adapters of canaries under moto: weighted routing on the Lambda alias, and per-version outcome
metrics written as EMF (turned into metrics as CloudWatch Logs does) and read back with GetMetricData."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from o.agent.serving import Turn
from o.aws.alias import LambdaAlias
from o.aws.metrics import CloudWatchOutcomes
from o.errors import Conflict, InvalidInput
from o.evolution.rollout import CANARY_ENV
from tests import emf
from tests.lambdas import REGION, create_function


@pytest.fixture
def lam() -> Iterator[object]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        create_function("agent-step", "handler.handler", environment={"O_RUNTIME": "lambda"})
        client = boto3.client("lambda", region_name=REGION)
        v1 = client.publish_version(FunctionName="agent-step")["Version"]
        client.create_alias(FunctionName="agent-step", Name="live", FunctionVersion=v1)
        yield client


def test_publish_candidate_carries_the_evolution_and_leaves_latest_clean(lam) -> None:
    router = LambdaAlias(lam, "agent-step")
    version = router.publish_candidate("evolution-abc")
    assert version == "2"
    published = lam.get_function_configuration(FunctionName="agent-step", Qualifier=version)
    assert published["Environment"]["Variables"][CANARY_ENV] == "evolution-abc"
    assert published["Environment"]["Variables"]["O_RUNTIME"] == "lambda"
    latest = lam.get_function_configuration(FunctionName="agent-step")
    assert CANARY_ENV not in latest["Environment"]["Variables"]


def test_canary_promote_and_rollback(lam) -> None:
    router = LambdaAlias(lam, "agent-step")
    v2 = router.publish_candidate("evolution-a")
    assert router.canary_evolution() is None
    state = router.start_canary(v2, 0.1)
    assert (state.version, state.canary_version, state.canary_weight) == ("1", v2, pytest.approx(0.1))
    assert router.canary_evolution() == "evolution-a"
    alias = lam.get_alias(FunctionName="agent-step", Name="live")
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {v2: 0.1}

    # one canary per alias
    v3 = router.publish_candidate("evolution-b")
    with pytest.raises(Conflict):
        router.start_canary(v3, 0.2)
    with pytest.raises(InvalidInput):
        router.set_weight(1.5)
    assert router.set_weight(0.25).canary_weight == pytest.approx(0.25)

    promoted = router.promote(v2)
    assert (promoted.version, promoted.canary_version) == (v2, None)
    assert not (lam.get_alias(FunctionName="agent-step", Name="live").get("RoutingConfig") or {}).get(
        "AdditionalVersionWeights"
    )

    router.start_canary(v3, 0.05)
    assert router.canary_evolution() == "evolution-b"
    back = router.rollback()
    assert (back.version, back.canary_version) == (v2, None)
    assert router.canary_evolution() is None


def test_start_canary_refuses_latest_unpublished_and_bad_weights(lam) -> None:
    router = LambdaAlias(lam, "agent-step")
    with pytest.raises(InvalidInput):
        router.start_canary("$LATEST", 0.1)
    with pytest.raises(InvalidInput):
        router.start_canary("9", 0.1)
    v2 = router.publish_candidate("evolution-a")
    with pytest.raises(InvalidInput):
        router.start_canary(v2, 1.01)
    with pytest.raises(InvalidInput):
        router.start_canary("1", 0.5)
    assert router.state().canary_version is None


def test_cloudwatch_per_version_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        metrics = CloudWatchOutcomes(boto3.client("cloudwatch", region_name=REGION))
        start = datetime.now(UTC) - timedelta(minutes=5)
        for i in range(10):
            metrics.put_outcome("agent-x", "1", Turn(ok=i != 0, latency_ms=100 + i, tokens=50))
        for i in range(4):
            metrics.put_outcome("agent-x", "2", Turn(ok=i not in (0, 1), latency_ms=300, tokens=80))
        metrics.put_outcome("agent-y", "2", Turn(ok=False, latency_ms=1, tokens=1))
        # written as EMF: nothing reaches CloudWatch until its log lines are extracted
        assert metrics.stats("agent-x", "1", start).turns == 0
        assert emf.ingest(capsys.readouterr().out, metrics.client) == 15
        stable = metrics.stats("agent-x", "1", start)
        canary = metrics.stats("agent-x", "2", start)
    assert stable.turns == 10 and stable.error_rate == pytest.approx(0.1)
    assert stable.latency_ms == pytest.approx(104.5)
    assert canary.turns == 4 and canary.error_rate == pytest.approx(0.5)
    assert canary.tokens == pytest.approx(80)
    # feedback is the database's (it names the revision), not CloudWatch's
    assert canary.feedback is None and stable.feedback is None


def test_emf_documents_carry_exactly_the_two_dimensions_the_canary_queries(capsys: pytest.CaptureFixture[str]) -> None:
    CloudWatchOutcomes(object()).put_outcome("agent-x", "7", Turn(ok=False, latency_ms=12.5, tokens=3))
    [doc] = emf.documents(capsys.readouterr().out)
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "O/Agents"
    assert directive["Dimensions"] == [["AgentId", "ExecutedVersion"]]
    assert (doc["AgentId"], doc["ExecutedVersion"]) == ("agent-x", "7")
    assert (doc["Turns"], doc["Errors"], doc["LatencyMs"], doc["Tokens"]) == ([1.0], [1.0], [12.5], [3.0])
