"""SQL for evolutions, their events, evaluation suites, feedback and per-revision outcomes.

An evolution comes back as a typed, frozen :class:`Evolution`; a change is written with :func:`update`
and read back as a new record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import rows
from o.store.db import Conn
from o.store.pages import Page, fetch_page


class EvolutionStatus(StrEnum):
    """Where an evolution stands; the last two are decisions (``completed_at`` is set with them)."""

    STARTED = "started"
    REFLECTED = "reflected"
    PROPOSED = "proposed"
    SHADOWED = "shadowed"
    GATED = "gated"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


TERMINAL = (EvolutionStatus.PROMOTED, EvolutionStatus.ROLLED_BACK)


@dataclass(frozen=True)
class Evolution:
    """One row of ``evolutions``, fields in column order (so :meth:`as_dict` reads like the row)."""

    id: str
    organization_id: str
    agent_id: str
    status: EvolutionStatus
    trigger: str
    base_revision: int
    candidate_revision: int | None
    rationale: str | None
    diff: dict[str, Any] | None
    reflection: dict[str, Any] | None
    figures: dict[str, Any]
    evaluator_hash: str
    budget: dict[str, Any]
    tokens_used: int
    canary: dict[str, Any] | None
    # which router the canary occupies ('lambda:<function>:<alias>' or 'local:<agent_id>')
    canary_slot: str | None
    decision: EvolutionStatus | None
    reason: str | None
    execution_arn: str | None
    stop_requested: bool
    deadline: datetime
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Evolution:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["status"] = EvolutionStatus(row["status"])
        values["decision"] = EvolutionStatus(row["decision"]) if row["decision"] is not None else None
        return cls(**values)

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    def as_dict(self) -> dict[str, Any]:
        """The record as the row reads: column names in order, the status and decision as plain text."""
        row = asdict(self)
        row["status"] = self.status.value
        row["decision"] = self.decision.value if self.decision is not None else None
        return row


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


def _one(row: dict[str, Any] | None) -> Evolution | None:
    return Evolution.from_row(row) if row is not None else None


def insert(
    conn: Conn,
    *,
    evolution_id: str,
    organization_id: str,
    agent_id: str,
    trigger: str,
    base_revision: int,
    evaluator_hash: str,
    budget: dict[str, Any],
    deadline: datetime,
) -> Evolution:
    row = {
        "id": evolution_id,
        "organization_id": organization_id,
        "agent_id": agent_id,
        "status": EvolutionStatus.STARTED.value,
        "trigger": trigger,
        "base_revision": base_revision,
        "evaluator_hash": evaluator_hash,
        "budget": budget,
        "deadline": deadline,
    }
    return Evolution.from_row(rows.insert_one(conn, "evolutions", row, json_columns=_JSON))


def get(
    conn: Conn, evolution_id: str, *, organization_id: str | None = None, for_update: bool = False
) -> Evolution | None:
    return _one(
        rows.get_by_id(conn, "evolutions", evolution_id, organization_id=organization_id, for_update=for_update)
    )


def update(conn: Conn, evolution_id: str, changes: dict[str, Any]) -> Evolution:
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
    return Evolution.from_row(row)


def add_figures(conn: Conn, evolution_id: str, figures: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE evolutions SET figures = figures || %s, updated_at = now() WHERE id = %s",
        (Jsonb(figures), evolution_id),
    )


def add_spend(conn: Conn, evolution_id: str, tokens: int, usd: float) -> tuple[int, float]:
    """Count tokens and their list-price dollars against the evolution; (tokens, dollars) spent so far.
    The dollars live in the figures (``usd_used``), beside the other figures of the evolution."""
    row = conn.execute(
        """UPDATE evolutions SET tokens_used = tokens_used + %(t)s,
                  figures = jsonb_set(figures, '{usd_used}',
                                      to_jsonb(coalesce((figures ->> 'usd_used')::float8, 0) + %(u)s))
           WHERE id = %(id)s RETURNING tokens_used, (figures ->> 'usd_used')::float8 AS usd_used""",
        {"t": tokens, "u": usd, "id": evolution_id},
    ).fetchone()
    assert row is not None
    return int(row["tokens_used"]), float(row["usd_used"])


def active_for_agent(conn: Conn, agent_id: str) -> Evolution | None:
    return _one(
        conn.execute("SELECT * FROM evolutions WHERE agent_id = %s AND completed_at IS NULL", (agent_id,)).fetchone()
    )


def canary_in_slot(conn: Conn, slot: str) -> Evolution | None:
    return _one(
        conn.execute("SELECT * FROM evolutions WHERE canary_slot = %s AND status = 'canary'", (slot,)).fetchone()
    )


def canary_for_agent(conn: Conn, agent_id: str) -> Evolution | None:
    """The agent's evolution whose candidate is taking live traffic, if one is."""
    return _one(
        conn.execute("SELECT * FROM evolutions WHERE agent_id = %s AND status = 'canary'", (agent_id,)).fetchone()
    )


def list_for_agent(conn: Conn, agent_id: str, page: Page, *, status: str | None = None) -> list[Evolution]:
    found = fetch_page(
        conn,
        table="evolutions",
        scope=sql.SQL("agent_id = %s AND (%s::text IS NULL OR status = %s)"),
        scope_params=(agent_id, status, status),
        page=page,
    )
    return [Evolution.from_row(r) for r in found]


def undecided_in_process(conn: Conn) -> list[str]:
    """Ids of undecided evolutions that no state machine drives (``execution_arn`` unset), oldest first."""
    found = conn.execute(
        "SELECT id FROM evolutions WHERE completed_at IS NULL AND execution_arn IS NULL ORDER BY created_at"
    ).fetchall()
    return [r["id"] for r in found]


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


