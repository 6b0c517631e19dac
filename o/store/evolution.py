"""SQL for evolutions, their events, evaluation suites, feedback, per-revision outcomes and sleep-time passes."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import rows
from o.store.db import Conn

_JSON = {"diff", "reflection", "figures", "budget", "canary"}
UPDATABLE = {
    "status",
    "candidate_revision",
    "rationale",
    "diff",
    "reflection",
    "figures",
    "tokens_used",
    "canary",
    "canary_slot",
    "decision",
    "reason",
    "execution_arn",
    "stop_requested",
    "completed_at",
}
TERMINAL = ("promoted", "rolled_back")


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    return rows.insert_one(conn, "evolutions", row, json_columns=_JSON)


def get(
    conn: Conn, evolution_id: str, *, organization_id: str | None = None, for_update: bool = False
) -> dict[str, Any] | None:
    return rows.get_by_id(conn, "evolutions", evolution_id, organization_id=organization_id, for_update=for_update)


def update(conn: Conn, evolution_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments, values = rows.assignments(changes, json_columns=_JSON)
    assignments.append(sql.SQL("updated_at = now()"))
    row = conn.execute(
        sql.SQL("UPDATE evolutions SET {} WHERE id = %s RETURNING *").format(sql.SQL(", ").join(assignments)),
        (*values, evolution_id),
    ).fetchone()
    assert row is not None
    return row


def add_figures(conn: Conn, evolution_id: str, figures: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE evolutions SET figures = figures || %s, updated_at = now() WHERE id = %s",
        (Jsonb(figures), evolution_id),
    )


def add_tokens(conn: Conn, evolution_id: str, tokens: int) -> int:
    row = conn.execute(
        "UPDATE evolutions SET tokens_used = tokens_used + %s WHERE id = %s RETURNING tokens_used",
        (tokens, evolution_id),
    ).fetchone()
    assert row is not None
    return int(row["tokens_used"])


def active_for_agent(conn: Conn, agent_id: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM evolutions WHERE agent_id = %s AND completed_at IS NULL", (agent_id,)).fetchone()


def canary_in_slot(conn: Conn, slot: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM evolutions WHERE canary_slot = %s AND status = 'canary'", (slot,)).fetchone()


def list_for_agent(conn: Conn, agent_id: str, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT * FROM evolutions WHERE agent_id = %s AND (%s::text IS NULL OR status = %s)
           ORDER BY created_at DESC, id DESC LIMIT %s""",
        (agent_id, status, status, limit),
    ).fetchall()


def add_event(conn: Conn, evolution_id: str, phase: str, message: str, data: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO evolution_events (evolution_id, phase, message, data) VALUES (%s, %s, %s, %s)",
        (evolution_id, phase, message, Jsonb(data or {})),
    )


def events(conn: Conn, evolution_id: str, *, after_id: int = 0) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM evolution_events WHERE evolution_id = %s AND id > %s ORDER BY id", (evolution_id, after_id)
    ).fetchall()


# --- evaluation suites -------------------------------------------------------------------------------------


