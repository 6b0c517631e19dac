"""Parsed lines → chunks that keep their line span, page and heading path.

A chunk never crosses a page or a heading (so its heading and page are exact) and holds at most
``max_chars``; a line longer than that is cut into pieces that share its line number.
"""

from __future__ import annotations

from dataclasses import dataclass

from o.memory.files.parsers import Document

# about 3.5 characters per token in English prose; the local model reads 256 word pieces
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class Chunk:
    seq: int
    text: str
    start_line: int  # 1-based, inclusive, in the parsed content
    end_line: int
    page: int | None
    heading: str


def max_chars(chunk_tokens: int | None) -> int:
    return max(200, min(4000, (chunk_tokens or 300) * CHARS_PER_TOKEN))


def chunk(doc: Document, limit: int) -> list[Chunk]:
    out: list[Chunk] = []
    lines: list[str] = []
    start = 0
    size = 0

    def flush(end: int) -> None:
        nonlocal lines, size
        text = "\n".join(lines).strip()
        if text:
            out.append(Chunk(len(out), text, start + 1, end + 1, doc.pages[start], doc.headings[start]))
        lines, size = [], 0

    for i, line in enumerate(doc.lines):
        boundary = lines and (doc.pages[i] != doc.pages[start] or doc.headings[i] != doc.headings[start])
        if boundary or (lines and size + len(line) + 1 > limit):
            flush(i - 1)
        if not lines:
            start = i
        if len(line) > limit:
            for offset in range(0, len(line), limit):
                lines, start = [line[offset : offset + limit]], i
                flush(i)
            continue
        lines.append(line)
        size += len(line) + 1
    if lines:
        flush(len(doc.lines) - 1)
    return out