def record_run_outcome(conn: Conn, statement: tuple[str, dict[str, Any]]) -> bool:
    """A run's outcome (:func:`run_outcome_statement`), recorded only by the caller that sets
    ``runs.metadata[flag]`` (one statement, so the run's end pays one round trip for it); False when it
    was recorded before."""
    return conn.execute(*statement).fetchone() is not None


def run_outcome_statement(
    run_id: str, flag: str, agent_id: str, revision: int, *, ok: bool, latency_ms: float, tokens: int
) -> tuple[str, dict[str, Any]]:
    """The statement recording a run's outcome and its values (:func:`record_run_outcome` runs it; a caller
    may send it with others in one pipeline)."""
    return (
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
    )


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


def outcome_samples(conn: Conn, agent_id: str, revision: int, since: Any) -> list[dict[str, Any]]:
    """``revision``'s live turns since ``since``, oldest first: ok, latency, tokens, and the failed tool
    calls of the run each turn was (a turn with no run id counts none)."""
    return conn.execute(
        """SELECT o.ok, o.latency_ms, o.tokens, o.score,
                  (SELECT count(*) FROM messages m
                    WHERE o.request_id IS NOT NULL AND m.run_id = o.request_id AND m.role = 'tool'
                      AND m.tool_returns -> 0 ->> 'status' = 'error') AS tool_failures
           FROM revision_outcomes o
           WHERE o.agent_id = %s AND o.revision = %s AND o.created_at >= %s ORDER BY o.id""",
        (agent_id, revision, since),
    ).fetchall()


def unjudged_outcomes(conn: Conn, agent_id: str, revisions: list[int], since: Any) -> list[dict[str, Any]]:
    """The live turns of ``revisions`` since ``since`` that a run served and no judge has scored, oldest first."""
    return conn.execute(
        """SELECT id, revision, request_id FROM revision_outcomes
           WHERE agent_id = %s AND revision = ANY(%s) AND created_at >= %s AND score IS NULL
             AND request_id IS NOT NULL
           ORDER BY id""",
        (agent_id, revisions, since),
    ).fetchall()


def set_outcome_score(conn: Conn, outcome_id: int, score: float) -> None:
    """The judge's score of one live turn's reply (canary evidence beside its errors, latency and cost)."""
    conn.execute("UPDATE revision_outcomes SET score = %s WHERE id = %s", (score, outcome_id))


# --- the owner's policy ------------------------------------------------------------------------------------


def get_policy(conn: Conn, agent_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT policy FROM evolution_policies WHERE agent_id = %s", (agent_id,)).fetchone()
    return row["policy"] if row is not None else None


def put_policy(conn: Conn, organization_id: str, agent_id: str, policy: dict[str, Any]) -> None:
    conn.execute(
        """INSERT INTO evolution_policies (agent_id, organization_id, policy) VALUES (%s, %s, %s)
           ON CONFLICT (agent_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()""",
        (agent_id, organization_id, Jsonb(policy)),
    )


def tokens_since(conn: Conn, agent_id: str, since: datetime) -> int:
    """Tokens the agent's evolutions started since ``since`` have spent."""
    row = conn.execute(
        "SELECT coalesce(sum(tokens_used), 0) AS used FROM evolutions WHERE agent_id = %s AND created_at >= %s",
        (agent_id, since),
    ).fetchone()
    assert row is not None
    return int(row["used"])


def usd_since(conn: Conn, agent_id: str, since: datetime) -> float:
    """List-price dollars the agent's evolutions started since ``since`` have spent."""
    row = conn.execute(
        """SELECT coalesce(sum((figures ->> 'usd_used')::float8), 0) AS used FROM evolutions
           WHERE agent_id = %s AND created_at >= %s""",
        (agent_id, since),
    ).fetchone()
    assert row is not None
    return float(row["used"])


def last_started(conn: Conn, agent_id: str) -> datetime | None:
    row = conn.execute("SELECT max(created_at) AS last FROM evolutions WHERE agent_id = %s", (agent_id,)).fetchone()
    return row["last"] if row is not None else None


# --- tamper attempts on the evaluator ----------------------------------------------------------------------


def record_tampering(conn: Conn, organization_id: str, agent_id: str, source: str, detail: str) -> None:
    """Keep a refused attempt to change the evaluator; the agent's running evolution, if any, records it too."""
    active = active_for_agent(conn, agent_id)
    evolution_id = active.id if active is not None else None
    conn.execute(
        """INSERT INTO evaluator_tampering (organization_id, agent_id, evolution_id, source, detail)
           VALUES (%s, %s, %s, %s, %s)""",
        (organization_id, agent_id, evolution_id, source, detail[:2000]),
    )
    if evolution_id is not None:
        add_event(conn, evolution_id, "tampering", f"refused ({source}): {detail[:500]}")


def tampering(conn: Conn, agent_id: str, limit: int = 100) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT id, evolution_id, source, detail, created_at FROM evaluator_tampering
           WHERE agent_id = %s ORDER BY id DESC LIMIT %s""",
        (agent_id, limit),
    ).fetchall()


def run_input(conn: Conn, agent_id: str, run_id: str) -> str | None:
    """The first user message of the agent's run ``run_id``, or None."""
    row = conn.execute(
        """SELECT m.text FROM messages m JOIN runs r ON r.id = m.run_id
           WHERE r.id = %s AND r.agent_id = %s AND m.agent_id = %s AND m.role = 'user' AND m.text <> ''
           ORDER BY m.seq LIMIT 1""",
        (run_id, agent_id, agent_id),
    ).fetchone()
    return row["text"] if row is not None else None
