"""Make the upgrade test's snapshot of a release: its schema files, and a database of realistic data
written by that release's own code, dumped as SQL.

Run it at a release tag, on that release's code, and commit the folder it writes:

    git checkout v0.2.0 && python tests/upgrade/generate.py tests/upgrade/v0_2_0

The data is made the way users make it: through the HTTP API and the real agent loop (the LLM is the
scripted OpenAI-wire server of ``tests/servers``, the evolution world of
``tests/integration/evolution/task.py``), and left as a running server leaves it: runs paused on an
approval or stopped between their two durable phases, an evolution in its canary, plaintext secrets
where that release kept them. The search statistics are not dumped: the triggers rebuild them as the
test loads the rows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from o.agent import runs as run_api  # noqa: E402
from o.agent.step import advance  # noqa: E402
from o.evolution import loop  # noqa: E402
from o.memory import recall  # noqa: E402
from o.store import orgs  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate, schema_dir  # noqa: E402
from o.tools.secrets.envelope import SecretBox  # noqa: E402
from o.tools.secrets.keyfile import KeyFile  # noqa: E402
from tests import wiring  # noqa: E402
from tests.integration.evolution import task  # noqa: E402
from tests.servers.openai_server import OpenAIServer  # noqa: E402
from tests.servers.script import Script, call  # noqa: E402

# left out of the dump: the migrator writes its own rows, the triggers rebuild the statistics
NOT_DUMPED = ("schema_migrations", "search_corpus_stats", "search_term_stats")
# pg_dump brackets its output with psql meta-commands (\restrict KEY), which are not SQL, and empties
# the search_path, under which the schema's triggers (unqualified names) could not run as rows load
NOT_SQL = re.compile(r"^(\\(un)?restrict \w+|SELECT pg_catalog\.set_config\('search_path', '', false\);)$")

SHOUT = '''
def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: what to shout
    """
    return text.upper()
