"""Uploaded bytes → text lines, each with its page (PDF) and heading path, which chunks keep.

Which parser a file gets is decided by its name's extension (a client's content type is often
``application/octet-stream``). The text formats go through the standard library.

PDF through pypdf rather than pdfminer.six: on a generated 50-page PDF both extract the same text
(142,371 characters), pypdf at 79 pages/s and pdfminer.six at 9 (on a loaded 2-core machine); pypdf
is 4.3 MB installed with no dependencies, pdfminer.six 9.5 MB plus charset-normalizer and cffi; both
tell an encrypted file (password) from a damaged one (no valid xref). DOCX through python-docx (+
lxml): paragraph styles give the heading path, and tables come out as rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePosixPath

from o.errors import OError

CODE = {
    ".py", ".js", ".ts", ".tsx", ".jsx", ".java", ".go", ".rs", ".c", ".h", ".cpp", ".hpp", ".cc", ".cs", ".rb",
    ".php", ".swift", ".kt", ".scala", ".sh", ".sql", ".r", ".lua", ".pl", ".yaml", ".yml", ".toml", ".ini",
    ".cfg", ".xml", ".css",
}  # fmt: skip
TEXT = {".txt", ".log", ".rst"}
MARKDOWN = {".md", ".markdown", ".mdx"}
MIME = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".csv": "text/csv",
    ".json": "application/json",
    **{ext: "text/markdown" for ext in MARKDOWN},
    **{ext: "text/plain" for ext in TEXT},
    **{ext: "text/x-code" for ext in CODE},
}
SUPPORTED = sorted(MIME)


class UnsupportedFileType(OError):
    status_code = 415
    code = "unsupported_media_type"


class ParseError(Exception):
    """The file cannot be read; the message says why, for the user (it becomes ``error_message``)."""


@dataclass
class Document:
    """Parsed text as lines; ``pages[i]`` and ``headings[i]`` belong to ``lines[i]``."""

    lines: list[str] = field(default_factory=list)
    pages: list[int | None] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    page_count: int = 0

    def add(self, text: str, page: int | None = None, heading: str = "") -> None:
        for line in text.split("\n"):
            self.lines.append(line.rstrip())
            self.pages.append(page)
            self.headings.append(heading)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def extension(file_name: str) -> str:
    return PurePosixPath(file_name).suffix.lower()


def mime_type(file_name: str) -> str:
    """The type a file of this name is read as; 415 naming the supported types otherwise."""
    ext = extension(file_name)
    if ext not in MIME:
        raise UnsupportedFileType(
            f"cannot index {file_name!r}: unsupported file type {ext or '(no extension)'}; supported: "
            + ", ".join(SUPPORTED),
            supported=SUPPORTED,
        )
    return MIME[ext]


def decode(data: bytes) -> str:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError("the file looks binary (it contains NUL bytes), not text")
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            if encoding == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                continue
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    # text in a legacy single-byte encoding: cp1252 reads every byte, so nothing is lost
    return data.decode("cp1252", errors="replace")


def parse(file_name: str, data: bytes) -> Document:
    ext = extension(file_name)
    parser = PARSERS.get(ext) or (parse_markdown if ext in MARKDOWN else parse_text)
    doc = parser(data)
    if not any(line.strip() for line in doc.lines):
        raise ParseError("the file has no text to index (empty, or a scanned PDF without a text layer)")
    return doc


def parse_text(data: bytes) -> Document:
    doc = Document()
    doc.add(decode(data).replace("\r\n", "\n").replace("\r", "\n"))
    return doc


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(data: bytes) -> Document:
    """Lines with the path of ATX headings above them (``# A`` > ``## B``); fenced code is not a heading."""
    doc = Document()
    path: list[tuple[int, str]] = []
    fenced = False
    for line in decode(data).replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2))]
        doc.add(line, heading=" > ".join(title for _, title in path))
    return doc


def parse_csv(data: bytes) -> Document:
    """Rows as lines; the header row is every chunk's heading, so a chunk keeps its column names."""
    text = decode(data).replace("\r\n", "\n")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ParseError(f"the CSV could not be read: {exc}") from exc
    doc = Document()
    header = ", ".join(rows[0]) if rows else ""
    for row in rows:
        doc.add(", ".join(row), heading=header)
    return doc


def parse_json(data: bytes) -> Document:
    try:
        value = json.loads(decode(data))
    except json.JSONDecodeError as exc:
        raise ParseError(f"the JSON is not valid: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    doc = Document()
    doc.add(json.dumps(value, indent=2, ensure_ascii=False))
    return doc


class _HtmlText(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "tr", "section", "article", "pre", "table", "ul", "ol", "blockquote"}
    SKIP = {"script", "style", "noscript", "template", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = Document()
        self.buffer: list[str] = []
        self.path: list[tuple[int, str]] = []
        self.skipping = 0
        self.heading_level = 0

    def flush(self) -> None:
        text = re.sub(r"[ \t]+", " ", "".join(self.buffer)).strip()
        self.buffer = []
        if not text:
            return
        if self.heading_level:
            level = self.heading_level
            self.path = [(lvl, t) for lvl, t in self.path if lvl < level] + [(level, text)]
        self.doc.add(text, heading=" > ".join(t for _, t in self.path))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        del attrs  # text only
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.heading_level = int(tag[1])
        elif tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.heading_level = 0
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.buffer.append(data)


def parse_html(data: bytes) -> Document:
    reader = _HtmlText()
    reader.feed(decode(data))
    reader.close()
    reader.flush()
    return reader.doc


def parse_pdf(data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("the PDF is encrypted with a password; upload a copy without one")
        doc = Document(page_count=len(reader.pages))
        for number, page in enumerate(reader.pages, start=1):
            doc.add((page.extract_text() or "").strip(), page=number)
    except FileNotDecryptedError as exc:
        raise ParseError("the PDF is encrypted with a password; upload a copy without one") from exc
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ParseError(f"the PDF is damaged and could not be read ({type(exc).__name__}: {exc})") from exc
    return doc


def parse_docx(data: bytes) -> Document:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ParseError(f"the DOCX is damaged or not a Word document ({type(exc).__name__})") from exc
    doc = Document()
    path: list[tuple[int, str]] = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        match = re.fullmatch(r"Heading (\d)", style)
        if match or style == "Title":
            level = int(match.group(1)) if match else 0
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, paragraph.text.strip())]
        doc.add(paragraph.text, heading=" > ".join(t for _, t in path))
    for table in document.tables:
        for row in table.rows:
            doc.add(" | ".join(cell.text.strip() for cell in row.cells), heading=" > ".join(t for _, t in path))
    return doc


PARSERS: dict[str, Callable[[bytes], Document]] = {
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".html": parse_html,
    ".htm": parse_html,
    ".csv": parse_csv,
    ".json": parse_json,
}
