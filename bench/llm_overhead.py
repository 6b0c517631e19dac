"""Per-call overhead of O's LLM layer with zero-latency local providers.

    python bench/llm_overhead.py [--calls 500]

Drives the real openai and anthropic SDKs through O's clients against the scripted
local servers (no artificial delay), for a non-streaming tool call and a streamed text
reply, and prints p50/p99 per call. The figure is the layer's own cost plus loopback
HTTP: the floor under any step, before a real model's latency. Also prints the time to
build the first client (including importing its SDK) and RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# The scripted servers live in the test tree; run from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.llm.client import ClientOptions, LLMClient, RetryPolicy
from o.llm.keys import StaticKeySource
from o.llm.providers import client_for
from o.llm.types import ChatMessage, ChatRequest, Completed, ToolSpec
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.fixtures import LOCAL_ENDPOINTS, LOOPBACK
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, call

KEYS = StaticKeySource({"openai": "sk-bench", "anthropic": "sk-ant-bench"})
# the bench acts as an operator that allows its protocol servers on 127.0.0.1
OPTIONS = ClientOptions(timeout_s=10, retry=RetryPolicy(max_retries=0), endpoints=LOCAL_ENDPOINTS, outbound=LOOPBACK)
TOOLS = [
    ToolSpec(
        f"tool_{i}",
        "A tool with a realistic schema size.",
        {
            "type": "object",
            "properties": {"label": {"type": "string"}, "content": {"type": "string"}},
            "required": ["label", "content"],
        },
    )
    for i in range(9)
]
SYSTEM = (
    "You are O, a stateful agent.\n"
    + "<memory_blocks>\n"
    + ("persona: a helpful assistant. " * 60)
    + "\n</memory_blocks>"
)


def request() -> ChatRequest:
    messages = [ChatMessage.system(SYSTEM)]
    for i in range(10):
        messages.append(ChatMessage.user(f"message number {i}: tell me something about tea"))
        messages.append(ChatMessage.assistant(f"Here is fact {i} about tea: it is a drink."))
    messages.append(ChatMessage.user("last question"))
    return ChatRequest(messages, TOOLS)


def measure(label: str, fn: Callable[[], object], calls: int) -> None:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"{label:<34} p50 {statistics.median(samples):6.2f} ms   p99 {p99:6.2f} ms   ({calls} calls)")


def run(name: str, server: OpenAIServer | AnthropicServer, calls: int) -> None:
    started = time.perf_counter()
    client: LLMClient = client_for(server.llm_config(), KEYS, OPTIONS)
    print(f"{name}: first client, including the SDK import: {(time.perf_counter() - started) * 1000:.0f} ms")
    server.script.default = call("tool_0", label="human", content="likes tea")
    req = request()
    measure(f"{name} chat (tool call)", lambda: client.chat(req), calls)
    server.script.default = Reply(text="A streamed reply of moderate length, split into pieces. " * 4, chunk_size=16)

    def stream() -> None:
        events = list(client.stream(req))
        assert isinstance(events[-1], Completed)

    measure(f"{name} stream (~14 deltas)", stream, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with OpenAIServer() as openai_server:
        run("openai", openai_server, args.calls)
    with AnthropicServer() as anthropic_server:
        run("anthropic", anthropic_server, args.calls)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS (client + both servers in one process): {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
