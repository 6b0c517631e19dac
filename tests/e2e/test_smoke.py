"""infra/smoke.py (what a user runs after `cdk deploy`) against a real `o serve`, so the script cannot rot:
every step it takes must pass against the same API the deployment serves."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from infra import smoke
from o.evolution.evaluator import JUDGE_MARKER
from o.evolution.propose import PROPOSER_MARKER
from o.evolution.sleeptime import SLEEPTIME_MARKER
from tests.e2e.conftest import Server
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall

REPLY = "One, two, three, four, five, six, seven, eight, nine, ten; I will remember that you are Ada."
BRIEF = "Answer briefly."


def model(body: dict[str, Any]) -> Reply:
    """Every model the script meets: the agent writes its reply over about a second, as a model streams it
    (briefly once its system prompt says so); the proposer asks for brevity, the judge prefers it; the
    sleep-time manager finishes at once."""
    messages = body.get("messages") or []
    system = str(messages[0].get("content")) if messages and messages[0].get("role") == "system" else ""
    if system.startswith(PROPOSER_MARKER):
        return Reply(text=json.dumps({"rationale": "Replies are long.", "changes": {"system": f"Be kind. {BRIEF}"}}))
    if system.startswith(JUDGE_MARKER):
        shown = json.loads(str(messages[-1].get("content")))
        return Reply(
            text=json.dumps({"score": 1.0 if len(shown["assistant_reply"]) <= 40 else 0.4, "reason": "length"})
        )
    if system.startswith(SLEEPTIME_MARKER):
        return Reply(tool_calls=(ScriptedCall("finish_rethinking_memory", {}),))
    text = "Noted, Ada." if BRIEF in system else REPLY
    return Reply(tool_calls=(ScriptedCall("send_message", {"message": text}),), chunk_size=6, token_delay_s=0.04)


@pytest.fixture
def served(server: Server, openai_server: OpenAIServer) -> Server:  # noqa: F811
    """The session's `o serve` (tests/e2e/conftest.py), its agents' model the scripted server."""
    openai_server.script.default = model
    return server


def test_the_smoke_script_passes_against_a_real_server(
    served: Server,
    openai_server: OpenAIServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": openai_server.base_url,
           "context_window": 128000}  # fmt: skip
    key = served.new_key()
    argv = ["--url", served.url, "--key", key, "--llm-config", json.dumps(llm),
            "--evolution-s", "40", "--bake-s", "3", "--canary-turns", "6", "--json"]  # fmt: skip
    code = smoke.main(argv)
    report = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        print("\n" + "\n".join(f"{s['name']}: {s['detail']}" for s in report["steps"]))
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["create agent", "send (sync)", "stream", "sleep-time pass", "evolution", "clean up"]
    assert code == 0 and report["ok"], json.dumps(report, indent=2)
    assert steps["send (sync)"]["figures"]["status"] == 200
    streamed = steps["stream"]["figures"]
    # the reply came in many chunks over the model's writing time, the first well before the last
    assert streamed["chunks"] >= 10 and streamed["bursts"] >= 5
    assert streamed["last_token_s"] - streamed["time_to_first_token_s"] > 0.5
    phases = steps["evolution"]["figures"]["phases"]
    assert phases[0] == "started" and "canary" in phases and phases[-1] in ("promoted", "rolled_back")
    # the agent is gone
    agent_id = steps["create agent"]["detail"]
    gone = httpx.get(f"{served.url}/v1/agents/{agent_id}", headers={"Authorization": f"Bearer {key}"})
    assert gone.status_code == 404
