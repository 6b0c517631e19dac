"""Recall memory: messages are indexed lazily and searched with the archival engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory import recall
from o.store.db import Database
from tests.integration.memory.conftest import AgentFactory, create_org

CONVERSATION = [
    ("user", "I adopted a dog last week, his name is Rex.", datetime(2024, 3, 1, 9, tzinfo=UTC)),
    ("assistant", "Congratulations! What breed is he?", datetime(2024, 3, 1, 9, 1, tzinfo=UTC)),
    ("user", "A golden retriever, three years old.", datetime(2024, 3, 1, 9, 2, tzinfo=UTC)),
    ("system", "You are a helpful assistant.", datetime(2024, 3, 1, 9, 3, tzinfo=UTC)),
    ("user", "Also, I started violin lessons on Thursdays.", datetime(2024, 4, 10, 18, tzinfo=UTC)),
    ("assistant", "", datetime(2024, 4, 10, 18, 1, tzinfo=UTC)),
]


def _write(db: Database, org: str, agent: str) -> list[str]:
    ids = []
    with db.transaction() as conn:
        for role, text, when in CONVERSATION:
            message_id = new_id("message")
            tool_calls = None
            if role == "assistant" and not text:
                # spoke through send_message: the words live in the tool call
                arguments = json.dumps({"message": "Lovely, violin practice pays off!"})
                tool_calls = json.dumps(
                    [{"id": "call-1", "type": "function", "function": {"name": "send_message", "arguments": arguments}}]
                )
            conn.execute(
                "INSERT INTO messages (id, organization_id, agent_id, role, text, tool_calls, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (message_id, org, agent, role, text, tool_calls, when),
            )
            ids.append(message_id)
    return ids


def _search(db: Database, org: str, agent: str, query: str, **kw: object) -> list[dict[str, object]]:
    with db.transaction() as conn:
        return recall.search(conn, org, agent, query, **kw)  # type: ignore[arg-type]


def test_search_finds_messages_and_their_answers(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    _write(db, org, agent)
    top = _search(db, org, agent, "what breed is my dog?", limit=3)
    assert top[0]["content"] == "Congratulations! What breed is he?"
    # the answer is found by the question it answers (previous turns are its context)
    contents = [r["content"] for r in _search(db, org, agent, "dog breed", limit=4)]
    assert "A golden retriever, three years old." in contents[:3]
    said = _search(db, org, agent, "violin practice", limit=2, roles=["assistant"])
    assert said[0]["content"] == "Lovely, violin practice pays off!" and {r["role"] for r in said} == {"assistant"}
    assert all(r["role"] != "system" for r in _search(db, org, agent, "helpful assistant", limit=10))


def test_role_and_date_filters(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    _write(db, org, agent)
    users = _search(db, org, agent, "dog violin retriever", roles=["user"], limit=10)
    assert {r["role"] for r in users} == {"user"} and len(users) == 3
    march = _search(db, org, agent, "dog violin", start_date="2024-03-01", end_date="2024-03-01", limit=10)
    assert all(r["timestamp"].startswith("2024-03-01") for r in march) and march
    april = _search(db, org, agent, "violin", start_date="2024-04-01", limit=10)
    assert {r["content"] for r in april} == {
        "Also, I started violin lessons on Thursdays.",
        "Lovely, violin practice pays off!",
    }
    with pytest.raises(InvalidInput, match="unknown roles"):
        _search(db, org, agent, "x", roles=["robot"])


def test_indexing_is_incremental_and_follows_edits(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    ids = _write(db, org, agent)
    with db.transaction() as conn:
        assert recall.index_pending(conn, org, agent) == len(CONVERSATION)
        assert recall.index_pending(conn, org, agent) == 0
        conn.execute("UPDATE messages SET text = %s WHERE id = %s", ("I adopted a parrot called Kiwi.", ids[0]))
        # an unrelated update (e.g. leaving the context window) does not touch the index
        conn.execute("UPDATE messages SET in_context = false WHERE id = %s", (ids[2],))
        assert recall.index_pending(conn, org, agent) == 1
    assert _search(db, org, agent, "parrot Kiwi", limit=1)[0]["content"] == "I adopted a parrot called Kiwi."
    with db.transaction() as conn:
        stats = conn.execute(
            "SELECT df FROM search_term_stats WHERE agent_id = %s AND corpus = 'recall' AND lexeme = 'rex'", (agent,)
        ).fetchone()
        # 'rex' is gone from the edited message but still in the context of the next two turns
        assert stats is not None and stats["df"] == 2
        conn.execute("DELETE FROM messages WHERE agent_id = %s", (agent,))
        left = conn.execute(
            "SELECT count(*) AS n FROM search_term_stats WHERE agent_id = %s AND corpus = 'recall'", (agent,)
        ).fetchone()["n"]
        docs = conn.execute(
            "SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'recall'", (agent,)
        ).fetchone()["docs"]
    assert left == 0 and docs == 0


def test_other_agents_and_organizations_see_nothing(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent, other = make_agent(), make_agent()
    _write(db, org, agent)
    assert _search(db, org, other, "dog Rex", limit=10) == []
    with pytest.raises(NotFound):
        _search(db, create_org(db), agent, "dog")
