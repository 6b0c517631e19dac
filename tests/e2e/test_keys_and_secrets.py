"""A real `o serve` with two worker processes: its first start makes the secrets key file (0600) that
every worker seals and opens tool secrets with, and a key revoked with `o keys revoke` is refused by
the next request whichever worker serves it."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import start_serve
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

READ_SECRET = '''
import os
def read_secret(variable: str) -> str:
    """Return a variable of the tool's environment.

    Args:
        variable: its name
    """
    return os.environ.get(variable, "<unset>")
'''


def _cli(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o.cli", *argv, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fresh_get(url: str, key: str, path: str) -> int:
    # a new connection each time, so the requests spread over the worker processes
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as fresh:
        return fresh.get(path).status_code


def test_two_workers_share_the_key_file_and_refuse_a_revoked_key(
    data_dir: Path,
    openai_server: OpenAIServer,  # noqa: F811
) -> None:
    process = start_serve(data_dir, {"O_SLEEPTIME": "false", "O_WORKERS": "2", "OPENAI_API_KEY": "sk-test"})
    try:
        key_file = data_dir / "secrets.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        url = process.server.url
        key = process.server.new_key("acme")
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        tool = http.post("/v1/tools/", json={"source_code": READ_SECRET}).json()
        llm = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": openai_server.base_url}
        agent = http.post(
            "/v1/agents/",
            json={"llm_config": llm, "tool_ids": [tool["id"]], "secrets": {"WEATHER_KEY": "w-secret-1"}},
        )
        assert agent.status_code == 200 and "w-secret-1" not in agent.text
        for i in range(4):  # sealed by one worker, opened by whichever runs the tool
            openai_server.push(
                call("read_secret", variable="WEATHER_KEY", request_heartbeat=True), call("send_message", message="ok")
            )
            with httpx.Client(base_url=url, headers=http.headers, timeout=30) as fresh:
                sent = fresh.post(
                    f"/v1/agents/{agent.json()['id']}/messages",
                    json={"messages": [{"role": "user", "content": f"weather {i}"}]},
                ).json()
            returned = next(m for m in sent["messages"] if m["message_type"] == "tool_return_message")
            assert returned["tool_return"] == "w-secret-1", returned

        assert all(_fresh_get(url, key, "/v1/agents/") == 200 for _ in range(12))
        listing = _cli(data_dir, "keys", "list", "--org", "acme")
        key_id = listing.stdout.splitlines()[1].split()[0]
        revoked = _cli(data_dir, "keys", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        assert [_fresh_get(url, key, "/v1/agents/") for _ in range(12)] == [401] * 12
        http.close()
    finally:
        process.stop()
