"""Every conversations operation through letta-client in strict mode (each response validated against
the SDK's own types), the default conversation being the agent's own history, and the bad input the
issue names: unknown ids, a fork at a message of another conversation, a send to an archived one."""

from __future__ import annotations

import json
from typing import Any

import letta_client
import pytest
from letta_client import Letta

from o.store.db import Database
from tests.integration.conftest import new_org_key
from tests.integration.sdk.conftest import Live, live, strict_client  # noqa: F401


@pytest.fixture(scope="module")
def sdk(live: Live, db: Database) -> Letta:  # noqa: F811
    return strict_client(live, new_org_key(db))


def _agent(sdk: Letta, live: Live) -> str:  # noqa: F811
    return sdk.agents.create(
        llm_config=live.llm_config(),  # type: ignore[arg-type]
        memory_blocks=[{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "Careful."}],
    ).id


def _say(sdk: Letta, conversation_id: str, text: str, **kw: Any) -> list[Any]:
    return list(sdk.conversations.messages.create(conversation_id, messages=[{"role": "user", "content": text}], **kw))


def test_every_operation_in_strict_mode(sdk: Letta, live: Live) -> None:  # noqa: F811
    agent_id = _agent(sdk, live)
    conv = sdk.conversations.create(agent_id=agent_id, summary="about tea", description="d")
    assert conv.agent_id == agent_id and conv.id.startswith("conv-") and conv.archived is False
    chunks = _say(sdk, conv.id, "hello there")
    kinds = [getattr(c, "message_type", None) for c in chunks]
    assert "assistant_message" in kinds and "stop_reason" in kinds, kinds
    got = sdk.conversations.retrieve(conv.id)
    turn = got.in_context_message_ids or []
    assert len(turn) == 3  # the user's message, the reply (a send_message call) and its tool return
    listed = sdk.conversations.messages.list(conv.id, order="asc")
    assert [m.message_type for m in listed.items][:2] == ["user_message", "assistant_message"]
    assert {m.id for m in listed.items} <= set(turn)  # send_message's own return is not listed
    # the agent's own history did not see it
    assert sdk.agents.messages.list(agent_id).items == []
    updated = sdk.conversations.update(conv.id, summary="about coffee", context_window_limit=64000)
    assert updated.summary == "about coffee" and updated.context_window_limit == 64000
    assert [c.id for c in sdk.conversations.list(agent_id=agent_id)] == [conv.id]
    assert [c.id for c in sdk.conversations.list(agent_id=agent_id, summary_search="coffee")] == [conv.id]
    forked = sdk.conversations.fork(conv.id)
    assert forked.agent_id == agent_id and len(forked.in_context_message_ids or []) == 3
    assert set(forked.in_context_message_ids or []).isdisjoint(got.in_context_message_ids or [])
    first = (got.in_context_message_ids or [])[0]
    partial = sdk.conversations.fork(conv.id, message_id=first, hidden=True)
    assert len(partial.in_context_message_ids or []) == 1
    assert partial.id not in [c.id for c in sdk.conversations.list(agent_id=agent_id)]  # hidden
    prompt = sdk.conversations.recompile(conv.id)
    assert "Name: Ada" in prompt
    assert sdk.conversations.recompile(conv.id, dry_run=True) == prompt
    assert sdk.conversations.cancel(conv.id) == {}
    resumed = list(sdk.conversations.messages.stream(conv.id))
    assert "stop_reason" in [getattr(c, "message_type", None) for c in resumed]
    _say(sdk, conv.id, "second turn")
    compacted = sdk.conversations.messages.compact(conv.id)
    assert compacted.num_messages_after < compacted.num_messages_before  # (the scripted model's summary is empty)
    # the summary is the conversation's own: first in its context, not in the agent's
    summary_id = (sdk.conversations.retrieve(conv.id).in_context_message_ids or [])[0]
    assert summary_id not in turn and sdk.agents.messages.list(agent_id).items == []
    archived = sdk.conversations.update(conv.id, archived=True)
    assert archived.archived and archived.archived_at is not None
    assert conv.id not in [c.id for c in sdk.conversations.list(agent_id=agent_id)]
    assert conv.id in [c.id for c in sdk.conversations.list(agent_id=agent_id, archive_status="archived")]
    with pytest.raises(letta_client.ConflictError, match="archived"):
        _say(sdk, conv.id, "anyone?")
    sdk.conversations.delete(forked.id)
    with pytest.raises(letta_client.NotFoundError):
        sdk.conversations.retrieve(forked.id)


def test_default_is_the_agents_own_history(sdk: Letta, live: Live) -> None:  # noqa: F811
    agent_id = _agent(sdk, live)
    sdk.agents.messages.create(agent_id, messages=[{"role": "user", "content": "direct"}])
    _say(sdk, "default", "through default", agent_id=agent_id)
    via_agent = [m.id for m in sdk.agents.messages.list(agent_id, order="asc").items]
    via_default = [m.id for m in sdk.conversations.messages.list("default", agent_id=agent_id, order="asc").items]
    assert via_agent == via_default and len(via_agent) == 4  # two turns: user message, assistant message
    forked = sdk.conversations.fork("default", agent_id=agent_id)
    assert len(forked.in_context_message_ids or []) == 6  # the tool returns too
    # streaming false answers one LettaResponse (JSON), which the SDK's stream type cannot show: read it raw
    sent = sdk.conversations.messages.with_raw_response.create(
        "default", agent_id=agent_id, messages=[{"role": "user", "content": "sync"}], streaming=False
    )
    body = json.loads(sent.http_response.read())
    assert sent.http_response.headers["content-type"].startswith("application/json")
    assert "assistant_message" in [m["message_type"] for m in body["messages"]], body
    assert len(sdk.agents.messages.list(agent_id).items) == 6


def test_bad_input(sdk: Letta, live: Live) -> None:  # noqa: F811
    agent_id = _agent(sdk, live)
    with pytest.raises(letta_client.NotFoundError):
        sdk.conversations.retrieve("conv-00000000-0000-4000-8000-000000000000")
    with pytest.raises(letta_client.NotFoundError):
        sdk.conversations.create(agent_id="agent-00000000-0000-4000-8000-000000000000")
    one = sdk.conversations.create(agent_id=agent_id)
    two = sdk.conversations.create(agent_id=agent_id)
    _say(sdk, one.id, "in one")
    in_one = sdk.conversations.retrieve(one.id).in_context_message_ids or []
    with pytest.raises(letta_client.UnprocessableEntityError, match="not in the context"):
        sdk.conversations.fork(two.id, message_id=in_one[0])
    with pytest.raises(letta_client.UnprocessableEntityError, match="agent_id"):
        sdk.conversations.messages.list("default")


def test_a_conversations_model_overrides_apply_to_its_runs_only(sdk: Letta, live: Live) -> None:  # noqa: F811
    agent_id = _agent(sdk, live)
    tuned = sdk.conversations.create(
        agent_id=agent_id, model_settings={"provider_type": "openai", "temperature": 0.25}, context_window_limit=32000
    )
    assert tuned.api_model_settings is not None and tuned.context_window_limit == 32000
    _say(sdk, tuned.id, "tuned")
    assert live.model.requests[-1]["temperature"] == 0.25
    _say(sdk, "default", "plain", agent_id=agent_id)
    assert live.model.requests[-1].get("temperature") != 0.25
    with pytest.raises(letta_client.UnprocessableEntityError, match="provider_type"):
        sdk.conversations.update(tuned.id, model_settings={"provider_type": "anthropic", "temperature": 0.1})