'''


def _llm(server: OpenAIServer) -> dict[str, object]:
    return {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": server.base_url,
        "context_window": 128000,
    }


def _ok(response: object) -> dict:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 300, response.text  # type: ignore[attr-defined]
    return response.json()  # type: ignore[attr-defined,no-any-return]


def _key(db: Database, org: str, *, revoked: bool = False) -> str:
    with db.transaction() as conn:
        organization = orgs.get_or_create_org(conn, org)
        key_id, secret = orgs.create_api_key(conn, organization["id"], f"{org} key")
        if revoked:
            orgs.revoke_api_key(conn, key_id)
    return secret


def geo(api: TestClient, db: Database, server: OpenAIServer, world: task.World) -> None:
    """The evolution task's agent: conversations, feedback, a finished evolution and one in its canary."""
    agent = _ok(
        api.post(
            "/v1/agents/",
            json={
                "name": "geo",
                "system": task.BASE_SYSTEM,
                "llm_config": _llm(server),
                "memory_blocks": [
                    {"label": "persona", "value": "I know capitals.", "limit": 500},
                    {"label": "human", "value": "Unknown user.", "limit": 500},
                ],
                "tags": ["geography"],
            },
        )
    )
    aid = agent["id"]
    _ok(api.put(f"/v1/agents/{aid}/evaluation", json=task.suite().model_dump(mode="json")))
    for country in ("France", "Japan"):
        sent = _ok(
            api.post(
                f"/v1/agents/{aid}/messages",
                json={"messages": [{"role": "user", "content": f"What is the capital of {country}?"}]},
            )
        )
    reply = next(m for m in sent["messages"] if m["message_type"] == "assistant_message")
    _ok(api.post(f"/v1/agents/{aid}/feedback", json={"message_id": reply["id"], "score": 0.4, "comment": "wordy"}))
    world.propose(task.WORSE)
    _ok(api.post(f"/v1/agents/{aid}/evolutions", json={"wait": True, "bake_seconds": 0}))
    world.propose(task.BETTER)
    deps = api.app.state.services.evolution  # type: ignore[attr-defined]
    evo = loop.start(deps, agent_org(db, aid), aid)
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        loop.step(deps, evo.id, action)
    # live traffic while the canary bakes: outcomes per revision
    for country in ("Italy", "Egypt"):
        api.post(
            f"/v1/agents/{aid}/messages",
            json={"messages": [{"role": "user", "content": f"What is the capital of {country}?"}]},
        )
    api.post(f"/v1/agents/{aid}/sleeptime", json={})


def agent_org(db: Database, agent_id: str) -> str:
    with db.transaction() as conn:
        row = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
    assert row is not None
    return str(row["organization_id"])


def helper(api: TestClient, db: Database, server: OpenAIServer) -> None:
    """A tool-using agent: a custom tool with secrets, a shared block, archival passages with vectors,
    a conversation with memory edits, a user's edit (revision 2), and two runs left mid-flight."""
    tool = _ok(api.post("/v1/tools/", json={"source_code": SHOUT, "tags": ["text"]}))
    shared = _ok(api.post("/v1/blocks/", json={"label": "team", "value": "Team: research", "limit": 1000}))
    agent = _ok(
        api.post(
            "/v1/agents/",
            json={
                "name": "helper",
                "llm_config": _llm(server),
                "memory_blocks": [
                    {"label": "persona", "value": "I am a careful assistant.", "limit": 2000},
                    {"label": "human", "value": "The user has not told me their name.", "limit": 2000},
                ],
                "block_ids": [shared["id"]],
                "tool_ids": [tool["id"]],
                "tool_exec_environment_variables": {"API_TOKEN": "t-plain-123", "REGION": "eu-west-1"},
                "tags": ["support", "tools"],
                "metadata": {"team": "research"},
            },
        )
    )
    aid = agent["id"]
    for text in ("Ada likes tea.", "Ada works on engines.", "The meeting is on Tuesday."):
        _ok(api.post(f"/v1/agents/{aid}/archival-memory", json={"text": text, "tags": ["notes"]}))
    server.push(
        call("core_memory_append", label="human", content="Name: Ada.", request_heartbeat=True),
        call("send_message", message="Nice to meet you, Ada."),
    )
    _ok(api.post(f"/v1/agents/{aid}/messages", json={"messages": [{"role": "user", "content": "I am Ada"}]}))
    _ok(api.patch(f"/v1/agents/{aid}", json={"system": "You are a careful assistant. Be brief."}))
    _ok(api.get(f"/v1/agents/{aid}/revisions/current"))

    # stopped between its two durable phases: the LLM asked for a tool, the tool has not run
    engine = api.app.state.services.engine  # type: ignore[attr-defined]
    with db.transaction() as conn:
        started = run_api.start(
            conn, agent_org(db, aid), aid, [run_api.InputMessage("user", "Note that I like green tea")], {}
        )
    server.push(call("core_memory_append", label="human", content="Likes green tea.", request_heartbeat=True))
    outcome = advance(engine.deps(), started.run.id, "step", 0)
    assert outcome.next == "tools", outcome


def careful(api: TestClient, server: OpenAIServer) -> None:
    """A run paused on a human's approval."""
    agent = _ok(
        api.post(
            "/v1/agents/",
            json={
                "name": "careful",
                "llm_config": _llm(server),
                "memory_blocks": [{"label": "human", "value": "Unknown.", "limit": 2000}],
                "tool_rules": [{"type": "requires_approval", "tool_name": "core_memory_append"}],
            },
        )
    )
    server.push(call("core_memory_append", _id="call_boat", label="human", content="Owns a boat."))
    out = _ok(
        api.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "I own a boat"}]})
    )
    assert out["stop_reason"]["stop_reason"] == "requires_approval", out


def other_tenant(api: TestClient, server: OpenAIServer) -> None:
    agent = _ok(
        api.post(
            "/v1/agents/",
            json={"name": "globex", "llm_config": _llm(server), "memory_blocks": [{"label": "human", "value": "Bo"}]},
        )
    )
    server.push(call("send_message", message="Hello Bo."))
    _ok(api.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]}))


def index_messages(db: Database) -> None:
    """As the sleep-time trigger leaves them: most agents' messages indexed for recall search (words and
    vectors), one agent's still waiting."""
    with db.transaction() as conn:
        agents = conn.execute("SELECT id, organization_id FROM agents WHERE name <> 'careful'").fetchall()
        for agent in agents:
            recall.index_pending(conn, agent["organization_id"], agent["id"])


def dump(url: str, out: Path) -> None:
    pg_dump = Path(shutil.which("pg_dump") or "")
    import pgserver  # the embedded server's own pg_dump matches its version

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    command = [str(bundled if bundled.exists() else pg_dump), "--data-only", "--column-inserts", "--no-owner"]
    command += [f"--exclude-table={t}" for t in NOT_DUMPED]
    text = subprocess.run([*command, "--dbname", url], capture_output=True, text=True, check=True).stdout
    kept = [line for line in text.split("\n") if not NOT_SQL.match(line)]
    (out / "data.sql").write_text("\n".join(kept))


def main() -> None:
    out = Path(sys.argv[1])
    (out / "schema").mkdir(parents=True, exist_ok=True)
    for path in sorted(schema_dir().glob("*.sql")):
        shutil.copy(path, out / "schema" / path.name)
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-snapshot-")), cleanup_mode="delete")
    try:
        migrate(pg.url)
        db = Database(pg.url, max_size=4).open()
        world = task.World()
        with OpenAIServer(Script(default=world)) as server:
            # the snapshot's own key: a later upgrade test opens the secrets this release sealed with it
            # (git keeps no file modes: the test copies it to a 0600 file before use)
            secrets = SecretBox(KeyFile(out / "secrets.key"))
            app = wiring.app(db, evolution=task.make_deps(db), secrets=secrets)
            with TestClient(app, headers={"Authorization": f"Bearer {_key(db, 'acme')}"}) as api:
                _key(db, "acme", revoked=True)
                geo(api, db, server, world)
                helper(api, db, server)
                careful(api, server)
            with TestClient(app, headers={"Authorization": f"Bearer {_key(db, 'globex')}"}) as api:
                other_tenant(api, server)
        app.state.services.engine._local.join()
        index_messages(db)
        db.close()
        dump(pg.url, out)
    finally:
        pg.stop()
    print(f"wrote {out}/schema and {out}/data.sql")


if __name__ == "__main__":
    main()
