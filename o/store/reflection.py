"""SQL for what an evolution reflects on (an agent's recent runs, feedback and inputs) and for the
decisions it leaves in the agent's archival memory (passages tagged ``evolution``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from o.store.db import Conn


def recent_runs(conn: Conn, agent_id: str, limit: int) -> list[dict[str, Any]]:
    """Status, stop reason, error, usage and duration (``ms``) of the agent's newest runs."""
    return conn.execute(
        """SELECT status, stop_reason, error, usage,
                  extract(epoch FROM (coalesce(completed_at, updated_at) - created_at)) * 1000 AS ms
           FROM runs WHERE agent_id = %s ORDER BY created_at DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()


def recent_feedback(conn: Conn, agent_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest feedback scores with their comment, revision and the reply they rate."""
    return conn.execute(
        """SELECT f.score, f.comment, f.revision, m.text AS reply
           FROM feedback f LEFT JOIN messages m ON m.id = f.message_id
           WHERE f.agent_id = %s ORDER BY f.created_at DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()


def recent_user_inputs(conn: Conn, agent_id: str, limit: int) -> list[str]:
    """The text of the agent's newest non-empty user messages in any of its conversations (not a fork's
    copies), newest first."""
    found = conn.execute(
        """SELECT text FROM messages WHERE agent_id = %s AND role = 'user' AND text <> ''
             AND NOT metadata ? 'forked_from'
           ORDER BY seq DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()
    return [r["text"] for r in found]


def evolution_memories(conn: Conn, agent_id: str, limit: int) -> list[str]:
    """The text of the newest evolution decisions in the agent's archival memory."""
    found = conn.execute(
        """SELECT text FROM passages WHERE agent_id = %s AND 'evolution' = ANY(tags)
           ORDER BY created_at DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()
    return [r["text"] for r in found]


def insert_unembedded_passage(
    conn: Conn,
    passage_id: str,
    organization_id: str,
    agent_id: str,
    text: str,
    tags: Sequence[str],
    metadata: dict[str, Any],
) -> None:
    """A passage without an embedding: reflection finds it by its tags, archival search does not."""
    conn.execute(
        """INSERT INTO passages (id, organization_id, agent_id, text, tags, metadata)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (passage_id, organization_id, agent_id, text, list(tags), Jsonb(metadata)),
    )
