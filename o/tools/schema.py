"""A tool's JSON schema, derived from its Python source the way Letta does it.

The source is parsed with :mod:`ast`, never executed: the server must not run user
code. The function's name, its docstring (summary and parameter texts, in Google, NumPy,
reST or Epydoc style, read by ``docstring_parser`` as Letta reads them) and its
annotations and defaults give Letta's shape::

    {"name": ..., "description": ...,
     "parameters": {"type": "object", "properties": {...}, "required": [...]}}
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docstring_parser
from docstring_parser import epydoc, numpydoc, rest
from docstring_parser.google import DEFAULT_SECTIONS as GOOGLE_SECTIONS
from docstring_parser.google import GoogleParser, Section, SectionType

from o.errors import InvalidInput
from o.tools.annotations import Annotations

# parameters the runtime supplies itself; never part of what the model fills in
HIDDEN_PARAMETERS = frozenset({"self", "agent_state"})
# Google section titles beyond docstring_parser's own: those O has always recognised (so a
# "Note:" block never leaks into the description) and napoleon's keyword-argument sections
# (tools often take keyword-only parameters); in any capitalisation, as before
_EXTRA_GOOGLE_SECTIONS = (
    Section("Keyword Args", "param", SectionType.MULTIPLE),
    Section("Keyword Arguments", "param", SectionType.MULTIPLE),
    Section("Return", "returns", SectionType.SINGULAR_OR_MULTIPLE),
    Section("Note", "notes", SectionType.SINGULAR),
    Section("Notes", "notes", SectionType.SINGULAR),
)
_GOOGLE = GoogleParser(
    sections=[
        Section(title, section.key, section.type)
        for section in (*GOOGLE_SECTIONS, *_EXTRA_GOOGLE_SECTIONS)
        for title in dict.fromkeys((section.title, section.title.lower(), section.title.upper()))
    ]
)
# Google first: O's historical style wins a tie, so a plain description that happens to
# start a line with a reST role (":func:`x` ...") is not cut there
_STYLES: tuple[Callable[[str], docstring_parser.Docstring], ...] = (
    _GOOGLE.parse,
    rest.parse,
    numpydoc.parse,
    epydoc.parse,
)


@dataclass
class Docstring:
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""


def parse_docstring(text: str | None) -> Docstring:
    """A docstring's summary, parameter texts and return text, each reflowed into one line per paragraph.

    Google, NumPy, reST and Epydoc styles are read; the style that finds the most
    parameters and returns wins. A docstring no style can read is all description.
    """
    if not text:
        return Docstring()
    parsed = _parse_any_style(text)
    if parsed is None:
        return Docstring(description=_reflow(text))
    return Docstring(
        description=_reflow(_description(parsed)),
        params={param.arg_name.lstrip("*"): _reflow(param.description or "", " ") for param in parsed.params},
        returns=_reflow(_returns(parsed), " "),
    )


def _parse_any_style(text: str) -> docstring_parser.Docstring | None:
    """The reading of the style that finds the most parameters and returns (docstring_parser's
    AUTO style counts every section, so a reST role in plain prose could win)."""
    candidates: list[docstring_parser.Docstring] = []
    for parse in _STYLES:
        with contextlib.suppress(docstring_parser.ParseError):
            candidates.append(parse(text))
    return max(candidates, key=lambda parsed: len(parsed.params) + len(parsed.many_returns), default=None)


def _description(parsed: docstring_parser.Docstring) -> str:
    separator = "\n\n" if parsed.blank_after_short_description else "\n"
    return separator.join(part for part in (parsed.short_description, parsed.long_description) if part)


def _returns(parsed: docstring_parser.Docstring) -> str:
    # what it returns, not what it yields
    returns = [r for r in parsed.many_returns if not r.is_generator]
    return returns[0].description or "" if returns else ""


def _reflow(text: str, paragraph_separator: str = "\n\n") -> str:
    """Lines joined by spaces within a paragraph; paragraphs (split at blank lines) by ``paragraph_separator``."""
    paragraphs: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return paragraph_separator.join(" ".join(lines) for lines in paragraphs if lines)


def parse_source(source: str) -> ast.Module:
    if not source or not source.strip():
        raise InvalidInput("tool source code is empty")
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise InvalidInput(f"tool source code does not parse: line {exc.lineno}: {exc.msg}", line=exc.lineno) from exc
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes; nesting too deep for the parser
        raise InvalidInput(f"tool source code does not parse: {type(exc).__name__}: {exc}") from exc


def find_function(module: ast.Module, name: str | None = None) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The named top-level function, or (as Letta does) the last one defined."""
    functions = [n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not functions:
        raise InvalidInput("tool source code defines no top-level function")
    if name is None:
        return functions[-1]
    for node in reversed(functions):
        if node.name == name:
            return node
    raise InvalidInput(
        f"tool source code defines no function named {name!r}",
        defined=[n.name for n in functions],
    )


def function_name(source: str) -> str:
    return find_function(parse_source(source)).name


def derive_json_schema(source: str, name: str | None = None) -> dict[str, Any]:
    """Letta's tool schema for the function ``name`` (default: the last one) in ``source``."""
    module = parse_source(source)
    node = find_function(module, name)
    types = Annotations.of(module)
    doc = parse_docstring(ast.get_docstring(node))
    properties: dict[str, Any] = {}
    required: list[str] = []
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: dict[str, bool] = {}
    for arg, has_default in zip(
        positional,
        [False] * (len(positional) - len(arguments.defaults)) + [True] * len(arguments.defaults),
        strict=True,
    ):
        defaults[arg.arg] = has_default
    for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        defaults[arg.arg] = default is not None
    for arg in [*positional, *arguments.kwonlyargs]:
        if arg.arg in HIDDEN_PARAMETERS:
            continue
        if arg.annotation is None:
            raise InvalidInput(f"parameter {arg.arg!r} of {node.name} has no type annotation", parameter=arg.arg)
        schema = types.schema(arg.annotation, f"parameter {arg.arg!r} of {node.name}")
        if doc.params.get(arg.arg):
            schema = {**schema, "description": doc.params[arg.arg]}
        properties[arg.arg] = schema
        if not defaults[arg.arg]:
            required.append(arg.arg)
    return {
        "name": node.name,
        "description": doc.description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }
