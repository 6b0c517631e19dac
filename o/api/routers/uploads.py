"""Upload sessions and exports, for payloads larger than one API request may carry (API Gateway: 10 MB,
Lambda: 6 MB): /v1/uploads/ (create), /v1/uploads/{id} (poll), /v1/uploads/{id}/content (O's own PUT
target when the blob store signs no URLs: locally), /v1/uploads/{id}/complete (start the work);
/v1/agents/{agent_id}/exports (queue a bundle export), /v1/exports/{id} (poll; a download URL once
completed) and /v1/exports/{id}/content (O's own download when the blob store signs no URLs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from o.agent import uploads
from o.agent.file_services import TransferServices
from o.agent.portable import frames
from o.api import errors
from o.api.deps import Db, Org
from o.api.limits import PayloadTooLarge
from o.api.routers.folders import Files
from o.api.schemas.transfers import TransferState, UploadCreate, transfer_object
from o.errors import Conflict, InvalidInput

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
exports_router = APIRouter(prefix="/v1", tags=["uploads"], responses=errors.responses(401))
_CHUNK = 1024 * 1024
_BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


async def get_transfers(request: Request) -> TransferServices:
    transfers: TransferServices = request.app.state.services.transfers
    return transfers


Transfers = Annotated[TransferServices, Depends(get_transfers)]


@router.post("/", response_model=TransferState, responses={**errors.responses(401, 400, 404, 413, 415)})
def create_upload(body: UploadCreate, request: Request, org: Org, db: Db, transfers: Transfers) -> Any:
    """Start an upload session: where to PUT the bytes (``upload_url``, with ``upload_headers``), valid
    until ``expires_at``; then ``POST /v1/uploads/{id}/complete``."""
    new = uploads.NewUpload(**body.model_dump())
    created = uploads.create(db, transfers, org, new)
    if created.target is not None:
        url, headers = created.target.url, created.target.headers
    else:
        url = f"{request.url_for('put_upload_content', upload_id=created.row['id'])}?token={created.token}"
        headers = {"Content-Type": "application/octet-stream"}
    return transfer_object(created.row, upload_url=url, upload_method="PUT", upload_headers=headers)


@router.get("/{upload_id}", response_model=TransferState, responses=errors.responses(401, 404))
def get_upload(upload_id: str, org: Org, db: Db) -> Any:
    """The session and its work: poll until ``completed`` (see ``result``) or ``error``."""
    return transfer_object(uploads.get(db, org, upload_id))


@router.put(
    "/{upload_id}/content",
    response_model=TransferState,
    responses=errors.responses(404, 409, 413),
    openapi_extra={"requestBody": {"required": True, **_BINARY}},
)
async def put_upload_content(
    upload_id: str,
    request: Request,
    db: Db,
    transfers: Transfers,
    token: Annotated[str | None, Query(max_length=200, description="the secret of the upload_url")] = None,
) -> Any:
    """O's own upload target (when the blob store signs no URLs): the bytes, streamed into the blob
    store; the URL's token stands for the API key."""
    row = await run_in_threadpool(uploads.writable, db, upload_id, token)
    received = 0
    with transfers.blobs.writer(row["blob_key"]) as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > row["size"]:
                raise PayloadTooLarge(f"upload {upload_id} declared {row['size']} bytes; more were sent")
            await run_in_threadpool(out.write, chunk)
        if received != row["size"]:
            raise Conflict(f"upload {upload_id} declared {row['size']} bytes; {received} were sent")
    return transfer_object(row)


@router.post("/{upload_id}/complete", response_model=TransferState, responses=errors.responses(401, 404, 409, 413, 415))
def complete_upload(upload_id: str, org: Org, db: Db, transfers: Transfers, files: Files) -> Any:
    """Start the work on the uploaded bytes (once: completing again answers the session as it is)."""
    return transfer_object(uploads.complete(db, transfers, files, org, upload_id))


# -- exports ---------------------------------------------------------------------------------------------


@exports_router.post(
    "/agents/{agent_id}/exports",
    response_model=TransferState,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors.responses(404),
)
def start_export(agent_id: str, org: Org, db: Db, transfers: Transfers) -> Any:
    """Write the agent's full bundle to the blob store as a job; poll ``GET /v1/exports/{id}``."""
    return transfer_object(uploads.start_export(db, transfers, org, agent_id))


@exports_router.get("/exports/{export_id}", response_model=TransferState, responses=errors.responses(404))
def get_export(export_id: str, request: Request, org: Org, db: Db, transfers: Transfers) -> Any:
    """The export; once completed, ``download_url`` (a presigned GET on AWS, valid until ``expires_at``;
    locally O's own route, with the API key)."""
    row = uploads.get(db, org, export_id, kind="export")
    if row["status"] != "completed":
        return transfer_object(row)
    target = uploads.download_target(transfers, row)
    url = target.url if target is not None else str(request.url_for("get_export_content", export_id=export_id))
    return transfer_object(row, download_url=url)


@exports_router.get(
    "/exports/{export_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {frames.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
               **errors.responses(404, 409)},
)  # fmt: skip
def get_export_content(export_id: str, org: Org, db: Db, transfers: Transfers) -> StreamingResponse:
    """A completed export's bytes, streamed from the blob store."""
    row = uploads.get(db, org, export_id, kind="export")
    if row["status"] != "completed":
        raise Conflict(f"export {export_id} is {row['status']}, not completed")
    source = transfers.blobs.open(row["blob_key"])

    def pieces() -> Iterator[bytes]:
        with source:
            while piece := source.read(_CHUNK):
                yield piece

    size = (row["result"] or {}).get("size")
    if not isinstance(size, int):
        raise InvalidInput(f"export {export_id} has no size")
    return StreamingResponse(
        pieces(),
        media_type=frames.MEDIA_TYPE,
        headers={"Content-Length": str(size),
                 "Content-Disposition": f'attachment; filename="{row["params"]["agent_id"]}.bundle"'},
    )  # fmt: skip
