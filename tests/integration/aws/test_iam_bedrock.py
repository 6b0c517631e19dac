"""Bedrock calls evaluated against the synthesized roles (the machinery of test_iam.py): an agent whose
handle names a Bedrock model runs on the agent step, whose boto3 client (the real one, signing with the
function's credentials) talks to the local Bedrock Runtime server; Converse and ConverseStream, on a
foundation model and on a cross-region inference profile, must each be allowed by the role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from o.agent import lifecycle, runs
from o.config import load_settings
from o.llm.config import LLMConfig
from o.llm.keys import NoKeys
from o.llm.providers import client_for
from o.llm.types import ChatMessage, ChatRequest, Completed
from o.net.outbound import OutboundPolicy
from o.runtime import llm_options
from o.store import orgs
from o.store.db import Database
from tests.iam.policy import Request, allows
from tests.iam.recorder import iam_request
from tests.iam.template import role_of, role_statements
from tests.integration.aws.test_iam import Deployment, _cold_start, deployment, template
from tests.lambdas import Context, acting_as
from tests.servers.bedrock_server import BedrockServer
from tests.servers.script import call, say

__all__ = ["deployment", "template"]  # the fixtures of test_iam.py, shared

FOUNDATION = "anthropic.claude-3-5-sonnet-20241022-v2:0"
PROFILE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"


@pytest.fixture
def bedrock() -> Iterator[BedrockServer]:
    with BedrockServer() as server:
        yield server


def test_bedrock_calls_are_allowed_by_the_roles_that_make_them(
    deployment: Deployment, db: Database, bedrock: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = deployment.functions["agent_step"]
    env = deployment.environment("agent_step")
    assert env["O_LLM_BEDROCK_REGION"], "the stack turns Bedrock on in its region"
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"iam-bedrock-{uuid.uuid4()}")["id"]
        agent = lifecycle.create(conn, org, lifecycle.AgentSpec(
            name="on-bedrock", llm_config=LLMConfig.from_handle(f"bedrock/{FOUNDATION}").model_dump(),
            memory_blocks=[{"label": "human", "value": "?", "limit": 200}],
        )).agent["id"]  # fmt: skip
        run_id = runs.start(conn, org, agent, [runs.InputMessage("user", "hi")], {}).run.id
    with monkeypatch.context() as patch, acting_as(role):
        # the region's public endpoint stands in for the local server (the stack sets no endpoint)
        patch.setenv("O_LLM_BEDROCK_ENDPOINT_URL", bedrock.endpoint_url)
        with _cold_start(deployment, "agent_step", patch) as step:
            bedrock.push(call("send_message", message="hello from Bedrock"))
            event: dict[str, Any] = {"action": "step", "run_id": run_id, "iteration": 0}
            for _ in range(5):
                result: dict[str, Any] = step.handler(event, Context(role, function_version="1", alias="live"))
                if result["next"] in ("done", "failed"):
                    break
                event = {"action": result["next"], "run_id": run_id, "iteration": result["iteration"]}
            assert result["next"] == "done", result
            # streaming, on an inference profile, as the function's engine would stream it
            bedrock.push(say("streamed"))
            settings = load_settings()
            options = llm_options(settings, OutboundPolicy.allowing(["127.0.0.1"]))
            client = client_for(LLMConfig.from_handle(f"bedrock/{PROFILE}"), NoKeys(), options)
            events = list(client.stream(ChatRequest([ChatMessage.user("hi")])))
            done = events[-1]
            assert isinstance(done, Completed) and done.response.content == "streamed"

    made = [c for c in deployment.recorder.of(role) if c.service == "bedrock"]
    requests = {(iam_request(c).action, iam_request(c).resource) for c in made}
    assert requests == {
        ("bedrock:InvokeModel", f"arn:aws:bedrock:{made[0].region}::foundation-model/{FOUNDATION}"),
        (
            "bedrock:InvokeModelWithResponseStream",
            f"arn:aws:bedrock:{made[0].region}:{made[0].account}:inference-profile/{PROFILE}",
        ),
    }
    assert deployment.denied() == []
    # and the grant is no wider than models: the same role may not invoke another account's profile
    statements = role_statements(deployment.template, role_of(deployment.template, role), deployment.world)
    foreign = f"arn:aws:bedrock:{made[0].region}:111122223333:inference-profile/{PROFILE}"
    assert not allows(statements, Request("bedrock:InvokeModel", foreign))
    assert not allows(statements, Request("bedrock:CreateModelCustomizationJob", "*"))
