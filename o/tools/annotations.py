"""JSON schema for a tool parameter's type annotation, read from the tool's source, never run.

Besides builtin and ``typing`` types, a parameter may use classes the source itself defines — pydantic
models (``class Order(BaseModel)``, inheritance included), ``@dataclass`` classes, ``TypedDict`` and
``Enum`` classes — and gets the JSON schema pydantic derives for them, inlined (no ``$ref``): fields
with their types, defaults and ``Field(...)`` descriptions and bounds, the class docstring as the
description, ``required`` for fields without a default. Titles are left out (the model reads the
property names). ``Optional[X]`` is ``X``: whether a value must be given follows the default.

Why static: deriving the schema by importing the source would run the tool's module-level code in the
API process, which must never run tenant code (see o/tools/sandbox/README.md). Class bodies are read as
syntax: a default is used only when ``ast.literal_eval`` accepts it (literals, never calls), and any
other expression (a call, a name) only makes the field optional. A hostile source can therefore only
ask for a large schema, and that is bounded (:data:`MAX_NODES`, :data:`MAX_DEPTH`); a model that
refers to itself has no inline schema and is refused.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from o.errors import InvalidInput

# bounds on what a source can make the server build: schema objects in one tool, nesting of types
MAX_NODES = 2_000
MAX_DEPTH = 32

_SCALARS: dict[str, dict[str, Any]] = {
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
    # as pydantic shows them
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "UUID": {"type": "string", "format": "uuid"},
}
_MODEL_BASES = frozenset({"BaseModel"})
_TYPEDDICT_BASES = frozenset({"TypedDict"})
_ENUM_BASES = frozenset({"Enum", "StrEnum", "IntEnum"})
_FIELD_CALLS = frozenset({"Field", "field"})
# Field(...) keywords and the JSON schema keywords pydantic gives them
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum", "pattern": "pattern"}
_LENGTHS = {"min_length": ("minLength", "minItems"), "max_length": ("maxLength", "maxItems")}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.List, pydantic.BaseModel, models.Order
        return node.attr
    if isinstance(node, ast.Call):  # @dataclass(frozen=True)
        return _name(node.func)
    return None


def _literal(node: ast.expr) -> tuple[bool, Any]:
    """(True, value) when ``node`` is a literal (nothing is evaluated but literals)."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


