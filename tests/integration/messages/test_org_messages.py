"""GET /v1/messages/ and GET /v1/messages/{message_id}: the organization's messages across its agents,
paged in both orders, filtered by conversation or message type; another organization sees none of them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from letta_client import Letta, NotFoundError

from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.integration.conftest import new_org_key
from tests.integration.steps.conftest import strict_client
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


def _send(letta: Letta, server: OpenAIServer, agent_id: str, text: str) -> None:
    server.push(call("send_message", message=f"re: {text}"))
    letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": text}])


def test_the_organizations_messages_across_agents(
    api: TestClient, letta: Letta, openai_server: OpenAIServer, db: Database, base_url: str
) -> None:
    first, second = (create_agent(api, openai_server)["id"] for _ in range(2))
    _send(letta, openai_server, first, "one")
    _send(letta, openai_server, second, "two")
    conversation = letta.conversations.create(agent_id=first)
    openai_server.push(call("send_message", message="re: three"))
    api.post(
        f"/v1/conversations/{conversation.id}/messages",
        json={"messages": [{"role": "user", "content": "three"}], "streaming": False},
    ).raise_for_status()

    newest_first = [m for m in letta.messages.list(limit=1000)]
    users = [m.content for m in newest_first if m.message_type == "user_message"]
    assert users[:3] == ["three", "two", "one"], users
    # paged two at a time in ascending order: every message once, oldest first
    walked, after = [], None
    while page := letta.messages.list(limit=2, order="asc", **({"after": after} if after else {})):
        walked += [m.id for m in page]
        after = page[-1].id
    assert walked == [m.id for m in reversed(newest_first)]

    only_user = letta.messages.list(include_return_message_types=["user_message"], limit=1000)
    assert {m.message_type for m in only_user} == {"user_message"}
    in_conversation = letta.messages.list(conversation_id=conversation.id, limit=100)
    assert [m.content for m in in_conversation if m.message_type == "user_message"] == ["three"]
    own_history = letta.messages.list(conversation_id=first, limit=100)
    assert [m.content for m in own_history if m.message_type == "user_message"] == ["one"]

    one = newest_first[0]
    assert [m.id for m in letta.messages.retrieve(one.id)] == [one.id]

    hostile = strict_client(base_url, new_org_key(db))
    assert hostile.messages.list(limit=100) == []
    try:
        hostile.messages.retrieve(one.id)
    except NotFoundError:
        pass
    else:
        raise AssertionError("another organization's message was found")
    bad = api.get("/v1/messages/", params={"conversation_id": "conversation-00000000-0000-4000-8000-000000000000"})
    assert bad.status_code == 404
