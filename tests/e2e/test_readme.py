"""The README's quickstart, run as written against a real `o serve`, so it cannot rot.

Every fenced block preceded by ``<!-- readme: run -->`` (optionally ``; expect: TEXT``) is run in order:
bash blocks with ``set -euo pipefail`` in one shell session (exported variables carry over from block to
block, as in the reader's terminal), python blocks with ``python3`` in that same environment. Each must
exit 0 and, when it names one, print the expected text. A block marked ``<!-- readme: restart -->`` is the
reader starting `o serve` again after stopping it: the test stops its server as Ctrl-C does (SIGTERM: the
server and its embedded Postgres end) and starts `o serve` again on the same data dir and port, as the
block says. Two things differ from the reader's machine, and only these: the server's address
(``http://127.0.0.1:8283`` becomes the test server's free port) and the model behind ``openai/…``
(``OPENAI_BASE_URL`` points at a scripted server speaking OpenAI's protocol, ``tests/servers/openai_server.py``,
whose "model" remembers facts with the agent's memory tools and knows only what its prompt holds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Process, start_serve
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8283"
_BLOCK = re.compile(
    r"<!-- readme: (?P<kind>run|restart)(?:; expect: (?P<expect>[^>]*?))? -->\n```(?P<lang>bash|python)\n"
    r"(?P<code>.*?)```",
    re.S,
)


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    code: str
    expect: str | None
    restart: bool = False


def runnable_blocks(text: str) -> list[Block]:
    return [
        Block(
            text[: m.start()].count("\n") + 1,
            m["lang"],
            m["code"],
            (m["expect"] or "").strip() or None,
            restart=m["kind"] == "restart",
        )
        for m in _BLOCK.finditer(text)
    ]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def model(body: dict[str, Any]) -> Reply:
    """A tiny agent model: told to remember something, it appends it to the `human` block and stores it in
    archival memory, one tool call per step (asking to go on, as MemGPT agents do), then answers; asked a
    question, it answers from the memory compiled into its system prompt."""
    messages = body.get("messages") or []
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    said = _text(messages[last_user].get("content")) if messages else ""
    done = {c["function"]["name"] for m in messages[last_user:] for c in m.get("tool_calls") or []}
    fact = {"content": "Ada loves chess.", "request_heartbeat": True}
    if "remember" in said.lower():
        if "core_memory_append" not in done:
            return Reply(tool_calls=(ScriptedCall("core_memory_append", {"label": "human", **fact}),))
        if "archival_memory_insert" not in done:
            return Reply(tool_calls=(ScriptedCall("archival_memory_insert", fact),))
        answer = "Nice to meet you, Ada. I will remember that you love chess."
    else:
        system = _text(messages[0].get("content")) if messages else ""
        answer = "You love chess." if "chess" in system else "I do not know yet."
    return Reply(
        reasoning="Answering from memory.",
        tool_calls=(ScriptedCall("send_message", {"message": answer}),),
        chunk_size=6,
    )


@dataclass
class Served:
    """The reader's `o serve`, which the README stops and starts again."""

    process: Process
    env: dict[str, str]

    def restart(self) -> None:
        before = self.process
        before.stop()  # SIGTERM, as Ctrl-C: the server and its embedded Postgres end
        assert before.proc.returncode == 0, before.tail()
        port = int(before.server.url.rsplit(":", 1)[1])
        self.process = start_serve(before.server.data_dir, self.env, port=port)
        assert self.process.proc.pid != before.proc.pid


@pytest.fixture
def served(data_dir: Path, openai_server: OpenAIServer) -> Iterator[Served]:  # noqa: F811
    openai_server.script.default = model
    env = {"O_SLEEPTIME": "false", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_server.base_url}
    server = Served(start_serve(data_dir, env), env)
    yield server
    server.process.stop()


def _shell_env(tmp_path: Path, process: Process) -> dict[str, str]:  # the same after a restart (same port)
    """The reader's shell: `o` on the PATH (this checkout's), the server's data dir for `o keys create`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "o"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m o.cli "$@"\n')
    shim.chmod(0o755)
    root = str(README.parents[0])
    env = {k: v for k, v in os.environ.items() if k != "O_DATABASE_URL"}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])),
        O_DATA_DIR=str(process.server.data_dir),
        LETTA_BASE_URL=process.server.url,  # the CLI's default is the README's address
    )
    return env


def run_block(block: Block, url: str, state: Path, env: dict[str, str]) -> str:
    code = block.code.replace(README_URL, url)
    if block.lang == "bash":
        script = f"set -euo pipefail\nsource {state}\n{code}\nexport -p > {state}\n"
        argv = ["bash", "-c", script]
    else:
        program = state.with_name(f"block-{block.line}.py")
        program.write_text(code)
        argv = ["bash", "-c", f'source {state}\nexec "{sys.executable}" {program}']
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    where = f"README.md line {block.line} ({block.lang})"
    assert done.returncode == 0, f"{where} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    if block.expect:
        assert block.expect in done.stdout, f"{where} did not print {block.expect!r}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_readme_quickstart_runs_as_written(
    served: Served,
    openai_server: OpenAIServer,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert shutil.which("jq"), "the README's quickstart uses jq"
    blocks = runnable_blocks(README.read_text())
    assert {b.lang for b in blocks} == {"bash", "python"} and len(blocks) >= 6, blocks
    env = _shell_env(tmp_path, served.process)
    state = tmp_path / "state.sh"
    state.write_text("")
    outputs = []
    restarts = [b for b in blocks if b.restart]
    assert [b.code.strip() for b in restarts] == ["o serve"], restarts  # what the reader runs to start it again
    try:
        for block in blocks:
            if block.restart:
                served.restart()
            else:
                outputs.append(run_block(block, served.process.server.url, state, env))
    except AssertionError:
        print(served.process.tail())
        raise
    with capsys.disabled():
        print("\nREADME blocks run: " + ", ".join(f"line {b.line} ({b.lang}{', restart' * b.restart})" for b in blocks))
        print("\n".join(outputs))
    # the agent's memory edits happened on the server, not only in what was printed
    assert "core_memory_append" in outputs[1] and "archival_memory_insert" in outputs[1]
    assert outputs[2].splitlines() == ["Name: unknown", "Ada loves chess.", "Ada loves chess."]
    streamed = [json.loads(line[5:]) for line in outputs[3].splitlines() if line.startswith("data: {")]
    assert sum(1 for c in streamed if c.get("message_type") == "assistant_message") > 1  # token by token
    assert "You love chess." in outputs[4]  # the SDK's stream, joined
    # after `o serve` was stopped and started again: the fact from the first session is recalled from the
    # memory block (the scripted model knows only its prompt) and found in archival memory
    assert outputs[5].splitlines() == ["You love chess.", "Ada loves chess."]
    chat = outputs[6]  # o agents list / show, then o chat with a script on stdin
    assert "agent> You love chess." in chat and "✎ memory edit: core_memory_append → block human" in chat
    assert "archival_memory_insert → archival memory: Ada loves chess." in chat
    assert chat.count("revision 1 (current) by user: initial configuration") == 2  # /history, o evolve history
    assert "complete -o bashdefault -F _shtab_o o" in chat  # the completion script, loaded by bash
    assert "openai/gpt-4o-mini" in outputs[7].splitlines()
