"""run_code in the tool sandbox: locally the confined process, on AWS the sandbox Lambda (under moto,
its invoke dispatched to the real handler). The same JSON comes back from both."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from o.aws.sandbox import LambdaSandbox
from o.tools.sandbox import Limits, LocalProcessSandbox
from o.tools.sandbox.base import Sandbox
from o.tools.web.code import run_code
from tests.lambdas import Context, LambdaService, aws_credentials, create_function, fresh_handler

REGION = "eu-west-1"
FAST = Limits(cpu_seconds=2, memory_bytes=256 * 1024 * 1024, wall_seconds=5, output_bytes=256 * 1024)


@pytest.fixture(scope="module")
def local() -> LocalProcessSandbox:
    return LocalProcessSandbox()


@pytest.fixture
def on_lambda(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaSandbox]:
    aws_credentials(monkeypatch, REGION)
    lambdas = LambdaService().install(monkeypatch)
    with mock_aws(config={"lambda": {"use_docker": False}}), fresh_handler("functions.tool_sandbox.handler") as module:
        create_function("o-tool-sandbox", "functions.tool_sandbox.handler.handler", region=REGION)
        lambdas.serve("o-tool-sandbox", module.handler, Context("o-tool-sandbox", region=REGION))
        yield LambdaSandbox("o-tool-sandbox", region_name=REGION)
    assert lambdas.events, "the sandbox Lambda was never invoked"


def outcome(sandbox: Sandbox, code: str, language: str = "python", limits: Limits = FAST) -> tuple[str, dict]:
    result = run_code(sandbox, limits, code, language)
    return result.status, json.loads(result.func_return)


def check_contract(sandbox: Sandbox) -> None:
    status, out = outcome(sandbox, "import math\nprint('hello')\nx = 6 * 7\nmath.sqrt(x * x)")
    assert status == "success"
    assert out == {"result": "42.0", "stdout": "hello\n", "stderr": "", "error": None}
    # no final expression: no result, only what was printed (stderr too)
    status, out = outcome(sandbox, "import sys\nprint('out')\nprint('warn', file=sys.stderr)\ny = 1")
    assert (status, out["result"], out["stdout"], out["stderr"]) == ("success", None, "out\n", "warn\n")
    # the code runs as a script
    assert outcome(sandbox, "__name__")[1]["result"] == "'__main__'"
    # an exception: the error, the traceback (the code's own lines) in stderr, and what was printed before
    status, out = outcome(sandbox, "print('before')\nitems = []\nitems[3]")
    assert status == "error" and out["error"] == "IndexError: list index out of range"
    assert out["stdout"] == "before\n" and 'File "<run_code>", line 3' in out["stderr"]
    status, out = outcome(sandbox, "def broken(:\n    pass")
    assert status == "error" and out["error"].startswith("SyntaxError")


def test_python_runs_in_the_local_sandbox(local: LocalProcessSandbox) -> None:
    check_contract(local)


def test_python_runs_in_the_sandbox_lambda(on_lambda: LambdaSandbox) -> None:
    check_contract(on_lambda)
    status, out = outcome(on_lambda, "while True:\n    pass", limits=Limits(cpu_seconds=1, wall_seconds=5))
    assert status == "timeout" and out["result"] is None


@pytest.mark.parametrize("language", ["js", "ts", "r", "java", "bash"])
def test_other_languages_are_refused_plainly(local: LocalProcessSandbox, language: str) -> None:
    status, out = outcome(local, "console.log(1)", language)
    assert status == "error" and out == {
        "error": f"language {language!r} is not supported here; run_code runs python only"
    }


def test_the_caps_hold(local: LocalProcessSandbox) -> None:
    status, out = outcome(local, "import time\ntime.sleep(60)", limits=Limits(cpu_seconds=2, wall_seconds=1.5))
    assert status == "timeout" and "within 1.5 s" in out["error"]
    status, out = outcome(local, "block = bytearray(4 * 1024 ** 3)")
    assert status == "limit_exceeded" and "memory" in out["error"]
    status, out = outcome(local, "while True:\n    print('x' * 1000)")
    assert status == "limit_exceeded" and "printed more than 262144 bytes" in out["error"]
    assert len(out["stdout"]) <= 20_100  # the last 20,000 characters and a note
    # a large result is cut, saying so
    status, out = outcome(local, "'y' * 100_000")
    assert status == "success" and len(out["result"]) <= 20_000 and "truncated" in out["result"]
