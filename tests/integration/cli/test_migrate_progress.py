"""`o migrate` on a terminal shows a bar of the migration files it applies (and prints its usual lines)."""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator
from pathlib import Path

import pytest

from o.cli import main
from o.store.migrate import discover
from tests.conftest import new_database
from tests.terminal import read_terminal


@pytest.fixture
def empty_database(pg_url: str) -> Iterator[str]:
    with new_database(pg_url, "bar") as url:
        yield url


def test_o_migrate_draws_a_bar_of_the_files_on_a_terminal(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["migrate", "--database-url", empty_database, "--data-dir", str(tmp_path)]) == 0
    terminal.flush()
    drawn = read_terminal(master)
    terminal.close()
    os.close(master)
    total = len(discover())
    assert "applying migrations" in drawn and f"{total}/{total}" in drawn
    assert capsys.readouterr().out.startswith("applied: 001_")
