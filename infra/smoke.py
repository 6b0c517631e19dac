"""After `cdk deploy`: exercise the deployed API the way a client does, and say what works.

    python -m infra.smoke --stack O                       # URLs from the stack's outputs (boto3)
    python -m infra.smoke --url "$O_URL" --key "$O_API_KEY" [--stream-url "$O_STREAM_URL"]

It creates an agent, sends a message synchronously, streams one (chunks must arrive one after another,
not in one piece at the end; it measures the time to the first token), runs a sleep-time pass, starts an
evolution with a short canary and follows it to its decision (or as far as it gets in ``--evolution-s``),
then deletes the agent. Each step prints one line; the exit status is 0 only when every step passed.
``--json`` prints the report as JSON instead. The key comes from ``--key`` or ``O_API_KEY`` (see
infra/README.md, "The first API key"); ``O_URL`` and ``O_STREAM_URL`` stand in for the URL flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

# The streamed reply is incremental when its chunks arrived at distinct moments at least this far apart (a
# buffered body arrives in one read: its chunks are parsed within a millisecond).
BURST_GAP_S = 0.01
TERMINAL = ("promoted", "rolled_back")
PROMPT = "In three short sentences, tell me what you will remember about me. My name is Ada."


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def add(self, step: Step, out: Callable[[str], None] | None) -> Step:
        self.steps.append(step)
        if out is not None:
            out(f"{'ok ' if step.ok else 'FAIL'} {step.name}: {step.detail}")
        return step


class Api:
    """The deployed API: ``base`` (buffered, 29 s) and ``stream`` (streamed responses, 15 min)."""

    def __init__(self, base: str, stream: str, key: str, timeout_s: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        self.base = httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=timeout_s)
        self.stream = httpx.Client(base_url=stream.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.base.close()
        self.stream.close()


def stack_urls(stack: str, region: str | None = None) -> tuple[str, str]:
    """``ApiUrl`` and ``StreamUrl`` from the stack's outputs (CloudFormation DescribeStacks)."""
    import boto3  # only for --stack: the URLs may be given instead

    described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise SystemExit(f"stack {stack} has no ApiUrl output: is it O's stack?")
    return outputs["ApiUrl"], outputs.get("StreamUrl", outputs["ApiUrl"])


def _fail(name: str, response: httpx.Response) -> Step:
    return Step(name, False, f"HTTP {response.status_code}: {response.text[:300]}")


def create_agent(api: Api, model: str, llm_config: dict[str, Any] | None) -> tuple[Step, str | None]:
    body: dict[str, Any] = {
        "name": f"smoke-{int(time.time())}",
        "memory_blocks": [
            {"label": "human", "value": "Nothing known yet."},
            {"label": "persona", "value": "I am a concise assistant."},
        ],
    }
    if llm_config:
        body["llm_config"] = llm_config
    else:
        body["model"] = model
    started = time.monotonic()
    response = api.base.post("/v1/agents/", json=body)
    if response.status_code != 200:
        return _fail("create agent", response), None
    agent_id = str(response.json()["id"])
    return Step("create agent", True, agent_id, {"seconds": round(time.monotonic() - started, 3)}), agent_id


def _assistant_text(messages: list[dict[str, Any]]) -> str:
    return " ".join(str(m.get("content")) for m in messages if m.get("message_type") == "assistant_message")


