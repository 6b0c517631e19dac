"""SQL for sleep-time passes: claiming and recording a pass, what a pass reads, which agents are due,
and archival de-duplication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from o.errors import Conflict
from o.store import passages as passage_store
from o.store.db import Conn


def claim_pass(
    conn: Conn, pass_id: str, organization_id: str, agent_id: str, trigger: str, stale_after_s: float
) -> None:
    """Record a running pass; raises Conflict while another pass of the agent runs. A running pass older
    than ``stale_after_s`` is marked failed first: its worker died, and it no longer blocks the next one."""
    conn.execute(
        """UPDATE sleeptime_passes SET status = 'failed', error = 'abandoned', completed_at = now()
           WHERE agent_id = %s AND status = 'running' AND started_at < now() - make_interval(secs => %s)""",
        (agent_id, stale_after_s),
    )
    try:
        conn.execute(
            "INSERT INTO sleeptime_passes (id, organization_id, agent_id, trigger) VALUES (%s, %s, %s, %s)",
            (pass_id, organization_id, agent_id, trigger),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(f"a sleep-time pass is already running for agent {agent_id}") from exc


def finish_pass(
    conn: Conn, pass_id: str, *, status: str, error: str | None, figures: dict[str, Any], through_seq: int
) -> None:
    """Record how a pass ended; only a completed pass moves ``through_seq`` (the next pass reads after it)."""
    conn.execute(
        """UPDATE sleeptime_passes SET status = %s, error = %s, figures = %s, completed_at = now(),
                  through_seq = CASE WHEN %s = 'completed' THEN %s ELSE through_seq END
           WHERE id = %s""",
        (status, error, Jsonb(figures), status, through_seq, pass_id),
    )


def through_seq(conn: Conn, agent_id: str) -> int:
    """The newest message seq a completed pass has read (0 before the first)."""
    row = conn.execute(
        "SELECT coalesce(max(through_seq), 0) AS s FROM sleeptime_passes WHERE agent_id = %s AND status = 'completed'",
        (agent_id,),
    ).fetchone()
    return int(row["s"]) if row else 0


def completed_passes(conn: Conn, agent_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM sleeptime_passes WHERE agent_id = %s AND status = 'completed'", (agent_id,)
    ).fetchone()
    return int(row["n"]) if row else 0


def messages_since(conn: Conn, agent_id: str, after_seq: int, limit: int) -> list[dict[str, Any]]:
    """What was said after ``after_seq`` in every conversation of the agent (seq, role, text, name,
    conversation_id): user, assistant and tool messages with text, not the copies a fork made."""
    return conn.execute(
        """SELECT seq, role, text, name, conversation_id FROM messages WHERE agent_id = %s AND seq > %s
           AND text <> '' AND role IN ('user', 'assistant', 'tool') AND NOT metadata ? 'forked_from'
           ORDER BY seq LIMIT %s""",
        (agent_id, after_seq, limit),
    ).fetchall()


def recent_passages(conn: Conn, agent_id: str, limit: int) -> list[dict[str, Any]]:
    """The id and text of the agent's newest archival passages."""
    return conn.execute(
        "SELECT id, text FROM passages WHERE agent_id = %s ORDER BY created_at DESC LIMIT %s", (agent_id, limit)
    ).fetchall()


def user_messages_since(conn: Conn, agent_id: str, after_seq: int) -> int:
    """User messages after ``after_seq``; 0 while a pass of the agent is running (it will read them) and
    for an agent whose sleep-time is off (Letta's ``enable_sleeptime``)."""
    row = conn.execute(
        """SELECT count(*) AS n FROM messages WHERE agent_id = %s AND role = 'user' AND seq > %s
           AND NOT EXISTS (SELECT 1 FROM sleeptime_passes WHERE agent_id = %s AND status = 'running')
           AND EXISTS (SELECT 1 FROM agents WHERE id = %s AND enable_sleeptime)""",
        (agent_id, after_seq, agent_id, agent_id),
    ).fetchone()
    return int(row["n"]) if row else 0


