"""O's full bundle: an agent exported from one server and imported into another (another database,
another organization) is the same agent with new ids — its read model, history, passages with their
vectors, revisions, runs, feedback and evolutions. Bad bundles are refused whole."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o.agent.portable import frames
from o.api.app import create_app
from o.store.db import Database
from tests import wiring
from tests.integration.agent.conftest import make_engine
from tests.integration.conftest import new_org_key
from tests.integration.portable.conftest import history, normalized, read_model, rich_agent, vectors, without
from tests.servers.openai_server import OpenAIServer

MSGPACK = {"content-type": frames.MEDIA_TYPE}


def test_an_agent_moves_to_another_server_whole(
    source: TestClient, target: TestClient, db: Database, second_db: Database, openai_server: OpenAIServer
) -> None:
    agent_id = rich_agent(source, openai_server, db)
    exported = source.get(f"/v1/agents/{agent_id}/bundle")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == frames.MEDIA_TYPE

    imported = target.post("/v1/agents/import-bundle", content=exported.content, headers=MSGPACK)
    assert imported.status_code == 200, imported.text
    result = imported.json()
    new_id = result["agent_id"]
    assert new_id != agent_id
    assert result["unset_variables"] == ["ORDERS_TOKEN"]
    assert result["rows"]["passages"] == 3 and result["rows"]["agent_revisions"] == 2

    before, after = read_model(source, agent_id), read_model(target, new_id)
    # tool variables travel by name, their values are set anew on the target; a revision's hash is
    # of its configuration, which names the new tool ids; a message's seq_id is its place in the
    # server's one sequence (like an id, the new server's own)
    skipped = {"tool_exec_environment_variables", "secrets", "config_hash", "seq_id"}
    for part in before:
        assert without(after[part], skipped) == without(before[part], skipped), part
    # the hash matches the moved configuration: asking which revision runs records no new one
    assert target.get(f"/v1/agents/{new_id}/revisions/current").json()["number"] == 2
    assert target.patch(f"/v1/agents/{new_id}", json={"secrets": {"ORDERS_TOKEN": "s3cret"}}).status_code == 200
    moved = target.get(f"/v1/agents/{new_id}").json()
    assert normalized(moved["secrets"]) == normalized(before["agent"]["secrets"])

    assert vectors(second_db, new_id) == vectors(db, agent_id)
    assert all(v is not None for _, v, _ in vectors(second_db, new_id))
    assert history(second_db, new_id) == history(db, agent_id)
    # the moved agent is searchable on its new server (vectors and words both came along)
    found = target.get(f"/v1/agents/{new_id}/archival-memory/search", params={"query": "sailing"})
    assert found.status_code == 200, found.text
    assert "Kim likes sailing" in found.text


def test_a_bundle_imported_twice_gives_two_agents(
    source: TestClient, openai_server: OpenAIServer, db: Database
) -> None:
    agent_id = rich_agent(source, openai_server, db)
    data = source.get(f"/v1/agents/{agent_id}/bundle").content
    first = source.post("/v1/agents/import-bundle", content=data, headers=MSGPACK, params={"name": "copy"})
    second = source.post("/v1/agents/import-bundle", content=data, headers=MSGPACK)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["agent_id"] != second.json()["agent_id"]
    # the organization's tools (its custom one, and the base tools every organization has) are reused
    reused = first.json()["reused_tools"]
    assert "lookup_order" in reused and "send_message" in reused
    assert source.get(f"/v1/agents/{first.json()['agent_id']}").json()["name"] == "copy"
    assert len(source.get("/v1/tools/", params={"name": "lookup_order"}).json()) == 1


def _frames(data: bytes) -> list[dict[str, Any]]:
    return list(frames.read(io.BytesIO(data)))


def _rewritten(data: bytes, change: Any) -> bytes:
    """The bundle with ``change`` applied to its frames, written again with a valid checksum."""
    writer = frames.FrameWriter()
    out = [writer.frame(change(body)) for body in _frames(data)]
    return b"".join(out) + writer.trailer()


def _broken_tool(body: dict[str, Any]) -> dict[str, Any]:
    if "rows" in body and any("def lookup_order" in str(v) for r in body["rows"] for v in r):
        body["rows"] = [
            [("def lookup_order(:\n" if isinstance(v, str) and "def lookup_order" in v else v) for v in r]
            for r in body["rows"]
        ]
    return body


def _newer(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "version": frames.VERSION + 1} if body.get("format") == frames.FORMAT else body


@pytest.mark.parametrize(
    ("name", "spoil", "says"),
    [
        ("truncated", lambda d: d[: len(d) - 200], "truncated"),
        ("tampered", lambda d: d.replace(b"Kim likes sailing", b"Kim likes sailinG"), "checksum"),
        ("newer version", lambda d: _rewritten(d, _newer), "version 2"),
        ("broken tool", lambda d: _rewritten(d, _broken_tool), "lookup_order"),
        ("not a bundle", lambda d: b'{"agents": []}', "not an O bundle"),
        ("empty", lambda d: b"", "empty"),
    ],
)
def test_a_bad_bundle_is_refused_and_nothing_is_stored(
    a_bundle: bytes, target: TestClient, second_db: Database, name: str, spoil: Any, says: str
) -> None:
    stored = _stored(second_db)
    refused = target.post("/v1/agents/import-bundle", content=spoil(a_bundle), headers=MSGPACK)
    assert refused.status_code == 422, (name, refused.text)
    assert refused.json()["code"] == "invalid_bundle"
    assert says in refused.json()["detail"], refused.json()
    assert target.get("/v1/agents/").json() == []
    assert _stored(second_db) == stored


def _stored(db: Database) -> dict[str, int]:
    with db.read() as conn:
        found = conn.execute(
            "SELECT (SELECT count(*) FROM agents) AS agents, (SELECT count(*) FROM passages) AS passages,"
            " (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM blocks) AS blocks,"
            " (SELECT count(*) FROM tools) AS tools, (SELECT count(*) FROM agent_revisions) AS revisions"
        ).fetchone()
    assert found is not None
    return dict(found)


@pytest.fixture(scope="module")
def a_bundle(db: Database) -> Iterator[bytes]:
    """One exported bundle for the bad-file cases to spoil."""
    app = wiring.app(db, engine=make_engine(db))
    with OpenAIServer() as server, TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as c:
        agent_id = rich_agent(c, server, db)
        yield c.get(f"/v1/agents/{agent_id}/bundle").content


def test_an_upload_over_the_bundle_limit_is_refused(second_db: Database) -> None:
    app = create_app(wiring.services(second_db), max_body_bytes=4096, max_bundle_bytes=10_000)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(second_db)}"}) as client:
        declared = client.post("/v1/agents/import-bundle", content=b"x" * 20_000, headers=MSGPACK)
        streamed = client.post("/v1/agents/import-bundle", content=iter([b"x" * 6000] * 4), headers=MSGPACK)
        small = client.post("/v1/agents/import-bundle", content=b"x" * 6000, headers=MSGPACK)
    assert declared.status_code == streamed.status_code == 413, (declared.text, streamed.text)
    assert "10000" in streamed.json()["detail"]
    # over the ordinary limit but under the bundle's: read, and refused for what it is
    assert small.status_code == 422 and small.json()["code"] == "invalid_bundle"


def test_another_organizations_agent_cannot_be_exported(source: TestClient, target: TestClient) -> None:
    agent = source.post("/v1/agents/", json={"name": "mine"}).json()
    assert target.get(f"/v1/agents/{agent['id']}/bundle").status_code == 404
