"""schemathesis over every operation of the live app: in-process (ASGI), on a real Postgres, with a
real API key, its LLM and embedding calls held on local protocol servers.

One campaign is schemathesis' own engine (the phases ``st run`` runs: examples, coverage, fuzzing,
stateful) with a fixed seed and a bounded number of examples. It counts what reached the app and
sorts what went wrong into server errors (5xx, told apart by the exception behind them) and schema
violations (a status, content type, header or body the OpenAPI document does not declare).
``tests/fuzz/test_schemathesis.py`` runs a short campaign in the suite; ``bench/fuzz.py`` a longer one.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import schemathesis
from schemathesis.engine import Status, events, from_schema

from o import runtime
from o.agent.engine import llm_factory
from o.config import settings_from
from o.llm.client import LLMClient
from o.llm.config import LLMConfig
from o.memory.embeddings import Embedder, EmbedderSource, EmbeddingConfig
from o.store.db import Database
from tests import wiring
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.mcp_server import HttpMcpServer
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, call

# The checks a response must pass: no server error, and nothing the OpenAPI document does not declare.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@dataclass(frozen=True)
class Finding:
    """One distinct thing wrong: where, which check, and one request that shows it."""

    operation: str
    check: str
    status: int | None
    message: str
    curl: str = ""

    def line(self, with_request: bool = False) -> str:
        first = f"{self.operation} [{self.check}] {self.status}: {self.message.strip().splitlines()[0][:200]}"
        return f"{first}\n      {self.curl[:600]}" if with_request else first


@dataclass
class ServerError:
    """One cause of 5xx (an exception's type and where O raised it) and the operations that hit it."""

    cause: str
    message: str
    operations: set[str] = field(default_factory=set)
    # the first request that hit it: method, path and query, body
    request: str = ""


@dataclass
class Figures:
    operations: int = 0
    requests: int = 0
    # distinct causes of 5xx
    server_errors: dict[str, ServerError] = field(default_factory=dict)
    # distinct schema violations, keyed by (operation, check, status)
    violations: dict[tuple[str, str, int | None], Finding] = field(default_factory=dict)
    # the operations each phase tested (coverage and fuzzing test each one on its own; stateful
    # scenarios chain them)
    tested: dict[str, set[str]] = field(default_factory=dict)
    # operations a phase did not test, with schemathesis' reason
    skipped: list[str] = field(default_factory=list)
    # errors of the engine itself (a bad schema, a hook that failed): any one makes the campaign void
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        routes = {op for e in self.server_errors.values() for op in e.operations}
        phases = ", ".join(f"{phase} {len(ops)}" for phase, ops in self.tested.items())
        return (
            f"operations {self.operations}  requests {self.requests}  "
            f"distinct 5xx {len(self.server_errors)} (on {len(routes)} operations)  "
            f"schema violations {len(self.violations)}  ({self.seconds:.1f} s; operations tested by phase: {phases})"
        )

    def report(self, with_requests: bool = False) -> str:
        lines = [self.summary()]
        server_errors = [
            f"{e.cause}: {e.message[:160]}\n      on {', '.join(sorted(e.operations))}\n      {e.request[:400]}"
            for e in self.server_errors.values()
        ]
        for title, items in (
            ("5xx", server_errors),
            ("schema violations", [f.line(with_requests) for _, f in sorted(self.violations.items(), key=str)]),
            ("engine errors", self.errors),
            ("not tested", self.skipped),
        ):
            if items:
                lines.append(f"  {title}:")
                lines.extend(f"    {item}" for item in items)
        return "\n".join(lines)


class Served:
    """The app as a server runs it: an exception after the 500 went out is logged, not raised at the
    client (Starlette re-raises it for the server's sake). Counts the requests and remembers what
    caused each 5xx, with the first request that did."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0
        self.causes: dict[str, ServerError] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        status: list[int] = []
        body: list[bytes] = []

        async def read() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            body.append(message.get("body", b""))
            return message

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, read, watch)
        except Exception as exc:  # what a server does: the client already has its 500
            self._remember(scope, b"".join(body), _cause(exc), f"{type(exc).__name__}: {exc}")
            return
        # generated configs name MCP servers that do not answer: their declared 502 is the app working
        if status and status[0] >= 500 and not (status[0] == 502 and scope["path"].startswith("/v1/mcp-servers")):
            self._remember(scope, b"".join(body), f"HTTP {status[0]} without an exception", "")

    def _remember(self, scope: dict[str, Any], body: bytes, cause: str, message: str) -> None:
        route = getattr(scope.get("route"), "path", scope["path"])
        error = self.causes.setdefault(cause, ServerError(cause, message))
        error.operations.add(f"{scope['method']} {route}")
        if not error.request:
            query = scope["query_string"].decode("latin-1")
            target = scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
            error.request = f"{scope['method']} {target} {body[:600].decode('utf-8', 'replace')}"


def _cause(exc: BaseException) -> str:
    """The exception's type and the innermost frame of O's code it passed through."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/o/" in f.filename]
    where = f"{frames[-1].filename.rsplit('/o/', 1)[-1]}:{frames[-1].lineno}" if frames else "outside O"
    return f"{type(exc).__name__} at o/{where}"


