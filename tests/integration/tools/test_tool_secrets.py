"""Tool secrets on the real Postgres: sealed at rest, masked in every response, opened only for a
tool run, and the plaintext rows of an earlier release sealed when the schema is migrated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from o import runtime
from o.config import settings_from
from o.store import orgs
from o.store.db import Database
from o.store.migrate import migrate
from o.tools.execute import run_tool
from o.tools.sandbox import LocalProcessSandbox
from o.tools.secrets.envelope import SecretBox
from o.tools.secrets.keyfile import KeyFile
from tests.conftest import new_database
from tests.wiring import SECRETS

READ_SECRET = '''
import os
def read_secret(variable: str) -> str:
    """Return a variable of the tool's environment.

    Args:
        variable: its name
    """
    return os.environ.get(variable, "<unset>")
'''
PLAINTEXT = "sk-live-4f9a1c"


@pytest.fixture(scope="module")
def sandbox() -> LocalProcessSandbox:
    return LocalProcessSandbox()


def _rows(db: Database, agent_id: str) -> list[dict]:
    with db.read() as conn:
        return conn.execute(
            "SELECT key, value, sealed FROM agent_tool_env WHERE agent_id = %s ORDER BY key", (agent_id,)
        ).fetchall()


def _org(db: Database, agent_id: str) -> str:
    with db.read() as conn:
        return conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()[
            "organization_id"
        ]


def _read(db: Database, agent_id: str, variable: str, sandbox: LocalProcessSandbox, box: SecretBox = SECRETS) -> str:
    result = run_tool(db, _org(db, agent_id), agent_id, "read_secret", {"variable": variable}, sandbox, secrets=box)
    return result.func_return if result.status == "success" else f"error: {result.func_return}"


def test_sealed_at_rest_masked_everywhere_opened_for_the_tool_run(
    client: TestClient, db: Database, sandbox: LocalProcessSandbox
) -> None:
    tool = client.post("/v1/tools/", json={"source_code": READ_SECRET}).json()
    block = client.post("/v1/blocks/", json={"label": "notes", "value": "n"}).json()
    created = client.post(
        "/v1/agents/",
        json={
            "tool_ids": [tool["id"]],
            "block_ids": [block["id"]],
            "secrets": {"API_TOKEN": PLAINTEXT},
            "tool_exec_environment_variables": {"REGION": "eu-west-1"},
        },
    )
    assert created.status_code == 200, created.text
    agent_id = created.json()["id"]

    stored = _rows(db, agent_id)
    assert [r["key"] for r in stored] == ["API_TOKEN", "REGION"]
    assert all(r["value"] is None and r["sealed"] for r in stored)
    assert all(PLAINTEXT.encode() not in bytes(r["sealed"]) for r in stored)

    sealed_forms = [bytes(r["sealed"]).hex() for r in stored]
    responses = [
        created,
        client.get(f"/v1/agents/{agent_id}"),
        client.get("/v1/agents/"),
        client.patch(f"/v1/agents/{agent_id}", json={"description": "d"}),
        client.get(f"/v1/agents/{agent_id}/tool-environment"),
        client.patch(f"/v1/agents/{agent_id}/tools/detach/{tool['id']}"),
        client.patch(f"/v1/agents/{agent_id}/tools/attach/{tool['id']}"),
        client.get(f"/v1/blocks/{block['id']}/agents"),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert PLAINTEXT not in response.text and "eu-west-1" not in response.text
        assert not any(form[:32] in response.text for form in sealed_forms)
    state = client.get(f"/v1/agents/{agent_id}").json()
    assert state["secrets"] == state["tool_exec_environment_variables"]
    assert {v["key"]: v["value"] for v in state["secrets"]} == {"API_TOKEN": "********", "REGION": "********"}

    assert _read(db, agent_id, "API_TOKEN", sandbox) == PLAINTEXT
    assert _read(db, agent_id, "REGION", sandbox) == "eu-west-1"


def test_sending_back_the_mask_keeps_the_secret(client: TestClient, db: Database, sandbox: LocalProcessSandbox) -> None:
    tool = client.post("/v1/tools/", json={"source_code": READ_SECRET}).json()
    agent = client.post("/v1/agents/", json={"tool_ids": [tool["id"]], "secrets": {"API_TOKEN": PLAINTEXT}}).json()
    # a client's read-modify-write: what it was shown goes back, with one new variable
    shown = {v["key"]: v["value"] for v in agent["secrets"]}
    updated = client.patch(f"/v1/agents/{agent['id']}", json={"secrets": {**shown, "EXTRA": "x1"}})
    assert updated.status_code == 200, updated.text
    assert _read(db, agent["id"], "API_TOKEN", sandbox) == PLAINTEXT
    assert _read(db, agent["id"], "EXTRA", sandbox) == "x1"
    path = f"/v1/agents/{agent['id']}/tool-environment"
    kept = client.put(path, json={"variables": {"API_TOKEN": "********"}, "descriptions": {"API_TOKEN": "prod"}})
    assert [(v["key"], v["description"]) for v in kept.json()] == [("API_TOKEN", "prod")]
    assert _read(db, agent["id"], "API_TOKEN", sandbox) == PLAINTEXT
    assert _read(db, agent["id"], "EXTRA", sandbox) == "<unset>"
    refused = client.put(path, json={"variables": {"NEW": "********"}})
    assert refused.status_code == 422 and "'NEW'" in refused.json()["detail"]


def test_a_sealed_value_moved_to_another_agent_does_not_open(
    client: TestClient, db: Database, sandbox: LocalProcessSandbox
) -> None:
    tool = client.post("/v1/tools/", json={"source_code": READ_SECRET}).json()
    first = client.post("/v1/agents/", json={"tool_ids": [tool["id"]], "secrets": {"API_TOKEN": PLAINTEXT}}).json()
    second = client.post("/v1/agents/", json={"tool_ids": [tool["id"]], "secrets": {"API_TOKEN": "theirs"}}).json()
    with db.transaction() as conn:
        conn.execute(
            """UPDATE agent_tool_env SET sealed = (SELECT sealed FROM agent_tool_env WHERE agent_id = %s)
               WHERE agent_id = %s""",
            (first["id"], second["id"]),
        )
    assert _read(db, second["id"], "API_TOKEN", sandbox).startswith("error: ")
    assert "could not be opened" in _read(db, second["id"], "API_TOKEN", sandbox)


@pytest.fixture
def fresh_url(pg_url: str) -> Iterator[str]:
    with new_database(pg_url, "secrets") as url:
        yield url


def test_plaintext_rows_of_an_earlier_release_are_read_then_sealed_by_a_migrating_start(
    fresh_url: str, tmp_path: Path, sandbox: LocalProcessSandbox
) -> None:
    migrate(fresh_url)
    db = Database(fresh_url, max_size=2).open()
    try:
        with db.transaction() as conn:
            org = orgs.get_or_create_org(conn, "legacy")["id"]
            conn.execute("INSERT INTO agents (id, organization_id, name) VALUES ('agent-legacy', %s, 'old')", (org,))
            conn.execute(
                """INSERT INTO tools (id, organization_id, name, source_code, json_schema)
                   VALUES ('tool-legacy', %s, 'read_secret', %s, '{"name": "read_secret"}')""",
                (org, READ_SECRET),
            )
            conn.execute("INSERT INTO agent_tools VALUES ('agent-legacy', 'tool-legacy')")
            # as the release before sealed secrets wrote them
            conn.execute(
                "INSERT INTO agent_tool_env (agent_id, key, value) VALUES ('agent-legacy', 'API_TOKEN', %s)",
                (PLAINTEXT,),
            )
        # readable before the start that seals them: no tool run breaks in between
        assert _read(db, "agent-legacy", "API_TOKEN", sandbox) == PLAINTEXT

        settings = settings_from({"O_DATABASE_URL": fresh_url, "O_DATA_DIR": str(tmp_path)})
        runtime.start(settings).close()
        [row] = _rows(db, "agent-legacy")
        assert row["value"] is None and PLAINTEXT.encode() not in bytes(row["sealed"])
        box = SecretBox(KeyFile(tmp_path / "secrets.key"))
        assert _read(db, "agent-legacy", "API_TOKEN", sandbox, box) == PLAINTEXT
        # sealing again finds nothing to do
        rt = runtime.start(settings)
        try:
            assert runtime.seal_plaintext_secrets(rt) == 0
        finally:
            rt.close()
    finally:
        db.close()
