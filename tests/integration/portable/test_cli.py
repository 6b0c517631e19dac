"""`o export` / `o import` move an agent between two servers over HTTP (each on its own database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from o.cli import main
from o.store.db import Database
from tests import wiring
from tests.integration.agent.conftest import make_engine
from tests.integration.conftest import new_org_key
from tests.integration.portable.conftest import normalized, rich_agent, served
from tests.servers.openai_server import OpenAIServer


def test_export_and_import_between_two_servers(
    db: Database, second_db: Database, openai_server: OpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source_key, target_key = new_org_key(db), new_org_key(second_db)
    source_app, target_app = wiring.app(db, engine=make_engine(db)), wiring.app(second_db)
    with TestClient(source_app, headers={"Authorization": f"Bearer {source_key}"}) as client:
        agent_id = rich_agent(client, openai_server, db)
        before = normalized(client.get(f"/v1/agents/{agent_id}").json())
    bundle, agent_file = tmp_path / "agent.bundle", tmp_path / "agent.af"
    with served(source_app) as source_url, served(target_app) as target_url:
        assert main(["export", agent_id, str(bundle), "--url", source_url, "--key", source_key]) == 0
        assert (
            main(["export", agent_id, str(agent_file), "--format", "af", "--url", source_url, "--key", source_key]) == 0
        )
        capsys.readouterr()
        secrets = json.dumps({"ORDERS_TOKEN": "s3cret"})
        assert main(["import", str(bundle), "--url", target_url, "--key", target_key, "--secrets", secrets]) == 0
        moved_id = capsys.readouterr().out.strip()
        assert main(["import", str(agent_file), "--url", target_url, "--key", target_key, "--name", "from-af"]) == 0
        printed = capsys.readouterr()
        from_file = printed.out.strip()
        assert "ORDERS_TOKEN" in printed.err  # the agent file's tool variable has no value yet
        # a bad file: a clear message and status 1, nothing imported
        broken = tmp_path / "broken.bundle"
        broken.write_bytes(bundle.read_bytes()[:-100])
        assert main(["import", str(broken), "--url", target_url, "--key", target_key]) == 1
        assert "truncated" in capsys.readouterr().err
        assert main(["export", "agent-nope", str(tmp_path / "x"), "--url", target_url, "--key", target_key]) == 1
        assert "404" in capsys.readouterr().err and not (tmp_path / "x").exists()
    with TestClient(target_app, headers={"Authorization": f"Bearer {target_key}"}) as client:
        assert normalized(client.get(f"/v1/agents/{moved_id}").json()) == before
        assert client.get(f"/v1/agents/{from_file}").json()["name"] == "from-af"
        assert len(client.get("/v1/agents/").json()) == 2
