"""MCP servers with the settings of O's Lambdas: no stdio servers (a command on a function that lives
for a request makes no sense). The deployed loop calling an MCP tool is in
test_agent_loop_state_machine.py (it shares that module's synthesized state machine)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from o import runtime
from o.store.db import Database
from tests import wiring
from tests.integration.aws.agent_loop_moto import REGION
from tests.integration.conftest import new_org_key
from tests.lambdas import aws_credentials, fresh_handler, service_environment
from tests.servers.mcp_server import stdio_command


@pytest.fixture
def step_module(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    service_environment(monkeypatch, pg_url)
    aws_credentials(monkeypatch, REGION)
    with fresh_handler("functions.agent_step.handler") as module:
        yield module


def test_stdio_servers_are_refused_with_the_lambda_settings(step_module: ModuleType, db: Database) -> None:
    settings = step_module._runtime.settings
    services = runtime.api_services(settings, db, secrets=wiring.SECRETS)
    app = runtime.api_app(settings, services)
    command, args = stdio_command()
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        refused = client.post(
            "/v1/mcp-servers/", json={"server_name": "x", "config": {"command": command, "args": args}}
        )
    assert refused.status_code == 422 and "O_MCP_STDIO" in refused.json()["detail"]