@dataclass(frozen=True)
class AgentNews:
    """An agent with messages no completed pass has read, and no pass running."""

    organization_id: str
    agent_id: str
    new_user_messages: int
    # when its last completed pass started; None before the first
    last_pass_at: datetime | None


def agents_with_news(conn: Conn, *, skip_org_prefix: str) -> list[AgentNews]:
    """Agents with unread messages and no running pass, outside organizations named ``skip_org_prefix``…"""
    found = conn.execute(
        """SELECT a.id, a.organization_id, p.last_at,
                  (SELECT count(*) FROM messages m
                    WHERE m.agent_id = a.id AND m.role = 'user' AND m.seq > coalesce(p.through, 0)) AS new_user
           FROM agents a
           JOIN organizations o ON o.id = a.organization_id AND o.name NOT LIKE %s
           LEFT JOIN LATERAL (
               SELECT max(through_seq) AS through, max(started_at) AS last_at
               FROM sleeptime_passes s WHERE s.agent_id = a.id AND s.status = 'completed') p ON true
           WHERE a.enable_sleeptime
             AND EXISTS (SELECT 1 FROM messages m WHERE m.agent_id = a.id AND m.seq > coalesce(p.through, 0))
             AND NOT EXISTS (SELECT 1 FROM sleeptime_passes r WHERE r.agent_id = a.id AND r.status = 'running')""",
        (skip_org_prefix + "%",),
    ).fetchall()
    return [AgentNews(r["organization_id"], r["id"], int(r["new_user"]), r["last_at"]) for r in found]


def run_agent(conn: Conn, run_id: str, *, skip_org_prefix: str) -> tuple[str, str] | None:
    """(organization id, agent id) of a run, unless its organization is named ``skip_org_prefix``…"""
    row = conn.execute(
        """SELECT r.organization_id, r.agent_id FROM runs r JOIN organizations o ON o.id = r.organization_id
           WHERE r.id = %s AND o.name NOT LIKE %s""",
        (run_id, skip_org_prefix + "%"),
    ).fetchone()
    return (row["organization_id"], row["agent_id"]) if row else None


# --- archival de-duplication -------------------------------------------------------------------------------


def delete_exact_duplicates(conn: Conn, agent_id: str) -> int:
    """Delete passages whose normalized text repeats an older passage's (evolution decisions are kept)."""
    cur = conn.execute(
        """DELETE FROM passages WHERE id IN (
             SELECT id FROM (
               SELECT id, row_number() OVER (
                 PARTITION BY lower(regexp_replace(btrim(text), '\\s+', ' ', 'g')) ORDER BY created_at, id) AS n
               FROM passages WHERE agent_id = %s AND NOT ('evolution' = ANY(tags))) d
             WHERE d.n > 1)""",
        (agent_id,),
    )
    return cur.rowcount


def delete_near_duplicates(conn: Conn, agent_id: str, *, similarity: float, window: int) -> int:
    """Among the ``window`` newest passages, delete the newer of two whose embeddings are at least
    ``similarity`` alike (cosine); evolution decisions are kept."""
    stored = passage_store.stored_embedding(conn, agent_id)
    if stored is None:
        return 0
    column = sql.Identifier(passage_store.vector_column(stored[1]))
    cur = conn.execute(
        sql.SQL("""DELETE FROM passages WHERE id IN (
             WITH recent AS (
               SELECT id, created_at, {col} AS v FROM passages
               WHERE agent_id = %(a)s AND {col} IS NOT NULL AND NOT ('evolution' = ANY(tags))
               ORDER BY created_at DESC LIMIT %(w)s)
             SELECT DISTINCT newer.id FROM recent older JOIN recent newer
               ON (older.created_at, older.id) < (newer.created_at, newer.id)
              AND 1 - (older.v <=> newer.v) >= %(s)s)""").format(col=column),
        {"a": agent_id, "w": window, "s": similarity},
    )
    return cur.rowcount
