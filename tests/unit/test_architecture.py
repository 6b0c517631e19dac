"""The README's architecture rules that no linter checks, as tests: small modules, simple functions, SQL
only in the store, no dead code. (The import layers and cycles are lint-imports contracts in
pyproject.toml; .ci/run runs them.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from radon.complexity import cc_visit
from vulture import Vulture

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in ("o", "functions") for p in (ROOT / folder).rglob("*.py"))
MAX_LINES = 400
MAX_COMPLEXITY = 15


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_module_is_small(path: Path) -> None:
    lines = sum(1 for line in path.read_text().splitlines() if line.strip())
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} non-blank lines; split it by concern"


def test_no_function_is_too_complex() -> None:
    # radon counts boolean operators too (ruff's C901 does not)
    found = [
        f"{_name(p)}:{block.lineno} {block.fullname} ({block.complexity})"
        for p in SOURCES
        for block in cc_visit(p.read_text())
        if block.complexity > MAX_COMPLEXITY
    ]
    assert not found, "cyclomatic complexity over 15: " + "; ".join(found)


def test_sql_runs_only_in_the_store() -> None:
    execute = re.compile(r"\bconn\w*\.execute\(|\bcursor\(\)")
    found = [
        f"{_name(p)}:{n}"
        for p in SOURCES
        if not _name(p).startswith("o/store/")
        for n, line in enumerate(p.read_text().splitlines(), start=1)
        if execute.search(line)
    ]
    assert not found, "SQL outside o/store: " + ", ".join(found)


SQL_TEXT = re.compile(r"\b(SELECT\s[\s\S]*?\bFROM\b|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)")


def test_sql_text_lives_only_in_the_store() -> None:
    found = [
        f"{_name(p)}:{node.lineno}"
        for p in SOURCES
        if not _name(p).startswith("o/store/")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.search(node.value)
    ]
    assert not found, "SQL text outside o/store: " + ", ".join(found)


def test_vulture_finds_no_dead_code() -> None:
    vulture = Vulture()
    vulture.scavenge([str(ROOT / "o"), str(ROOT / "functions")])
    dead = [
        f"{item.filename}:{item.first_lineno} {item.message}" for item in vulture.get_unused_code(min_confidence=80)
    ]
    assert not dead, dead
