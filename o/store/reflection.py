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


def failed_traces(conn: Conn, agent_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest runs that failed or that a user rated below 0.5: the user's input, the agent's last reply,
    the error and the lowest score with its comment."""
    return conn.execute(
        """SELECT r.id AS run_id, r.status, r.error, fb.score, fb.comment,
                  (SELECT m.text FROM messages m WHERE m.agent_id = r.agent_id AND m.run_id = r.id
                     AND m.role = 'user' ORDER BY m.seq LIMIT 1) AS input,
                  (SELECT coalesce(nullif(m.text, ''), m.tool_calls::text) FROM messages m
                    WHERE m.agent_id = r.agent_id AND m.run_id = r.id AND m.role = 'assistant'
                    ORDER BY m.seq DESC LIMIT 1) AS reply
           FROM runs r
           LEFT JOIN LATERAL (SELECT f.score, f.comment FROM feedback f WHERE f.run_id = r.id
                              ORDER BY f.score LIMIT 1) fb ON true
           WHERE r.agent_id = %s AND (r.status = 'failed' OR r.error IS NOT NULL OR fb.score < 0.5)
           ORDER BY r.created_at DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()


def attempts(conn: Conn, agent_id: str, limit: int) -> list[dict[str, Any]]:
    """The agent's newest decided evolutions: what was tried (rationale, diff), the decision and why."""
    return conn.execute(
        """SELECT e.id, e.decision, e.reason, e.rationale, e.diff, r.config_hash
           FROM evolutions e
           LEFT JOIN agent_revisions r ON r.agent_id = e.agent_id AND r.number = e.candidate_revision
           WHERE e.agent_id = %s AND e.completed_at IS NOT NULL
           ORDER BY e.completed_at DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()


def rejected_config_hashes(conn: Conn, agent_id: str) -> dict[str, str]:
    """config hash -> the evolution that tried it and was rolled back, for every rejected candidate."""
    found = conn.execute(
        """SELECT r.config_hash, e.id FROM evolutions e
           JOIN agent_revisions r ON r.agent_id = e.agent_id AND r.number = e.candidate_revision
           WHERE e.agent_id = %s AND e.decision = 'rolled_back'""",
        (agent_id,),
    ).fetchall()
    return {row["config_hash"]: row["id"] for row in found}
