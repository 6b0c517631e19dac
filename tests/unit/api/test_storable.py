"""What Postgres cannot store, found before a handler runs: pure functions over parsed values and bytes."""

from __future__ import annotations

import json

import pytest

from o.api.storable import in_body, in_json, in_params


def test_params_with_a_nul_in_the_name_or_value() -> None:
    found = in_params("query", [("after", "a\x00b"), ("ok", "fine"), ("x\x00", "")])
    assert [issue["loc"] for issue in found] == [["query", "after"], ["query", "x\x00"]]
    assert all(issue["type"] == "string_nul" for issue in found)


def test_json_nul_found_in_keys_values_and_lists() -> None:
    value = {"a": ["ok", "b\x00"], "c\x00": {"d": "e"}, "n": 1.5}
    assert [issue["loc"] for issue in in_json(value)] == [["body", "a", 1], ["body", "c\x00"]]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1E+400"])
def test_body_with_a_number_postgres_refuses(literal: str) -> None:
    found = in_body(f'{{"metadata": {{"x": [1, {literal}]}}}}'.encode())
    assert [issue["loc"] for issue in found] == [["body", "metadata", "x", 1]]
    assert found[0]["type"] == "finite_number"


def test_body_with_an_escaped_nul() -> None:
    found = in_body(json.dumps({"value": "a\x00"}).encode())
    assert [issue["loc"] for issue in found] == [["body", "value"]]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"name": "Ada", "score": 0.5, "big": 1e308, "when": "2026-01-01T00:00:00Z"}',
        b'{"text": "NaN is a word, so is Infinity"}',
        b'{"text": "a literal backslash-u: \\\\u0000"}',
        b"not json NaN",
    ],
)
def test_bodies_without_problems(body: bytes) -> None:
    assert in_body(body) == []
