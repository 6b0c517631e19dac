"""Hostile tools against the local sandbox: each attempt is contained, reported as a
clear tool result, and the test process (standing in for the server) keeps working."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from o.store.db import Database
from o.tools.sandbox import Limits, LocalProcessSandbox, ToolInvocation, ToolResult

FAST = Limits(
    cpu_seconds=2, memory_bytes=256 * 1024 * 1024, wall_seconds=5, open_files=32, processes=8, output_bytes=64 * 1024
)


@pytest.fixture(scope="module")
def sandbox() -> LocalProcessSandbox:
    return LocalProcessSandbox()


@pytest.fixture(scope="module")
def isolation(sandbox: LocalProcessSandbox) -> tuple[str, ...]:
    return sandbox.probe()


def run(
    sandbox: LocalProcessSandbox,
    source: str,
    args: dict | None = None,
    limits: Limits = FAST,
    env: dict[str, str] | None = None,
) -> ToolResult:
    return sandbox.run(ToolInvocation(source, "tool", args or {}, env or {}, limits))


@pytest.fixture(autouse=True)
def server_still_serves(db: Database) -> Iterator[None]:
    yield
    with db.connection() as conn:
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}


def test_environment_holds_only_the_tools_own_variables(
    sandbox: LocalProcessSandbox, isolation: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-server-secret")
    monkeypatch.setenv("O_DATABASE_URL", "postgresql://server:secret@db/o")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-server-secret")
    source = """
import os, json
def tool():
    parent = {}
    for pid in (os.getppid(), 1):
        try:
            parent[pid] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as exc:
            parent[pid] = type(exc).__name__
    return json.dumps({"env": dict(os.environ), "parent": parent})
"""
    result = run(sandbox, source, env={"WEATHER_API_KEY": "tool-own"})
    assert result.status == "success", result
    assert "sk-server-secret" not in result.func_return
    assert "postgresql://server" not in result.func_return
    assert "aws-server-secret" not in result.func_return
    import json

    seen = json.loads(result.func_return)
    assert seen["env"]["WEATHER_API_KEY"] == "tool-own"
    assert not any(k.startswith("O_") or (k.endswith("_API_KEY") and k != "WEATHER_API_KEY") for k in seen["env"])
    if "uid" in isolation:
        assert all(v in ("PermissionError", "FileNotFoundError") for v in seen["parent"].values()), seen["parent"]


def test_cannot_connect_to_the_database(sandbox: LocalProcessSandbox, isolation: tuple[str, ...], pg_url: str) -> None:
    # Raw sockets, not a driver: the tool must not reach Postgres whatever packages it can import.
    source = """
import os, socket
def tool(host: str, port: int):
    if host.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(os.path.join(host, ".s.PGSQL.%d" % port))
    else:
        s = socket.create_connection((host, port), timeout=2)
    s.sendall(b"\\x00\\x00\\x00\\x08\\x04\\xd2\\x16\\x2f")  # SSLRequest: a live server would answer
    return "connected: %r" % s.recv(1)
"""
    query = dict(part.split("=", 1) for part in pg_url.partition("?")[2].split("&") if "=" in part)
    socket_dir = query.get("host", "/tmp")
    for host, port in ((socket_dir, 5432), ("127.0.0.1", 5432)):
        result = run(sandbox, source, {"host": host, "port": port})
        assert result.status == "error", result
        assert any(
            e in result.message
            for e in ("FileNotFoundError", "ConnectionRefusedError", "OSError", "PermissionError", "TimeoutError")
        ), result.message
        assert result.func_return.startswith("Error executing tool tool:")


def test_cannot_open_a_network_connection(sandbox: LocalProcessSandbox, isolation: tuple[str, ...]) -> None:
    if "netns" not in isolation:
        pytest.skip("this machine does not allow a private network namespace")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    source = """
import socket
def tool(port: int):
    socket.create_connection(("127.0.0.1", port), timeout=2).sendall(b"hello")
    return "connected"
