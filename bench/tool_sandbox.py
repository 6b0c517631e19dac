"""Round-trip overhead of a trivial tool call through the local sandbox.

Measures what the agent loop pays per custom tool call on top of the tool's own work:
process start, confinement, request/result transfer and clean-up. Prints p50/p95 per
configuration (full isolation as this machine allows it, and resource limits only).

    python bench/tool_sandbox.py [--runs 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

from o.tools.sandbox import LocalProcessSandbox, ToolInvocation

TRIVIAL = "def add(a: int, b: int) -> int:\n    return a + b\n"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(sandbox: LocalProcessSandbox, runs: int) -> tuple[list[float], tuple[str, ...]]:
    invocation = ToolInvocation(TRIVIAL, "add", {"a": 1, "b": 2})
    isolation: tuple[str, ...] = ()
    for _ in range(3):  # warm the page cache
        sandbox.run(invocation)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = sandbox.run(invocation)
        samples.append((time.perf_counter() - started) * 1000)
        if result.func_return != "3":
            raise SystemExit(f"unexpected result: {result}")
        isolation = result.isolation
    return samples, isolation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    print(f"tool call round trip through the local sandbox, {args.runs} runs each (ms)")
    print(f"{'configuration':<40} {'p50':>8} {'p95':>8} {'mean':>8} {'max':>8}")
    for label, sandbox in (
        ("isolated", LocalProcessSandbox(isolate=True)),
        ("resource limits only", LocalProcessSandbox(isolate=False)),
    ):
        samples, isolation = measure(sandbox, args.runs)
        name = f"{label} ({'+'.join(isolation)})"
        print(
            f"{name:<40} {percentile(samples, 0.5):>8.1f} {percentile(samples, 0.95):>8.1f} "
            f"{statistics.fmean(samples):>8.1f} {max(samples):>8.1f}"
        )


if __name__ == "__main__":
    main()
