"""Upgrading a database never breaks it.

A database is built with the previous release's schema (``v0_1_0/schema``, the files as that release
shipped them) and filled with data that release's own code wrote (``v0_1_0/data.sql``: agents, shared
blocks, messages indexed with vectors, archival passages with vectors, runs paused on an approval and
stopped between their two phases, revisions, a finished evolution and one in its canary, feedback,
plaintext tool secrets, a revoked key). Then this release upgrades it the way `o serve` does, and:

- nothing is lost: every row of every table has every value it had (the only change is the plaintext
  tool secrets, now sealed, which open to the same values);
- every read of the API works on it, and the runs left mid-flight finish;
- a migration that fails part-way leaves the database exactly as it was, with a message that says so.

At each release tag the snapshot is refreshed (tests/upgrade/generate.py; see the README).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from o import runtime
from o.agent.runner import drive
from o.config import settings_from
from o.store import orgs
from o.store.migrate import MigrationFailed, discover, migrate, schema_dir
from o.tools.builtin import BASE_TOOLS, default_tools
from o.tools.secrets.envelope import SecretBox, variable_context
from o.tools.secrets.keyfile import KeyFile
from tests.conftest import new_database
from tests.servers.mcp_server import HttpMcpServer
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call, say

PREVIOUS = Path(__file__).parent / "v0_1_0"
# what the upgrade changes on purpose: plaintext secrets become sealed ones (checked by opening them);
# every other value of every column the previous release had must come through unchanged
SEALED = {("agent_tool_env", "value")}
# tables the upgrade adds rows to on purpose (migration 011): each organization's records of the base
# tools and their versions, and each agent's attachments of the built-ins it was offered implicitly
ADDS_BASE_TOOLS = {"tools", "tool_versions", "agent_tools"}


@pytest.fixture
def previous_release(pg_url: str) -> Iterator[str]:
    """A database as the previous release left it: its schema, its migrations' rows, its data."""
    with new_database(pg_url, "upgrade") as url:
        assert migrate(url, PREVIOUS / "schema") == [p.name for p in sorted((PREVIOUS / "schema").glob("*.sql"))]
        with psycopg.connect(url) as conn:
            conn.execute((PREVIOUS / "data.sql").read_text())
        yield url


def _tables(conn: psycopg.Connection[dict[str, Any]]) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    ).fetchall()
    return sorted(r["tablename"] for r in rows)


