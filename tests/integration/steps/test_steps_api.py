"""Steps and traces through the strict letta-client: every model call is a step with its messages,
tokens, latency and cost; feedback is stored on it; another organization sees none of it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from letta_client import Letta, NotFoundError, UnprocessableEntityError

from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.integration.conftest import new_org_key
from tests.integration.steps.conftest import strict_client
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


def _turn(api: TestClient, server: OpenAIServer, agent_id: str) -> str:
    """One turn: a step whose send_message call ends it; the run's id."""
    server.push(call("send_message", message="Paris, of course."))
    sent = api.post(
        f"/v1/agents/{agent_id}/messages", json={"messages": [{"role": "user", "content": "Capital of France?"}]}
    )
    assert sent.status_code == 200, sent.text
    [run_id] = sent.json()["usage"]["run_ids"]
    return run_id


def test_steps_record_messages_tokens_latency_and_cost(
    api: TestClient, letta: Letta, openai_server: OpenAIServer
) -> None:
    agent_id = create_agent(api, openai_server)["id"]
    run_id = _turn(api, openai_server, agent_id)

    steps = letta.steps.list(agent_id=agent_id, order="asc").items
    assert len(steps) == 1 and all(s.run_id == run_id and s.trace_id == run_id for s in steps)
    first = letta.steps.retrieve(steps[0].id)
    assert first.status == "success" and first.model == "gpt-4o-mini"
    assert first.api_model_handle == "openai/gpt-4o-mini" and first.provider_name == "openai"
    assert first.prompt_tokens and first.completion_tokens and first.total_tokens
    # list price of gpt-4o-mini: $0.15 / $0.60 per million tokens
    expected = (first.prompt_tokens * 0.15 + first.completion_tokens * 0.60) / 1e6
    assert first.model_extra["cost_usd"] == pytest.approx(expected)

    messages = letta.steps.messages.list(steps[0].id).items
    # send_message's call and result show as the assistant's message, as in Letta
    assert [m.message_type for m in messages] == ["assistant_message"]
    assert messages[0].content == "Paris, of course."

    metrics = letta.steps.metrics.retrieve(steps[0].id)
    assert metrics.llm_request_ns is not None and metrics.llm_request_ns > 0
    assert metrics.tool_execution_ns is not None and metrics.tool_execution_ns > 0
    assert metrics.step_ns >= metrics.llm_request_ns  # type: ignore[operator]
    assert metrics.step_start_ns <= metrics.llm_request_start_ns  # type: ignore[operator]

    trace = letta.steps.trace.retrieve(steps[0].id)
    assert trace is not None and trace.step_id == steps[0].id and trace.call_type == "agent_step"
    assert trace.request_json["model"] == "gpt-4o-mini" and "send_message" in trace.request_json["tools"]
    assert trace.response_json["tool_calls"][0]["name"] == "send_message"

    spans = letta.runs.trace.retrieve(run_id)
    names = [s["span_name"] for s in spans]
    assert names.count("agent_step") == 1 and names.count("llm_request") == 1 and names[0] == "agent_run"
    assert "tool_execution" in names
    assert len(letta.runs.trace.retrieve(run_id, limit=2)) == 2


