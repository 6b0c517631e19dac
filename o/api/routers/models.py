"""GET /v1/models/ and /v1/models/embedding: the models this server's operator configured.

The catalog (:mod:`o.llm.catalog`) asks each configured provider for its models and keeps the answers
briefly; a provider that is down is left out, so listing never fails because of one. The local
embedding model, which needs no provider, is always listed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from o.api import errors
from o.api.deps import AppServices, Org
from o.api.schemas.models import EmbeddingModel, Model, ProviderCategory, ProviderType
from o.memory.embeddings import EmbeddingConfig

router = APIRouter(tags=["models"], responses=errors.responses(401))

# The local model as the SDK's EmbeddingModel names it: an ONNX sentence-transformers model.
_LOCAL_TYPE = "hugging-face"


@router.get("/v1/models/", operation_id="list_models")
async def list_models(
    org: Org,
    services: AppServices,
    provider_category: Annotated[list[ProviderCategory] | None, Query()] = None,
    provider_name: Annotated[str | None, Query(max_length=200)] = None,
    provider_type: Annotated[ProviderType | None, Query()] = None,
) -> list[Model]:
    del org  # any organization's key: the operator's models are the same for all
    entries = await run_in_threadpool(services.models.models, "llm")
    models = [Model.of(e) for e in entries]
    return [
        m
        for m in models
        if (provider_category is None or m.provider_category in provider_category)
        and (provider_name is None or m.provider_name == provider_name)
        and (provider_type is None or m.provider_type == provider_type)
    ]


@router.get("/v1/models/embedding", operation_id="list_embedding_models")
async def list_embedding_models(org: Org, services: AppServices) -> list[EmbeddingModel]:
    del org
    entries = await run_in_threadpool(services.models.models, "embedding")
    local = EmbeddingConfig.default()
    listed = [
        EmbeddingModel(
            handle=local.handle or f"local/{local.embedding_model}",
            name=local.embedding_model,
            display_name=local.embedding_model,
            provider_type=_LOCAL_TYPE,
            provider_name=(local.handle or "local").split("/", 1)[0],
            embedding_model=local.embedding_model,
            embedding_endpoint_type=_LOCAL_TYPE,
            embedding_dim=local.embedding_dim,
        )
    ]
    for e in entries:
        if e.embedding_dim is None:
            continue  # a model whose vectors' size is unknown cannot be given to an agent
        listed.append(
            EmbeddingModel(
                handle=e.handle,
                name=e.name,
                display_name=e.name,
                provider_type=e.provider_type,
                provider_name=e.provider,
                embedding_model=e.name,
                embedding_endpoint_type=e.provider,
                embedding_dim=e.embedding_dim,
            )
        )
    return listed
