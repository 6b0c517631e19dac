"""The hot path (o/api/hot.py) answers four operations without FastAPI's machinery: it must answer
exactly what the full app answers (the same bytes, the same headers), hand everything else to it, and
never take a path that the full app routes to another endpoint."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from o.api.hot import hot_route
from o.ids import new_id
from o.store import messages as message_store
from o.store.db import Database
from tests import wiring


def _full_then_hot(app: FastAPI, client: TestClient, method: str, path: str, **kw: object) -> tuple[Response, Response]:
    """The same request answered by the full app (the key not yet known to the process, so the hot
    path passes it on) and then by the hot path (the full app remembered the key)."""
    app.state.known_keys.clear()
    full = client.request(method, path, **kw)  # type: ignore[arg-type]
    assert app.state.known_keys, "the full app remembers the key"
    hot = client.request(method, path, **kw)  # type: ignore[arg-type]
    return full, hot


def _same(full: Response, hot: Response) -> None:
    assert hot.status_code == full.status_code, (full.text, hot.text)
    assert hot.content == full.content
    assert {k: v for k, v in hot.headers.items() if k != "date"} == {
        k: v for k, v in full.headers.items() if k != "date"
    }


def test_the_hot_path_answers_byte_for_byte_what_the_full_app_answers(app: FastAPI, api_key: str) -> None:
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "I am O."}]
        created = client.post("/v1/agents/", json={"name": "hot", "memory_blocks": blocks})
        assert created.status_code == 200, created.text
        agent = created.json()["id"]
        for path in (
            f"/v1/agents/{agent}",
            f"/v1/agents/{agent}/",
            "/v1/agents/?limit=50",
            "/v1/agents?limit=1&order=asc",
            f"/v1/agents/{agent}/messages?limit=50",
            f"/v1/agents/{agent}/messages",
        ):
            _same(*_full_then_hot(app, client, "GET", path))
        block = f"/v1/agents/{agent}/core-memory/blocks/human"
        full, hot = _full_then_hot(app, client, "PATCH", block, json={"value": "Name: Ada L."})
        assert full.status_code == hot.status_code == 200
        timeless = [{k: v for k, v in r.json().items() if not k.endswith("_at")} for r in (full, hot)]
        assert timeless[0] == timeless[1] and timeless[0]["value"] == "Name: Ada L."
        assert hot.headers["content-type"] == full.headers["content-type"] == "application/json"


def test_what_is_not_a_plain_200_is_the_full_apps_answer(app: FastAPI, api_key: str) -> None:
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        created = client.post("/v1/agents/", json={"name": "hot", "memory_blocks": [{"label": "human", "value": "x"}]})
        agent = created.json()["id"]
        client.get("/v1/agents/")  # the key is known: the hot path takes what it can
        missing = client.get("/v1/agents/agent-00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        bad_cursor = client.get(f"/v1/agents/{agent}/messages?after=message-nope")
        assert bad_cursor.status_code in (400, 422) and bad_cursor.json()["detail"]
        for limit in ("\u00b2", "\u0663", ""):  # digits to str.isdigit, not to a query's integer
            odd = client.get("/v1/agents/", params={"limit": limit})
            assert odd.status_code == 422 and odd.json()["errors"][0]["loc"] == ["query", "limit"], limit
        spaced = client.get(f"/v1/agents/{agent}", headers={"Authorization": f"Bearer  {api_key} "})
        assert spaced.status_code == 200  # HTTPBearer strips the key; so does the hot path
        too_big = client.get("/v1/agents/?limit=1001")
        assert too_big.status_code == 422 and too_big.json()["errors"][0]["loc"] == ["query", "limit"]
        block = f"/v1/agents/{agent}/core-memory/blocks/human"
        over = client.patch(block, json={"value": "x" * 6000, "limit": 10})
        assert over.status_code in (400, 422), over.text
        nul = client.patch(block, json={"value": "a\u0000b"})
        assert nul.status_code == 422 and nul.json()["errors"][0]["loc"] == ["body", "value"]
        assert client.patch(block, json={"value": None}).status_code == 422
        assert client.patch(f"/v1/agents/{agent}/core-memory/blocks/nope", json={"value": "v"}).status_code == 404
        assert client.get(f"/v1/agents/{agent}", headers={"Authorization": "Basic abc"}).status_code == 401


def test_the_body_limit_holds_for_the_hot_path_as_for_the_app(app: FastAPI, api_key: str) -> None:
    """The hot path runs in front of the app's middlewares, the body limit among them (256 KiB here): a
    larger PATCH, declared or chunked, is the app's 413 whether the key is known or not; a chunked one
    within the limit is answered."""
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        # a block that could hold the body's value: only the body limit refuses it
        human = {"label": "human", "value": "x", "limit": 1_000_000}
        created = client.post("/v1/agents/", json={"name": "hot", "memory_blocks": [human]})
        assert created.status_code == 200, created.text
        block = f"/v1/agents/{created.json()['id']}/core-memory/blocks/human"
        big = b'{"value": "' + b"x" * 300_000 + b'"}'
        answers = []
        for known in (False, True):
            app.state.known_keys.clear()
            if known:
                assert client.get("/v1/agents/?limit=1").status_code == 200 and app.state.known_keys
            declared = client.patch(block, content=big, headers={"content-type": "application/json"})
            chunked = client.patch(
                block, content=iter([big[:150_000], big[150_000:]]), headers={"content-type": "application/json"}
            )
            answers.append((declared, chunked))
        for declared, chunked in answers:
            assert declared.status_code == chunked.status_code == 413
            assert declared.json()["code"] == "payload_too_large"
        _same(answers[0][0], answers[1][0])
        _same(answers[0][1], answers[1][1])
        small = iter([b'{"value": ', b'"chunked"}'])
        within = client.patch(block, content=small, headers={"content-type": "application/json"})
        assert within.status_code == 200 and within.json()["value"] == "chunked"


def test_an_unexpected_error_is_the_apps_500_on_the_hot_path_too(app: FastAPI, api_key: str, db: Database) -> None:
    """A row the route cannot shape (content that is not a list of parts, as no write of O's stores) is a
    bug's 500: the hot path answers it as the app's error handler does, and raises it on to the server."""
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}, raise_server_exceptions=False) as client:
        agent = client.post("/v1/agents/", json={"name": "hot", "memory_blocks": []}).json()["id"]
        with db.transaction() as conn:
            org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent,)).fetchone()
            row = {"id": new_id("message"), "organization_id": org["organization_id"], "agent_id": agent}
            message_store.insert_many(conn, [{**row, "role": "user", "content": 42, "text": "?"}])
        full, hot = _full_then_hot(app, client, "GET", f"/v1/agents/{agent}/messages?limit=5")
        assert full.status_code == 500 and full.json()["code"] == "internal_error"
        _same(full, hot)


def test_the_hot_path_takes_no_path_the_full_app_routes_elsewhere(app: FastAPI) -> None:
    body = b'{"value": "v"}'
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods & {"GET", "PATCH"}:
            # each path parameter as a value, and each literal segment where an id could be
            path = route.path_format.replace("{", "").replace("}", "")
            found = hot_route(method, path)
            if found is None:
                continue
            call = found[1](found[0], {}, body)
            assert call is not None and call.run is route.endpoint, (method, route.path)


def test_a_database_that_cannot_lend_a_connection_is_waited_for_once(pg_url: str, api_key: str) -> None:
    """The hot path answers the database's 503 itself: passed on, the full app would wait for a connection
    a second time before saying the same (each wait that fails is a pool request counted as an error)."""
    db = Database(pg_url, max_size=1, acquire_timeout_s=0.2, outage_wait_s=0.2).open()
    try:
        app = wiring.app(db, settings=wiring.KEYED)
        with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
            created = client.post("/v1/agents/", json={"name": "hot", "memory_blocks": []})
            agent = created.json()["id"]
            assert client.get(f"/v1/agents/{agent}").status_code == 200  # the key is known: the hot path answers
            with db.read():  # the pool's one connection, held: no request can borrow one
                errors_before = db._pool.get_stats().get("requests_errors", 0)
                unavailable = client.get(f"/v1/agents/{agent}")
                failed_waits = db._pool.get_stats().get("requests_errors", 0) - errors_before
        assert unavailable.status_code == 503 and unavailable.json()["code"] == "database_unavailable"
        assert unavailable.headers["retry-after"] == "1"
        assert failed_waits == 1
    finally:
        db.close()