def test_feedback_is_stored_filtered_and_cleared(api: TestClient, letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = create_agent(api, openai_server)["id"]
    _turn(api, openai_server, agent_id)
    _turn(api, openai_server, agent_id)
    first, second = letta.steps.list(agent_id=agent_id, order="asc").items

    rated = letta.steps.feedback.create(first.id, feedback="negative", tags=["wrong-city"])
    assert rated.feedback == "negative" and rated.tags == ["wrong-city"]
    letta.steps.feedback.create(second.id, feedback="positive")
    assert [s.id for s in letta.steps.list(agent_id=agent_id, feedback="negative").items] == [first.id]
    assert [s.id for s in letta.steps.list(agent_id=agent_id, tags=["wrong-city"]).items] == [first.id]
    assert len(letta.steps.list(agent_id=agent_id, has_feedback=True).items) == 2
    # changing one's mind replaces the verdict; null clears it
    assert letta.steps.feedback.create(first.id, feedback="positive").feedback == "positive"
    assert letta.steps.feedback.create(first.id, feedback=None).feedback is None
    assert [s.id for s in letta.steps.list(agent_id=agent_id, has_feedback=True).items] == [second.id]
    # tags add up, duplicates once
    assert letta.steps.feedback.create(first.id, tags=["slow", "wrong-city"]).tags == ["slow", "wrong-city"]

    bad = api.patch(f"/v1/steps/{first.id}/feedback", json={"feedback": "meh"})
    assert bad.status_code == 422 and "feedback" in bad.text


def test_feedback_keeps_the_users_comment_with_the_verdict(
    api: TestClient, db: Database, openai_server: OpenAIServer
) -> None:
    """The console's comment box: the comment is kept with the step's one feedback score, and replaced with it."""
    agent_id = create_agent(api, openai_server)["id"]
    _turn(api, openai_server, agent_id)
    step_id = api.get("/v1/steps/", params={"agent_id": agent_id}).json()[0]["id"]

    def stored() -> list[tuple[float, str | None]]:
        with db.transaction() as conn:
            rows = conn.execute("SELECT score, comment FROM feedback WHERE step_id = %s", (step_id,)).fetchall()
        return [(r["score"], r["comment"]) for r in rows]

    rated = api.patch(f"/v1/steps/{step_id}/feedback", json={"feedback": "negative", "comment": "wrong city"})
    assert rated.status_code == 200 and rated.json()["feedback"] == "negative"
    assert stored() == [(0.0, "wrong city")]
    assert api.patch(f"/v1/steps/{step_id}/feedback", json={"feedback": "positive"}).status_code == 200
    assert stored() == [(1.0, None)]  # a new verdict without a comment does not keep the old reason
    too_long = api.patch(f"/v1/steps/{step_id}/feedback", json={"feedback": "positive", "comment": "x" * 4001})
    assert too_long.status_code == 422 and "comment" in too_long.text


def test_paging_and_filters(api: TestClient, letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = create_agent(api, openai_server)["id"]
    runs = [_turn(api, openai_server, agent_id) for _ in range(3)]
    everything = [s.id for s in letta.steps.list(agent_id=agent_id, order="asc").items]
    assert len(everything) == 3
    walked = [s.id for s in letta.steps.list(agent_id=agent_id, order="asc", limit=1)]  # auto-pagination
    assert walked == everything
    assert {s.run_id for s in letta.steps.list(trace_ids=[runs[1]]).items} == {runs[1]}
    assert letta.steps.list(agent_id=agent_id, model="no-such-model").items == []
    assert letta.steps.list(agent_id=agent_id, project_id="proj-1").items == []
    with pytest.raises(UnprocessableEntityError, match="ISO 8601"):
        letta.steps.list(start_date="yesterday")
    with pytest.raises(Exception, match="cursor"):
        letta.steps.list(after="step-00000000-0000-4000-8000-000000000000")


def test_another_organization_sees_no_step(
    api: TestClient, letta: Letta, openai_server: OpenAIServer, db: Database, base_url: str
) -> None:
    agent_id = create_agent(api, openai_server)["id"]
    run_id = _turn(api, openai_server, agent_id)
    step_id = letta.steps.list(agent_id=agent_id).items[0].id
    hostile = strict_client(base_url, new_org_key(db))
    assert hostile.steps.list().items == []
    assert hostile.steps.list(agent_id=agent_id).items == []
    for read in (
        lambda: hostile.steps.retrieve(step_id),
        lambda: hostile.steps.metrics.retrieve(step_id),
        lambda: hostile.steps.trace.retrieve(step_id),
        lambda: hostile.steps.messages.list(step_id),
        lambda: hostile.steps.feedback.create(step_id, feedback="negative"),
        lambda: hostile.runs.trace.retrieve(run_id),
    ):
        with pytest.raises(NotFoundError):
            read()
    assert letta.steps.retrieve(step_id).feedback is None  # the hostile verdict never landed