def _follow_run(api: Api, run_id: str, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        run = api.base.get(f"/v1/runs/{run_id}").json()
        if run.get("status") not in ("created", "running") or time.monotonic() > deadline:
            return dict(run)
        time.sleep(1.0)


def send(api: Api, agent_id: str) -> Step:
    """POST /messages: 200 with the reply, or 202 (still running past the API's wait) and then the run."""
    started = time.monotonic()
    response = api.base.post(f"/v1/agents/{agent_id}/messages", json={"input": PROMPT})
    answered = time.monotonic() - started
    if response.status_code not in (200, 202):
        return _fail("send (sync)", response)
    body = response.json()
    figures = {"seconds": round(answered, 3), "status": response.status_code}
    if response.status_code == 202:
        run = _follow_run(api, body["run_id"], 300)
        messages = api.base.get(f"/v1/runs/{body['run_id']}/messages").json()
        figures["run_seconds"] = round(time.monotonic() - started, 3)
        text = _assistant_text(messages)
        ok = run.get("status") == "completed" and bool(text)
        return Step("send (sync)", ok, f"202 after {answered:.1f} s, run {run.get('status')}: {text[:80]!r}", figures)
    text = _assistant_text(body["messages"])
    stop = body["stop_reason"]["stop_reason"]
    return Step("send (sync)", bool(text), f"{answered:.1f} s, {stop}: {text[:80]!r}", figures)


def _events(response: httpx.Response, started: float) -> Iterator[tuple[float, dict[str, Any]]]:
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield time.monotonic() - started, json.loads(line[len("data: ") :])


def _bursts(times: list[float]) -> int:
    """How many separate moments the chunks arrived at (a gap of BURST_GAP_S starts a new one)."""
    return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] >= BURST_GAP_S)


def stream(api: Api, agent_id: str) -> Step:
    """POST /messages/stream with token streaming: time to the first token, and whether it streamed."""
    body = {"input": "Now count from one to twenty in words, slowly.", "stream_tokens": True}
    started = time.monotonic()
    with api.stream.stream("POST", f"/v1/agents/{agent_id}/messages/stream", json=body) as response:
        if response.status_code != 200:
            response.read()
            return _fail("stream", response)
        events = list(_events(response, started))
    total = time.monotonic() - started
    tokens = [(at, e) for at, e in events if e.get("message_type") in ("assistant_message", "reasoning_message")]
    stop = [e["stop_reason"] for _, e in events if e.get("message_type") == "stop_reason"]
    errors = [e for _, e in events if e.get("message_type") == "error_message"]
    if not tokens or errors or stop != ["end_turn"]:
        return Step("stream", False, f"stop {stop}, {len(tokens)} token chunks, errors {errors[:1]}")
    times = [at for at, _ in tokens]
    bursts = _bursts(times)
    figures = {
        "time_to_first_token_s": round(times[0], 3),
        "last_token_s": round(times[-1], 3),
        "total_s": round(total, 3),
        "chunks": len(tokens),
        "bursts": bursts,
    }
    incremental = bursts >= 2
    verdict = "incremental" if incremental else "BUFFERED (every chunk arrived at once)"
    detail = f"first token {times[0]:.2f} s, last {times[-1]:.2f} s, {len(tokens)} chunks in {bursts} bursts: {verdict}"
    return Step("stream", incremental, detail, figures)


def sleeptime(api: Api, agent_id: str) -> Step:
    """POST /sleeptime (on the streaming URL: a pass may take longer than the buffered API's 29 s)."""
    started = time.monotonic()
    response = api.stream.post(f"/v1/agents/{agent_id}/sleeptime")
    if response.status_code != 200:
        return _fail("sleep-time pass", response)
    result = response.json()
    seconds = round(time.monotonic() - started, 3)
    detail = (
        f"{result['status']} in {seconds} s: blocks rewritten {result['blocks_rewritten']}, "
        f"{result['facts_recorded']} facts, {result['tool_calls']} tool calls"
        + (f", error {result['error']}" if result.get("error") else "")
    )
    return Step("sleep-time pass", result["status"] != "failed", detail, {"seconds": seconds, **result})


def _traffic(api: Api, agent_id: str, turns: int) -> int:
    """Short messages: the conversations the evolution's gate replays, and the turns its canary judges (it
    splits live runs between the two revisions); how many were answered."""
    answered = 0
    for i in range(turns):
        response = api.base.post(f"/v1/agents/{agent_id}/messages", json={"input": f"Quick check {i + 1}: all well?"})
        answered += response.status_code in (200, 202)
    return answered


