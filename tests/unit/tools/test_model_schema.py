"""Tool parameters typed with classes the source defines (pydantic models, dataclasses, TypedDict, Enum)
get the schema pydantic derives — read statically, so hostile sources run nothing and stay bounded.

The expected schemas come from pydantic itself: the test (trusted code) executes the same source and
asks pydantic for the parameter's schema, then inlines its ``$defs`` and drops titles, the two ways
O's schema differs on purpose (see o/tools/annotations.py)."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest
from pydantic import TypeAdapter

from o.errors import InvalidInput
from o.tools.schema import derive_json_schema

ORDERS = '''
from enum import Enum
from typing import List, Optional, Literal, Annotated
from dataclasses import dataclass, field
from pydantic import BaseModel, Field
from typing_extensions import TypedDict, NotRequired


class Currency(str, Enum):
    EUR = "eur"
    USD = "usd"


class Item(BaseModel):
    """One line of an order."""

    sku: str = Field(..., description="Stock keeping unit", min_length=3)
    quantity: int = Field(1, ge=1, le=100)
    tags: List[str] = Field(default_factory=list, max_length=5)
    note: Optional[str] = None


class Order(BaseModel):
    order_id: int
    currency: Currency = Currency.EUR
    items: List[Item]
    express: bool = False
    kind: Literal["retail", "wholesale"] = "retail"
    label: Annotated[str, Field(description="Shown on the parcel")] = "none"


class PriorityOrder(Order):
    priority: int = Field(default=5, gt=0)


@dataclass
class Address:
    """Where to ship."""

    street: str
    city: str
    zip_code: str = "00000"
    lines: list[str] = field(default_factory=list)


class Options(TypedDict, total=False):
    gift: bool
    message: str


class Contact(TypedDict):
    email: str
    phone: NotRequired[str]


def place_orders(orders: List[Order], ship_to: Address, rush: list[PriorityOrder], options: Options,
                 contact: Contact, currency: Currency = Currency.USD) -> str:
    """Place orders.

    Args:
        orders: The orders to place.
        ship_to: The shipping address.
        rush: Orders to hurry.
        options: Gift options.
        contact: Who to tell.
        currency: Billing currency.
    """
    return "ok"
'''


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            target = defs[schema["$ref"].split("/")[-1]]
            return _inline({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs)
        out = {k: _inline(v, defs) for k, v in schema.items() if k not in ("title", "$defs")}
        # Optional[X] is X in O's schemas (whether it is required follows the default)
        any_of = out.get("anyOf")
        if isinstance(any_of, list) and {"type": "null"} in any_of and len(any_of) == 2:
            rest = {k: v for k, v in out.items() if k != "anyOf"}
            out = {**next(s for s in any_of if s != {"type": "null"}), **rest}
        return out
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def pydantic_schema(source: str, annotation: str) -> dict[str, Any]:
    """What pydantic derives for ``annotation`` in ``source`` (run here: the test's own source)."""
    module = types.ModuleType("tool_source")
    sys.modules["tool_source"] = module
    try:
        exec(compile(source, "tool_source", "exec"), module.__dict__)
        schema = TypeAdapter(eval(annotation, module.__dict__)).json_schema()
    finally:
        del sys.modules["tool_source"]
    return _inline(schema, schema.get("$defs", {}))


@pytest.mark.parametrize(
    ("parameter", "annotation"),
    [
        ("orders", "List[Order]"),
        ("ship_to", "Address"),
        ("rush", "list[PriorityOrder]"),
        ("options", "Options"),
        ("contact", "Contact"),
    ],
)
def test_parameters_get_the_schema_pydantic_derives(parameter: str, annotation: str) -> None:
    ours = derive_json_schema(ORDERS)["parameters"]["properties"][parameter]
    # the docstring's text for the parameter is its description (the class docstring otherwise)
    ours.pop("description")
    expected = pydantic_schema(ORDERS, annotation)
    expected.pop("description", None)
    assert ours == expected


def test_the_whole_tool_schema_reads_as_letta_shows_it() -> None:
    schema = derive_json_schema(ORDERS)
    params = schema["parameters"]
    assert params["required"] == ["orders", "ship_to", "rush", "options", "contact"]
    order = params["properties"]["orders"]["items"]
    assert order["required"] == ["order_id", "items"]
    assert order["properties"]["currency"] == {"type": "string", "enum": ["eur", "usd"], "default": "eur"}
    item = order["properties"]["items"]["items"]
    assert item["description"] == "One line of an order."
    assert item["properties"]["sku"] == {"type": "string", "description": "Stock keeping unit", "minLength": 3}
    assert item["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 1}
    assert params["properties"]["currency"] == {
        "type": "string",
        "enum": ["eur", "usd"],
        "description": "Billing currency.",
    }
    assert params["properties"]["orders"]["description"] == "The orders to place."
    # a class's docstring describes it where no parameter text does
    assert item["description"] == pydantic_schema(ORDERS, "Item")["description"]


HOSTILE = {
    # a class body with side effects: nothing of it runs (a marker file would appear if it did)
    "side effects": """
import os
from pydantic import BaseModel
class Order(BaseModel):
    id: int = os.system("touch /tmp/o-tools-pwned") or 1
    note: str = open("/etc/passwd").read()
    print("ran")
def f(order: Order) -> str:
    return ""
""",
    "dunder tricks": """
from pydantic import BaseModel
class Order(BaseModel):
    id: int = __import__("os").system("touch /tmp/o-tools-pwned")
    x: "__import__('os').system('touch /tmp/o-tools-pwned')"
def f(order: Order) -> str:
    return ""
""",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_class_bodies_are_read_never_run(name: str, tmp_path: Any) -> None:
    import os

    if os.path.exists("/tmp/o-tools-pwned"):
        os.remove("/tmp/o-tools-pwned")
    try:
        schema = derive_json_schema(HOSTILE[name])
        order = schema["parameters"]["properties"]["order"]
        # a default that is not a literal only makes the field optional; it is never computed
        assert "default" not in order["properties"]["id"]
        assert order.get("required", []) == [] or "id" not in order["required"]
    except InvalidInput as exc:
        assert "x" in str(exc) or "annotation" in str(exc)
    assert not os.path.exists("/tmp/o-tools-pwned")


def test_a_type_bomb_is_refused_quickly() -> None:
    # each class holds ten of the next: inlined, 10**8 objects; refused at the node bound instead
    classes = ["from pydantic import BaseModel", "class C9(BaseModel):\n    x: int"]
    for level in range(8, -1, -1):
        fields = "\n".join(f"    f{i}: C{level + 1}" for i in range(10))
        classes.append(f"class C{level}(BaseModel):\n{fields}")
    source = "\n".join(classes) + "\ndef f(c: C0) -> str:\n    return ''\n"
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="too large a schema"):
        derive_json_schema(source)
    assert time.monotonic() - started < 2


def test_recursive_and_unknown_types_are_refused_by_name() -> None:
    recursive = """
from typing import List
from pydantic import BaseModel
class Node(BaseModel):
    children: List["Node"]
def f(tree: Node) -> str:
    return ""
"""
    with pytest.raises(InvalidInput, match="'Node' refers to itself"):
        derive_json_schema(recursive)
    mutual = """
from pydantic import BaseModel
class A(BaseModel):
    b: "B"
class B(BaseModel):
    a: A
def f(x: A) -> str:
    return ""
"""
    with pytest.raises(InvalidInput, match="refers to itself"):
        derive_json_schema(mutual)
    imported = "from shop import Order\ndef f(order: Order) -> str:\n    return ''\n"
    with pytest.raises(InvalidInput, match="type 'Order' has no JSON schema equivalent"):
        derive_json_schema(imported)
    plain = "class Order:\n    id: int\ndef f(order: Order) -> str:\n    return ''\n"
    with pytest.raises(InvalidInput, match="class 'Order' is not a pydantic model"):
        derive_json_schema(plain)
    cyclic_bases = "class A(B):\n    x: int\nclass B(A):\n    y: int\ndef f(a: A) -> str:\n    return ''\n"
    with pytest.raises(InvalidInput, match="is not a pydantic model"):
        derive_json_schema(cyclic_bases)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep = "def f(x: " + "List[" * 200 + "int" + "]" * 200 + ") -> str:\n    return ''\n"
    with pytest.raises(InvalidInput):
        derive_json_schema(deep)
    very_deep = "def f(x: " + "(" * 100_000 + "int" + ")" * 100_000 + ") -> str:\n    return ''\n"
    with pytest.raises(InvalidInput, match="does not parse"):
        derive_json_schema(very_deep)
