"""Folders and their files: /v1/folders/ (list, create), /v1/folders/{id} (get, update, delete), its
agents, files (upload, list, get, delete), and the agent side: /v1/agents/{agent_id}/folders
(list, attach, detach) and /v1/agents/{agent_id}/files (list, open, close, close-all)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile, status

from o.agent import folders, lifecycle
from o.agent.file_services import FileServices
from o.api import errors
from o.api.deps import Db, Org
from o.api.paging import paging
from o.api.schemas.agent_state import AgentState
from o.api.schemas.folders import (
    AgentFile,
    AgentFilesPage,
    FileMetadata,
    Folder,
    FolderCreate,
    FolderUpdate,
    file_object,
    folder_object,
)
from o.errors import NotFound
from o.memory.files import views
from o.store import agents as agent_store
from o.store import file_views
from o.store import files as file_store
from o.store import folders as folder_store
from o.store.pages import Page

router = APIRouter(prefix="/v1/folders", tags=["folders"], responses=errors.responses(401))
agents_router = APIRouter(prefix="/v1/agents", tags=["folders"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
WRITE = errors.responses(400, 404, 409)
Paged = Annotated[Page, Depends(paging(default_limit=50))]


async def get_files(request: Request) -> FileServices:
    services = request.app.state.services
    files: FileServices = services.files
    return files


Files = Annotated[FileServices, Depends(get_files)]


@router.get("/", response_model=list[Folder], responses=errors.responses(400))
def list_folders(org: Org, db: Db, page: Paged, name: Annotated[str | None, Query(max_length=500)] = None) -> Any:
    with db.read() as conn:
        return [folder_object(r) for r in folder_store.list_page(conn, org, page, name=name)]


@router.post("/", response_model=Folder, responses=WRITE)
def create_folder(body: FolderCreate, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        return folder_object(folders.create(conn, org, body.fields()))


@router.get("/{folder_id}", response_model=Folder, responses=NOT_FOUND)
def get_folder(folder_id: str, org: Org, db: Db) -> Any:
    with db.read() as conn:
        return folder_object(folders.require(conn, org, folder_id))


@router.patch("/{folder_id}", response_model=Folder, responses=WRITE)
def update_folder(folder_id: str, body: FolderUpdate, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        return folder_object(folders.update(conn, org, folder_id, body.changes()))


@router.delete("/{folder_id}", status_code=status.HTTP_200_OK, responses=NOT_FOUND)
def delete_folder(folder_id: str, org: Org, db: Db, files: Files) -> Any:
    folders.delete(db, files.blobs, org, folder_id)
    return {}


@router.get("/{folder_id}/agents", response_model=list[str], responses=errors.responses(400, 404))
def list_folder_agents(folder_id: str, org: Org, db: Db, page: Paged) -> Any:
    with db.read() as conn:
        folders.require(conn, org, folder_id)
        return [r["id"] for r in folder_store.agents_page(conn, org, folder_id, page)]


@router.post("/{folder_id}/upload", response_model=FileMetadata, responses=errors.responses(400, 404, 409, 413, 415))
def upload_file(
    folder_id: str,
    org: Org,
    db: Db,
    files: Files,
    file: Annotated[UploadFile, File(description="the file to index")],
    duplicate_handling: Literal["skip", "error", "suffix", "replace"] = "suffix",
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    limit = files.limits.max_upload_bytes
    data = file.file.read(limit + 1)
    upload = folders.Upload(name or file.filename or "", file.content_type, data)
    row, fresh = folders.upload(
        db, files.blobs, org, folder_id, upload, duplicate_handling=duplicate_handling, limits=files.limits
    )
    if fresh:
        files.on_upload(row["id"])
    return file_object(row)


@router.get("/{folder_id}/files", response_model=list[FileMetadata], responses=errors.responses(400, 404))
def list_files(folder_id: str, org: Org, db: Db, page: Paged, include_content: bool = False) -> Any:
    with db.read() as conn:
        folders.require(conn, org, folder_id)
        return [file_object(r) for r in file_store.list_page(conn, folder_id, page, content=include_content)]


@router.get("/{folder_id}/files/{file_id}", response_model=FileMetadata, responses=NOT_FOUND)
def get_file(folder_id: str, file_id: str, org: Org, db: Db, include_content: bool = False) -> Any:
    with db.read() as conn:
        return file_object(folders.require_file(conn, org, folder_id, file_id, content=include_content))


@router.delete("/{folder_id}/{file_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_file(folder_id: str, file_id: str, org: Org, db: Db, files: Files) -> None:
    folders.delete_file(db, files.blobs, org, folder_id, file_id)


# -- the agent side ---------------------------------------------------------------------------------------


@agents_router.get("/{agent_id}/folders", response_model=list[Folder], responses=errors.responses(400, 404))
def list_agent_folders(agent_id: str, org: Org, db: Db, page: Paged) -> Any:
    with db.read() as conn:
        agent_store.require(conn, org, agent_id)
        return [folder_object(r) for r in folder_store.for_agent_page(conn, agent_id, page)]


def _state(conn: Any, org: str, agent_id: str) -> AgentState:
    state = AgentState.from_view(lifecycle.get(conn, org, agent_id))
    attached = folder_store.for_agent_page(conn, agent_id, Page(limit=1000))
    state.sources = [folder_object(r).model_dump(mode="json") for r in attached]
    return state


@agents_router.patch("/{agent_id}/folders/attach/{folder_id}", response_model=AgentState, responses=NOT_FOUND)
def attach_folder(agent_id: str, folder_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        folders.attach(conn, org, agent_id, folder_id)
        return _state(conn, org, agent_id)


@agents_router.patch("/{agent_id}/folders/detach/{folder_id}", response_model=AgentState, responses=NOT_FOUND)
def detach_folder(agent_id: str, folder_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        folders.detach(conn, org, agent_id, folder_id)
        return _state(conn, org, agent_id)


@agents_router.get("/{agent_id}/files", response_model=AgentFilesPage, responses=errors.responses(400, 404))
def list_agent_files(
    agent_id: str,
    org: Org,
    db: Db,
    page: Paged,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    is_open: bool | None = None,
) -> Any:
    if cursor is not None and page.after is None:
        page = dataclasses.replace(page, after=cursor)
    with db.read() as conn:
        agent_store.require(conn, org, agent_id)
        rows = file_views.views_page(conn, agent_id, dataclasses.replace(page, limit=page.limit + 1), is_open=is_open)
        shown = rows[: page.limit]
        content = {v["file_id"]: v["content"] for v in file_views.open_views(conn, agent_id)}
        _, max_chars = file_views.caps(conn, agent_id)
    items = [
        AgentFile(
            **{k: r[k] for k in AgentFile.model_fields if k in r and k != "visible_content"},
            visible_content=views.window(content[r["file_id"]], r["start_line"] or 1, r["end_line"] or 1, max_chars)
            if r["is_open"] and r["file_id"] in content
            else None,
        )
        for r in shown
    ]
    more = len(rows) > page.limit
    return AgentFilesPage(files=items, next_cursor=shown[-1]["id"] if more and shown else None, has_more=more)


@agents_router.patch("/{agent_id}/files/close-all", response_model=list[str], responses=NOT_FOUND)
def close_all_files(agent_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        agent_store.require(conn, org, agent_id, for_update=True)
        return views.close(conn, agent_id)


@agents_router.patch("/{agent_id}/files/{file_id}/open", response_model=list[str], responses=errors.responses(400, 404))
def open_file(agent_id: str, file_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        agent_store.require(conn, org, agent_id, for_update=True)
        return views.open_file(conn, agent_id, file_id)


@agents_router.patch("/{agent_id}/files/{file_id}/close", responses=NOT_FOUND)
def close_file(agent_id: str, file_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        agent_store.require(conn, org, agent_id, for_update=True)
        if file_views.view(conn, agent_id, file_id) is None:
            raise NotFound(f"file {file_id} is not in a folder attached to agent {agent_id}")
        views.close(conn, agent_id, [file_id])
    return {}