"""
    try:
        result = run(sandbox, source, {"port": port})
        # a completed connection would wait in the backlog; there must be none
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert result.status == "error", result
    assert "OSError" in result.message or "unreachable" in result.message.lower()


def test_infinite_loop_hits_the_cpu_limit(sandbox: LocalProcessSandbox) -> None:
    limits = Limits(cpu_seconds=1, wall_seconds=10, output_bytes=1024)
    started = time.monotonic()
    result = run(sandbox, "def tool():\n    while True:\n        pass\n", limits=limits)
    assert result.status == "timeout", result
    assert "CPU" in result.message
    assert time.monotonic() - started < 5


def test_sleeping_forever_hits_the_wall_clock(sandbox: LocalProcessSandbox) -> None:
    limits = Limits(cpu_seconds=5, wall_seconds=1)
    started = time.monotonic()
    result = run(sandbox, "import time\ndef tool():\n    time.sleep(600)\n", limits=limits)
    assert result.status == "timeout", result
    assert "1 s" in result.message
    assert time.monotonic() - started < 3


def test_allocating_ten_gigabytes_is_refused(sandbox: LocalProcessSandbox) -> None:
    result = run(sandbox, "def tool():\n    block = bytearray(10 * 1024 ** 3)\n    return len(block)\n")
    assert result.status == "limit_exceeded", result
    assert "memory" in result.message


def _uid_processes(minimum_uid: int = 1_000_000) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid >= minimum_uid:
                    state = Path(f"/proc/{name}/stat").read_bytes().rpartition(b")")[2].split()[0]
                    if state not in (b"Z", b"X"):
                        found.append(int(name))
            except OSError:
                continue
    return found


def test_fork_bomb_is_contained(sandbox: LocalProcessSandbox, isolation: tuple[str, ...]) -> None:
    source = "import os\ndef tool():\n    while True:\n        os.fork()\n"
    started = time.monotonic()
    result = run(sandbox, source, limits=Limits(cpu_seconds=2, wall_seconds=3, processes=8))
    assert result.status in ("limit_exceeded", "timeout"), result
    assert time.monotonic() - started < 6
    if "uid" in isolation:
        assert _uid_processes() == []


def test_daemon_that_leaves_the_process_group_is_killed(
    sandbox: LocalProcessSandbox, isolation: tuple[str, ...]
) -> None:
    if "uid" not in isolation:
        pytest.skip("killing processes outside the group needs a private uid (run as root)")
    source = """
import os, time
def tool():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        time.sleep(600)
    return pid
"""
    result = run(sandbox, source)
    assert result.status == "success", result
    pid = int(result.func_return)
    assert not os.path.exists(f"/proc/{pid}") or pid not in _uid_processes()


def test_cannot_write_outside_its_working_directory(sandbox: LocalProcessSandbox, isolation: tuple[str, ...]) -> None:
    if "uid" not in isolation:
        pytest.skip("file permissions protect the host only when the tool has its own uid")
    private = Path(tempfile.mkdtemp(prefix="o-test-private-"))
    marker = f"o-escape-{os.getpid()}"
    source = """
import os
def tool(targets: list[str]):
    outcomes = {}
    for target in targets:
        try:
            with open(target, "w") as handle:
                handle.write("escaped")
            outcomes[target] = "written"
        except OSError as exc:
            outcomes[target] = type(exc).__name__
    with open("inside.txt", "w") as handle:
        handle.write("fine")
    outcomes["cwd"] = os.getcwd()
    return outcomes
"""
    targets = [str(private / "escape.txt"), f"/etc/{marker}", f"/tmp/{marker}", f"/dev/shm/{marker}"]
    try:
        result = run(sandbox, source, {"targets": targets})
        assert result.status == "success", result
        assert not (private / "escape.txt").exists()
        assert not Path(f"/etc/{marker}").exists()
        assert "PermissionError" in result.func_return
        if "mountns" in isolation:
            # its /tmp and /dev/shm are private: whatever it writes there never reaches the host
            assert not Path(f"/tmp/{marker}").exists()
            assert not Path(f"/dev/shm/{marker}").exists()
    finally:
        for leftover in (Path(f"/tmp/{marker}"), Path(f"/dev/shm/{marker}")):
            leftover.unlink(missing_ok=True)
        (private / "escape.txt").unlink(missing_ok=True)
        private.rmdir()


def test_printing_a_hundred_megabytes_is_stopped_at_the_output_limit(sandbox: LocalProcessSandbox) -> None:
    source = """
import sys
def tool():
    chunk = "x" * (1024 * 1024)
    for _ in range(100):
        sys.stdout.write(chunk)
    return "done"
