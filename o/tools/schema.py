"""A tool's JSON schema, derived from its Python source the way Letta does it.

The source is parsed with :mod:`ast`, never executed: the server must not run user
code. The function's name, its Google-style docstring (summary, ``Args:``) and its
annotations and defaults give Letta's shape::

    {"name": ..., "description": ...,
     "parameters": {"type": "object", "properties": {...}, "required": [...]}}
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from o.errors import InvalidInput

# parameters the runtime supplies itself; never part of what the model fills in
HIDDEN_PARAMETERS = frozenset({"self", "agent_state"})
_SECTIONS = {
    "args",
    "arguments",
    "parameters",
    "params",
    "returns",
    "return",
    "raises",
    "yields",
    "examples",
    "example",
    "notes",
    "note",
    "attributes",
}
_SCALARS = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "dict": {"type": "object"},
    "Dict": {"type": "object"},
    "list": {"type": "array"},
    "List": {"type": "array"},
    "tuple": {"type": "array"},
    "Tuple": {"type": "array"},
    "set": {"type": "array"},
    "Set": {"type": "array"},
    "Any": {},
    "object": {},
}
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


@dataclass
class Docstring:
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""


def parse_docstring(text: str | None) -> Docstring:
    """Split a Google-style docstring into its summary, parameter texts and return text."""
    doc = Docstring()
    if not text:
        return doc
    lines = text.expandtabs().splitlines()
    summary: list[str] = []
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    returns: list[str] = []
    for raw in lines:
        stripped = raw.strip()
        header = stripped[:-1].lower() if stripped.endswith(":") else None
        if header in _SECTIONS and (base_indent is None or _indent(raw) <= (base_indent or 0)):
            section = header
            current = None
            base_indent = None
            continue
        if section is None:
            summary.append(stripped)
            continue
        if section in ("args", "arguments", "parameters", "params"):
            if not stripped:
                continue
            indent = _indent(raw)
            if base_indent is None:
                base_indent = indent
            match = _ARG_LINE.match(stripped)
            if indent <= base_indent and match:
                current = match.group(1).lstrip("*")
                doc.params[current] = match.group(3).strip()
            elif current is not None:
                doc.params[current] = (doc.params[current] + " " + stripped).strip()
        elif section in ("returns", "return") and stripped:
            returns.append(stripped)
    doc.description = _paragraphs(summary)
    if returns:
        first = returns[0]
        # "str: the answer" names the type first; keep only the words
        head, sep, rest = first.partition(":")
        if sep and re.fullmatch(r"[\w\[\], |.]+", head.strip()):
            returns[0] = rest.strip()
        doc.returns = " ".join(r for r in returns if r)
    return doc


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _paragraphs(lines: list[str]) -> str:
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def parse_source(source: str) -> ast.Module:
    if not source or not source.strip():
        raise InvalidInput("tool source code is empty")
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise InvalidInput(f"tool source code does not parse: line {exc.lineno}: {exc.msg}", line=exc.lineno) from exc


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
    node = find_function(parse_source(source), name)
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
        schema = annotation_schema(arg.annotation, f"parameter {arg.arg!r} of {node.name}")
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


def annotation_schema(node: ast.expr, where: str) -> dict[str, Any]:
    """JSON schema for one annotation expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        # a string annotation (or `from __future__ import annotations` style)
        try:
            inner = ast.parse(node.value, mode="eval").body
        except SyntaxError as exc:
            raise InvalidInput(f"{where}: annotation {node.value!r} does not parse") from exc
        return annotation_schema(inner, where)
    if isinstance(node, ast.Constant) and node.value is None:
        return {"type": "null"}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([_flatten_or(node)], where)
    name = _name(node)
    if name is not None:
        if name in _SCALARS:
            return dict(_SCALARS[name])
        if name == "None":
            return {"type": "null"}
        raise InvalidInput(f"{where}: type {name!r} has no JSON schema equivalent")
    if isinstance(node, ast.Subscript):
        base = _name(node.value)
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base in ("list", "List", "set", "Set", "Sequence", "Iterable"):
            return {"type": "array", "items": annotation_schema(args[0], where)}
        if base in ("tuple", "Tuple"):
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                return {"type": "array", "items": annotation_schema(args[0], where)}
            items = [annotation_schema(a, where) for a in args]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        if base in ("dict", "Dict", "Mapping"):
            schema: dict[str, Any] = {"type": "object"}
            if len(args) == 2:
                schema["additionalProperties"] = annotation_schema(args[1], where)
            return schema
        if base == "Optional":
            return _union([args, [ast.Constant(value=None)]], where)
        if base == "Union":
            return _union([args], where)
        if base == "Literal":
            return _literal(args, where)
        if base == "Annotated":
            return annotation_schema(args[0], where)
    raise InvalidInput(f"{where}: annotation {ast.unparse(node)!r} has no JSON schema equivalent")


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.List, t.Optional
        return node.attr
    return None


def _flatten_or(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*_flatten_or(node.left), *_flatten_or(node.right)]
    return [node]


def _union(groups: list[list[ast.expr]], where: str) -> dict[str, Any]:
    members = [m for group in groups for m in group]
    schemas = [annotation_schema(m, where) for m in members]
    not_null = [s for s in schemas if s != {"type": "null"}]
    if len(not_null) == 1:
        # Optional[X] is X for the model; whether it must be given follows the default
        return not_null[0]
    unique: list[dict[str, Any]] = []
    for schema in schemas:
        if schema not in unique:
            unique.append(schema)
    return {"anyOf": unique}


def _literal(args: list[ast.expr], where: str) -> dict[str, Any]:
    values: list[Any] = []
    for arg in args:
        if not isinstance(arg, ast.Constant):
            raise InvalidInput(f"{where}: Literal values must be constants")
        values.append(arg.value)
    kinds = {type(v) for v in values}
    json_type = {str: "string", int: "integer", float: "number", bool: "boolean"}
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1 and next(iter(kinds)) in json_type:
        schema = {"type": json_type[next(iter(kinds))], "enum": values}
    return schema