class HeldLLM:
    """Builds each agent's LLM client for the local protocol servers, whatever endpoint the agent
    names: generated configs must not make the app call hosts on the network."""

    def __init__(self, openai: OpenAIServer, anthropic: AnthropicServer) -> None:
        self._build = llm_factory(TEST_KEYS, FAST_OPTIONS)
        self._openai = openai
        self._anthropic = anthropic

    def __call__(self, config: LLMConfig) -> LLMClient:
        local = self._anthropic.origin if config.model_endpoint_type == "anthropic" else self._openai.base_url
        return self._build(config.model_copy(update={"model_endpoint": local}))


class HeldEmbedders:
    """The process's embedders with each config's own endpoint dropped, so every call goes to the
    operator's endpoint (the local OpenAI server): a generated config must not reach the network."""

    def __init__(self, inner: EmbedderSource) -> None:
        self._inner = inner

    def for_config(self, config: EmbeddingConfig) -> Embedder:
        return self._inner.for_config(config.model_copy(update={"embedding_endpoint": None}))

    def check(self, config: EmbeddingConfig) -> None:
        self._inner.check(config.model_copy(update={"embedding_endpoint": None}))


def agent_reply(_: dict[str, Any]) -> Any:
    return call("send_message", message="noted")


@contextmanager
def live_app(db: Database) -> Iterator[tuple[Served, OpenAIServer]]:
    """The app as the composition root wires it, its providers on local servers that always answer."""
    with OpenAIServer(Script(default=agent_reply)) as openai, AnthropicServer(Script(default=agent_reply)) as anthropic:
        operator = {"O_EMBEDDING_OPENAI_BASE_URL": openai.base_url, "O_EMBEDDING_OLLAMA_BASE_URL": openai.origin}
        # generated MCP server configs must never start a process on this machine
        operator["O_MCP_STDIO"] = "false"
        wired = runtime.agent_engine(settings_from(operator), db, keys=TEST_KEYS)
        engine = replace(wired, llm=HeldLLM(openai, anthropic), embedders=HeldEmbedders(wired.embedders))
        try:
            yield Served(wiring.app(db, engine=engine)), openai
        finally:
            # runs sent with /messages/async end before their LLM servers go
            engine.launcher.join(timeout=30)  # type: ignore[attr-defined]


def _config(
    api_key: str, ids: Mapping[str, str], *, max_examples: int, seed: int, max_steps: int
) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "parameters": {f"path.{name}": value for name, value in ids.items()},
            "seed": seed,
            "workers": 1,
            "color": False,
            "headers": {"Authorization": f"Bearer {api_key}"},
            "generation": {"max-examples": max_examples, "deterministic": True, "no-shrink": True},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            # FastAPI's document has no examples, so that phase would only report each operation as skipped
            "phases": {"examples": {"enabled": False}, "stateful": {"max-steps": max_steps}},
            "suppress-health-check": ["all"],
            # every example runs even after a failure, so one run finds every distinct problem
            "continue-on-failure": True,
            "cache": {"enabled": False},
        }
    )


def run(
    app: Served,
    api_key: str,
    *,
    ids: Mapping[str, str] | None = None,
    max_examples: int = 10,
    seed: int = 12,
    max_steps: int = 6,
) -> Figures:
    """Two passes: every operation with its path parameters set to real things (``ids``), so the
    generated queries and bodies reach the database; then the operations with path parameters
    again, with generated ones (any text: a NUL, a slash, an id of nothing)."""
    figures = Figures()
    started, before = time.monotonic(), app.requests
    for fixed in (dict(ids or {}), {}):
        config = _config(api_key, fixed, max_examples=max_examples, seed=seed, max_steps=max_steps)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
        if not fixed:
            schema = schema.include(path_regex=r"\{")
        figures.operations = max(figures.operations, sum(1 for _ in schema.get_all_operations()))
        for event in from_schema(schema).execute():
            _record(figures, event)
    figures.requests = app.requests - before
    figures.server_errors = dict(app.causes)
    figures.seconds = time.monotonic() - started
    return figures


def _record(figures: Figures, event: events.EngineEvent) -> None:
    if isinstance(event, events.ScenarioFinished):
        if event.status == Status.SKIP and event.skip_reason:
            figures.skipped.append(f"{event.phase.value}: {event.label}: {event.skip_reason}")
        for case in event.recorder.cases.values() if event.recorder.interactions else ():
            figures.tested.setdefault(event.phase.value, set()).add(case.value.operation.label)
        _violations(figures, event.recorder)
    elif isinstance(event, events.FuzzScenarioFinished):
        _violations(figures, event.recorder)
    elif isinstance(event, events.NonFatalError):
        figures.errors.append(f"{event.label}: {type(event.value).__name__}: {event.value}")
    elif isinstance(event, events.FatalError):
        figures.errors.append(f"fatal: {type(event.exception).__name__}: {event.exception}")


