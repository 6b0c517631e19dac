from __future__ import annotations

from typing import Any

import pytest

from o.errors import InvalidInput
from o.tools.schema import derive_json_schema, function_name, parse_docstring

WEATHER = '''
from typing import Literal, Optional

def helper(x):
    return x

def get_weather(city: str, days: int = 1, units: Literal["metric", "imperial"] = "metric",
                tags: list[str] | None = None, detailed: bool = False, *, scale: float = 1.0,
                extra: Optional[dict[str, int]] = None) -> str:
    """Look up the weather forecast.

    Uses the public forecast service; results are cached
    for ten minutes.

    Args:
        city (str): Name of the city,
            for example "Oslo".
        days: How many days ahead.
        units: Unit system.
        tags: Labels to attach.
        detailed: Whether to include hourly data.
        scale: A factor.
        extra: Additional knobs.

    Returns:
        str: The forecast as text.
    """
    return city
'''


def test_letta_shape_from_signature_and_docstring() -> None:
    schema = derive_json_schema(WEATHER)
    assert schema["name"] == "get_weather"
    assert schema["description"] == (
        "Look up the weather forecast.\n\nUses the public forecast service; results are cached for ten minutes."
    )
    params = schema["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": 'Name of the city, for example "Oslo".'}
    assert props["days"] == {"type": "integer", "description": "How many days ahead."}
    assert props["units"] == {"type": "string", "enum": ["metric", "imperial"], "description": "Unit system."}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "Labels to attach."}
    assert props["detailed"]["type"] == "boolean"
    assert props["scale"]["type"] == "number"
    assert props["extra"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "description": "Additional knobs.",
    }


def test_named_function_is_chosen_and_last_is_default() -> None:
    assert function_name(WEATHER) == "get_weather"
    helperless = "def a(x: int) -> int:\n    return x\n\ndef b(y: str) -> str:\n    return y\n"
    assert derive_json_schema(helperless, "a")["parameters"]["properties"] == {"x": {"type": "integer"}}
    assert derive_json_schema(helperless)["name"] == "b"


def test_string_annotations_unions_and_hidden_parameters() -> None:
    source = (
        "def f(self, agent_state: 'AgentState', a: 'list[int]', b: int | str, c: 'typing.Any' = None)"
        " -> None:\n    pass\n"
    )
    schema = derive_json_schema(source)
    props = schema["parameters"]["properties"]
    assert set(props) == {"a", "b", "c"}
    assert props["a"] == {"type": "array", "items": {"type": "integer"}}
    assert props["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert props["c"] == {}
    assert schema["parameters"]["required"] == ["a", "b"]
    assert schema["description"] == ""


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("", "empty"),
        ("x = 1\n", "no top-level function"),
        ("def f(:\n  pass", "does not parse: line 1"),
        ("def f(x):\n    return x\n", "no type annotation"),
        ("def f(x: Widget):\n    return x\n", "'Widget' has no JSON schema"),
        ("class A:\n    def f(self, x: int): ...\n", "no top-level function"),
    ],
)
def test_invalid_sources_name_the_problem(source: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        derive_json_schema(source)
    assert fragment in info.value.message


def test_missing_named_function() -> None:
    with pytest.raises(InvalidInput, match="no function named 'g'"):
        derive_json_schema("def f(x: int):\n    pass\n", "g")


def test_docstring_returns_and_multiline_args() -> None:
    doc = parse_docstring(
        "Do it.\n\nArgs:\n    a (int): first\n        more\n    b: second\n\nReturns:\n    int: the count\n"
    )
    assert doc.description == "Do it."
    assert doc.params == {"a": "first more", "b": "second"}
    assert doc.returns == "the count"


def _described(docstring: str) -> dict[str, Any]:
    source = f'def f(x: int, y: str = "") -> int:\n    """{docstring}"""\n    return x\n'
    return derive_json_schema(source)


@pytest.mark.parametrize(
    "docstring",
    [
        # NumPy
        "Do it.\n\n    Parameters\n    ----------\n"
        "    x : int\n        an x,\n        on two lines\n    y : str\n        a y\n    ",
        # reST (Sphinx)
        "Do it.\n\n    :param x: an x,\n        on two lines\n"
        "    :type x: int\n    :param y: a y\n    :returns: the count\n    ",
        # Epydoc
        "Do it.\n\n    @param x: an x, on two lines\n    @type x: int\n    @param y: a y\n    @return: the count\n    ",
        # Google, with keyword arguments in their own section
        "Do it.\n\n    Args:\n        x: an x,\n            on two lines\n\n    Keyword Args:\n        y: a y\n    ",
    ],
    ids=["numpy", "rest", "epydoc", "google-keyword-args"],
)
def test_every_docstring_style_gives_the_same_schema(docstring: str) -> None:
    schema = _described(docstring)
    assert schema["description"] == "Do it."
    assert schema["parameters"]["properties"] == {
        "x": {"type": "integer", "description": "an x, on two lines"},
        "y": {"type": "string", "description": "a y"},
    }


def test_sections_o_always_skipped_stay_out_of_the_description() -> None:
    doc = parse_docstring("Do it.\n\nNote:\n    careful.\n\nargs:\n    x: an x\n\nReturn:\n    the count\n")
    assert (doc.description, doc.params, doc.returns) == ("Do it.", {"x": "an x"}, "the count")


def test_prose_starting_a_line_with_a_rest_role_is_not_cut() -> None:
    text = "Reads a block.\n\nLike :func:`update`, but without\n:func:`lock` first.\n"
    assert parse_docstring(text).description == "Reads a block.\n\nLike :func:`update`, but without :func:`lock` first."


def test_an_args_section_no_style_reads_stays_in_the_description() -> None:
    # nothing the author wrote is lost: the model still reads it, as prose
    doc = parse_docstring("Do it.\n\nArgs:\n    city - the city\n")
    assert doc.description == "Do it.\n\nArgs: city - the city"
    assert doc.params == {}
