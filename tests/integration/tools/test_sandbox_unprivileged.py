"""The local sandbox started by an unprivileged server: weaker isolation, reported honestly,
and the resource limits still hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
from o.tools.sandbox import LocalProcessSandbox, ToolInvocation, Limits
sandbox = LocalProcessSandbox()
limits = Limits(processes=8, wall_seconds=3, cpu_seconds=2, memory_bytes=256 * 1024 * 1024)
runs = {{
    "plain": "import os\\ndef f():\\n    return [os.getuid(), sorted(os.environ)]\\n",
    "parent": "import os\\ndef f():\\n    return open(f'/proc/{{os.getppid()}}/environ').read()\\n",
    "memory": "def f():\\n    return len(bytearray(10 * 1024 ** 3))\\n",
    "bomb": "import os\\ndef f():\\n    while True:\\n        os.fork()\\n",
}}
out = {{k: sandbox.run(ToolInvocation(v, "f", limits=limits)).to_dict() for k, v in runs.items()}}
# without a user namespace only the server's own hardening keeps its environment unreadable
networked = LocalProcessSandbox(allow_network=True)
out["parent"] = networked.run(ToolInvocation(runs["parent"], "f", limits=limits)).to_dict()
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start the server as another user")
def test_unprivileged_server_still_limits_tools() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(repo=str(REPO))],
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        cwd="/tmp",
        env={"PATH": os.environ.get("PATH", ""), "OPENAI_API_KEY": "sk-server"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    plain = results["plain"]
    assert plain["status"] == "success"
    uid, names = json.loads(plain["func_return"])
    assert uid == 65534 and "OPENAI_API_KEY" not in names
    assert "uid" not in plain["isolation"] and "rlimits" in plain["isolation"]
    assert results["parent"]["status"] == "error", results["parent"]
    assert "PermissionError" in results["parent"]["message"]
    assert results["memory"]["status"] == "limit_exceeded"
    assert results["bomb"]["status"] in ("limit_exceeded", "timeout")
