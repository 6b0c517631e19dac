"""An API edit of what evolution may change is recorded as a user revision at once."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_patching_the_system_prompt_makes_a_user_revision(client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={"system": "Be brief."}).json()
    assert agent["metadata"]["revision"] == 1
    client.patch(f"/v1/agents/{agent['id']}", json={"system": "Be thorough."})
    revisions = client.get(f"/v1/agents/{agent['id']}/revisions").json()
    newest = max(revisions, key=lambda r: r["number"])
    assert newest["number"] == 2 and newest["author"] == "user"
    assert client.get(f"/v1/agents/{agent['id']}").json()["metadata"]["revision"] == 2
    # a rename is not an evolvable change
    client.patch(f"/v1/agents/{agent['id']}", json={"name": "renamed"})
    assert len(client.get(f"/v1/agents/{agent['id']}/revisions").json()) == 2
