"""Moving agents between servers: Letta's agent file (``GET /v1/agents/{id}/export``, ``POST
/v1/agents/import``) and O's full bundle (``GET /v1/agents/{id}/bundle``, ``POST
/v1/agents/import-bundle``).

Both imports are uploads with limits of their own (``O_MAX_AGENT_FILE_BYTES``, ``O_MAX_BUNDLE_BYTES``;
see :class:`o.api.limits.BodySizeLimit`): an agent file is JSON and is read whole, a bundle is spooled
to a temporary file as it arrives (memory holds one chunk) and then imported frame by frame. Each
import is one transaction: a bad file leaves nothing behind.
"""

from __future__ import annotations

import json
import tempfile
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from o.agent.portable import bundle, frames
from o.agent.tools import offered_builtins
from o.api import agent_file, errors
from o.api.deps import AgentEngine, AppServices, Db, Embeddings, Org, Secrets
from o.api.schemas.common import Response as ResponseModel
from o.errors import InvalidInput
from o.memory.files.blobs import BlobStore
from o.store.db import Database
from o.tools import base

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=errors.responses(401))

# a bundle upload is held in memory up to this size, then on disk
_SPOOL_IN_MEMORY = 8 * 1024 * 1024


class ImportedAgents(ResponseModel):
    """Letta's ``AgentImportFileResponse``, and what O left out."""

    agent_ids: list[str]
    skipped_tools: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per imported agent id: the Letta built-in tools it had that O does not have (left out)",
    )


class ImportedBundle(ResponseModel):
    agent_id: str
    rows: dict[str, int] = Field(description="rows imported per table")
    unset_variables: list[str] = Field(description="tool variables the agent had; set their values with PATCH")
    reused_tools: list[str] = Field(description="tools this organization already had under the same name")
    files_without_bytes: list[str] = Field(
        default_factory=list,
        description="files that came without their original bytes (searchable and openable; not re-processable)",
    )
    skipped_tools: list[str] = Field(
        default_factory=list,
        description="MCP tools left out: this organization has no tool of their name (register their server)",
    )


@router.get(
    "/{agent_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **errors.responses(404)},
)
def export_agent_file(
    agent_id: str,
    org: Org,
    db: Db,
    scrub_messages: bool = False,
    use_legacy_format: bool = False,
    conversation_id: str | None = Query(default=None, max_length=200),
    max_steps: int | None = Query(default=None, ge=1, le=1_000_000),
) -> Response:
    """The agent as a Letta agent file (v2 layout), formatted with indentation."""
    if use_legacy_format:
        raise InvalidInput("use_legacy_format: O writes only the v2 agent file layout")
    if conversation_id is not None:
        raise InvalidInput("conversation_id: O has no conversations to export; the agent's history is exported")
    if max_steps is not None:
        raise InvalidInput("max_steps: not supported by O's export")
    with db.transaction() as conn:
        document = agent_file.export(conn, org, agent_id, scrub_messages=scrub_messages)
    return Response(json.dumps(document, indent=2), media_type="application/json")


@router.post("/import", response_model=ImportedAgents, responses=errors.responses(400, 404, 409))
def import_agent_file(
    org: Org,
    db: Db,
    secrets: Secrets,
    engine: AgentEngine,
    embedders: Embeddings,
    file: Annotated[UploadFile, File(description="the .af file")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    override_name: Annotated[str | None, Form(max_length=200)] = None,
    append_copy_suffix: Annotated[bool, Form()] = False,
    model: Annotated[str | None, Form(max_length=200)] = None,
    override_model_handle: Annotated[str | None, Form(max_length=200)] = None,
    embedding: Annotated[str | None, Form(max_length=200)] = None,
    override_embedding_handle: Annotated[str | None, Form(max_length=200)] = None,
    x_override_embedding_model: Annotated[str | None, Header(max_length=200)] = None,
    strip_messages: Annotated[bool, Form()] = False,
    override_existing_tools: Annotated[bool, Form()] = False,
    secrets_json: Annotated[str | None, Form(alias="secrets")] = None,
    env_vars_json: Annotated[str | None, Form()] = None,
    project_id: Annotated[str | None, Form(max_length=200)] = None,
) -> ImportedAgents:
    """Create the agents of a Letta agent file (new ids); their blocks, tools, rules, messages and settings."""
    del project_id  # O has no projects
    if embedding or override_embedding_handle or x_override_embedding_model:
        raise InvalidInput("embedding: O cannot change an imported agent's embedding model")
    options = agent_file.ImportOptions(
        name=name or override_name,
        append_copy_suffix=append_copy_suffix,
        model=model or override_model_handle,
        strip_messages=strip_messages,
        override_existing_tools=override_existing_tools,
        secrets={**_json_map(env_vars_json, "env_vars_json"), **_json_map(secrets_json, "secrets")},
    )
    data = agent_file.parse(file.file.read())
    with db.transaction() as conn:
        # Letta's outside-world built-ins in the file are this server's where it offers them
        base.ensure(conn, org, offered_builtins(engine.tools))
        imported = agent_file.import_file(conn, org, data, options, secrets=secrets, embedders=embedders)
    return ImportedAgents(
        agent_ids=[a.agent_id for a in imported],
        skipped_tools={a.agent_id: a.skipped_tools for a in imported if a.skipped_tools},
    )


def _json_map(raw: str | None, field: str) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not JSON: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput(f"{field} must be a JSON object of names to string values")
    return value


@router.get(
    "/{agent_id}/bundle",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {frames.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "O's full bundle of the agent (msgpack frames, versioned and checksummed)",
        },
        **errors.responses(404),
    },
)
def export_bundle(agent_id: str, org: Org, db: Db, services: AppServices) -> StreamingResponse:
    """The agent with everything O keeps of it, streamed as it is read."""
    with db.read() as conn:
        bundle.require_agent(conn, org, agent_id)
    return StreamingResponse(
        bundle.export(db, org, agent_id, blobs=services.files.blobs),
        media_type=frames.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{agent_id}.bundle"'},
    )


@router.post(
    "/import-bundle",
    response_model=ImportedBundle,
    responses=errors.responses(400, 409),
    openapi_extra={
        "requestBody": {
            "required": True,
            # any content type is read as the bundle's bytes; declared as the generic binary type
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_bundle(
    request: Request,
    org: Org,
    db: Db,
    services: AppServices,
    name: str | None = Query(default=None, min_length=1, max_length=200, description="a new name for the agent"),
) -> ImportedBundle:
    """Create an agent (new ids) from O's bundle, streamed in the request body."""
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        result = await run_in_threadpool(
            _import_bundle,
            db,
            org,
            spool,  # type: ignore[arg-type]
            name,
            services.files.blobs,
        )
    return ImportedBundle(
        agent_id=result.agent_id,
        rows=result.rows,
        unset_variables=result.unset_variables,
        reused_tools=result.reused_tools,
        files_without_bytes=result.files_without_bytes,
        skipped_tools=result.skipped_tools,
    )


def _import_bundle(db: Database, org: str, stream: BinaryIO, name: str | None, blobs: BlobStore) -> Any:
    with db.transaction() as conn:
        return bundle.read_into(conn, org, stream, name=name, blobs=blobs)
