"""O's full bundle carries the archives attached to an agent: imported into another organization, the agent
comes with its own copy of each archive (new ids, the same passages, vectors and words) and searches it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.agent.portable import frames
from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.integration.conftest import new_org_key
from tests.servers.openai_server import OpenAIServer

SECTIONS = [
    "The ferry to the northern island leaves at dawn.",
    "Its captain, Ingrid, has sailed the route for thirty years.",
    "In winter the ferry runs only on Sundays.",
]


def _vectors(db: Database, archive_id: str) -> list[tuple[str, str]]:
    with db.read() as conn:
        found = conn.execute(
            "SELECT text, embedding_384::text AS v FROM passages WHERE archive_id = %s ORDER BY text", (archive_id,)
        ).fetchall()
    return [(r["text"], r["v"]) for r in found]


def test_attached_archives_travel_with_the_agent(
    api: TestClient, agent_app: FastAPI, db: Database, openai_server: OpenAIServer
) -> None:
    agent = create_agent(api, openai_server)
    archive = api.post("/v1/archives/", json={"name": "ferry", "description": "timetable notes"}).json()
    api.post(f"/v1/archives/{archive['id']}/passages/batch", json={"passages": [{"text": t} for t in SECTIONS]})
    api.patch(f"/v1/agents/{agent['id']}/archives/attach/{archive['id']}").raise_for_status()
    unattached = api.post("/v1/archives/", json={"name": "not attached"}).json()
    api.post(f"/v1/archives/{unattached['id']}/passages", json={"text": "left behind"})

    bundle = api.get(f"/v1/agents/{agent['id']}/bundle")
    assert bundle.status_code == 200, bundle.text
    with TestClient(agent_app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        imported = other.post(
            "/v1/agents/import-bundle", content=bundle.content, headers={"content-type": frames.MEDIA_TYPE}
        )
        assert imported.status_code == 200, imported.text
        result = imported.json()
        assert result["rows"]["archives"] == 1 and result["rows"]["agent_archives"] == 1
        assert result["rows"]["passages"] == len(SECTIONS)
        new_agent = result["agent_id"]
        (copy,) = other.get("/v1/archives/", params={"agent_id": new_agent}).json()
        assert copy["id"] != archive["id"] and copy["name"] == "ferry" and copy["description"] == "timetable notes"
        assert copy["embedding_config"] == archive["embedding_config"]
        assert [a["id"] for a in other.get("/v1/archives/").json()] == [copy["id"]]
        found = other.get(f"/v1/agents/{new_agent}/archival-memory/search", params={"query": "who is the captain"})
        assert found.status_code == 200, found.text
        assert found.json()["results"][0]["content"] == SECTIONS[1]
    assert _vectors(db, copy["id"]) == _vectors(db, archive["id"])
    # the original is untouched, and still the source organization's alone
    assert api.get(f"/v1/archives/{archive['id']}/passages").json()[0]["text"] == SECTIONS[0]
    assert api.get(f"/v1/archives/{copy['id']}").status_code == 404
