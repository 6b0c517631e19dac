"""Upload sessions and exports in local mode, over real HTTP: a bundle PUT to O's own upload URL (no API
key: the URL's token), completed, imported as a job that is polled to ``completed``; a job that died
mid-import (rows written, nothing committed) is taken again and imports exactly once, whatever the
retries; a folder file through a session joins ingestion; an export is written to the blob store and
downloaded; over-limit direct uploads are a 413 naming the upload route."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from o.agent import transfer_jobs
from o.agent.file_services import FileLimits, FileServices
from o.agent.portable import bundle, frames
from o.agent.transfer_jobs import Jobs
from o.cli import main, portable
from o.config import settings_from
from o.config.tools import TRANSFER_KEPT_DAYS
from o.runtime import files as runtime_files
from o.store import transfers as store
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.served import served


@pytest.fixture(scope="module")
def url(db: Database) -> Iterator[str]:
    app = wiring.app(db)
    with served(app) as base:
        yield base


@pytest.fixture
def http(url: str, db: Database) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {new_org_key(db)}"}, timeout=60) as client:
        yield client


def _agent(http: httpx.Client, name: str = "mover") -> str:
    agent = http.post("/v1/agents/", json={"name": name}).raise_for_status().json()["id"]
    for text in ("Ada likes tea", "Ada plays chess", "Ada lives in London"):
        http.post(f"/v1/agents/{agent}/archival-memory", json={"text": text}).raise_for_status()
    return str(agent)


def _bundle(http: httpx.Client, agent_id: str) -> bytes:
    return http.get(f"/v1/agents/{agent_id}/bundle").raise_for_status().content


def _session(http: httpx.Client, data: bytes, **fields: Any) -> dict[str, Any]:
    created = http.post("/v1/uploads/", json={"kind": "bundle", "size": len(data), **fields})
    assert created.status_code == 200, created.text
    session: dict[str, Any] = created.json()
    assert session["status"] == "pending" and session["upload_method"] == "PUT"
    # the bytes go without the API key: the URL's token stands for it
    put = httpx.put(session["upload_url"], content=data, headers=session["upload_headers"], timeout=60)
    assert put.status_code == 200, put.text
    return session


def _settled(http: httpx.Client, path: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = http.get(path).raise_for_status().json()
        if state["status"] in ("completed", "error"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


def _archival(http: httpx.Client, agent_id: str) -> list[str]:
    return sorted(p["text"] for p in http.get(f"/v1/agents/{agent_id}/archival-memory").json())


def test_a_bundle_through_an_upload_session(http: httpx.Client) -> None:
    source = _agent(http)
    data = _bundle(http, source)
    session = _session(http, data, name="moved")
    completed = http.post(f"/v1/uploads/{session['id']}/complete")
    assert completed.status_code == 200 and completed.json()["status"] in ("queued", "running", "completed")
    state = _settled(http, f"/v1/uploads/{session['id']}")
    assert state["status"] == "completed", state
    moved = state["result"]["agent_id"]
    assert moved != source and http.get(f"/v1/agents/{moved}").json()["name"] == "moved"
    assert _archival(http, moved) == _archival(http, source)
    # completing again starts nothing: the same session, the same agent
    again = http.post(f"/v1/uploads/{session['id']}/complete").json()
    assert again["status"] == "completed" and again["result"]["agent_id"] == moved
    assert len(http.get("/v1/agents/", params={"name": "moved"}).json()) == 1
    # the upload URL is spent
    assert httpx.put(session["upload_url"], content=data).status_code == 409


def test_bad_sessions_are_refused_with_the_reason(http: httpx.Client, url: str, db: Database) -> None:
    data = _bundle(http, _agent(http, "bad"))
    created = http.post("/v1/uploads/", json={"kind": "bundle", "size": len(data)}).json()
    # nothing sent yet: complete says what to do
    early = http.post(f"/v1/uploads/{created['id']}/complete")
    assert early.status_code == 409 and "PUT" in early.json()["detail"]
    # more than declared, fewer than declared, a wrong token: refused, nothing stored
    assert httpx.put(created["upload_url"], content=data + b"x").status_code == 413
    assert httpx.put(created["upload_url"], content=data[:-1]).status_code == 409
    wrong = created["upload_url"].split("?token=")[0] + "?token=not-the-token"
    assert httpx.put(wrong, content=data).status_code == 404
    assert http.post(f"/v1/uploads/{created['id']}/complete").status_code == 409
    # a tampered bundle: the job ends in error with the reason, no agent
    tampered = data[:-40] + bytes(40)
    session = _session(http, tampered, name="tampered")
    http.post(f"/v1/uploads/{session['id']}/complete").raise_for_status()
    state = _settled(http, f"/v1/uploads/{session['id']}")
    assert state["status"] == "error" and state["error_message"], state
    assert http.get("/v1/agents/", params={"name": "tampered"}).json() == []
    # a folder file needs its folder and a supported type
    assert http.post("/v1/uploads/", json={"kind": "folder_file", "size": 3, "file_name": "a.md"}).status_code == 422
    folder = http.post("/v1/folders/", json={"name": "session-bad"}).json()["id"]
    unsupported = {"kind": "folder_file", "size": 3, "folder_id": folder, "file_name": "a.exe"}
    assert http.post("/v1/uploads/", json=unsupported).status_code == 415
    # another organization's session is not found, nor can it complete it
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        assert other.get(f"/v1/uploads/{session['id']}").status_code == 404
        assert other.post(f"/v1/uploads/{created['id']}/complete").status_code == 404


def test_a_job_that_died_mid_import_imports_exactly_once(http: httpx.Client, db: Database) -> None:
    data = _bundle(http, _agent(http, "crashy"))
    # the session's bytes are sent but not completed over the API: the test queues and runs the job itself
    session = _session(http, data, name="once")
    jobs = Jobs(db, wiring.BLOBS, lease_s=60)
    with db.transaction() as conn:
        organization = conn.execute("SELECT organization_id FROM transfers WHERE id = %s", (session["id"],)).fetchone()[
            "organization_id"
        ]
        store.queue(conn, session["id"])
    # a worker takes the job and dies mid-import: its rows were written, its transaction never committed
    with db.transaction() as conn:
        job = store.claim(conn, 60, session["id"])
    assert job is not None and job["status"] == "running"
    with pytest.raises(frames.BundleError), db.transaction() as conn:
        assert store.lock_running(conn, job["id"], job["claim_id"])
        bundle.read_into(conn, organization, io.BytesIO(data[: len(data) // 2 + 1000]), name="once")
    # while its lease holds, nobody else takes it
    assert transfer_jobs.run(jobs, session["id"]) is None
    with db.transaction() as conn:
        conn.execute("UPDATE transfers SET claimed_until = now() - interval '1 second' WHERE id = %s", (job["id"],))
    # the retry (a redelivered message, the poller) and two more at once: one import
    ran = transfer_jobs.run(jobs, session["id"])
    assert ran is not None and ran.upload_id == session["id"]
    racers = [threading.Thread(target=transfer_jobs.run, args=(jobs, session["id"])) for _ in range(2)]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    state = http.get(f"/v1/uploads/{session['id']}").json()
    assert state["status"] == "completed" and state["attempts"] == 2, state
    agents = http.get("/v1/agents/", params={"name": "once"}).json()
    assert [a["id"] for a in agents] == [state["result"]["agent_id"]]
    assert len(_archival(http, agents[0]["id"])) == 3


def test_a_folder_file_through_an_upload_session(http: httpx.Client, db: Database) -> None:
    folder = http.post("/v1/folders/", json={"name": "session-files"}).raise_for_status().json()["id"]
    text = b"# Notes\n\nAda likes tea.\n"
    created = http.post(
        "/v1/uploads/", json={"kind": "folder_file", "size": len(text), "folder_id": folder, "file_name": "notes.md"}
    ).json()
    assert httpx.put(created["upload_url"], content=text).status_code == 200
    done = http.post(f"/v1/uploads/{created['id']}/complete").json()
    assert done["status"] == "completed" and done["result"]["file_name"] == "notes.md", done
    file = http.get(f"/v1/folders/{folder}/files/{done['result']['file_id']}").json()
    assert file["file_size"] == len(text) and file["processing_status"] == "pending"
    with db.read() as conn:
        key = conn.execute("SELECT blob_key FROM folder_files WHERE id = %s", (file["id"],)).fetchone()["blob_key"]
    assert wiring.BLOBS.get(key) == text  # what ingestion reads: the session's bytes, never sent through the API
    # the same name again, with duplicate_handling=error: a 409 once complete names it, the bytes dropped
    again = http.post(
        "/v1/uploads/",
        json={"kind": "folder_file", "size": len(text), "folder_id": folder, "file_name": "notes.md",
              "duplicate_handling": "error"},
    ).json()  # fmt: skip
    httpx.put(again["upload_url"], content=text).raise_for_status()
    refused = http.post(f"/v1/uploads/{again['id']}/complete")
    assert refused.status_code == 409
    assert http.get(f"/v1/uploads/{again['id']}").json()["status"] == "error"


def test_an_export_written_to_the_blob_store_and_downloaded(http: httpx.Client) -> None:
    agent = _agent(http, "exported")
    started = http.post(f"/v1/agents/{agent}/exports")
    assert started.status_code == 202 and started.json()["kind"] == "export"
    state = _settled(http, f"/v1/exports/{started.json()['id']}")
    assert state["status"] == "completed" and state["size"] > 0, state
    data = http.get(state["download_url"]).raise_for_status().content
    assert len(data) == state["size"]
    assert next(frames.read(io.BytesIO(data)))["agent_id"] == agent
    # an export is not an upload, nor the other way round
    assert http.get(f"/v1/uploads/{state['id']}").status_code == 404


def test_over_limit_direct_uploads_name_the_upload_route(db: Database) -> None:
    files = FileServices(wiring.BLOBS, FileLimits(max_upload_bytes=2048))
    with TestClient(wiring.app(db, files=files), headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        folder = client.post("/v1/folders/", json={"name": "direct"}).json()["id"]
        # over the file limit (the route reads it), and over the body limit (refused before it is read)
        for size in (4096, 100_000):
            refused = client.post(f"/v1/folders/{folder}/upload", files={"file": ("big.txt", b"a" * size)})
            assert refused.status_code == 413, refused.text
            assert "POST /v1/uploads/" in refused.json()["detail"], refused.text
        bundle_too_big = client.post(
            "/v1/agents/import-bundle", content=b"x", headers={"content-length": str(5 * 1024**3)}
        )
        assert bundle_too_big.status_code == 413 and bundle_too_big.json()["upload_route"] == "/v1/uploads/"


def test_the_cli_moves_a_bundle_through_an_export_job_and_an_upload_session(
    db: Database, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_org_key(db)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        agent = _agent(http, "by-cli")
        file = tmp_path / "agent.bundle"
        assert main(["export", agent, str(file), "--url", url, "--key", key]) == 0  # an export job, downloaded
        assert next(frames.read(io.BytesIO(file.read_bytes())))["agent_id"] == agent
        monkeypatch.setattr(portable, "SESSION_THRESHOLD", 0)  # every bundle through an upload session
        capsys.readouterr()
        assert main(["import", str(file), "--url", url, "--key", key, "--name", "by-session"]) == 0
        moved = capsys.readouterr().out.strip()
        assert http.get(f"/v1/agents/{moved}").json()["name"] == "by-session"
        assert _archival(http, moved) == _archival(http, agent)
        broken = tmp_path / "broken.bundle"
        broken.write_bytes(file.read_bytes()[:-100])
        assert main(["import", str(broken), "--url", url, "--key", key]) == 1
        assert "truncated" in capsys.readouterr().err


def test_o_serve_removes_transfers_past_their_keeping_time(db: Database, tmp_path: Path) -> None:
    """Locally, what the bucket's lifecycle rule does on AWS: uploaded bundles and exports older than
    TRANSFER_KEPT_DAYS go; a folder's files (kept under their organization) and fresh transfers stay."""
    services = runtime_files.transfer_services(settings_from({"O_DATA_DIR": str(tmp_path)}), db)
    root = tmp_path / "files"
    old, fresh, folder_file = root / "transfers" / "org-1" / "old", root / "transfers" / "fresh", root / "org-1" / "f"
    for path in (old, fresh, folder_file):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    past = time.time() - TRANSFER_KEPT_DAYS * 86400 - 60
    for path in (old, folder_file):
        os.utime(path, (past, past))
    services.worker.start()
    try:
        deadline = time.monotonic() + 10
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        services.worker.stop()
    assert not old.exists() and fresh.exists() and folder_file.exists()