def contents(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in a stable order."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {table: sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr) for table in _tables(conn)}


def structure(url: str) -> list[tuple[Any, ...]]:
    """Tables, columns, indexes, constraints and functions: what a failed migration must not change."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            """SELECT 'column', table_name, column_name || ' ' || data_type || ' ' || is_nullable
                 FROM information_schema.columns WHERE table_schema = 'public'
               UNION ALL SELECT 'index', tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'
               UNION ALL SELECT 'constraint', conrelid::regclass::text, pg_get_constraintdef(oid)
                 FROM pg_constraint WHERE connamespace = 'public'::regnamespace
               UNION ALL SELECT 'function', proname, pg_get_function_identity_arguments(oid)
                 FROM pg_proc WHERE pronamespace = 'public'::regnamespace
               UNION ALL SELECT 'migration', version::text, name FROM schema_migrations
               ORDER BY 1, 2, 3"""
        ).fetchall()


def _as_before(rows: list[dict[str, Any]], table: str, columns: set[str]) -> list[dict[str, Any]]:
    """The rows with the previous release's columns only (those the upgrade added left out), less
    the values the upgrade changes on purpose."""
    return sorted(({k: v for k, v in r.items() if k in columns and (table, k) not in SEALED} for r in rows), key=repr)


def test_the_previous_release_is_what_it_shipped() -> None:
    # the snapshot's files are the first files of this release, unchanged (an applied file is never edited)
    ours = {m.name: m.sql for m in discover()}
    for path in sorted((PREVIOUS / "schema").glob("*.sql")):
        assert ours.get(path.name) == path.read_text(), f"{path.name} was edited after release"


def data_dir(tmp_path: Path) -> Path:
    """A data directory with the snapshot's secrets key, if its release sealed secrets (git keeps no
    file modes, and a key file others may read is refused)."""
    key = PREVIOUS / "secrets.key"
    if key.exists():
        shutil.copy(key, tmp_path / "secrets.key")
        (tmp_path / "secrets.key").chmod(0o600)
    return tmp_path


def test_upgrade_keeps_every_row_and_seals_the_secrets(previous_release: str, tmp_path: Path) -> None:
    tmp_path = data_dir(tmp_path)
    before = contents(previous_release)
    assert before["agents"] and before["passages"] and before["evolutions"] and before["agent_tool_env"]
    settings = settings_from({"O_DATABASE_URL": previous_release, "O_DATA_DIR": str(tmp_path)})
    runtime.start(settings).close()  # what `o serve` does at start: migrate, then seal
    after = contents(previous_release)

    assert set(before) <= set(after)  # an upgrade may add tables, never drops one
    for table, rows in before.items():
        columns = set(rows[0]) if rows else set()
        if table in ADDS_BASE_TOOLS:
            kept = _as_before(after[table], table, columns)
            assert all(row in kept for row in _as_before(rows, table, columns)), table
            continue
        assert len(after[table]) == len(rows), table
        assert _as_before(after[table], table, columns) == _as_before(rows, table, columns), table
    _check_base_tools(before, after)
    box = SecretBox(KeyFile(tmp_path / "secrets.key"))
    plaintext = {(r["agent_id"], r["key"]): r["value"] for r in before["agent_tool_env"] if r["value"] is not None}
    sealed = {(r["agent_id"], r["key"]): r for r in after["agent_tool_env"]}
    assert set(plaintext) <= set(sealed)
    assert all(r["value"] is None and r["sealed"] for r in sealed.values())  # none left in plaintext
    for (agent_id, key), value in plaintext.items():
        row = sealed[(agent_id, key)]
        assert row["value"] is None and value.encode() not in row["sealed"]
        assert box.open(row["sealed"], variable_context(agent_id, key)) == value
    assert {m.name for m in discover()} == {
        r[0] for r in psycopg.connect(previous_release).execute("SELECT name FROM schema_migrations").fetchall()
    }


def _check_base_tools(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> None:
    """Every organization got one record per base tool, and every agent the built-ins of its type,
    which it was offered implicitly before: what it can do is unchanged."""
    new_tools = [t for t in after["tools"] if t["id"] not in {b["id"] for b in before["tools"]}]
    assert all(t["tool_type"].startswith("letta_") for t in new_tools)
    for org in before["organizations"]:
        assert sorted(t["name"] for t in new_tools if t["organization_id"] == org["id"]) == sorted(BASE_TOOLS)
    names = {t["id"]: t["name"] for t in after["tools"]}
    for agent in before["agents"]:
        attached = {names[row["tool_id"]] for row in after["agent_tools"] if row["agent_id"] == agent["id"]}
        before_custom = {names[row["tool_id"]] for row in before["agent_tools"] if row["agent_id"] == agent["id"]}
        assert attached == set(default_tools(agent["agent_type"])) | before_custom, agent["name"]
    added = len(after["agent_tools"]) - len(before["agent_tools"])
    assert added == sum(len(default_tools(a["agent_type"])) for a in before["agents"])
    assert len(after["tool_versions"]) - len(before["tool_versions"]) == len(new_tools)


def _ids(url: str) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()
            assert row is not None, query
            return next(iter(row.values()))

        return {
            "org": one("SELECT id FROM organizations WHERE name = 'acme'"),
            "agents": [r["id"] for r in conn.execute("SELECT id FROM agents ORDER BY created_at").fetchall()],
            "agent_id": one("SELECT id FROM agents WHERE name = 'helper'"),
            "geo": one("SELECT id FROM agents WHERE name = 'geo'"),
            "careful": one("SELECT id FROM agents WHERE name = 'careful'"),
            "block_id": one(
                "SELECT block_id FROM agent_blocks ab JOIN agents a ON a.id = ab.agent_id "
                "WHERE a.name = 'helper' AND ab.label = 'team'"
            ),
            "tool_id": one("SELECT id FROM tools"),
            "run_id": one("SELECT id FROM runs WHERE next_action = 'tools'"),
            "step_id": one("SELECT id FROM steps ORDER BY created_at, id LIMIT 1"),
            "message_id": one(
                "SELECT m.id FROM messages m JOIN agents a ON a.id = m.agent_id WHERE a.name = 'helper' "
                "ORDER BY m.seq LIMIT 1"
            ),
            "approval_run": one("SELECT id FROM runs WHERE next_action = 'approval'"),
            "evolution_id": one("SELECT id FROM evolutions WHERE status = 'canary'"),
        }


def _reads(app: Any, ids: dict[str, Any]) -> list[str]:
    """Every GET operation of the API's OpenAPI schema, with the ids of the upgraded data filled in."""
    values = {
        "agent_id": ids["agent_id"],
        "block_id": ids["block_id"],
        "tool_id": ids["tool_id"],
        "run_id": ids["run_id"],
        "step_id": ids["step_id"],
        "message_id": ids["message_id"],
        "identity_id": ids.get("identity_id", ""),
        "archive_id": ids.get("archive_id", ""),
        "folder_id": ids.get("folder_id", ""),
        "file_id": ids.get("file_id", ""),
        "mcp_server_id": ids.get("mcp_server_id", ""),
        "conversation_id": ids.get("conversation_id", ""),
        "upload_id": ids.get("upload_id", ""),
        "export_id": ids.get("export_id", ""),
        "block_label": "human",
        "number": "1",
    }
    required_query = {"query": "tea"}
    paths = []
    for route, operations in app.openapi()["paths"].items():
        if "get" not in operations:
            continue
        path = route
        if "{evolution_id}" in path:
            path = path.replace("{agent_id}", ids["geo"]).replace("{evolution_id}", ids["evolution_id"])
        if "{mcp_server_id}" in path:
            path = path.replace("{tool_id}", ids["mcp_tool_id"])
        params = re.findall(r"{(\w+)}", path)
        assert set(params) <= set(values), f"no value for {params} in {route}"
        path = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)
        query = [p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query" and p["required"]]
        assert set(query) <= set(required_query), f"no value for {query} in {route}"
        paths.append(path + ("?" + "&".join(f"{q}={required_query[q]}" for q in query) if query else ""))
    return paths


def test_every_read_works_and_mid_flight_runs_finish(previous_release: str, tmp_path: Path) -> None:
    tmp_path = data_dir(tmp_path)
    # an operator that lets agents name the test's model servers on 127.0.0.1
    environment = {"O_DATABASE_URL": previous_release, "O_DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "sk-test"}
    settings = settings_from({**environment, "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1"})
    rt = runtime.start(settings)
    try:
        ids = _ids(previous_release)
        with rt.db.transaction() as conn:
            _, secret = orgs.create_api_key(conn, ids["org"])
        services = runtime.api_services(settings, rt.db)
        app = runtime.api_app(settings, services)
        with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as api:
            # a release before identities had none: one made after the upgrade is read with the rest
            made = api.post("/v1/identities/", json={"identifier_key": "u", "name": "U", "identity_type": "user"})
            ids["identity_id"] = made.json()["id"]
            # nor archives: one made and attached after the upgrade joins the helper's archival search
            ids["archive_id"] = api.post("/v1/archives/", json={"name": "after the upgrade"}).json()["id"]
            api.post(f"/v1/archives/{ids['archive_id']}/passages", json={"text": "the kettle is in the archive"})
            api.patch(f"/v1/agents/{ids['agent_id']}/archives/attach/{ids['archive_id']}").raise_for_status()

            # nor folders: one made (with a file, attached) after the upgrade is read too
            ids["folder_id"] = api.post("/v1/folders/", json={"name": "docs"}).json()["id"]
            uploaded = api.post(f"/v1/folders/{ids['folder_id']}/upload", files={"file": ("a.md", b"# A")})
            ids["file_id"] = uploaded.json()["id"]
            assert api.patch(f"/v1/agents/{ids['agent_id']}/folders/attach/{ids['folder_id']}").status_code == 200

            # nor MCP servers: one registered after the upgrade (a real one, over streamable HTTP)
            mcp = HttpMcpServer().start()
            server = api.post("/v1/mcp-servers/", json={"server_name": "m", "config": {"server_url": mcp.url}})
            assert server.status_code == 200, server.text
            ids["mcp_server_id"] = server.json()["id"]
            ids["mcp_tool_id"] = api.get(f"/v1/mcp-servers/{ids['mcp_server_id']}/tools").json()[0]["id"]

            # nor conversations: one of an upgraded agent is read with the rest
            made = api.post("/v1/conversations/", params={"agent_id": ids["agent_id"]}, json={})
            ids["conversation_id"] = made.json()["id"]
            # nor upload sessions and exports: an upgraded agent's bundle written to the blob store by a job
            ids["upload_id"] = api.post("/v1/uploads/", json={"kind": "bundle", "size": 10}).json()["id"]
            ids["export_id"] = api.post(f"/v1/agents/{ids['agent_id']}/exports").json()["id"]
            deadline = time.monotonic() + 60
            while (export := api.get(f"/v1/exports/{ids['export_id']}").json())["status"] not in ("completed", "error"):
                assert time.monotonic() < deadline, export
                time.sleep(0.05)
            assert export["status"] == "completed", export
            paths = _reads(app, ids)
            assert len(paths) > 25
            for path in paths:
                response = api.get(path)
                assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:300]}"
            mcp.stop()
            for agent_id in ids["agents"][:3]:
                for path in (
                    f"/v1/agents/{agent_id}",
                    f"/v1/agents/{agent_id}/messages",
                    f"/v1/agents/{agent_id}/context",
                ):
                    assert api.get(path).status_code == 200, path
            helper = api.get(f"/v1/agents/{ids['agent_id']}").json()
            assert {v["key"]: v["value"] for v in helper["secrets"]} == {"API_TOKEN": "********", "REGION": "********"}
            found = api.get(f"/v1/agents/{ids['agent_id']}/archival-memory/search", params={"query": "tea"}).json()
            assert found["results"] and "tea" in found["results"][0]["content"]
            kettle = api.get(f"/v1/agents/{ids['agent_id']}/archival-memory/search", params={"query": "kettle"}).json()
            assert kettle["results"][0]["content"] == "the kettle is in the archive"
            evolution = api.get(f"/v1/agents/{ids['geo']}/evolutions/{ids['evolution_id']}").json()
            assert evolution["status"] == "canary"

            with OpenAIServer() as server:
                # the provider moved since the snapshot was taken (its address was a test server's port):
                # the runs' stored configurations are kept, only their calls go to the new address
                build = services.engine.llm
                services.engine.llm = lambda config: build(
                    config.model_copy(update={"model_endpoint": server.base_url})
                )
                # the run stopped between its phases: its tool call runs, then the loop ends it
                server.push(call("send_message", message="Noted: green tea."))
                outcome = drive(services.engine.deps(), ids["run_id"])
                assert (outcome.next, outcome.stop_reason) == ("done", "end_turn")
                human = api.get(f"/v1/agents/{ids['agent_id']}/core-memory/blocks/human").json()
                assert human["value"].count("Likes green tea.") == 1
                # the run paused on an approval: approved after the upgrade, it finishes
                server.push(say("Noted your boat."))
                approved = api.post(
                    f"/v1/agents/{ids['careful']}/messages",
                    json={"messages": [{"type": "approval", "approve": True}]},
                )
                assert approved.status_code == 200, approved.text
                assert api.get(f"/v1/runs/{ids['approval_run']}").json()["status"] == "completed"
                careful = api.get(f"/v1/agents/{ids['careful']}/core-memory/blocks/human").json()
                assert careful["value"].endswith("Owns a boat.")
    finally:
        rt.close()


