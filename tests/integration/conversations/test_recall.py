"""Recall knows the conversation: conversation_search results name it, the organization's message
search can be scoped to one, and sleep-time and evolution read what was said in every conversation
(not the copies a fork made)."""

from __future__ import annotations

import json
from typing import Any

from letta_client import Letta

from o.memory import recall
from o.store import reflection, sleeptime
from o.store.db import Database
from o.tools.builtin import ToolContext, conversation_search
from tests.integration.conftest import new_org_key
from tests.integration.sdk.conftest import Live, live, strict_client  # noqa: F401


def _say(sdk: Letta, conversation_id: str, text: str, **kw: Any) -> None:
    list(sdk.conversations.messages.create(conversation_id, messages=[{"role": "user", "content": text}], **kw))


def test_recall_and_reflection_see_every_conversation(live: Live, db: Database) -> None:  # noqa: F811
    sdk = strict_client(live, new_org_key(db))
    agent = sdk.agents.create(llm_config=live.llm_config())  # type: ignore[arg-type]
    one = sdk.conversations.create(agent_id=agent.id).id
    two = sdk.conversations.create(agent_id=agent.id).id
    _say(sdk, one, "I like green tea")
    _say(sdk, two, "I live in Oslo")
    _say(sdk, "default", "The weather is grey", agent_id=agent.id)
    sdk.conversations.fork(one)  # its copies are not said again

    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent.id,)).fetchone()
        assert org is not None
        found = recall.search(conn, org["organization_id"], agent.id, "green tea", limit=20)
        oslo = recall.search(conn, org["organization_id"], agent.id, "Oslo", limit=1)
        said = sleeptime.messages_since(conn, agent.id, 0, 100)
        inputs = reflection.recent_user_inputs(conn, agent.id, 10)
    assert {r["conversation_id"] for r in found if r["content"] == "I like green tea"} >= {one}
    assert oslo[0]["content"] == "I live in Oslo" and oslo[0]["conversation_id"] == two
    users = [(m["text"], m["conversation_id"]) for m in said if m["role"] == "user"]
    assert users == [("I like green tea", one), ("I live in Oslo", two), ("The weather is grey", None)]
    assert sorted(inputs) == sorted(["I like green tea", "I live in Oslo", "The weather is grey"])

    scoped = sdk.messages.search(query="Oslo tea weather", conversation_id=two)
    assert scoped and all(getattr(r, "conversation_id", None) == two for r in scoped)


def test_conversation_search_can_keep_to_the_current_conversation(live: Live, db: Database) -> None:  # noqa: F811
    sdk = strict_client(live, new_org_key(db))
    agent = sdk.agents.create(llm_config=live.llm_config())  # type: ignore[arg-type]
    one = sdk.conversations.create(agent_id=agent.id).id
    two = sdk.conversations.create(agent_id=agent.id).id
    _say(sdk, one, "My tea is green")
    _say(sdk, two, "My tea is black")
    _say(sdk, "default", "My tea is oolong", agent_id=agent.id)
    fork = sdk.conversations.fork(one).id  # its copies are found in the fork only, not twice everywhere

    with db.transaction() as conn:
        row = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent.id,)).fetchone()
        assert row is not None
        org = row["organization_id"]
        run_in_two = conn.execute("SELECT id FROM runs WHERE conversation_id = %s", (two,)).fetchone()
        run_of_own = conn.execute(
            "SELECT id FROM runs WHERE agent_id = %s AND conversation_id IS NULL", (agent.id,)
        ).fetchone()
        assert run_in_two is not None and run_of_own is not None

        def users(run_id: str, only: bool) -> set[tuple[str, str | None]]:
            ctx = ToolContext(conn, org, agent.id, run_id=run_id)
            found = json.loads(conversation_search(ctx, "tea", limit=20, this_conversation_only=only))
            return {(r["content"], r["conversation_id"]) for r in found if r["role"] == "user"}

        everywhere = users(run_in_two["id"], False)
        assert everywhere == {("My tea is green", one), ("My tea is black", two), ("My tea is oolong", None)}
        assert users(run_in_two["id"], True) == {("My tea is black", two)}
        assert users(run_of_own["id"], True) == {("My tea is oolong", None)}
        found = json.loads(conversation_search(ToolContext(conn, org, agent.id), "green", limit=20))
        assert [r["conversation_id"] for r in found if r["content"] == "My tea is green"] == [one]
        in_fork = recall.search(conn, org, agent.id, "green", limit=20, within=recall.Conversation(fork))
        assert [r["content"] for r in in_fork if r["role"] == "user"] == ["My tea is green"]