@dataclass
class FieldInfo:
    """What a class-body default or ``Field(...)`` says of a field."""

    required: bool = True
    default: tuple[bool, Any] = (False, None)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Annotations:
    """Turns annotations into JSON schemas, knowing the classes the source defines."""

    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    nodes: int = 0
    # the classes being expanded, to refuse a model that contains itself
    expanding: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, module: ast.Module) -> Annotations:
        return cls({node.name: node for node in module.body if isinstance(node, ast.ClassDef)})

    def schema(self, node: ast.expr, where: str, depth: int = 0) -> dict[str, Any]:
        """JSON schema for one annotation expression."""
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise InvalidInput(f"{where}: the parameter types make too large a schema (over {MAX_NODES} parts)")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self.schema(_parse_string_annotation(node.value, where), where, depth + 1)
        if isinstance(node, ast.Constant) and node.value is None:
            return {"type": "null"}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._union(_flatten_or(node), where, depth)
        if isinstance(node, ast.Subscript):
            generic = _GENERICS.get(_name(node.value) or "")
            if generic is not None:
                args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
                return generic(self, args, where, depth + 1)
        name = _name(node) if not isinstance(node, ast.Call) else None
        if name is not None:
            return self._named(name, where, depth)
        raise InvalidInput(f"{where}: annotation {ast.unparse(node)!r} has no JSON schema equivalent")

    def _named(self, name: str, where: str, depth: int) -> dict[str, Any]:
        if name in self.classes:
            return self._class(self.classes[name], where, depth + 1)
        if name in _SCALARS:
            return dict(_SCALARS[name])
        if name == "None":
            return {"type": "null"}
        raise InvalidInput(
            f"{where}: type {name!r} has no JSON schema equivalent "
            "(use builtin or typing types, or a pydantic model, dataclass, TypedDict or Enum defined in the source)"
        )

    # -- classes the source defines -----------------------------------------------------------------

    def _kind(self, cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> str | None:
        bases = {_name(base) for base in cls.bases}
        if bases & _ENUM_BASES:
            return "enum"
        if bases & _MODEL_BASES:
            return "model"
        if bases & _TYPEDDICT_BASES:
            return "typeddict"
        if any(_name(d) == "dataclass" for d in cls.decorator_list):
            return "dataclass"
        for base in bases:  # a subclass of a class of the source is of its kind
            if base in self.classes and base not in seen and base != cls.name:
                kind = self._kind(self.classes[base], seen | {cls.name})
                if kind is not None:
                    return kind
        return None

    def _class(self, cls: ast.ClassDef, where: str, depth: int) -> dict[str, Any]:
        kind = self._kind(cls)
        if kind is None:
            raise InvalidInput(
                f"{where}: class {cls.name!r} is not a pydantic model, dataclass, TypedDict or Enum; "
                "it has no JSON schema equivalent"
            )
        if kind == "enum":
            return self._enum(cls, where)
        if cls.name in self.expanding:
            raise InvalidInput(f"{where}: {cls.name!r} refers to itself; a recursive type has no inline JSON schema")
        self.expanding.append(cls.name)
        try:
            return self._object(cls, kind, where, depth)
        finally:
            self.expanding.pop()

    def _fields(self, cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> list[ast.AnnAssign]:
        """The class's annotated fields, those of its bases in the source first (as pydantic orders them)."""
        inherited: list[ast.AnnAssign] = []
        for base in cls.bases:
            name = _name(base)
            if name in self.classes and name not in seen and name != cls.name:
                inherited.extend(self._fields(self.classes[name], seen | {cls.name}))
        own = [
            node
            for node in cls.body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.simple
        ]
        names = {node.target.id for node in own if isinstance(node.target, ast.Name)}
        kept = [n for n in inherited if isinstance(n.target, ast.Name) and n.target.id not in names]
        return kept + own

    def _object(self, cls: ast.ClassDef, kind: str, where: str, depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        # class Options(TypedDict, total=False): no key is required
        total = not any(
            k.arg == "total" and isinstance(k.value, ast.Constant) and not k.value.value for k in cls.keywords
        )
        for node in self._fields(cls):
            assert isinstance(node.target, ast.Name)
            name = node.target.id
            if _name(_unwrap(node.annotation)) == "ClassVar" or (kind == "model" and name.startswith("_")):
                continue
            properties[name], explicit, optional = self._property(node, f"{where}: field {cls.name}.{name}", depth)
            must = explicit if explicit is not None else (total if kind == "typeddict" else not optional)
            if must:
                required.append(name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        doc = ast.get_docstring(cls)
        if doc:
            schema["description"] = doc
        return schema

    def _property(self, node: ast.AnnAssign, where: str, depth: int) -> tuple[dict[str, Any], bool | None, bool]:
        """One field's schema, whether ``Required``/``NotRequired`` says it must be given, and whether it
        has a default (a value, a factory, or an expression that is not read)."""
        inner, explicit = _requiredness(node.annotation)
        info = _field_info(node.value, node.annotation)
        if not info.default[0] and isinstance(node.value, ast.Attribute):
            info.default = self._enum_member(node.value)
        prop = _fit_lengths({**self.schema(inner, where, depth + 1), **info.extra})
        if info.default[0]:
            prop["default"] = info.default[1]
        return prop, explicit, not info.required

    def _enum_member(self, node: ast.Attribute) -> tuple[bool, Any]:
        """``Currency.EUR`` as a default: the member's value, as pydantic shows it."""
        cls = self.classes.get(_name(node.value) or "")
        if cls is None or self._kind(cls) != "enum":
            return False, None
        for item in cls.body:
            if isinstance(item, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == node.attr for t in item.targets
            ):
                return _literal(item.value)
        return False, None

    def _enum(self, cls: ast.ClassDef, where: str) -> dict[str, Any]:
        values: list[Any] = []
        for node in cls.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                known, value = _literal(node.value)
                if not known:
                    raise InvalidInput(f"{where}: enum {cls.name}.{node.targets[0].id} must have a literal value")
                values.append(value)
        if not values:
            raise InvalidInput(f"{where}: enum {cls.name!r} has no members")
        return _enum_schema(values, ast.get_docstring(cls))

    # -- typing constructs ---------------------------------------------------------------------------

    def _union(self, members: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
        schemas = [self.schema(m, where, depth + 1) for m in members]
        not_null = [s for s in schemas if s != {"type": "null"}]
        if len(not_null) == 1:
            # Optional[X] is X for the model; whether it must be given follows the default
            return not_null[0]
        unique: list[dict[str, Any]] = []
        for schema in schemas:
            if schema not in unique:
                unique.append(schema)
        return {"anyOf": unique}


def _enum_schema(values: list[Any], doc: str | None) -> dict[str, Any]:
    kinds = {type(v) for v in values}
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1 and next(iter(kinds)) in _JSON_TYPES:
        schema = {"type": _JSON_TYPES[next(iter(kinds))], "enum": values}
    if doc:
        schema["description"] = doc
    return schema


def _unwrap(annotation: ast.expr) -> ast.expr:
    return annotation.value if isinstance(annotation, ast.Subscript) else annotation


def _requiredness(annotation: ast.expr) -> tuple[ast.expr, bool | None]:
    """A TypedDict's ``Required[X]`` / ``NotRequired[X]``: (X, whether it is required)."""
    if isinstance(annotation, ast.Subscript) and _name(annotation.value) in ("Required", "NotRequired"):
        return annotation.slice, _name(annotation.value) == "Required"
    return annotation, None


def _field_info(value: ast.expr | None, annotation: ast.expr) -> FieldInfo:
    """Requiredness, default and ``Field(...)`` keywords of a field, from its default and from
    ``Annotated[X, Field(...)]``."""
    info = FieldInfo()
    if isinstance(annotation, ast.Subscript) and _name(annotation.value) == "Annotated":
        parts = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else []
        for part in parts[1:]:
            if isinstance(part, ast.Call) and _name(part.func) in _FIELD_CALLS:
                _read_field_call(part, info)
    if value is None:
        return info
    if isinstance(value, ast.Call) and _name(value.func) in _FIELD_CALLS:
        _read_field_call(value, info)
        return info
    info.required = False
    info.default = _literal(value)
    return info


def _read_field_call(call: ast.Call, info: FieldInfo) -> None:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    default = call.args[0] if call.args else keywords.get("default")
    if default is not None and not (isinstance(default, ast.Constant) and default.value is Ellipsis):
        info.required = False
        info.default = _literal(default)
    if "default_factory" in keywords:
        info.required = False
    for key, value in keywords.items():
        known, literal = _literal(value)
        if not known:
            continue
        if key == "description" and isinstance(literal, str):
            info.extra["description"] = literal
        elif key in _BOUNDS:
            info.extra[_BOUNDS[key]] = literal
        elif key in _LENGTHS:
            # which of the two keywords applies is settled once the type is known (_fit_lengths)
            info.extra[f"__{key}"] = literal


def _fit_lengths(schema: dict[str, Any]) -> dict[str, Any]:
    """``min_length``/``max_length`` as ``minItems``/``maxItems`` on an array, ``minLength``/``maxLength`` otherwise."""
    out = dict(schema)
    for key, (for_text, for_array) in _LENGTHS.items():
        if f"__{key}" in out:
            out[for_array if out.get("type") == "array" else for_text] = out.pop(f"__{key}")
    return out


def _parse_string_annotation(text: str, where: str) -> ast.expr:
    """A string annotation (or `from __future__ import annotations` style) as an expression."""
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, MemoryError, RecursionError) as exc:
        raise InvalidInput(f"{where}: annotation {text[:80]!r} does not parse") from exc


def _flatten_or(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*_flatten_or(node.left), *_flatten_or(node.right)]
    return [node]


Generic = Callable[[Annotations, list[ast.expr], str, int], dict[str, Any]]


def _array(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    return {"type": "array", "items": a.schema(args[0], where, depth)}


def _tuple(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
        return _array(a, args, where, depth)
    items = [a.schema(arg, where, depth) for arg in args]
    return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}


def _mapping(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if len(args) == 2:
        schema["additionalProperties"] = a.schema(args[1], where, depth)
    return schema


def _optional(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    return a._union([*args, ast.Constant(value=None)], where, depth)


def _union(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    return a._union(args, where, depth)


def _annotated(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    return a.schema(args[0], where, depth)


def _literal_values(a: Annotations, args: list[ast.expr], where: str, depth: int) -> dict[str, Any]:
    del a, depth
    values: list[Any] = []
    for arg in args:
        if not isinstance(arg, ast.Constant):
            raise InvalidInput(f"{where}: Literal values must be constants")
        values.append(arg.value)
    return _enum_schema(values, None)


# subscripted annotations by the name of their origin (``typing.`` prefixes are dropped)
_GENERICS: dict[str, Generic] = {
    **dict.fromkeys(("list", "List", "set", "Set", "frozenset", "FrozenSet", "Sequence", "Iterable"), _array),
    **dict.fromkeys(("tuple", "Tuple"), _tuple),
    **dict.fromkeys(("dict", "Dict", "Mapping"), _mapping),
    "Optional": _optional,
    "Union": _union,
    "Literal": _literal_values,
    "Annotated": _annotated,
}
