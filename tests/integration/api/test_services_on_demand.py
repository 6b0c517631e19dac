"""The API's composition root builds the agent engine, the evolution and the MCP servers' client on first
use: a cold start that serves a GET of an agent never imports the agent loop, the LLM clients, the
evolution, the outbound HTTP transport nor the MCP client; a request that runs the engine gets the one
engine, built once, sharing the MCP servers' pool with the routes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from o.api.deps import Lazy

PROGRAM = """
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from o import runtime
from o.api.app import create_app
from o.config import settings_from
from o.store.db import Database
from o.tools.secrets.envelope import SecretBox
from o.tools.secrets.keyfile import KeyFile

url, key, keyfile, agent_id = sys.argv[1:5]
AGENT_MACHINERY = ("o.agent.engine", "o.agent.runner", "o.evolution.loop", "o.llm.openai_compat", "o.agent.step",
                   "o.agent.runs")
# what only calls out needs: the outbound transport (and the connection pool under it: httpx2 itself is the
# TestClient's), the MCP client, the web tools
CALLING_OUT = ("o.net.transport", "httpcore2", "o.tools.mcp.pool", "o.tools.mcp.servers", "o.tools.web.tools")
# what the services need only on a request that uses them: the folders' and transfers' domain, the model catalog
# (locally the transfer jobs' worker is built at start, with the bundle format; on AWS not: bench/cold_start.py)
FIRST_REQUEST = ("o.agent.folders", "o.agent.uploads", "o.llm.catalog")
# the routes of the agent files (/v1/agents/import, export, bundle), which a GET of an agent does not need
AGENT_FILES = ("o.api.routers.agent_files", "o.api.agent_file")
# the routes that change agents, their request shapes, and what only changing one needs (the lifecycle, the base
# tools, the tools' catalog, archival memory: locally the transfer jobs' worker imports the last four at start)
AGENT_CHANGES = ("o.api.routers.agent_changes", "o.api.schemas.agents", "o.api.schemas.agent_settings",
                 "o.agent.lifecycle", "o.agent.tools", "o.tools.base", "o.tools.builtin", "o.tools.catalog",
                 "o.memory.archival")
settings = settings_from({"OPENAI_API_KEY": "sk-test"})
db = Database(url, min_size=1, max_size=2).open()
services = runtime.api_services(settings, db, secrets=SecretBox(KeyFile(Path(keyfile))))
app = create_app(services, max_body_bytes=256 * 1024, routes_on_demand=True)
started = [name for name in (*AGENT_MACHINERY, *CALLING_OUT, *FIRST_REQUEST) if name in sys.modules]
assert started == [], f"the API's start imported {started}"
at_start = set(sys.modules)
with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
    got = client.get(f"/v1/agents/{agent_id}")
    assert got.status_code == 200 and got.json()["name"] == "cold", got.text
    loaded = [name for name in (*AGENT_MACHINERY, *CALLING_OUT, *AGENT_FILES) if name in sys.modules]
    loaded += [name for name in AGENT_CHANGES if name in sys.modules and name not in at_start]
    assert loaded == [], f"a GET of an agent imported {loaded}"
    # the first request that needs the engine builds it, with the database the routes use, and it shares
    # the MCP servers' pooled connections with the routes
    engine = services.engine
    assert services.engine is engine and services.evolution.db is db is services.db
    assert "o.agent.engine" in sys.modules
    assert services.mcp_servers is not None and engine.tools.mcp is services.mcp_servers
db.close()
print("ok")
"""


def test_a_get_of_an_agent_never_imports_the_agent_machinery(
    pg_url: str, api_key: str, client: TestClient, tmp_path: Path
) -> None:
    made = client.post("/v1/agents", json={"name": "cold", "memory_blocks": [{"label": "human", "value": "Ada"}]})
    assert made.status_code == 200, made.text
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, pg_url, api_key, str(tmp_path / "secrets.key"), made.json()["id"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_a_lazy_service_is_built_once_whoever_asks_first() -> None:
    built: list[int] = []
    gate = threading.Barrier(8)

    def build() -> object:
        built.append(1)
        return object()

    lazy: Lazy[object] = Lazy(build)
    seen: list[object] = []

    def ask() -> None:
        gate.wait()
        seen.append(lazy.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(seen) == 8 and all(v is seen[0] for v in seen)
