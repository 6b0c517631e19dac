"""A local server speaking Ollama's wire protocol: its own API for discovery, and its OpenAI-compatible
API for chat (as O calls a running Ollama).

Routes: ``GET /api/tags`` (the pulled models), ``POST /api/show`` (one model's details: ``model_info``
with ``<arch>.context_length`` and ``<arch>.embedding_length``, and ``capabilities``), ``GET /api/version``,
and everything :class:`~tests.servers.openai_server.OpenAIServer` serves under ``/v1`` (chat completions,
embeddings, models). Like Ollama, ``/api/show`` answers 404 for a model that is not pulled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.servers.base import Handler
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script


@dataclass(frozen=True)
class OllamaModel:
    name: str
    family: str
    context_length: int
    embedding_length: int
    capabilities: tuple[str, ...] = ("completion", "tools")


DEFAULT_MODELS = (
    OllamaModel("llama3.2:latest", "llama", 131_072, 3072),
    OllamaModel("qwen2.5:7b", "qwen2", 32_768, 3584),
    OllamaModel("nomic-embed-text:latest", "nomic-bert", 2048, 768, ("embedding",)),
)


class OllamaServer(OpenAIServer):
    def __init__(self, script: Script | None = None, models: tuple[OllamaModel, ...] = DEFAULT_MODELS) -> None:
        super().__init__(script, models=tuple(m.name for m in models))
        self.pulled = models
        self.show_requests: list[str] = []

    def _tag(self, model: OllamaModel) -> dict[str, Any]:
        return {
            "name": model.name,
            "model": model.name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 2_019_393_189,
            "digest": f"{abs(hash(model.name)):064x}"[:64],
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": model.family,
                "families": [model.family],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }

    def handle_get(self, handler: Handler) -> None:
        path = handler.path.split("?")[0].rstrip("/")
        if path == "/api/tags":
            handler.send_json(200, {"models": [self._tag(m) for m in self.pulled]})
        elif path == "/api/version":
            handler.send_json(200, {"version": "0.9.0"})
        else:
            super().handle_get(handler)

    def handle_post(self, handler: Handler, body: dict[str, Any]) -> None:
        if handler.path.split("?")[0].rstrip("/") == "/api/show":
            self._show(handler, body)
        else:
            super().handle_post(handler, body)

    def _show(self, handler: Handler, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name")
        self.show_requests.append(str(name))
        wanted = name if ":" in str(name) else f"{name}:latest"
        model = next((m for m in self.pulled if m.name == wanted), None)
        if model is None:
            handler.send_json(404, {"error": f"model '{name}' not found"})
            return
        arch = model.family.replace("-", "_")
        handler.send_json(
            200,
            {
                "modelfile": f"FROM {model.name}",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": self._tag(model)["details"],
                "model_info": {
                    "general.architecture": arch,
                    "general.parameter_count": 3_212_749_888,
                    f"{arch}.context_length": model.context_length,
                    f"{arch}.embedding_length": model.embedding_length,
                },
                "capabilities": list(model.capabilities),
                "modified_at": "2025-01-01T00:00:00Z",
            },
        )
