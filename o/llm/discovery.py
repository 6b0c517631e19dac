"""Asking a provider which models it serves, in its own wire protocol.

- OpenAI and every OpenAI-compatible server (Groq, vLLM, llama.cpp, LM Studio): ``GET {base}/models``.
  vLLM adds ``max_model_len`` to each model, which becomes its context window.
- Anthropic: ``GET /v1/models`` (paged with ``after_id``).
- Ollama: ``GET /api/tags``, then ``POST /api/show`` per model for its context length, its embedding
  length and its capabilities (an embedding model says ``"embedding"``).

The caller passes the HTTP client (:func:`o.net.transport.http_client`: every connection checked
against the outbound policy) and the operator's endpoint and key (:mod:`o.llm.endpoints`). A failure
raises :class:`DiscoveryError`; :mod:`o.llm.catalog` leaves that provider out of the listing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the caller's client: the module is imported (by the model catalog) before any call
    import httpx2


# "other": a model the provider lists that O does not call (audio, images, ...), or, on an OpenAI-compatible
# server, one whose name does not look like a chat model; kept so that a handle naming it is known to exist
Kind = Literal["llm", "embedding", "other"]

# Dimensions of well-known embedding models whose listing does not say (OpenAI's /v1/models does not).
KNOWN_EMBEDDING_DIMS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}

# OpenAI's listing also holds audio, image, moderation and legacy completion models, which chat cannot use.
_OPENAI_CHAT = re.compile(r"^(gpt-|o\d|chatgpt-)")
_NOT_CHAT = re.compile(r"whisper|tts|dall-e|davinci|babbage|moderation|realtime|audio|transcribe|image|search|sora")
_EMBEDDING = re.compile(r"embed", re.IGNORECASE)


class DiscoveryError(Exception):
    """A provider did not answer its model listing usably."""


@dataclass(frozen=True, slots=True)
class Discovered:
    name: str
    kind: Kind
    context_window: int | None = None
    embedding_dim: int | None = None


def _get_json(client: httpx2.Client, url: str, headers: dict[str, str], timeout: float) -> Any:
    return _json(client.get(url, headers=headers, timeout=timeout), url)


def _json(response: httpx2.Response, url: str) -> Any:
    if response.status_code != 200:
        raise DiscoveryError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise DiscoveryError(f"{url} answered with something that is not JSON") from exc


def classify(provider: str, model_id: str) -> Kind | None:
    """What a listed model is for: chat, embeddings, or (None) something O does not call."""
    if _EMBEDDING.search(model_id):
        return "embedding"
    if _NOT_CHAT.search(model_id.lower()):
        return None
    if provider == "openai" and not _OPENAI_CHAT.match(model_id):
        return None
    return "llm"


def openai_models(
    client: httpx2.Client, base_url: str, api_key: str, provider: str, timeout: float
) -> list[Discovered]:
    url = base_url.rstrip("/") + "/models"
    body = _get_json(client, url, {"authorization": f"Bearer {api_key}"}, timeout)
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise DiscoveryError(f"{url} answered without a data list")
    found: list[Discovered] = []
    for row in rows:
        model_id = row.get("id") if isinstance(row, dict) else None
        if not isinstance(model_id, str) or not model_id:
            continue
        kind = classify(provider, model_id)
        if kind == "embedding":
            found.append(Discovered(model_id, kind, embedding_dim=KNOWN_EMBEDDING_DIMS.get(model_id)))
        elif kind == "llm":
            window = row.get("max_model_len") or row.get("context_length") or row.get("context_window")
            found.append(Discovered(model_id, kind, context_window=window if isinstance(window, int) else None))
        else:
            found.append(Discovered(model_id, "other"))
    if provider in _PROBED_PROVIDERS:
        return _with_widths(client, base_url, api_key, found, timeout)
    return found


# OpenAI-compatible servers (vLLM, LM Studio, llama.cpp) do not say how wide their embedding vectors are,
# and an agent cannot be given a model whose width is unknown: ask each for one vector, at most this many.
_PROBED_PROVIDERS = ("vllm", "lmstudio")
_MAX_PROBES = 8


def embedding_width(client: httpx2.Client, base_url: str, api_key: str, model: str, timeout: float) -> int | None:
    """The width of ``model``'s vectors, from one embedding of a short text (None if the server won't say)."""
    url = base_url.rstrip("/") + "/embeddings"
    response = client.post(
        url, json={"model": model, "input": "width"}, headers={"authorization": f"Bearer {api_key}"}, timeout=timeout
    )
    try:
        vector = _json(response, url)["data"][0]["embedding"]
    except (DiscoveryError, KeyError, IndexError, TypeError):
        return None
    return len(vector) if isinstance(vector, list) and vector else None


def _with_widths(
    client: httpx2.Client, base_url: str, api_key: str, found: list[Discovered], timeout: float
) -> list[Discovered]:
    unsized = [m for m in found if m.kind == "embedding" and m.embedding_dim is None][:_MAX_PROBES]
    widths = {m.name: embedding_width(client, base_url, api_key, m.name, timeout) for m in unsized}
    return [replace(m, embedding_dim=widths[m.name]) if m.name in widths else m for m in found]


def anthropic_models(client: httpx2.Client, base_url: str, api_key: str, timeout: float) -> list[Discovered]:
    root = base_url.rstrip("/").removesuffix("/v1")
    headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
    found: list[Discovered] = []
    after: str | None = None
    for _ in range(20):  # pages of up to 1000 models: far more than Anthropic has
        url = f"{root}/v1/models?limit=1000" + (f"&after_id={after}" if after else "")
        body = _get_json(client, url, headers, timeout)
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise DiscoveryError(f"{url} answered without a data list")
        found.extend(Discovered(r["id"], "llm") for r in rows if isinstance(r, dict) and isinstance(r.get("id"), str))
        if not body.get("has_more") or not body.get("last_id"):
            break
        after = str(body["last_id"])
    return found


def ollama_root(endpoint: str) -> str:
    """Ollama's own API root: its OpenAI-compatible endpoint without the ``/v1``."""
    return endpoint.rstrip("/").removesuffix("/v1")


