"""The CLI's progress bar: drawn on a terminal's stderr, nothing at all in a pipe."""

from __future__ import annotations

import io
import os
import pty

import pytest

from o.cli.progress import bar, steps
from tests.terminal import read_terminal


def test_a_terminal_sees_the_bar_and_its_byte_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    monkeypatch.setattr("sys.stderr", terminal)
    with bar("importing a.bundle", 2_000_000) as advance:
        for _ in range(4):
            advance(500_000)
    terminal.flush()
    drawn = read_terminal(master)  # a pty hands the drawing over in pieces: one read may get only the first
    terminal.close()
    os.close(master)
    assert "importing a.bundle" in drawn and "2.0 MB" in drawn


def test_a_pipe_gets_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with bar("exporting", None) as advance:
        advance(10)
    assert pipe.getvalue() == ""


def test_counted_steps_draw_on_a_terminal_once_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    monkeypatch.setattr("sys.stderr", terminal)
    with steps("applying migrations"):
        pass  # nothing pending: no bar at all
    terminal.flush()
    os.set_blocking(master, False)
    with pytest.raises(BlockingIOError):
        os.read(master, 65536)
    with steps("applying migrations") as update:
        for done, name in enumerate(("001_a.sql", "002_b.sql", "003_c.sql")):
            update(done, 3, name)
        update(3, 3, "")
    terminal.flush()
    drawn = read_terminal(master)
    terminal.close()
    os.close(master)
    assert "applying migrations" in drawn and "3/3" in drawn


def test_steps_in_a_pipe_draw_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with steps("embedding") as update:
        update(1, 2, "x")
    assert pipe.getvalue() == ""
