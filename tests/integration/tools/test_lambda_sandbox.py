"""The Lambda sandbox end to end under moto: the real boto3 client invokes a moto Lambda
whose invoke is dispatched in-process to the real handler in functions/tool_sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from o import runtime
from o.aws.sandbox import LambdaSandbox
from o.config import ConfigError, settings_from
from o.tools.sandbox import Limits, LocalProcessSandbox, ToolInvocation
from tests.lambdas import Context, LambdaService, aws_credentials, create_function, fresh_handler

REGION = "eu-west-1"


@pytest.fixture
def function_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    aws_credentials(monkeypatch, REGION)
    lambdas = LambdaService().install(monkeypatch)
    with mock_aws(config={"lambda": {"use_docker": False}}), fresh_handler("functions.tool_sandbox.handler") as module:
        create_function("o-tool-sandbox", "functions.tool_sandbox.handler.handler", region=REGION)
        lambdas.serve("o-tool-sandbox", module.handler, Context("o-tool-sandbox", region=REGION))
        yield "o-tool-sandbox"
    assert lambdas.events, "the sandbox Lambda was never invoked"


def test_runs_a_tool_through_the_lambda(function_name: str) -> None:
    sandbox = LambdaSandbox(function_name, region_name=REGION)
    source = "import os, json\ndef tool(x: int):\n    print('working')\n    return json.dumps(dict(os.environ))\n"
    result = sandbox.run(ToolInvocation(source, "tool", {"x": 1}, {"TOOL_TOKEN": "mine"}))
    assert result.status == "success", result
    env = json.loads(result.func_return)
    assert env["TOOL_TOKEN"] == "mine"
    # the function's own credentials never reach the tool
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert result.stdout == "working\n"
    assert result.isolation[0] == "lambda" and "rlimits" in result.isolation


def test_failures_and_limits_come_back_as_tool_results(function_name: str) -> None:
    sandbox = LambdaSandbox(function_name, region_name=REGION)
    error = sandbox.run(ToolInvocation("def tool():\n    raise ValueError('bad input')\n", "tool"))
    assert (error.status, error.message) == ("error", "ValueError: bad input")
    loop = sandbox.run(
        ToolInvocation(
            "def tool():\n    while True:\n        pass\n", "tool", limits=Limits(cpu_seconds=1, wall_seconds=5)
        )
    )
    assert loop.status == "timeout"
    big = sandbox.run(ToolInvocation("def tool():\n    return 'x' * 50000\n", "tool", return_char_limit=100))
    assert big.status == "success" and len(big.func_return) == 100 and "truncated" in big.func_return


def test_a_crashing_sandbox_function_is_an_error_result(function_name: str) -> None:
    sandbox = LambdaSandbox(function_name, region_name=REGION)
    client = boto3.client("lambda", region_name=REGION)
    # an event the handler cannot read: the Lambda reports an unhandled error
    response = client.invoke(FunctionName=function_name, Payload=b"{}")
    assert response.get("FunctionError") == "Unhandled"
    unreadable = ToolInvocation("def t():\n    return 1\n", "t", args=["x"])  # type: ignore[arg-type]
    crashed = sandbox.run(unreadable)
    assert crashed.status == "error" and "sandbox function failed" in crashed.message
    assert "ValueError" in crashed.func_return
    missing = LambdaSandbox("no-such-function", region_name=REGION).run(ToolInvocation("def t():\n  pass", "t"))
    assert missing.status == "error" and "could not be invoked" in missing.message
    assert sandbox.run(ToolInvocation("def t():\n    return 1\n", "t")).ok


def test_sandbox_is_chosen_by_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert isinstance(runtime.sandbox(settings_from({})), LocalProcessSandbox)
    arn = "arn:aws:lambda:eu-west-1:1:function:sb"
    chosen = runtime.sandbox(settings_from({"O_SANDBOX_FUNCTION_NAME": arn}))
    assert isinstance(chosen, LambdaSandbox) and chosen.function_name.endswith(":sb")
    forced_local = settings_from({"O_SANDBOX_FUNCTION_NAME": arn, "O_SANDBOX_KIND": "local"})
    assert isinstance(runtime.sandbox(forced_local), LocalProcessSandbox)
    with pytest.raises(ConfigError, match="O_SANDBOX_FUNCTION_NAME"):
        settings_from({"O_SANDBOX_KIND": "lambda"})


SWEEP_SCRIPT = """
import json, os, sys
sys.path.insert(0, {repo!r})
from dataclasses import dataclass
from pathlib import Path
from functions.tool_sandbox import handler

@dataclass
class Context:
    function_name: str = "o-tool-sandbox"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:o-tool-sandbox"
    aws_request_id: str = "req-2"

source = "import os, time\\ndef tool(scratch: str):\\n    open(scratch + '/left.txt', 'w').write('x')\\n" \\
         "    pid = os.fork()\\n    if pid == 0:\\n        os.setsid()\\n        time.sleep(600)\\n    return pid\\n"
scratch = os.environ["O_SANDBOX_SCRATCH"]
event = {{"source_code": source, "function_name": "tool", "args": {{"scratch": scratch}}}}
result = handler.handler(event, Context())
pid = int(result["func_return"])
try:
    os.kill(pid, 0)
    alive = True
except ProcessLookupError:
    alive = False
print(json.dumps({{"status": result["status"], "alive": alive, "scratch": os.listdir(scratch)}}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the handler as an unprivileged user")
def test_the_lambda_handler_kills_what_a_call_leaves_running() -> None:
    # as in Lambda: not root, so no private uid; the handler's sweep is what removes the daemon
    repo = str(Path(__file__).resolve().parents[3])
    scratch = Path(tempfile.mkdtemp(prefix="o-lambda-tmp-"))
    os.chown(scratch, 65534, 65534)
    os.chmod(scratch, 0o1777)
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_SCRIPT.format(repo=repo)],
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        cwd="/tmp",
        timeout=60,
        env={
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "O_SANDBOX_SCRATCH": str(scratch),
        },
    )
    shutil.rmtree(scratch)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "success", "alive": False, "scratch": []}