def ollama_models(client: httpx2.Client, endpoint: str, timeout: float) -> list[Discovered]:
    root = ollama_root(endpoint)
    body = _get_json(client, f"{root}/api/tags", {}, timeout)
    rows = body.get("models") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise DiscoveryError(f"{root}/api/tags answered without a models list")
    found: list[Discovered] = []
    for row in rows:
        name = row.get("name") or row.get("model") if isinstance(row, dict) else None
        if isinstance(name, str) and name:
            found.append(_ollama_model(client, root, name, row, timeout))
    return found


def _ollama_model(client: httpx2.Client, root: str, name: str, tag: dict[str, Any], timeout: float) -> Discovered:
    """One model, described by ``/api/show`` (context and embedding lengths live in ``model_info``)."""
    show = _json(client.post(f"{root}/api/show", json={"model": name}, timeout=timeout), f"{root}/api/show")
    info = show.get("model_info") if isinstance(show, dict) else None
    info = info if isinstance(info, dict) else {}
    context = _info_value(info, ".context_length")
    width = _info_value(info, ".embedding_length")
    capabilities = show.get("capabilities") if isinstance(show, dict) else None
    if isinstance(capabilities, list):
        embedding = "embedding" in capabilities and "completion" not in capabilities
    else:  # an Ollama before capabilities were reported: BERT-family models are the embedding ones
        details = tag.get("details")
        family = details.get("family", "") if isinstance(details, dict) else ""
        embedding = "bert" in str(family).lower()
    if embedding:
        return Discovered(name, "embedding", embedding_dim=width)
    return Discovered(name, "llm", context_window=context)


def _info_value(info: dict[str, Any], suffix: str) -> int | None:
    for key, value in info.items():
        if key.endswith(suffix) and isinstance(value, int) and value > 0:
            return value
    return None
