"""`o doctor` on real parts: the test Postgres (pgvector installed), a provider speaking OpenAI's protocol,
one that is configured but down, and the local embedding model."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from o.cli import main
from tests.servers.openai_server import OpenAIServer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_reports_each_part_and_what_to_fix(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer() as openai:
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        monkeypatch.setenv("LMSTUDIO_BASE_URL", f"http://127.0.0.1:{_closed_port()}")  # configured, not running
        monkeypatch.setenv("O_LLM_DISCOVERY_TIMEOUT_S", "2")
        code = main(["doctor", "--database-url", pg_url, "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    by_name = {line[6:].split(":", 1)[0]: line for line in out if line[:4] in ("ok  ", "FAIL")}
    assert by_name["python"].startswith("ok")
    assert by_name["database"].startswith("ok") and "PostgreSQL" in by_name["database"]
    assert by_name["pgvector"].startswith("ok") and "installed" in by_name["pgvector"]
    assert by_name["provider openai"].startswith("ok") and "3 models listed" in by_name["provider openai"]
    assert by_name["provider lmstudio"].startswith("FAIL")
    assert out[out.index(by_name["provider lmstudio"]) + 1].strip().startswith("fix: ")
    assert by_name["embedder"].startswith("ok") and "384 dimensions" in by_name["embedder"]
    assert code == 1 and out[-1].endswith("; fix: provider lmstudio")
    assert not openai.requests  # listing models spent no tokens: no chat or embedding call was made


def test_doctor_names_an_unreachable_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://o:pw@127.0.0.1:{_closed_port()}/o"
    code = main(["doctor", "--database-url", url, "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  database: cannot reach the database at 127.0.0.1:" in out and "Connection refused" in out
    assert "fix: start that Postgres, or correct O_DATABASE_URL" in out
