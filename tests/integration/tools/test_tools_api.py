"""The tools API in Letta's shapes, against the real Postgres and the real local sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.ids import is_id, new_id
from o.store.db import Database
from tests.integration.conftest import new_org_key

ADD = '''
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
'''

ADD_V2 = '''
def add(a: int, b: int = 2, c: int = 0) -> int:
    """Add up to three numbers.

    Args:
        a: The first number.
        b: The second number.
        c: The third number.
    """
    return a + b + c
'''


@pytest.fixture
def other(app: FastAPI, db: Database) -> Iterator[TestClient]:
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as c:
        yield c


def create(client: TestClient, source: str = ADD, **extra: object) -> dict:
    r = client.post("/v1/tools/", json={"source_code": source, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_create_derives_letta_schema_and_reads_back(client: TestClient) -> None:
    tool = create(client, tags=["math"])
    assert is_id(tool["id"], "tool")
    assert tool["name"] == "add" and tool["tool_type"] == "custom" and tool["source_type"] == "python"
    assert tool["description"] == "Add two numbers."
    assert tool["json_schema"] == {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "The first number."},
                "b": {"type": "integer", "description": "The second number."},
            },
            "required": ["a"],
        },
    }
    assert tool["version"] == 1 and tool["tags"] == ["math"] and tool["return_char_limit"] == 6000
    assert client.get(f"/v1/tools/{tool['id']}").json() == tool
    listed = client.get("/v1/tools/", params={"name": "add"}).json()
    assert [t["id"] for t in listed] == [tool["id"]]
    # the organization's nine base tools, the two outside-world built-ins every server runs
    # (run_code, fetch_webpage; no search provider is configured here) and this one
    assert client.get("/v1/tools/count").json() == 12


def test_explicit_schema_and_bad_sources_are_reported(client: TestClient) -> None:
    schema = {"name": "add", "description": "Sum.", "parameters": {"type": "object", "properties": {}}}
    tool = create(client, json_schema=schema, description="Adds.")
    assert tool["json_schema"]["description"] == "Adds." and tool["description"] == "Adds."

    wrong = client.post("/v1/tools/", json={"source_code": ADD, "json_schema": {**schema, "name": "mul"}})
    assert wrong.status_code == 422 and "no function named 'mul'" in wrong.json()["detail"]
    broken = client.post("/v1/tools/", json={"source_code": "def f(:\n"})
    assert broken.status_code == 422 and "does not parse" in broken.json()["detail"]
    nofunc = client.post("/v1/tools/", json={"source_code": "x = 1"})
    assert nofunc.status_code == 422 and "no top-level function" in nofunc.json()["detail"]
    dup = client.post("/v1/tools/", json={"source_code": ADD})
    assert dup.status_code == 409


def test_update_keeps_every_version(client: TestClient) -> None:
    tool = create(client)
    r = client.patch(f"/v1/tools/{tool['id']}", json={"source_code": ADD_V2})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["version"] == 2
    assert set(updated["json_schema"]["parameters"]["properties"]) == {"a", "b", "c"}
    assert updated["description"] == "Add up to three numbers."
    # a change that is not the tool's code or schema is not a new version
    tagged = client.patch(f"/v1/tools/{tool['id']}", json={"tags": ["x"]}).json()
    assert tagged["version"] == 2 and tagged["tags"] == ["x"]
    versions = client.get(f"/v1/tools/{tool['id']}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["source_code"] == ADD and versions[1]["source_code"] == ADD_V2
    bad_cursor = client.get(f"/v1/tools/{tool['id']}/versions", params={"after": "v1"})
    assert bad_cursor.status_code == 422 and "after" in bad_cursor.text
    bad = client.patch(f"/v1/tools/{tool['id']}", json={"source_code": "def add(:"})
    assert bad.status_code == 422
    assert client.get(f"/v1/tools/{tool['id']}").json()["version"] == 2


def test_upsert_creates_then_updates_by_name(client: TestClient) -> None:
    first = client.put("/v1/tools/", json={"source_code": ADD})
    assert first.status_code == 200, first.text
    second = client.put("/v1/tools/", json={"source_code": ADD_V2})
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert (first.json()["version"], second.json()["version"]) == (1, 2)


def test_delete(client: TestClient) -> None:
    tool = create(client)
    assert client.delete(f"/v1/tools/{tool['id']}").status_code == 200
    assert client.get(f"/v1/tools/{tool['id']}").status_code == 404
    assert client.delete(f"/v1/tools/{tool['id']}").status_code == 404


def test_attach_list_detach(client: TestClient) -> None:
    tool = create(client)
    agent = client.post("/v1/agents/", json={"name": "calc", "include_base_tools": False}).json()
    r = client.patch(f"/v1/agents/{agent['id']}/tools/attach/{tool['id']}")
    assert r.status_code == 200, r.text
    assert tool["id"] in [t["id"] for t in r.json()["tools"]]
    listed = client.get(f"/v1/agents/{agent['id']}/tools").json()
    assert [t["name"] for t in listed] == ["add"]
    # attaching twice is harmless
    assert client.patch(f"/v1/agents/{agent['id']}/tools/attach/{tool['id']}").status_code == 200
    r = client.patch(f"/v1/agents/{agent['id']}/tools/detach/{tool['id']}")
    assert r.status_code == 200
    assert tool["id"] not in [t["id"] for t in r.json()["tools"]]
    assert client.get(f"/v1/agents/{agent['id']}/tools").json() == []
    missing = client.patch(f"/v1/agents/{agent['id']}/tools/attach/{new_id('tool')}")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]


def test_another_organizations_tools_answer_404(client: TestClient, other: TestClient) -> None:
    tool = create(client)
    their_agent = other.post("/v1/agents/", json={"name": "theirs"}).json()
    assert other.get(f"/v1/tools/{tool['id']}").status_code == 404
    assert other.patch(f"/v1/tools/{tool['id']}", json={"tags": ["x"]}).status_code == 404
    assert other.delete(f"/v1/tools/{tool['id']}").status_code == 404
    assert other.get(f"/v1/tools/{tool['id']}/versions").status_code == 404
    assert other.patch(f"/v1/agents/{their_agent['id']}/tools/attach/{tool['id']}").status_code == 404
    assert tool["id"] not in [t["id"] for t in other.get("/v1/tools/", params={"limit": 1000}).json()]
    assert client.get(f"/v1/agents/{their_agent['id']}/tools").status_code == 404
    # the same name in another organization is a different tool
    assert create(other)["id"] != tool["id"]
    assert client.get(f"/v1/tools/{tool['id']}").status_code == 200


def test_run_source_once(client: TestClient) -> None:
    source = 'import os\ndef greet(name: str) -> str:\n    print("hi")\n    return name + os.environ["SUFFIX"]\n'
    r = client.post("/v1/tools/run", json={"source_code": source, "args": {"name": "Ada"}, "env_vars": {"SUFFIX": "!"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message_type"] == "tool_return_message"
    assert (body["status"], body["tool_return"], body["name"]) == ("success", "Ada!", "greet")
    assert body["stdout"] == ["hi\n"] and body["sandbox_status"] == "success"

    failing = client.post("/v1/tools/run", json={"source_code": "def f() -> int:\n    return 1 / 0\n"}).json()
    assert failing["status"] == "error" and "ZeroDivisionError" in failing["tool_return"]
    assert "ZeroDivisionError" in failing["stderr"][0]
    bad = client.post("/v1/tools/run", json={"source_code": ADD, "name": "nope"})
    assert bad.status_code == 422


def test_tool_environment_route(client: TestClient, other: TestClient) -> None:
    agent = client.post("/v1/agents/", json={"name": "env"}).json()
    path = f"/v1/agents/{agent['id']}/tool-environment"
    r = client.put(path, json={"variables": {"API_TOKEN": "t0k"}, "descriptions": {"API_TOKEN": "weather"}})
    assert r.status_code == 200, r.text
    # the value is never shown, neither in the clear nor sealed
    assert [(v["key"], v["value"], v["description"]) for v in r.json()] == [("API_TOKEN", "********", "weather")]
    assert client.get(path).json() == r.json() and "t0k" not in client.get(path).text
    assert client.put(path, json={"variables": {"1BAD": "x"}}).status_code == 422
    assert other.get(path).status_code == 404
    assert client.put(path, json={"variables": {}}).json() == []


def test_versions_are_paged_in_both_orders(client: TestClient) -> None:
    tool = create(client)
    for n in range(2, 6):  # versions 2..5, each a new description
        body = {"source_code": ADD.replace("Add two numbers.", f"Add two numbers, take {n}.")}
        assert client.patch(f"/v1/tools/{tool['id']}", json=body).json()["version"] == n

    def walk(order: str) -> list[int]:
        seen: list[int] = []
        params: dict[str, object] = {"limit": 2, "order": order}
        while page := client.get(f"/v1/tools/{tool['id']}/versions", params=params).json():
            seen += [v["version"] for v in page]
            params["after"] = page[-1]["version"]
        return seen

    assert walk("asc") == [1, 2, 3, 4, 5]
    assert walk("desc") == [5, 4, 3, 2, 1]
    newest_before_4 = client.get(f"/v1/tools/{tool['id']}/versions", params={"order": "desc", "before": 4})
    assert [v["version"] for v in newest_before_4.json()] == [5]