def get_suite(conn: Conn, agent_id: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM evaluation_suites WHERE agent_id = %s", (agent_id,)).fetchone()


def put_suite(
    conn: Conn, organization_id: str, agent_id: str, suite: dict[str, Any], suite_hash: str
) -> dict[str, Any]:
    row = conn.execute(
        """INSERT INTO evaluation_suites (agent_id, organization_id, cases, gate, judge, hash)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (agent_id) DO UPDATE
             SET cases = EXCLUDED.cases, gate = EXCLUDED.gate, judge = EXCLUDED.judge, hash = EXCLUDED.hash,
                 updated_at = now()
           RETURNING *""",
        (agent_id, organization_id, Jsonb(suite["cases"]), Jsonb(suite["gate"]), Jsonb(suite["judge"]), suite_hash),
    ).fetchone()
    assert row is not None
    return row


# --- feedback and outcomes ---------------------------------------------------------------------------------


def insert_feedback(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    created = conn.execute(
        """INSERT INTO feedback (id, organization_id, agent_id, run_id, message_id, score, comment, revision)
           VALUES (%(id)s, %(organization_id)s, %(agent_id)s, %(run_id)s, %(message_id)s, %(score)s, %(comment)s,
                   %(revision)s)
           RETURNING *""",
        row,
    ).fetchone()
    assert created is not None
    return created


def record_outcome(
    conn: Conn,
    agent_id: str,
    revision: int,
    *,
    ok: bool,
    latency_ms: float,
    tokens: int,
    request_id: str | None = None,
    score: float | None = None,
) -> None:
    conn.execute(
        """INSERT INTO revision_outcomes (agent_id, revision, request_id, ok, latency_ms, tokens, score)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (agent_id, revision, request_id, ok, latency_ms, tokens, score),
    )


def record_run_outcome(
    conn: Conn,
    run_id: str,
    flag: str,
    agent_id: str,
    revision: int,
    *,
    ok: bool,
    latency_ms: float,
    tokens: int,
) -> bool:
    """A run's outcome, recorded only by the caller that sets ``runs.metadata[flag]`` (one statement, so
    the run's end pays one round trip for it); False when it was recorded before."""
    row = conn.execute(
        """WITH claimed AS (
               UPDATE runs SET metadata = metadata || jsonb_build_object(%(flag)s::text, true)
               WHERE id = %(run)s AND NOT metadata ? %(flag)s RETURNING id)
           INSERT INTO revision_outcomes (agent_id, revision, request_id, ok, latency_ms, tokens)
           SELECT %(agent)s, %(revision)s, id, %(ok)s, %(latency)s, %(tokens)s FROM claimed
           RETURNING id""",
        {
            "flag": flag,
            "run": run_id,
            "agent": agent_id,
            "revision": revision,
            "ok": ok,
            "latency": latency_ms,
            "tokens": tokens,
        },
    ).fetchone()
    return row is not None


def outcome_stats(conn: Conn, agent_id: str, revision: int, since: Any) -> dict[str, Any]:
    """Turns, error rate, latency, tokens and mean feedback score of ``revision`` since ``since``."""
    row = conn.execute(
        """SELECT count(*) AS turns,
                  coalesce(avg(CASE WHEN ok THEN 0 ELSE 1 END), 0) AS error_rate,
                  coalesce(avg(latency_ms), 0) AS latency_ms,
                  coalesce(avg(tokens), 0) AS tokens,
                  (SELECT avg(score) FROM feedback f
                    WHERE f.agent_id = %(a)s AND f.revision = %(r)s AND f.created_at >= %(s)s) AS feedback,
                  (SELECT count(*) FROM feedback f
                    WHERE f.agent_id = %(a)s AND f.revision = %(r)s AND f.created_at >= %(s)s) AS feedback_count
           FROM revision_outcomes WHERE agent_id = %(a)s AND revision = %(r)s AND created_at >= %(s)s""",
        {"a": agent_id, "r": revision, "s": since},
    ).fetchone()
    assert row is not None
    return {k: (float(v) if v is not None and k not in ("turns", "feedback_count") else v) for k, v in row.items()}


# --- sleep-time passes -------------------------------------------------------------------------------------


def last_pass(conn: Conn, agent_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT * FROM sleeptime_passes WHERE agent_id = %s ORDER BY started_at DESC LIMIT 1", (agent_id,)
    ).fetchone()


def through_seq(conn: Conn, agent_id: str) -> int:
    row = conn.execute(
        "SELECT coalesce(max(through_seq), 0) AS s FROM sleeptime_passes WHERE agent_id = %s AND status = 'completed'",
        (agent_id,),
    ).fetchone()
    return int(row["s"]) if row else 0


def canary_for_agent(conn: Conn, agent_id: str) -> dict[str, Any] | None:
    """The agent's evolution whose candidate is taking live traffic, if one is."""
    return conn.execute("SELECT * FROM evolutions WHERE agent_id = %s AND status = 'canary'", (agent_id,)).fetchone()