def _violations(figures: Figures, recorder: Any) -> None:
    """Responses below 500 that the OpenAPI document does not describe (a 5xx is counted by its
    cause, which :class:`Served` saw)."""
    for case_id, checks in recorder.checks.items():
        interaction = recorder.interactions.get(case_id)
        status = interaction.response.status_code if interaction and interaction.response else None
        if status is None or status >= 500:
            continue
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            operation = failure.operation or recorder.label
            case = recorder.cases.get(case_id)
            curl = case.value.as_curl_command() if case is not None else ""
            finding = Finding(operation, check.name, status, f"{failure.title}: {failure.message}", curl)
            figures.violations.setdefault((operation, check.name, status), finding)


TOOL_SOURCE = '''
def roll(sides: int) -> str:
    """Roll a die.

    Args:
        sides: how many sides the die has
    """
    return str(sides)
'''


def seed(app: Served, api_key: str) -> dict[str, str]:
    """Real things of the key's organization (an agent with blocks, a tool, a passage, a run), by the
    names of the path parameters that address them."""
    from fastapi.testclient import TestClient

    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:

        def post(path: str, body: dict[str, Any]) -> Any:
            response = client.post(path, json=body)
            assert response.status_code < 300, (path, response.status_code, response.text)
            return response.json()

        agent = post(
            "/v1/agents/",
            {
                "name": "fuzzed",
                "model": "openai/gpt-4o-mini",
                "memory_blocks": [{"label": "human", "value": "Ada"}, {"label": "persona", "value": "careful"}],
            },
        )
        tool = post("/v1/tools/", {"source_code": TOOL_SOURCE})
        # attached, so the agent's tool routes by name (run, approval) have a tool to address
        attached = client.patch(f"/v1/agents/{agent['id']}/tools/attach/{tool['id']}")
        assert attached.status_code == 200, attached.text
        passage = post(f"/v1/agents/{agent['id']}/archival-memory", {"text": "Ada likes tea"})[0]
        run = post(f"/v1/agents/{agent['id']}/messages/async", {"messages": [{"role": "user", "content": "hi"}]})
        identity = post("/v1/identities/", {"identifier_key": "fuzz-user", "name": "Ada", "identity_type": "user"})
        step_id = _first_step(client, run["id"])
        archive = post("/v1/archives/", {"name": "fuzzed shelf"})
        archive_passage = post(f"/v1/archives/{archive['id']}/passages", {"text": "Ada keeps tea on the shelf"})
        folder = post("/v1/folders/", {"name": "fuzz-folder"})
        uploaded = client.post(f"/v1/folders/{folder['id']}/upload", files={"file": ("notes.md", b"# Notes\nAda")})
        assert uploaded.status_code == 200, uploaded.text
        attached_folder = client.patch(f"/v1/agents/{agent['id']}/folders/attach/{folder['id']}")
        assert attached_folder.status_code == 200, attached_folder.text
        # a real MCP server, so the generated calls reach its tools (a daemon thread: lives with the process)
        mcp = HttpMcpServer().start()
        mcp_server = post("/v1/mcp-servers/", {"server_name": "fuzz-mcp", "config": {"server_url": mcp.url}})
        conversation = post(f"/v1/conversations/?agent_id={agent['id']}", {"summary": "fuzzed"})
        messages = client.get(f"/v1/agents/{agent['id']}/messages", params={"limit": 1}).json()
        # a real evolution row (run to its decision in this request), so the evolution routes reach one
        evolution = post(f"/v1/agents/{agent['id']}/evolutions", {"wait": True})
        upload = post("/v1/uploads/", {"kind": "bundle", "size": 16})
        export = client.post(f"/v1/agents/{agent['id']}/exports")
        assert export.status_code == 202, export.text
    return {
        "upload_id": upload["id"],
        "export_id": export.json()["id"],
        "message_id": messages[0]["id"] if messages else "message-00000000-0000-4000-8000-000000000000",
        "archive_id": archive["id"],
        "passage_id": archive_passage["id"],
        "folder_id": folder["id"],
        "file_id": uploaded.json()["id"],
        "mcp_server_id": mcp_server["id"],
        "conversation_id": conversation["id"],
        "identity_id": identity["id"],
        "step_id": step_id,
        "agent_id": agent["id"],
        "block_id": agent["blocks"][0]["id"],
        "block_label": "human",
        "tool_id": tool["id"],
        "tool_name": tool["name"],
        "memory_id": passage["id"],
        "run_id": run["id"],
        "number": "1",
        "evolution_id": evolution["id"],
    }


def _first_step(client: Any, run_id: str, timeout_s: float = 30.0) -> str:
    """The id of the run's first step, once the run's loop has stored it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        steps = client.get("/v1/steps/", params={"trace_ids": [run_id]}).json()
        if steps:
            return str(steps[0]["id"])
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} stored no step within {timeout_s} s")