"""
    started = time.monotonic()
    result = run(sandbox, source)
    assert result.status == "limit_exceeded", result
    assert "printed more than" in result.message
    assert len(result.stdout) <= FAST.output_bytes
    assert time.monotonic() - started < 3


def test_importing_a_missing_module_is_a_clear_error(sandbox: LocalProcessSandbox) -> None:
    result = run(sandbox, "import surely_not_installed_pkg\ndef tool():\n    return 1\n")
    assert result.status == "error"
    assert "ModuleNotFoundError" in result.message
    assert "surely_not_installed_pkg" in result.func_return


def test_other_processes_are_invisible(sandbox: LocalProcessSandbox, isolation: tuple[str, ...]) -> None:
    if "hidepid" not in isolation:
        pytest.skip("a private /proc needs a mount namespace")
    source = "import os\ndef tool(pid: int):\n    return [os.path.exists(f'/proc/{pid}'), os.path.exists('/proc/1')]\n"
    result = run(sandbox, source, {"pid": os.getpid()})
    assert result.status == "success", result
    assert result.func_return == "[false, false]"


# -- run_code: the model's own code goes through the same sandbox, and is contained the same way ---------


def run_code_outcome(sandbox: LocalProcessSandbox, code: str, limits: Limits = FAST) -> tuple[str, dict]:
    import json

    from o.tools.web.code import run_code

    result = run_code(sandbox, limits, code)
    return result.status, json.loads(result.func_return)


def test_run_code_sees_no_server_secrets(
    sandbox: LocalProcessSandbox, isolation: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXA_API_KEY", "exa-server-secret")
    monkeypatch.setenv("O_DATABASE_URL", "postgresql://server:secret@db/o")
    code = "import os, json\njson.dumps(dict(os.environ))"
    status, out = run_code_outcome(sandbox, code)
    assert status == "success", out
    assert "exa-server-secret" not in out["result"] and "postgresql://server" not in out["result"]
    assert not any(k.startswith("O_") or k.endswith("_API_KEY") for k in json_loads(out["result"]))


def json_loads(text: str) -> dict:
    import ast
    import json

    return json.loads(ast.literal_eval(text))  # the result is the repr of the JSON string


def test_run_code_cannot_reach_the_database_or_the_network(
    sandbox: LocalProcessSandbox, isolation: tuple[str, ...], pg_url: str
) -> None:
    query = dict(part.split("=", 1) for part in pg_url.partition("?")[2].split("&") if "=" in part)
    socket_dir = query.get("host", "/tmp")
    code = f"""
import os, socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(os.path.join({socket_dir!r}, ".s.PGSQL.5432"))
"""
    status, out = run_code_outcome(sandbox, code)
    assert status == "error" and any(
        e in out["error"] for e in ("FileNotFoundError", "ConnectionRefused", "Permission")
    )
    if "netns" in isolation:
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            code = f"import socket\nsocket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), timeout=2)"
            status, out = run_code_outcome(sandbox, code)
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):
                listener.accept()
        finally:
            listener.close()
        assert status == "error" and "OSError" in out["error"]


def test_run_code_loops_and_fork_bombs_are_stopped(sandbox: LocalProcessSandbox, isolation: tuple[str, ...]) -> None:
    started = time.monotonic()
    status, _ = run_code_outcome(sandbox, "while True:\n    pass", Limits(cpu_seconds=1, wall_seconds=5))
    assert status == "timeout"
    status, _ = run_code_outcome(
        sandbox, "import os\nwhile True:\n    os.fork()", Limits(cpu_seconds=2, wall_seconds=4)
    )
    assert status in ("limit_exceeded", "timeout")
    if "uid" in isolation:
        time.sleep(0.2)
        assert _uid_processes() == []
    assert time.monotonic() - started < 15


def test_run_code_cannot_write_outside_its_directory(sandbox: LocalProcessSandbox, isolation: tuple[str, ...]) -> None:
    if "uid" not in isolation:
        pytest.skip("without a private uid the code writes wherever the server's user may")
    target = Path(tempfile.gettempdir()) / f"o-run-code-escape-{os.getpid()}"
    status, out = run_code_outcome(sandbox, f"open({str(target)!r}, 'w').write('x')\nopen('/etc/o-escape', 'w')")
    assert not target.exists()
    assert (status == "error" and "PermissionError" in out["error"]) or not Path("/etc/o-escape").exists()
