"""Every route with an id in its path, called by another organization with our ids: 404, never data.

The table below has one entry per such route of the app (with a valid body, so the 404 is the
tenant check rather than input validation); a route with a path id that is not in it fails
``test_every_route_with_an_id_is_in_the_table``. For a route with several ids, each id is tried as
the foreign one in turn, the others being the caller's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from o.store.db import Database
from tests.integration.conftest import new_org_key
from tests.integration.sdk.conftest import Live, live, raw_client  # noqa: F401
from tests.integration.sdk.operations import TOOL_SOURCE
from tests.servers.mcp_server import HttpMcpServer

USER = {"messages": [{"role": "user", "content": "hi"}]}

# (method, path) -> the body a caller would send (None: no body)
ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "/v1/agents/{agent_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}"): {"name": "taken"},
    ("DELETE", "/v1/agents/{agent_id}"): None,
    ("POST", "/v1/agents/{agent_id}/recompile"): None,
    ("GET", "/v1/agents/{agent_id}/core-memory/blocks"): None,
    ("GET", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}"): None,
    ("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}"): {"value": "taken"},
    ("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}"): None,
    ("GET", "/v1/blocks/{block_id}"): None,
    ("PATCH", "/v1/blocks/{block_id}"): {"value": "taken"},
    ("DELETE", "/v1/blocks/{block_id}"): None,
    ("GET", "/v1/blocks/{block_id}/agents"): None,
    ("GET", "/v1/agents/{agent_id}/messages"): None,
    ("POST", "/v1/agents/{agent_id}/messages"): USER,
    ("POST", "/v1/agents/{agent_id}/messages/async"): USER,
    ("POST", "/v1/agents/{agent_id}/messages/stream"): USER,
    ("POST", "/v1/agents/{agent_id}/messages/cancel"): None,
    ("PATCH", "/v1/agents/{agent_id}/reset-messages"): None,
    ("POST", "/v1/agents/{agent_id}/summarize"): None,
    ("GET", "/v1/messages/{message_id}"): None,
    ("GET", "/v1/runs/{run_id}"): None,
    ("GET", "/v1/runs/{run_id}/messages"): None,
    ("GET", "/v1/runs/{run_id}/usage"): None,
    ("GET", "/v1/runs/{run_id}/steps"): None,
    ("POST", "/v1/runs/{run_id}/stream"): None,
    ("POST", "/v1/runs/{run_id}/cancel"): None,
    ("GET", "/v1/tools/{tool_id}"): None,
    ("PATCH", "/v1/tools/{tool_id}"): {"description": "taken"},
    ("DELETE", "/v1/tools/{tool_id}"): None,
    ("GET", "/v1/tools/{tool_id}/versions"): None,
    ("GET", "/v1/agents/{agent_id}/tools"): None,
    ("PATCH", "/v1/agents/{agent_id}/tools/attach/{tool_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}/tools/detach/{tool_id}"): None,
    ("GET", "/v1/agents/{agent_id}/tool-environment"): None,
    ("PUT", "/v1/agents/{agent_id}/tool-environment"): {"variables": {"K": "v"}},
    ("GET", "/v1/agents/{agent_id}/archival-memory"): None,
    ("POST", "/v1/agents/{agent_id}/archival-memory"): {"text": "taken"},
    ("GET", "/v1/agents/{agent_id}/archival-memory/search"): None,
    ("DELETE", "/v1/agents/{agent_id}/archival-memory/{memory_id}"): None,
    ("GET", "/v1/agents/{agent_id}/revisions"): None,
    ("GET", "/v1/agents/{agent_id}/revisions/current"): None,
    ("GET", "/v1/agents/{agent_id}/revisions/{number}"): None,
    ("POST", "/v1/agents/{agent_id}/revisions/{number}/rollback"): None,
    ("GET", "/v1/agents/{agent_id}/evaluation"): None,
    ("PUT", "/v1/agents/{agent_id}/evaluation"): {"cases": []},
    ("POST", "/v1/agents/{agent_id}/evaluation/cases"): {"run_id": "{run_id}"},
    ("GET", "/v1/agents/{agent_id}/evaluation/tampering"): None,
    ("GET", "/v1/agents/{agent_id}/evolutions"): None,
    ("POST", "/v1/agents/{agent_id}/evolutions"): {},
    ("GET", "/v1/agents/{agent_id}/evolutions/{evolution_id}"): None,
    ("POST", "/v1/agents/{agent_id}/evolutions/{evolution_id}/stop"): None,
    ("POST", "/v1/agents/{agent_id}/evolutions/{evolution_id}/approval"): {"approve": True},
    ("GET", "/v1/agents/{agent_id}/evolution-policy"): None,
    ("PUT", "/v1/agents/{agent_id}/evolution-policy"): {"schedule": "manual"},
    ("POST", "/v1/agents/{agent_id}/feedback"): {"score": 0.5, "run_id": "{run_id}"},
    ("POST", "/v1/agents/{agent_id}/sleeptime"): None,
    ("GET", "/v1/agents/{agent_id}/context"): None,
    ("GET", "/v1/steps/{step_id}"): None,
    ("GET", "/v1/steps/{step_id}/messages"): None,
    ("GET", "/v1/steps/{step_id}/metrics"): None,
    ("GET", "/v1/steps/{step_id}/trace"): None,
    ("PATCH", "/v1/steps/{step_id}/feedback"): {"feedback": "negative"},
    ("GET", "/v1/runs/{run_id}/trace"): None,
    ("GET", "/v1/identities/{identity_id}"): None,
    ("PATCH", "/v1/identities/{identity_id}"): {"name": "taken"},
    ("DELETE", "/v1/identities/{identity_id}"): None,
    ("PUT", "/v1/identities/{identity_id}/properties"): [],
    ("PATCH", "/v1/agents/{agent_id}/identities/attach/{identity_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}/identities/detach/{identity_id}"): None,
    ("GET", "/v1/agents/{agent_id}/export"): None,
    ("GET", "/v1/agents/{agent_id}/bundle"): None,
    ("POST", "/v1/agents/{agent_id}/tools/{tool_name}/run"): {"args": {"sides": 2}},
    ("PATCH", "/v1/agents/{agent_id}/tools/approval/{tool_name}"): {"requires_approval": True},
    ("GET", "/v1/archives/{archive_id}"): None,
    ("PATCH", "/v1/archives/{archive_id}"): {"name": "taken"},
    ("DELETE", "/v1/archives/{archive_id}"): None,
    ("GET", "/v1/archives/{archive_id}/passages"): None,
    ("POST", "/v1/archives/{archive_id}/passages"): {"text": "taken"},
    ("POST", "/v1/archives/{archive_id}/passages/batch"): {"passages": [{"text": "taken"}]},
    ("DELETE", "/v1/archives/{archive_id}/passages/{passage_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}/archives/attach/{archive_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}/archives/detach/{archive_id}"): None,
    # folders and files (issue 17)
    ("GET", "/v1/folders/{folder_id}"): None,
    ("PATCH", "/v1/folders/{folder_id}"): {"name": "taken"},
    ("DELETE", "/v1/folders/{folder_id}"): None,
    ("GET", "/v1/folders/{folder_id}/agents"): None,
    ("POST", "/v1/folders/{folder_id}/upload"): None,
    ("GET", "/v1/folders/{folder_id}/files"): None,
    ("GET", "/v1/folders/{folder_id}/files/{file_id}"): None,
    ("DELETE", "/v1/folders/{folder_id}/{file_id}"): None,
    ("GET", "/v1/agents/{agent_id}/folders"): None,
    ("PATCH", "/v1/agents/{agent_id}/folders/attach/{folder_id}"): None,
    ("PATCH", "/v1/agents/{agent_id}/folders/detach/{folder_id}"): None,
    ("GET", "/v1/agents/{agent_id}/files"): None,
    ("PATCH", "/v1/agents/{agent_id}/files/close-all"): None,
    ("PATCH", "/v1/agents/{agent_id}/files/{file_id}/open"): None,
    ("PATCH", "/v1/agents/{agent_id}/files/{file_id}/close"): None,
    ("GET", "/v1/mcp-servers/{mcp_server_id}"): None,
    ("PATCH", "/v1/mcp-servers/{mcp_server_id}"): {"config": {"server_url": "http://127.0.0.1:9/mcp"}},
    ("DELETE", "/v1/mcp-servers/{mcp_server_id}"): None,
    ("PATCH", "/v1/mcp-servers/{mcp_server_id}/refresh"): None,
    ("GET", "/v1/mcp-servers/{mcp_server_id}/tools"): None,
    ("GET", "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}"): None,
    ("POST", "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}/run"): {"args": {"a": 1, "b": 2}},
    ("GET", "/v1/conversations/{conversation_id}"): None,
    ("PATCH", "/v1/conversations/{conversation_id}"): {"summary": "taken"},
    ("DELETE", "/v1/conversations/{conversation_id}"): None,
    ("POST", "/v1/conversations/{conversation_id}/cancel"): None,
    ("POST", "/v1/conversations/{conversation_id}/fork"): None,
    ("POST", "/v1/conversations/{conversation_id}/recompile"): None,
    ("POST", "/v1/conversations/{conversation_id}/compact"): None,
    ("GET", "/v1/conversations/{conversation_id}/messages"): None,
    ("POST", "/v1/conversations/{conversation_id}/messages"): {**USER, "streaming": False},
    ("POST", "/v1/conversations/{conversation_id}/stream"): None,
    # upload sessions and exports (issues 14, 17): the PUT's token is the session's own, so theirs is refused
    ("GET", "/v1/uploads/{upload_id}"): None,
    ("PUT", "/v1/uploads/{upload_id}/content"): None,
    ("POST", "/v1/uploads/{upload_id}/complete"): None,
    ("POST", "/v1/agents/{agent_id}/exports"): None,
    ("GET", "/v1/exports/{export_id}"): None,
    ("GET", "/v1/exports/{export_id}/content"): None,
}
# routes whose body is a multipart upload rather than JSON
UPLOADS = {("POST", "/v1/folders/{folder_id}/upload"): {"file": ("taken.txt", b"taken")}}

# path parameters that are not ids: the same value for both organizations
NOT_IDS = {"block_label": "human", "number": "1", "tool_name": "roll"}
QUERY = {("GET", "/v1/agents/{agent_id}/archival-memory/search"): {"query": "tea"}}


@dataclass
class Tenant:
    http: httpx.Client
    ids: dict[str, str]


def _tenant(live: Live, db: Database) -> Iterator[Tenant]:  # noqa: F811
    with raw_client(live, new_org_key(db)) as http:

        def post(path: str, body: Any, expect: int = 200) -> Any:
            r = http.post(path, json=body)
            assert r.status_code == expect, r.text
            return r.json()

        agent = post(
            "/v1/agents/",
            {"llm_config": live.llm_config(), "memory_blocks": [{"label": "human", "value": "secret"}]},
        )["id"]
        block = post("/v1/blocks/", {"label": "shared", "value": "secret"})["id"]
        tool = post("/v1/tools/", {"source_code": TOOL_SOURCE})["id"]
        http.patch(f"/v1/agents/{agent}/core-memory/blocks/attach/{block}").raise_for_status()
        http.patch(f"/v1/agents/{agent}/tools/attach/{tool}").raise_for_status()
        passage = post(f"/v1/agents/{agent}/archival-memory", {"text": "secret tea"})[0]["id"]
        sent = post(f"/v1/agents/{agent}/messages", USER)
        run, message = sent["usage"]["run_ids"][0], sent["messages"][-1]["id"]
        # the evolution runs on its own agent, so this agent's edits (and ours) are not refused as busy
        evolving = post("/v1/agents/", {"llm_config": live.llm_config()})["id"]
        evolution = post(f"/v1/agents/{evolving}/evolutions", {}, expect=202)["id"]
        identity = post("/v1/identities/", {"identifier_key": "u1", "name": "U", "identity_type": "user"})["id"]
        http.patch(f"/v1/agents/{agent}/identities/attach/{identity}").raise_for_status()
        step = http.get("/v1/steps/", params={"agent_id": agent}).json()[0]["id"]
        archive = post("/v1/archives/", {"name": "A"})["id"]
        archive_passage = post(f"/v1/archives/{archive}/passages", {"text": "secret shelf"})["id"]
        http.patch(f"/v1/agents/{agent}/archives/attach/{archive}").raise_for_status()

        folder = post("/v1/folders/", {"name": "secret folder"})["id"]
        file = http.post(f"/v1/folders/{folder}/upload", files={"file": ("secret.md", b"# secret")}).json()["id"]
        http.patch(f"/v1/agents/{agent}/folders/attach/{folder}").raise_for_status()

        mcp = HttpMcpServer().start()
        mcp_server = post("/v1/mcp-servers/", {"server_name": "mcp", "config": {"server_url": mcp.url}})["id"]
        mcp_tool = http.get(f"/v1/mcp-servers/{mcp_server}/tools").json()[0]["id"]

        conversation = post(f"/v1/conversations/?agent_id={agent}", {"summary": "secret"})["id"]
        post(f"/v1/conversations/{conversation}/messages", {**USER, "streaming": False})
        upload = post("/v1/uploads/", {"kind": "bundle", "size": 10, "name": "secret"})["id"]
        export = post(f"/v1/agents/{agent}/exports", None, expect=202)["id"]
        yield Tenant(
            http,
            {
                "agent_id": agent,
                "block_id": block,
                "tool_id": tool,
                "memory_id": passage,
                "run_id": run,
                "message_id": message,
                "evolution_id": evolution,
                "evolving_agent_id": evolving,
                "identity_id": identity,
                "step_id": step,
                "archive_id": archive,
                "passage_id": archive_passage,
                "folder_id": folder,
                "file_id": file,
                "mcp_server_id": mcp_server,
                "mcp_tool_id": mcp_tool,
                "conversation_id": conversation,
                "upload_id": upload,
                "export_id": export,
            },
        )
        mcp.stop()


@pytest.fixture(scope="module")
def ours(live: Live, db: Database) -> Iterator[Tenant]:  # noqa: F811
    yield from _tenant(live, db)


@pytest.fixture(scope="module")
def theirs(live: Live, db: Database) -> Iterator[Tenant]:  # noqa: F811
    yield from _tenant(live, db)


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def test_every_route_with_an_id_is_in_the_table(live: Live) -> None:  # noqa: F811
    paths = live.app.openapi()["paths"]
    with_ids = {(m.upper(), p) for p, ops in paths.items() for m in ops if set(_params(p)) - set(NOT_IDS)}
    assert sorted(with_ids - set(ROUTES)) == [], "routes with a path id missing from this table"
    assert sorted(set(ROUTES) - with_ids) == [], "entries for routes the app does not serve"


def _ids_for(tenant: Tenant, path: str) -> dict[str, str]:
    ids = {**tenant.ids, **NOT_IDS}
    if "{evolution_id}" in path:
        ids["agent_id"] = tenant.ids["evolving_agent_id"]
    if "{mcp_server_id}" in path:
        ids["tool_id"] = tenant.ids["mcp_tool_id"]
    return ids


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_another_organizations_ids_are_404(route: tuple[str, str], ours: Tenant, theirs: Tenant) -> None:
    method, path = route
    for foreign in [p for p in _params(path) if p not in NOT_IDS]:
        # their ids everywhere but one, which is ours
        values = {**_ids_for(theirs, path), foreign: _ids_for(ours, path)[foreign]}
        body = ROUTES[route]
        if isinstance(body, dict):
            body = {k: v.format(**values) if isinstance(v, str) else v for k, v in body.items()}
        files = UPLOADS.get(route)
        r = theirs.http.request(
            method, path.format(**values), json=None if files else body, files=files, params=QUERY.get(route)
        )
        assert r.status_code == 404, f"{method} {path} with our {foreign}: {r.status_code} {r.text[:300]}"
        assert r.json()["code"] == "not_found", r.text


def test_nothing_of_ours_changed(ours: Tenant, theirs: Tenant) -> None:
    del theirs  # every foreign call above has been made (the module's tests run in order)
    ids = ours.ids
    agent = ours.http.get(f"/v1/agents/{ids['agent_id']}").json()
    assert agent["name"] != "taken" and ids["tool_id"] in [t["id"] for t in agent["tools"]]
    assert ours.http.get(f"/v1/agents/{ids['agent_id']}/core-memory/blocks/human").json()["value"] == "secret"
    assert ours.http.get(f"/v1/blocks/{ids['block_id']}").json()["value"] == "secret"
    assert ours.http.get(f"/v1/tools/{ids['tool_id']}").json()["description"] != "taken"
    assert [p["id"] for p in ours.http.get(f"/v1/agents/{ids['agent_id']}/archival-memory").json()] == [
        ids["memory_id"]
    ]
    assert (
        len(ours.http.get("/v1/runs/", params={"agent_id": ids["agent_id"]}).json()) == 2
    )  # the agent's own and its conversation's
    assert ours.http.get(f"/v1/identities/{ids['identity_id']}").json()["name"] == "U"
    assert ours.http.get(f"/v1/steps/{ids['step_id']}").json()["feedback"] is None
    assert ours.http.get(f"/v1/agents/{ids['agent_id']}").json()["identity_ids"] == [ids["identity_id"]]
    archive = ours.http.get(f"/v1/archives/{ids['archive_id']}").json()
    assert archive["name"] == "A"
    assert [p["id"] for p in ours.http.get(f"/v1/archives/{ids['archive_id']}/passages").json()] == [ids["passage_id"]]
    attached = ours.http.get("/v1/archives/", params={"agent_id": ids["agent_id"]}).json()
    assert [a["id"] for a in attached] == [ids["archive_id"]]

    assert ours.http.get(f"/v1/folders/{ids['folder_id']}").json()["name"] == "secret folder"
    files = ours.http.get(f"/v1/folders/{ids['folder_id']}/files").json()
    assert [f["file_name"] for f in files] == ["secret.md"]
    assert ours.http.get(f"/v1/agents/{ids['agent_id']}/folders").json()[0]["id"] == ids["folder_id"]

    assert ours.http.get(f"/v1/mcp-servers/{ids['mcp_server_id']}").json()["server_url"] != "http://127.0.0.1:9/mcp"
    assert ours.http.get(f"/v1/uploads/{ids['upload_id']}").json()["status"] == "pending"

    conversation = ours.http.get(f"/v1/conversations/{ids['conversation_id']}").json()
    assert conversation["summary"] == "secret" and len(conversation["in_context_message_ids"]) == 3
