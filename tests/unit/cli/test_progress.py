"""The CLI's progress bar: drawn on a terminal's stderr, nothing at all in a pipe."""

from __future__ import annotations

import io
import os
import pty

import pytest

from o.cli.progress import bar


def test_a_terminal_sees_the_bar_and_its_byte_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    monkeypatch.setattr("sys.stderr", terminal)
    with bar("importing a.bundle", 2_000_000) as advance:
        for _ in range(4):
            advance(500_000)
    terminal.flush()
    drawn = os.read(master, 65536).decode(errors="replace")
    terminal.close()
    os.close(master)
    assert "importing a.bundle" in drawn and "2.0 MB" in drawn


def test_a_pipe_gets_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with bar("exporting", None) as advance:
        advance(10)
    assert pipe.getvalue() == ""
