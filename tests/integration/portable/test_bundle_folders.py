"""The full bundle carries an agent's attached folders: their files' parsed text and embedded chunks,
their original bytes (stored anew in the importing server's blob store, so a file can be processed
again there), and which files the agent had open. The moved agent's files are listed, open and
searchable on the new server; importing into the same organization again gives the folder a free name."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from o.agent.file_services import FileServices
from o.agent.portable import frames
from o.memory.embeddings import LOCAL_EMBEDDERS
from o.memory.files import views
from o.memory.files.blobs import LocalBlobStore
from o.memory.files.ingest import Ingestion, process_next
from o.store import files as file_store
from o.store.db import Conn, Database
from tests import wiring
from tests.integration.conftest import new_org_key

MSGPACK = {"content-type": frames.MEDIA_TYPE}


def _agent_with_folder(client: TestClient, db: Database) -> tuple[str, str]:
    folder = client.post("/v1/folders/", json={"name": "manuals"}).json()["id"]
    uploaded = client.post(
        f"/v1/folders/{folder}/upload",
        files={"file": ("guide.md", b"# Guide\n\n## Boats\n\nKim likes sailing on Sundays.\n")},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert process_next(Ingestion(db, wiring.FILES.blobs, LOCAL_EMBEDDERS), uploaded.json()["id"])
    agent = client.post("/v1/agents/", json={"name": "reader", "model": "openai/gpt-4o-mini"}).json()["id"]
    assert client.patch(f"/v1/agents/{agent}/folders/attach/{folder}").status_code == 200
    assert client.patch(f"/v1/agents/{agent}/files/{uploaded.json()['id']}/open").status_code == 200
    return agent, folder


def test_attached_folders_move_with_the_agent(
    source: TestClient, target: TestClient, db: Database, second_db: Database
) -> None:
    agent, folder = _agent_with_folder(source, db)
    exported = source.get(f"/v1/agents/{agent}/bundle")
    assert exported.status_code == 200, exported.text
    imported = target.post("/v1/agents/import-bundle", content=exported.content, headers=MSGPACK)
    assert imported.status_code == 200, imported.text
    moved = imported.json()["agent_id"]
    assert imported.json()["rows"]["file_chunks"] >= 1

    folders = target.get(f"/v1/agents/{moved}/folders").json()
    assert [f["name"] for f in folders] == ["manuals"] and folders[0]["id"] != folder
    files = target.get(f"/v1/folders/{folders[0]['id']}/files", params={"include_content": True}).json()
    assert [(f["file_name"], f["processing_status"]) for f in files] == [("guide.md", "completed")]
    assert "Kim likes sailing" in files[0]["content"]
    opened = target.get(f"/v1/agents/{moved}/files", params={"is_open": True}).json()["files"]
    assert [f["file_name"] for f in opened] == ["guide.md"] and "Kim likes sailing" in opened[0]["visible_content"]
    with second_db.read() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (moved,)).fetchone()
        assert org is not None
        found = views.search(conn, org["organization_id"], moved, "who goes sailing", LOCAL_EMBEDDERS)
    assert "guide.md lines" in found and "under 'Guide > Boats'" in found

    # into the same organization: the folder is a copy under a free name; deleting it leaves the source's bytes
    again = source.post("/v1/agents/import-bundle", content=exported.content, headers=MSGPACK).json()["agent_id"]
    copy = source.get(f"/v1/agents/{again}/folders").json()[0]
    assert copy["name"] == "manuals (2)"
    assert source.delete(f"/v1/folders/{copy['id']}").status_code == 200
    original = source.get(f"/v1/folders/{folder}/files").json()[0]
    replaced = source.post(
        f"/v1/folders/{folder}/upload",
        params={"duplicate_handling": "replace"},
        files={"file": ("guide.md", b"# Guide\n\nNew text.\n")},
    )
    assert replaced.status_code == 200 and replaced.json()["id"] == original["id"]


def test_original_bytes_move_with_the_agent_and_the_file_can_be_processed_again(
    source: TestClient, db: Database, second_db: Database, tmp_path: Path
) -> None:
    agent, _ = _agent_with_folder(source, db)
    exported = source.get(f"/v1/agents/{agent}/bundle").content
    original = b"# Guide\n\n## Boats\n\nKim likes sailing on Sundays.\n"
    assert original in exported  # msgpack bin: the bytes as they are, no base64

    target_blobs = LocalBlobStore(tmp_path / "blobs")
    app = wiring.app(second_db, files=FileServices(target_blobs), max_body_bytes=1024 * 1024)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(second_db)}"}) as target:
        imported = target.post("/v1/agents/import-bundle", content=exported, headers=MSGPACK)
        assert imported.status_code == 200, imported.text
        assert imported.json()["files_without_bytes"] == []
        moved = imported.json()["agent_id"]
        folder = target.get(f"/v1/agents/{moved}/folders").json()[0]
        file_id = target.get(f"/v1/folders/{folder['id']}/files").json()[0]["id"]

    with second_db.transaction() as conn:
        row = file_store.get(conn, _org(conn, moved), file_id)
        assert row is not None and row["blob_key"].startswith(f"{row['organization_id']}/{folder['id']}/")
        assert target_blobs.get(row["blob_key"]) == original
        # processed again from the moved bytes alone (as a replace or a retried ingestion does)
        file_store.reset(
            conn, file_id, file_type=row["file_type"], file_size=row["file_size"], blob_key=row["blob_key"]
        )
    assert process_next(Ingestion(second_db, target_blobs, LOCAL_EMBEDDERS), file_id)
    with second_db.read() as conn:
        again = file_store.get(conn, _org(conn, moved), file_id, content=True)
        assert again is not None and again["processing_status"] == "completed", again
        assert "Kim likes sailing" in again["content"] and again["chunks_embedded"] >= 1


def test_a_failed_import_leaves_no_bytes_behind(
    source: TestClient, db: Database, second_db: Database, tmp_path: Path
) -> None:
    agent, _ = _agent_with_folder(source, db)
    exported = source.get(f"/v1/agents/{agent}/bundle").content
    target_blobs = LocalBlobStore(tmp_path / "blobs")
    app = wiring.app(second_db, files=FileServices(target_blobs), max_body_bytes=1024 * 1024)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(second_db)}"}) as target:
        truncated = target.post("/v1/agents/import-bundle", content=exported[:-40], headers=MSGPACK)
        assert truncated.status_code == 422, truncated.text
    assert not [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]


def _org(conn: Conn, agent_id: str) -> str:
    row = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
    assert row is not None
    return str(row["organization_id"])
