"""A CLI failure is one line a person can act on, and a non-zero exit; `--debug` adds the traceback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from o.cli import main


def test_a_port_in_use_is_named_with_the_process_holding_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--data-dir", str(tmp_path)])
    out = capsys.readouterr()
    assert code != 0 and out.out == ""  # no banner claiming to serve
    (line,) = out.err.splitlines()
    assert f"127.0.0.1:{port}" in line and "in use" in line and f"PID {os.getpid()}" in line
    assert not (tmp_path / "pgdata").exists()  # refused before the embedded Postgres started


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "postgresql://o:s3cret@127.0.0.1:1/o",
            "cannot reach the database at 127.0.0.1:1 (O_DATABASE_URL): Connection refused",
        ),
        ("postgresql://o:s3cret@no-such-host.invalid:5433/o", "cannot reach the database at no-such-host.invalid:5433"),
    ],
)
def test_an_unreachable_database_is_one_line_with_host_port_and_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    code = main(["keys", "list", "--database-url", url, "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    (line,) = err.splitlines()
    assert said in line and "s3cret" not in line


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://o:s3cret@127.0.0.1:1/o"
    code = main(["keys", "list", "--debug", "--database-url", url, "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("o: cannot reach the database at 127.0.0.1:1")


def test_a_server_that_is_not_running_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code = main(["agents", "list", "--url", f"http://127.0.0.1:{port}", "--key", "sk-o-x"])
    (line,) = capsys.readouterr().err.splitlines()
    assert (
        code == 1
        and line
        == f"o: cannot reach O at http://127.0.0.1:{port} (is `o serve` running? --url or LETTA_BASE_URL names another)"
    )


def test_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    from o import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"o {__version__}"