def test_a_failing_migration_leaves_the_database_as_it_was(previous_release: str, tmp_path: Path) -> None:
    folder = tmp_path / "schema"
    shutil.copytree(schema_dir(), folder)
    # this release's migrations apply, then a later one changes things and fails half-way
    (folder / "999_broken.sql").write_text(
        "ALTER TABLE agents ADD COLUMN mood text;\n"
        "UPDATE agents SET name = name || ' (migrated)';\n"
        "CREATE TABLE scratch (id int);\n"
        "ALTER TABLE messages ADD CONSTRAINT never CHECK (seq < 0);\n"
    )
    before, shape = contents(previous_release), structure(previous_release)
    with pytest.raises(MigrationFailed) as failed:
        migrate(previous_release, folder)
    message = str(failed.value)
    shipped = sorted(p.name for p in (PREVIOUS / "schema").glob("*.sql"))
    first_new = next(m.name for m in discover(folder) if m.name not in shipped)
    assert message.startswith("migration 999_broken.sql failed: check constraint")
    assert "Nothing was applied" in message and f"rolled back: {first_new}" in message
    assert f"still at version {int(shipped[-1][:3])} ({shipped[-1]})" in message
    assert contents(previous_release) == before
    assert structure(previous_release) == shape
    # the broken file fixed, the same upgrade goes through
    (folder / "999_broken.sql").write_text("ALTER TABLE agents ADD COLUMN mood text;\n")
    assert migrate(previous_release, folder)[-1] == "999_broken.sql"
