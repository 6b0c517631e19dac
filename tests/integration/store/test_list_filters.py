"""Every filter of the store's list queries, against the real Postgres: what each keeps and drops."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from o.ids import new_id
from o.store import agents, blocks, orgs, runs, tools
from o.store.db import Conn, Database
from o.store.pages import Page


@pytest.fixture
def org(db: Database) -> str:
    with db.transaction() as conn:
        return str(orgs.get_or_create_org(conn, f"filters-{uuid.uuid4()}")["id"])


def _names(rows: list[dict]) -> list[str]:
    return sorted(r["name"] for r in rows)


def _in(db: Database, fn: Callable[[Conn], list[dict]]) -> list[dict]:
    with db.transaction() as conn:
        return fn(conn)


def test_agents_filter_by_name_tags_and_escaped_name_search(db: Database, org: str) -> None:
    with db.transaction() as conn:
        for name, tags in [
            ("alpha", ["a", "b"]),
            ("beta", ["b"]),
            ("50%_off", []),
            ("500 off", ["c"]),
            ("C:\\temp", []),
        ]:
            agents.insert(conn, {"id": new_id("agent"), "organization_id": org, "name": name, "tags": tags})
    page = Page(limit=100)

    def named(conn: Conn, **f: object) -> list[dict]:
        listed = agents.list_page_versions(conn, org, page, **f)  # type: ignore[arg-type]
        return [agents.get(conn, org, row["id"]) or {} for row in listed]

    listed = lambda **f: _names(_in(db, lambda c: named(c, **f)))  # noqa: E731
    assert listed() == ["50%_off", "500 off", "C:\\temp", "alpha", "beta"]
    assert listed(name="beta") == ["beta"]
    assert listed(name="") == []
    assert listed(tags=["a", "c"]) == ["500 off", "alpha"]
    assert listed(tags=["a", "b"], match_all_tags=True) == ["alpha"]
    assert listed(tags=[]) == listed()
    assert listed(query_text="ALP") == ["alpha"]
    # % and _ are searched for as themselves, not as wildcards
    assert listed(query_text="0%_") == ["50%_off"]
    assert listed(query_text="0_") == []
    assert listed(query_text=":\\t") == ["C:\\temp"]
    assert listed(query_text="") == listed()


def test_tools_filter_by_name_names_types_and_search(db: Database, org: str) -> None:
    with db.transaction() as conn:
        for name, kind in [("add", "custom"), ("add_many", "custom"), ("send_message", "letta_core")]:
            tools.insert(conn, {"id": new_id("tool"), "organization_id": org, "name": name, "tool_type": kind})
    page = Page(limit=100)
    listed = lambda **f: _names(_in(db, lambda c: tools.list_page(c, org, page, **f)))  # noqa: E731
    assert listed() == ["add", "add_many", "send_message"]
    assert listed(name="add") == ["add"]
    assert listed(names=["add", "send_message", "nope"]) == ["add", "send_message"]
    assert listed(names=[]) == listed()
    assert listed(tool_types=["letta_core"]) == ["send_message"]
    assert listed(search="_M") == ["add_many", "send_message"]
    assert listed(search="d_m", tool_types=["custom"]) == ["add_many"]


def test_blocks_filter_by_label_and_templates(db: Database, org: str) -> None:
    with db.transaction() as conn:
        for label, template in [("human", False), ("human", True), ("persona", True)]:
            blocks.insert(
                conn, {"id": new_id("block"), "organization_id": org, "label": label, "is_template": template}
            )
    page = Page(limit=100)
    listed = lambda **f: sorted(  # noqa: E731
        (r["label"], r["is_template"]) for r in _in(db, lambda c: blocks.list_page(c, org, page, **f))
    )
    assert listed() == [("human", False), ("human", True), ("persona", True)]
    assert listed(label="human") == [("human", False), ("human", True)]
    assert listed(templates_only=True) == [("human", True), ("persona", True)]
    assert listed(label="human", templates_only=True) == [("human", True)]


def test_runs_filter_by_agents_statuses_and_stop_reason(db: Database, org: str) -> None:
    with db.transaction() as conn:
        first, second = (
            agents.insert(conn, {"id": new_id("agent"), "organization_id": org, "name": n})["id"] for n in "ab"
        )
        made = [
            (first, "completed", "end_turn"),
            (first, "failed", "error"),
            (second, "completed", "end_turn"),
            (second, "running", None),
        ]
        ids = {}
        for agent_id, status, reason in made:
            row = runs.insert(
                conn,
                {
                    "id": new_id("run"),
                    "organization_id": org,
                    "agent_id": agent_id,
                    "status": status,
                    "stop_reason": reason,
                },
            )
            ids[row.id] = (agent_id == first, status, reason)
    page = Page(limit=100)

    def listed(**f: object) -> list[tuple[bool, str, str | None]]:
        return sorted(ids[r.id] for r in _in(db, lambda c: runs.list_page(c, org, page, **f)))  # type: ignore[arg-type]

    assert len(listed()) == 4
    assert listed(agent_ids=[first]) == [(True, "completed", "end_turn"), (True, "failed", "error")]
    assert listed(statuses=["running", "failed"]) == [(False, "running", None), (True, "failed", "error")]
    assert listed(stop_reason="end_turn", agent_ids=[second]) == [(False, "completed", "end_turn")]
    # an empty stop reason or list filters nothing
    assert listed(stop_reason="", agent_ids=[], statuses=[]) == listed()