def evolution(api: Api, agent_id: str, limit_s: float, bake_s: int, turns: int) -> Step:
    """Start an evolution with a short canary, send it some traffic while it bakes, and follow it to its
    decision; stop it if it is still going at the end."""
    # the gate compares the two revisions on recent conversations: give it enough of them, and replay them all
    _traffic(api, agent_id, turns)
    budget = {"canary_weight": 0.5, "bake_seconds": bake_s, "max_seconds": max(limit_s, 60.0),
              "replay_sample": min(turns + 2, 100)}  # fmt: skip
    response = api.base.post(f"/v1/agents/{agent_id}/evolutions", json=budget)
    if response.status_code != 202:
        return _fail("evolution", response)
    evo = response.json()
    seen = [evo["status"]]
    sent = 0
    deadline = time.monotonic() + limit_s
    while evo["status"] not in TERMINAL and time.monotonic() < deadline:
        if evo["status"] == "canary" and not sent:
            sent = _traffic(api, agent_id, turns) or -1
        else:
            time.sleep(1.0)
        evo = api.base.get(f"/v1/agents/{agent_id}/evolutions/{evo['id']}").json()
        if evo["status"] != seen[-1]:
            seen.append(evo["status"])
    figures = {"id": evo["id"], "phases": seen, "canary": evo.get("canary"), "figures": evo.get("figures"),
               "canary_turns_sent": max(sent, 0)}  # fmt: skip
    if evo["status"] not in TERMINAL:
        stopped = api.base.post(f"/v1/agents/{agent_id}/evolutions/{evo['id']}/stop")
        detail = f"still {evo['status']} after {limit_s:g} s ({' → '.join(seen)}); stopped: HTTP {stopped.status_code}"
        return Step("evolution", stopped.status_code == 200, detail, figures)
    canary = "canary taken" if "canary" in seen or evo.get("canary") else "no canary"
    detail = f"{evo['status']} ({' → '.join(seen)}; {canary}): {evo.get('reason') or evo.get('decision')}"
    return Step("evolution", True, detail, figures)


def delete(api: Api, agent_id: str) -> Step:
    response = api.base.delete(f"/v1/agents/{agent_id}")
    if response.status_code not in (200, 204):
        return _fail("clean up", response)
    return Step("clean up", True, f"agent {agent_id} deleted")


def run(args: argparse.Namespace, out: Callable[[str], None] | None = print) -> Report:
    base, streamed = args.url, args.stream_url
    if args.stack:
        base, streamed = stack_urls(args.stack, args.region)
    if not base or not args.key:
        raise SystemExit("give --url (or O_URL, or --stack) and --key (or O_API_KEY)")
    api = Api(base, streamed or base, args.key)
    report = Report()
    try:
        step, agent_id = create_agent(api, args.model, json.loads(args.llm_config) if args.llm_config else None)
        report.add(step, out)
        if agent_id is None:
            return report
        try:
            report.add(send(api, agent_id), out)
            report.add(stream(api, agent_id), out)
            report.add(sleeptime(api, agent_id), out)
            if not args.no_evolution:
                report.add(evolution(api, agent_id, args.evolution_s, args.bake_s, args.canary_turns), out)
        finally:
            if not args.keep:
                report.add(delete(api, agent_id), out)
    finally:
        api.close()
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infra.smoke", description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", help="read ApiUrl and StreamUrl from this CloudFormation stack's outputs")
    p.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    p.add_argument("--url", default=os.environ.get("O_URL"), help="the API's base URL (ApiUrl; env O_URL)")
    p.add_argument("--stream-url", default=os.environ.get("O_STREAM_URL"), help="StreamUrl (env O_STREAM_URL)")
    p.add_argument("--key", default=os.environ.get("O_API_KEY"), help="an API key (env O_API_KEY)")
    p.add_argument("--model", default="openai/gpt-4o-mini", help="the agent's model handle")
    p.add_argument("--llm-config", help="the agent's llm_config as JSON, instead of --model")
    p.add_argument("--evolution-s", type=float, default=300.0, help="how long to follow the evolution")
    p.add_argument("--bake-s", type=int, default=30, help="how long the canary takes traffic")
    p.add_argument(
        "--canary-turns", type=int, default=6, help="messages sent before the evolution and while its canary bakes"
    )
    p.add_argument("--no-evolution", action="store_true", help="skip the evolution step")
    p.add_argument("--keep", action="store_true", help="keep the agent (default: delete it)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    report = run(args, out=None if args.json else print)
    if args.json:
        print(json.dumps({"ok": report.ok, "steps": [asdict(s) for s in report.steps]}, indent=2, default=str))
    else:
        print("all steps passed" if report.ok else "SOME STEPS FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
