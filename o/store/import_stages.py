"""SQL for the hidden organization a bundle imported in chunks waits in (:mod:`o.agent.portable.chunked`).

Its rows are written under an organization of their own that no API key belongs to, so every query of
the importing organization (listing agents, fetching one, its blocks, runs, tools, searches) passes
them by until the last chunk moves them over in one transaction (:func:`adopt`); a failed import is
removed whole by deleting that organization (:func:`drop`: every table cascades from it, or from the
agent, archive or folder rows it holds). The evolution loop's scratch organizations work the same way."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from o.ids import new_id
from o.store import orgs
from o.store.db import Conn

# the names of stages (as the evolution loop's scratch organizations, never an organization of a key)
PREFIX = "o-import:"


def create(conn: Conn, label: str) -> str:
    """A new hidden organization (named after what it stages: organization names are unique)."""
    stage = new_id("org")
    orgs.create(conn, stage, f"{PREFIX}{label}")
    return stage


def adopt(conn: Conn, stage: str, organization_id: str, tables: Sequence[str]) -> None:
    """Move the stage's rows of these tables to the organization (each table that has the column)."""
    present = conn.execute(
        """SELECT table_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND column_name = 'organization_id' AND table_name = ANY(%s)""",
        (list(tables),),
    ).fetchall()
    names = {r["table_name"] for r in present}
    for table in (t for t in tables if t in names):
        conn.execute(
            sql.SQL("UPDATE {} SET organization_id = %s WHERE organization_id = %s").format(sql.Identifier(table)),
            (organization_id, stage),
        )


def drop(conn: Conn, stage: str) -> None:
    """Remove the stage and everything it holds."""
    orgs.delete(conn, stage)
