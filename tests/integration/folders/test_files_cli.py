"""`o files upload FOLDER PATH...` against a live O with its ingestion worker: waits for each file, shows its
progress on a terminal, names a file that failed with its reason and exits 1."""

from __future__ import annotations

import os
import pty

import pytest
from letta_client import Letta

from o.cli import main
from tests.integration.folders.conftest import FILES, Live
from tests.terminal import read_terminal


def test_upload_waits_for_ingestion_and_reports_each_file(
    letta: Letta, live: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = letta.folders.create(name="cli-docs")
    server = ["--url", live.url, "--key", letta.api_key]
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["files", "upload", "cli-docs", str(FILES / "guide.md"), str(FILES / "handbook.pdf"), *server]) == 0
    terminal.flush()
    drawn = read_terminal(master)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [str(FILES / "guide.md"), str(FILES / "handbook.pdf")]
    assert all(": completed, " in line and " chunks (file-" in line for line in out), out
    # the bar went by on the terminal: the file's name and its chunks counted
    assert "ingesting guide.md" in drawn and "ingesting handbook.pdf" in drawn and "chunks embedded" in drawn
    listed = {f.file_name: f for f in letta.folders.files.list(folder.id)}
    assert listed["handbook.pdf"].processing_status == "completed"
    assert listed["handbook.pdf"].chunks_embedded == listed["handbook.pdf"].total_chunks
    assert out[1].endswith(f"{listed['handbook.pdf'].total_chunks} chunks ({listed['handbook.pdf'].id})")
    terminal.close()
    os.close(master)


def test_a_failed_file_is_named_with_its_reason(letta: Letta, live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    folder = letta.folders.create(name="cli-broken")
    server = ["--url", live.url, "--key", letta.api_key]
    assert main(["files", "upload", folder.id, str(FILES / "locked.pdf"), *server]) == 1
    # the last line: the server runs in this process, and its log lines go to stderr too
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"o: {FILES / 'locked.pdf'}: ingestion failed: ") and "encrypted" in err
    assert main(["files", "upload", "no-such-folder", str(FILES / "guide.md"), *server]) == 1
    assert "no folder named 'no-such-folder'" in capsys.readouterr().err


def test_no_wait_returns_once_uploaded(letta: Letta, live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    letta.folders.create(name="cli-quick")
    path = FILES / "scheduler.js"
    server = ["--url", live.url, "--key", letta.api_key]
    assert main(["files", "upload", "cli-quick", str(path), "--no-wait", *server]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: ") and "(file-" in line
