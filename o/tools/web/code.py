"""run_code: the model's own code, run in the tool sandbox (locally a confined process, on AWS the
sandbox Lambda with no network), under the sandbox's time, memory and output caps.

Python only, in both modes: the sandbox runs a Python runner, and the sandbox Lambda's runtime has no
other interpreter. Letta's signature names js, ts, r and java too; those are refused with a clear error
rather than pretended.

The code runs as a script (``__name__ == "__main__"``); when its last statement is an expression, that
value is the result (as in a notebook cell). What comes back is JSON: ``result``, ``stdout``, ``stderr``
and ``error``.
"""

from __future__ import annotations

import json

from o.tools.sandbox.base import Limits, Sandbox, ToolInvocation, ToolResult

LANGUAGES = ("python", "js", "ts", "r", "java")
SUPPORTED = frozenset({"python"})
RESULT_CHARS = 20_000
OUTPUT_CHARS = 20_000

# What the sandbox runs: a function of the runner's protocol that executes the code given as its argument.
RUNNER = """
import ast
import linecache


def run_code(code):
    filename = "<run_code>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tree = ast.parse(code, filename, "exec")
    tail = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        tail = ast.Expression(tree.body.pop().value)
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(tree, filename, "exec"), scope)
    if tail is None:
        return None
    value = eval(compile(tail, filename, "eval"), scope)
    return None if value is None else repr(value)
"""


def run_code(sandbox: Sandbox, limits: Limits, code: str, language: str = "python") -> ToolResult:
    """Run ``code`` in ``sandbox``; the ToolResult's ``func_return`` is the JSON the model reads."""
    if language not in SUPPORTED:
        message = f"language {language!r} is not supported here; run_code runs python only"
        return ToolResult("error", json.dumps({"error": message}), message=message)
    ran = sandbox.run(ToolInvocation(RUNNER, "run_code", {"code": code}, {}, limits, RESULT_CHARS))
    outcome = {
        "result": (ran.func_return if ran.ok and ran.func_return != "null" else None),
        "stdout": _tail(ran.stdout),
        "stderr": _tail(ran.stderr),
        "error": None if ran.ok else (ran.message or ran.status),
    }
    return ToolResult(
        ran.status,
        json.dumps(outcome, ensure_ascii=False),
        stdout=ran.stdout,
        stderr=ran.stderr,
        message=ran.message,
        duration_ms=ran.duration_ms,
        isolation=ran.isolation,
    )


def _tail(text: str) -> str:
    """The last OUTPUT_CHARS of an output stream (where a traceback ends)."""
    return text if len(text) <= OUTPUT_CHARS else f"[{len(text) - OUTPUT_CHARS} characters cut]" + text[-OUTPUT_CHARS:]
