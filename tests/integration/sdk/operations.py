"""Every operation O serves, as letta-client calls it (or, for O's own routes, as raw HTTP).

One entry per (method, path) of the app's OpenAPI document; ``test_strict_sdk.py`` fails when a route
has no entry, so a new route must come with the SDK call that exercises it. ``sdk`` names the SDK
method (``agents.blocks.retrieve``); ``None`` marks an O-specific route the SDK has no method for,
checked over raw HTTP instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from letta_client import APIResponseValidationError, Letta
from letta_client._models import validate_type

from tests.servers.mcp_server import HttpMcpServer
from tests.servers.script import call, fail

TOOL_SOURCE = '''
def roll(sides: int) -> str:
    """Roll a die.

    Args:
        sides: how many sides the die has
    """
    return str(sides)
'''


@dataclass
class World:
    """What the calls work on: one organization's agent (with a finished run), block, tool and passage."""

    sdk: Letta
    http: httpx.Client
    llm_config: dict[str, Any]
    model: Any
    agent_id: str = ""
    block_id: str = ""
    tool_id: str = ""
    run_id: str = ""
    passage_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def raw(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def new_agent(self, **fields: Any) -> str:
        return self.sdk.agents.create(
            llm_config=self.llm_config,  # type: ignore[arg-type]
            memory_blocks=[{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "Careful."}],
            **fields,
        ).id

    def wait_run(self, run_id: str) -> None:
        deadline = time.monotonic() + 20
        while self.sdk.runs.retrieve(run_id).status not in ("completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"run {run_id} did not end"
            time.sleep(0.05)


def populate(world: World) -> None:
    """The world's objects; its first turn calls the custom tool (with text before it, so reasoning,
    tool call and tool return messages all come back) and edits memory before answering."""
    world.agent_id = world.new_agent(name="strict", tags=["sdk"])
    world.block_id = world.sdk.blocks.create(label="shared", value="shared notes").id
    world.sdk.agents.blocks.attach(world.block_id, agent_id=world.agent_id)
    world.tool_id = world.sdk.tools.create(source_code=TOOL_SOURCE).id
    world.sdk.agents.tools.attach(world.tool_id, agent_id=world.agent_id)
    world.passage_id = world.sdk.agents.passages.create(world.agent_id, text="Ada likes tea")[0].id
    world.model.push(
        call("roll", _text="Let me roll.", sides=6, request_heartbeat=True),
        call("core_memory_append", label="human", content="Likes dice.", request_heartbeat=True),
        call("send_message", message="You rolled a 6."),
    )
    response = world.sdk.agents.messages.create(world.agent_id, messages=[{"role": "user", "content": "roll"}])
    kinds = [m.message_type for m in response.messages]
    assert kinds.count("tool_return_message") == 2 and "reasoning_message" in kinds, kinds
    world.run_id = response.usage.run_ids[0] if response.usage.run_ids else ""


def strictly(call: Callable[[], Any]) -> Any:
    """The call's result; a response the SDK's types refuse fails with pydantic's reasons, not just
    the SDK's one-line "Data returned by API invalid"."""
    try:
        return call()
    except APIResponseValidationError as err:
        raise AssertionError(f"{err.response.request.method} {err.response.request.url.path}: {err.__cause__}") from err


def every_item(first: Any) -> list[Any]:
    """Every item of a list, through the SDK's auto-pagination, each validated against the SDK's type.

    Strict mode does not reach list items: the SDK builds its pages with ``construct``. So each item
    goes through the page's declared item type here, as strict mode does for single objects.
    """
    items = []
    for page in first.iter_pages():
        item_type = type(page).model_fields["items"].annotation
        dumped = [item.to_dict(mode="json", warnings=False) for item in page.items]
        items.extend(validate_type(type_=item_type, value=dumped))
    # one stored message may show as several Letta messages (reasoning, tool call) under one id
    keys = [(getattr(item, "id", None), getattr(item, "message_type", None)) for item in items]
    assert len(keys) == len(set(keys)), f"an item came twice while paging: {keys}"
    return items


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    sdk: str | None
    call: Callable[[World], Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _delete_agent(w: World) -> Any:
    return w.sdk.agents.delete(w.new_agent())


def _detach_block(w: World) -> Any:
    block = w.sdk.blocks.create(label="scratch", value="x")
    w.sdk.agents.blocks.attach(block.id, agent_id=w.agent_id)
    return w.sdk.agents.blocks.detach(block.id, agent_id=w.agent_id)


def _detach_tool(w: World) -> Any:
    tool = w.sdk.tools.upsert(source_code=TOOL_SOURCE.replace("roll", "toss"))
    w.sdk.agents.tools.attach(tool.id, agent_id=w.agent_id)
    return w.sdk.agents.tools.detach(tool.id, agent_id=w.agent_id)


def _delete_passage(w: World) -> Any:
    created = w.sdk.agents.passages.create(w.agent_id, text="to forget")
    return w.sdk.agents.passages.delete(created[0].id, agent_id=w.agent_id)


def _send(w: World) -> Any:
    w.sdk.agents.messages.create(w.agent_id, messages=_user("hello"))  # type: ignore[arg-type]
    return list(w.sdk.agents.messages.create(w.agent_id, messages=_user("again"), streaming=True))  # type: ignore[arg-type]


def _async_run(w: World) -> Any:
    run = w.sdk.agents.messages.create_async(w.agent_id, messages=_user("later"))  # type: ignore[arg-type]
    w.wait_run(run.id)
    # a run whose model fails: the failed run, its steps and messages in Letta's shapes too
    agent = w.new_agent()
    w.model.push(fail(400, "the model refused the request"))  # not retried: one scripted failure
    failed = w.sdk.agents.messages.create_async(agent, messages=_user("fail"))  # type: ignore[arg-type]
    w.wait_run(failed.id)
    assert w.model.script.pending == 0
    assert w.sdk.runs.retrieve(failed.id).status == "failed"
    every_item(w.sdk.runs.steps.list(failed.id))
    every_item(w.sdk.runs.messages.list(failed.id))
    every_item(w.sdk.agents.messages.list(agent))
    return run


def _stream(w: World) -> Any:
    return list(w.sdk.agents.messages.stream(w.agent_id, messages=_user("stream"), stream_tokens=True))  # type: ignore[arg-type]


def _stream_run(w: World) -> Any:
    return list(w.sdk.runs.messages.stream(w.run_id))


def _cancel(w: World) -> Any:
    agent = w.new_agent()
    return w.sdk.agents.messages.cancel(agent)


def _cancel_run(w: World) -> Any:
    agent = w.new_agent()
    run = w.sdk.agents.messages.create_async(agent, messages=_user("x"))  # type: ignore[arg-type]
    w.raw("POST", f"/v1/runs/{run.id}/cancel")
    return w.wait_run(run.id)


def _reset(w: World) -> Any:
    agent = w.new_agent()
    return w.sdk.agents.messages.reset(agent)


def _compact(w: World) -> Any:
    agent = w.new_agent()
    w.sdk.agents.messages.create(agent, messages=_user("one"))  # type: ignore[arg-type]
    w.sdk.agents.messages.create(agent, messages=_user("two"))  # type: ignore[arg-type]
    return w.sdk.agents.messages.compact(agent)


def _delete_block(w: World) -> Any:
    return w.sdk.blocks.delete(w.sdk.blocks.create(label="gone", value="x").id)


def _delete_tool(w: World) -> Any:
    return w.sdk.tools.delete(w.sdk.tools.create(source_code=TOOL_SOURCE.replace("roll", "flip")).id)


def _evolution(w: World) -> tuple[str, Any]:
    """A new agent (one evolution at a time per agent) and its evolution, started."""
    agent = w.new_agent()
    return agent, w.raw("POST", f"/v1/agents/{agent}/evolutions", {}, expect=202)


def _stop_evolution(w: World) -> Any:
    agent, evo = _evolution(w)
    return w.raw("POST", f"/v1/agents/{agent}/evolutions/{evo['id']}/stop")


def _approve_evolution(w: World) -> Any:
    """An evolution that waits for no approval: the decision is refused (409), with the error body."""
    agent, evo = _evolution(w)
    return w.raw("POST", f"/v1/agents/{agent}/evolutions/{evo['id']}/approval", {"approve": True}, expect=409)


def _get_evolution(w: World) -> Any:
    agent, evo = _evolution(w)
    return w.raw("GET", f"/v1/agents/{agent}/evolutions/{evo['id']}")


def _rollback(w: World) -> Any:
    agent = w.new_agent()
    w.sdk.agents.update(agent, system="A terser system prompt.")
    return w.raw("POST", f"/v1/agents/{agent}/revisions/1/rollback", {"rationale": "the first was better"})


def _mcp_server(w: World) -> str:
    """The world's MCP server (a real one over streamable HTTP, started on first use), registered first so
    its tools have their names in the organization."""
    if "mcp_server_id" not in w.extra:
        w.extra["mcp_http"] = HttpMcpServer().start()
        config: Any = {"server_url": w.extra["mcp_http"].url}
        w.extra["mcp_server_id"] = w.sdk.mcp_servers.create(server_name="sdk-mcp", config=config).id
    return str(w.extra["mcp_server_id"])


def _mcp_tool(w: World, name: str = "add") -> str:
    return next(t.id for t in w.sdk.mcp_servers.tools.list(_mcp_server(w)) if t.name == name)  # type: ignore[misc]


def _create_mcp_server(w: World) -> Any:
    _mcp_server(w)
    config: Any = {"server_url": w.extra["mcp_http"].url, "auth_token": "t", "custom_headers": {"X-Trace": "1"}}
    return w.sdk.mcp_servers.create(server_name="sdk-mcp-2", config=config)


def _delete_mcp_server(w: World) -> Any:
    _mcp_server(w)
    config: Any = {"server_url": w.extra["mcp_http"].url}
    return w.sdk.mcp_servers.delete(w.sdk.mcp_servers.create(server_name="sdk-mcp-gone", config=config).id)


def _conversation(w: World) -> str:
    """A conversation of the world's agent with one turn in it."""
    conversation = w.sdk.conversations.create(agent_id=w.agent_id, summary="tea talk")
    list(w.sdk.conversations.messages.create(conversation.id, messages=_user("hi")))  # type: ignore[arg-type]
    return conversation.id


def _conversation_compact(w: World) -> Any:
    conversation = _conversation(w)
    list(w.sdk.conversations.messages.create(conversation, messages=_user("again")))  # type: ignore[arg-type]
    return w.sdk.conversations.messages.compact(conversation)


def _agent(path: str) -> Callable[[World], str]:
    return lambda w: f"/v1/agents/{w.agent_id}{path}"


OPERATIONS: list[Op] = [
    Op("GET", "/v1/health/", "health", lambda w: w.sdk.health()),
    # agents
    Op("POST", "/v1/agents/", "agents.create", lambda w: w.sdk.agents.retrieve(w.new_agent(description="d"))),
    Op("GET", "/v1/agents/", "agents.list", lambda w: every_item(w.sdk.agents.list(limit=2))),
    Op("GET", "/v1/agents/{agent_id}", "agents.retrieve", lambda w: w.sdk.agents.retrieve(w.agent_id)),
    Op("PATCH", "/v1/agents/{agent_id}", "agents.update", lambda w: w.sdk.agents.update(w.agent_id, description="x")),
    Op("DELETE", "/v1/agents/{agent_id}", "agents.delete", _delete_agent),
    Op("POST", "/v1/agents/{agent_id}/recompile", "agents.recompile", lambda w: w.sdk.agents.recompile(w.agent_id)),
    # an agent's core memory
    Op(
        "GET",
        "/v1/agents/{agent_id}/core-memory/blocks",
        "agents.blocks.list",
        lambda w: every_item(w.sdk.agents.blocks.list(w.agent_id, limit=1)),
    ),
    Op(
        "GET",
        "/v1/agents/{agent_id}/core-memory/blocks/{block_label}",
        "agents.blocks.retrieve",
        lambda w: w.sdk.agents.blocks.retrieve("human", agent_id=w.agent_id),
    ),
    Op(
        "PATCH",
        "/v1/agents/{agent_id}/core-memory/blocks/{block_label}",
        "agents.blocks.update",
        lambda w: w.sdk.agents.blocks.update("human", agent_id=w.agent_id, value="Name: Ada L."),
    ),
    Op(
        "PATCH",
        "/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}",
        "agents.blocks.attach",
        lambda w: w.sdk.agents.blocks.attach(w.block_id, agent_id=w.agent_id),
    ),
    Op("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}", "agents.blocks.detach", _detach_block),
    # blocks
    Op("POST", "/v1/blocks/", "blocks.create", lambda w: w.sdk.blocks.create(label="notes", value="v", limit=100)),
    Op("GET", "/v1/blocks/", "blocks.list", lambda w: every_item(w.sdk.blocks.list(limit=2))),
    Op("GET", "/v1/blocks/{block_id}", "blocks.retrieve", lambda w: w.sdk.blocks.retrieve(w.block_id)),
    Op("PATCH", "/v1/blocks/{block_id}", "blocks.update", lambda w: w.sdk.blocks.update(w.block_id, value="v2")),
    Op("DELETE", "/v1/blocks/{block_id}", "blocks.delete", _delete_block),
    Op(
        "GET",
        "/v1/blocks/{block_id}/agents",
        "blocks.agents.list",
        lambda w: every_item(w.sdk.blocks.agents.list(w.block_id)),
    ),
    # messages and runs
    Op(
        "GET",
        "/v1/agents/{agent_id}/messages",
        "agents.messages.list",
        lambda w: every_item(w.sdk.agents.messages.list(w.agent_id, limit=2)),
    ),
    Op(
        "POST",
        "/v1/agents/{agent_id}/messages",
        "agents.messages.create",
        _send,
    ),
    Op("POST", "/v1/agents/{agent_id}/messages/async", "agents.messages.create_async", _async_run),
    Op("POST", "/v1/agents/{agent_id}/messages/stream", "agents.messages.stream", _stream),
    Op("POST", "/v1/agents/{agent_id}/messages/cancel", "agents.messages.cancel", _cancel),
    Op("PATCH", "/v1/agents/{agent_id}/reset-messages", "agents.messages.reset", _reset),
    Op("POST", "/v1/agents/{agent_id}/summarize", "agents.messages.compact", _compact),
    Op("GET", "/v1/runs/", "runs.list", lambda w: every_item(w.sdk.runs.list(limit=2, agent_id=w.agent_id))),
    Op("GET", "/v1/runs/{run_id}", "runs.retrieve", lambda w: w.sdk.runs.retrieve(w.run_id)),
    Op(
        "GET",
        "/v1/runs/{run_id}/messages",
        "runs.messages.list",
        lambda w: every_item(w.sdk.runs.messages.list(w.run_id, limit=1)),
    ),
    Op("GET", "/v1/runs/{run_id}/usage", "runs.usage.retrieve", lambda w: w.sdk.runs.usage.retrieve(w.run_id)),
    Op("GET", "/v1/runs/{run_id}/steps", "runs.steps.list", lambda w: every_item(w.sdk.runs.steps.list(w.run_id))),
    Op("POST", "/v1/runs/{run_id}/stream", "runs.messages.stream", _stream_run),
    Op("POST", "/v1/runs/{run_id}/cancel", None, _cancel_run),
    # tools
    Op(
        "POST",
        "/v1/tools/",
        "tools.create",
        lambda w: w.sdk.tools.create(source_code=TOOL_SOURCE.replace("roll", "d6")),
    ),
    Op("PUT", "/v1/tools/", "tools.upsert", lambda w: w.sdk.tools.upsert(source_code=TOOL_SOURCE)),
    Op("GET", "/v1/tools/", "tools.list", lambda w: every_item(w.sdk.tools.list(limit=2))),
    Op("GET", "/v1/tools/{tool_id}", "tools.retrieve", lambda w: w.sdk.tools.retrieve(w.tool_id)),
    Op("PATCH", "/v1/tools/{tool_id}", "tools.update", lambda w: w.sdk.tools.update(w.tool_id, description="dice")),
    Op("DELETE", "/v1/tools/{tool_id}", "tools.delete", _delete_tool),
    Op("GET", "/v1/tools/count", None, lambda w: w.raw("GET", "/v1/tools/count")),
    Op(
        "POST",
        "/v1/tools/run",
        None,
        lambda w: w.raw("POST", "/v1/tools/run", {"source_code": TOOL_SOURCE, "args": {"sides": 6}}),
    ),
    Op("GET", "/v1/tools/{tool_id}/versions", None, lambda w: w.raw("GET", f"/v1/tools/{w.tool_id}/versions")),
    Op(
        "GET",
        "/v1/agents/{agent_id}/tools",
        "agents.tools.list",
        lambda w: every_item(w.sdk.agents.tools.list(w.agent_id)),
    ),
    Op(
        "PATCH",
        "/v1/agents/{agent_id}/tools/attach/{tool_id}",
        "agents.tools.attach",
        lambda w: w.sdk.agents.tools.attach(w.tool_id, agent_id=w.agent_id),
    ),
    Op("PATCH", "/v1/agents/{agent_id}/tools/detach/{tool_id}", "agents.tools.detach", _detach_tool),
    Op(
        "GET",
        "/v1/agents/{agent_id}/tool-environment",
        None,
        lambda w: w.raw("GET", f"/v1/agents/{w.agent_id}/tool-environment"),
    ),
    Op(
        "PUT",
        "/v1/agents/{agent_id}/tool-environment",
        None,
        lambda w: w.raw("PUT", f"/v1/agents/{w.agent_id}/tool-environment", {"variables": {"DICE": "d20"}}),
    ),
    # archival memory
    Op(
        "GET",
        "/v1/agents/{agent_id}/archival-memory",
        "agents.passages.list",
        lambda w: w.sdk.agents.passages.list(w.agent_id, limit=5),
    ),
    Op(
        "POST",
        "/v1/agents/{agent_id}/archival-memory",
        "agents.passages.create",
        lambda w: w.sdk.agents.passages.create(w.agent_id, text="Ada takes it with milk", tags=["tea"]),
    ),
    Op(
        "GET",
        "/v1/agents/{agent_id}/archival-memory/search",
        "agents.passages.search",
        lambda w: w.sdk.agents.passages.search(w.agent_id, query="tea"),
    ),
    Op("DELETE", "/v1/agents/{agent_id}/archival-memory/{memory_id}", "agents.passages.delete", _delete_passage),
    # O's own: revisions, evaluation, evolution, feedback, sleep-time, context window
    Op("GET", "/v1/agents/{agent_id}/revisions", None, lambda w: w.raw("GET", _agent("/revisions")(w))),
    Op("GET", "/v1/agents/{agent_id}/revisions/current", None, lambda w: w.raw("GET", _agent("/revisions/current")(w))),
    Op("GET", "/v1/agents/{agent_id}/revisions/{number}", None, lambda w: w.raw("GET", _agent("/revisions/1")(w))),
    Op("POST", "/v1/agents/{agent_id}/revisions/{number}/rollback", None, _rollback),
    Op("GET", "/v1/agents/{agent_id}/evaluation", None, lambda w: w.raw("GET", _agent("/evaluation")(w))),
    Op(
        "PUT",
        "/v1/agents/{agent_id}/evaluation",
        None,
        lambda w: w.raw("PUT", _agent("/evaluation")(w), {"cases": []}),
    ),
    Op(
        "POST",
        "/v1/agents/{agent_id}/evaluation/cases",
        None,
        lambda w: w.raw("POST", _agent("/evaluation/cases")(w), {"run_id": w.run_id}, expect=201),
    ),
    Op(
        "GET",
        "/v1/agents/{agent_id}/evaluation/tampering",
        None,
        lambda w: w.raw("GET", _agent("/evaluation/tampering")(w)),
    ),
    Op("GET", "/v1/agents/{agent_id}/evolutions", None, lambda w: w.raw("GET", _agent("/evolutions")(w))),
    Op("POST", "/v1/agents/{agent_id}/evolutions", None, _evolution),
    Op("GET", "/v1/agents/{agent_id}/evolutions/{evolution_id}", None, _get_evolution),
    Op("POST", "/v1/agents/{agent_id}/evolutions/{evolution_id}/stop", None, _stop_evolution),
    Op("POST", "/v1/agents/{agent_id}/evolutions/{evolution_id}/approval", None, _approve_evolution),
    Op("GET", "/v1/agents/{agent_id}/evolution-policy", None, lambda w: w.raw("GET", _agent("/evolution-policy")(w))),
    Op(
        "PUT",
        "/v1/agents/{agent_id}/evolution-policy",
        None,
        lambda w: w.raw("PUT", _agent("/evolution-policy")(w), {"min_hours_between": 0}),
    ),
    Op(
        "POST",
        "/v1/agents/{agent_id}/feedback",
        None,
        lambda w: w.raw("POST", _agent("/feedback")(w), {"run_id": w.run_id, "score": 0.8}, expect=201),
    ),
    Op("POST", "/v1/agents/{agent_id}/sleeptime", None, lambda w: w.raw("POST", _agent("/sleeptime")(w))),
    Op("GET", "/v1/agents/{agent_id}/context", None, lambda w: w.raw("GET", _agent("/context")(w))),
]


# --- Letta API part 1: steps, identities, tags, search, models, tools, agent files ------------------


def _step_id(w: World) -> str:
    if "step_id" not in w.extra:
        w.extra["step_id"] = every_item(w.sdk.steps.list(agent_id=w.agent_id))[0].id
    return str(w.extra["step_id"])


def _identity(w: World, key: str = "user-1") -> dict[str, Any]:
    body = {"identifier_key": key, "name": "Ada", "identity_type": "user"}
    return dict(w.raw("POST", "/v1/identities/", body))


def _attach_identity(w: World) -> Any:
    identity = _identity(w, "attach-me")
    return w.sdk.agents.identities.attach(identity["id"], agent_id=w.new_agent())


def _detach_identity(w: World) -> Any:
    identity, agent = _identity(w, "detach-me"), w.new_agent()
    w.sdk.agents.identities.attach(identity["id"], agent_id=agent)
    return w.sdk.agents.identities.detach(identity["id"], agent_id=agent)


def _import_file(w: World) -> Any:
    text = w.sdk.agents.export_file(w.agent_id)
    return w.sdk.agents.import_file(file=("strict.af", text.encode()))


def _bundle(w: World) -> bytes:
    response = w.http.get(f"/v1/agents/{w.agent_id}/bundle")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-msgpack")
    return response.content


def _import_bundle(w: World) -> Any:
    response = w.http.post(
        "/v1/agents/import-bundle", content=_bundle(w), headers={"content-type": "application/x-msgpack"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _approval(w: World) -> Any:
    agent = w.new_agent(tool_ids=[w.tool_id])
    return w.sdk.agents.tools.update_approval("roll", agent_id=agent, body_requires_approval=True)


OPERATIONS += [
    Op("GET", "/v1/steps/", "steps.list", lambda w: every_item(w.sdk.steps.list(agent_id=w.agent_id))),
    Op("GET", "/v1/steps/{step_id}", "steps.retrieve", lambda w: w.sdk.steps.retrieve(_step_id(w))),
    Op(
        "GET",
        "/v1/steps/{step_id}/messages",
        "steps.messages.list",
        lambda w: every_item(w.sdk.steps.messages.list(_step_id(w))),
    ),
    Op(
        "GET",
        "/v1/steps/{step_id}/metrics",
        "steps.metrics.retrieve",
        lambda w: w.sdk.steps.metrics.retrieve(_step_id(w)),
    ),
    Op("GET", "/v1/steps/{step_id}/trace", "steps.trace.retrieve", lambda w: w.sdk.steps.trace.retrieve(_step_id(w))),
    Op(
        "PATCH",
        "/v1/steps/{step_id}/feedback",
        "steps.feedback.create",
        lambda w: w.sdk.steps.feedback.create(_step_id(w), feedback="positive"),
    ),
    Op("GET", "/v1/runs/{run_id}/trace", "runs.trace.retrieve", lambda w: w.sdk.runs.trace.retrieve(w.run_id)),
    Op("GET", "/v1/tags/", "tags.list", lambda w: w.sdk.tags.list()),
    Op("POST", "/v1/messages/search", "messages.search", lambda w: w.sdk.messages.search(query="roll")),
    Op("POST", "/v1/passages/search", "passages.search", lambda w: w.sdk.passages.search(query="tea")),
    Op("GET", "/v1/models/", "models.list", lambda w: w.sdk.models.list()),
    Op("GET", "/v1/models/embedding", "models.embeddings.list", lambda w: w.sdk.models.embeddings.list()),
    Op("POST", "/v1/tools/search", "tools.search", lambda w: w.sdk.tools.search(query="roll")),
    Op(
        "POST",
        "/v1/agents/{agent_id}/tools/{tool_name}/run",
        "agents.tools.run",
        lambda w: w.sdk.agents.tools.run("roll", agent_id=w.agent_id, args={"sides": 4}),
    ),
    Op("PATCH", "/v1/agents/{agent_id}/tools/approval/{tool_name}", "agents.tools.update_approval", _approval),
    Op("GET", "/v1/agents/{agent_id}/export", "agents.export_file", lambda w: w.sdk.agents.export_file(w.agent_id)),
    Op("POST", "/v1/agents/import", "agents.import_file", _import_file),
    Op("GET", "/v1/agents/{agent_id}/bundle", None, _bundle),
    Op("POST", "/v1/agents/import-bundle", None, _import_bundle),
    Op("PATCH", "/v1/agents/{agent_id}/identities/attach/{identity_id}", "agents.identities.attach", _attach_identity),
    Op("PATCH", "/v1/agents/{agent_id}/identities/detach/{identity_id}", "agents.identities.detach", _detach_identity),
    # conversations
    Op("POST", "/v1/conversations/", "conversations.create", lambda w: w.sdk.conversations.create(agent_id=w.agent_id)),
    Op("GET", "/v1/conversations/", "conversations.list", lambda w: w.sdk.conversations.list(agent_id=w.agent_id)),
    Op(
        "GET",
        "/v1/conversations/{conversation_id}",
        "conversations.retrieve",
        lambda w: w.sdk.conversations.retrieve(_conversation(w)),
    ),
    Op(
        "PATCH",
        "/v1/conversations/{conversation_id}",
        "conversations.update",
        lambda w: w.sdk.conversations.update(_conversation(w), archived=True, model_settings={"temperature": 0.2}),
    ),
    Op(
        "DELETE",
        "/v1/conversations/{conversation_id}",
        "conversations.delete",
        lambda w: w.sdk.conversations.delete(_conversation(w)),
    ),
    Op(
        "POST",
        "/v1/conversations/{conversation_id}/cancel",
        "conversations.cancel",
        lambda w: w.sdk.conversations.cancel(_conversation(w)),
    ),
    Op(
        "POST",
        "/v1/conversations/{conversation_id}/fork",
        "conversations.fork",
        lambda w: w.sdk.conversations.fork(_conversation(w)),
    ),
    Op(
        "POST",
        "/v1/conversations/{conversation_id}/recompile",
        "conversations.recompile",
        lambda w: w.sdk.conversations.recompile(_conversation(w)),
    ),
    Op(
        "GET",
        "/v1/conversations/{conversation_id}/messages",
        "conversations.messages.list",
        lambda w: every_item(w.sdk.conversations.messages.list(_conversation(w), limit=1)),
    ),
    Op(
        "POST",
        "/v1/conversations/{conversation_id}/messages",
        "conversations.messages.create",
        lambda w: list(w.sdk.conversations.messages.create("default", agent_id=w.agent_id, input="hello")),
    ),
    Op("POST", "/v1/conversations/{conversation_id}/compact", "conversations.messages.compact", _conversation_compact),
    Op(
        "POST",
        "/v1/conversations/{conversation_id}/stream",
        "conversations.messages.stream",
        lambda w: list(w.sdk.conversations.messages.stream(_conversation(w))),
    ),
    # identities: in Letta's public docs, not in letta-client 1.12.1
    Op("POST", "/v1/identities/", None, lambda w: _identity(w, "created")),
    Op("GET", "/v1/identities/", None, lambda w: w.raw("GET", "/v1/identities/")),
    Op(
        "PUT",
        "/v1/identities/",
        None,
        lambda w: w.raw("PUT", "/v1/identities/", {"identifier_key": "upserted", "name": "B", "identity_type": "user"}),
    ),
    Op(
        "GET",
        "/v1/identities/{identity_id}",
        None,
        lambda w: w.raw("GET", f"/v1/identities/{_identity(w, 'got')['id']}"),
    ),
    Op(
        "PATCH",
        "/v1/identities/{identity_id}",
        None,
        lambda w: w.raw("PATCH", f"/v1/identities/{_identity(w, 'renamed')['id']}", {"name": "Bea"}),
    ),
    Op(
        "PUT",
        "/v1/identities/{identity_id}/properties",
        None,
        lambda w: w.raw("PUT", f"/v1/identities/{_identity(w, 'props')['id']}/properties", []),
    ),
    Op(
        "DELETE",
        "/v1/identities/{identity_id}",
        None,
        lambda w: w.raw("DELETE", f"/v1/identities/{_identity(w, 'gone')['id']}"),
    ),
    Op("POST", "/v1/mcp-servers/", "mcp_servers.create", _create_mcp_server),
    Op("GET", "/v1/mcp-servers/", "mcp_servers.list", lambda w: (_mcp_server(w), w.sdk.mcp_servers.list())[1]),
    Op(
        "GET",
        "/v1/mcp-servers/{mcp_server_id}",
        "mcp_servers.retrieve",
        lambda w: w.sdk.mcp_servers.retrieve(_mcp_server(w)),
    ),
    Op(
        "PATCH",
        "/v1/mcp-servers/{mcp_server_id}",
        "mcp_servers.update",
        lambda w: w.sdk.mcp_servers.update(_mcp_server(w), config={"server_url": w.extra["mcp_http"].url}),
    ),
    Op("DELETE", "/v1/mcp-servers/{mcp_server_id}", "mcp_servers.delete", _delete_mcp_server),
    Op(
        "PATCH",
        "/v1/mcp-servers/{mcp_server_id}/refresh",
        "mcp_servers.refresh",
        lambda w: w.sdk.mcp_servers.refresh(_mcp_server(w), agent_id=w.agent_id),
    ),
    Op(
        "GET",
        "/v1/mcp-servers/{mcp_server_id}/tools",
        "mcp_servers.tools.list",
        lambda w: w.sdk.mcp_servers.tools.list(_mcp_server(w)),
    ),
    Op(
        "GET",
        "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}",
        "mcp_servers.tools.retrieve",
        lambda w: w.sdk.mcp_servers.tools.retrieve(_mcp_tool(w), mcp_server_id=_mcp_server(w)),
    ),
    Op(
        "POST",
        "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}/run",
        "mcp_servers.tools.run",
        lambda w: w.sdk.mcp_servers.tools.run(_mcp_tool(w), mcp_server_id=_mcp_server(w), args={"a": 1, "b": 2}),
    ),
]


# --- Letta API part 3: archives -----------------------------------------------------------------------------


def _archive(w: World, name: str = "shelf") -> str:
    archive_id = w.sdk.archives.create(name=name, description="shared notes").id
    w.sdk.archives.passages.create(archive_id, text="The shelf holds the tea tins.")
    return archive_id


def _archive_passage(w: World) -> Any:
    archive_id = _archive(w, "one-passage")
    return w.sdk.archives.passages.create(archive_id, text="Ada keeps her tea in a tin.", tags=["tea"])


def _delete_archive_passage(w: World) -> Any:
    archive_id = _archive(w, "delete-passage")
    passage = w.sdk.archives.passages.create(archive_id, text="to be removed")
    return w.sdk.archives.passages.delete(str(passage.id), archive_id=archive_id)


def _attach_archive(w: World) -> Any:
    return w.sdk.agents.archives.attach(_archive(w, "attach-me"), agent_id=w.new_agent())


def _detach_archive(w: World) -> Any:
    archive_id, agent = _archive(w, "detach-me"), w.new_agent()
    w.sdk.agents.archives.attach(archive_id, agent_id=agent)
    return w.sdk.agents.archives.detach(archive_id, agent_id=agent)


OPERATIONS += [
    Op("POST", "/v1/archives/", "archives.create", lambda w: w.sdk.archives.create(name="created")),
    Op("GET", "/v1/archives/", "archives.list", lambda w: every_item(w.sdk.archives.list())),
    Op("GET", "/v1/archives/{archive_id}", "archives.retrieve", lambda w: w.sdk.archives.retrieve(_archive(w, "got"))),
    Op(
        "PATCH",
        "/v1/archives/{archive_id}",
        "archives.update",
        lambda w: w.sdk.archives.update(_archive(w, "renamed"), name="renamed again"),
    ),
    Op("DELETE", "/v1/archives/{archive_id}", "archives.delete", lambda w: w.sdk.archives.delete(_archive(w, "gone"))),
    Op("POST", "/v1/archives/{archive_id}/passages", "archives.passages.create", _archive_passage),
    Op(
        "POST",
        "/v1/archives/{archive_id}/passages/batch",
        "archives.passages.create_many",
        lambda w: w.sdk.archives.passages.create_many(
            _archive(w, "batch"), passages=[{"text": "first turn"}, {"text": "second turn", "tags": ["t"]}]
        ),
    ),
    Op(
        "DELETE", "/v1/archives/{archive_id}/passages/{passage_id}", "archives.passages.delete", _delete_archive_passage
    ),
    # listing an archive's passages: O's own (letta-client 1.12.1 has no method for it)
    Op(
        "GET",
        "/v1/archives/{archive_id}/passages",
        None,
        lambda w: w.raw("GET", f"/v1/archives/{_archive(w, 'listed')}/passages"),
    ),
    Op("PATCH", "/v1/agents/{agent_id}/archives/attach/{archive_id}", "agents.archives.attach", _attach_archive),
    Op("PATCH", "/v1/agents/{agent_id}/archives/detach/{archive_id}", "agents.archives.detach", _detach_archive),
]


# --- Letta API part 3: folders and files ----------------------------------------------------------------


def _folder(w: World, name: str) -> str:
    return w.sdk.folders.create(name=name, description="docs").id


def _file(w: World, folder_id: str, name: str = "notes.md") -> Any:
    """An uploaded file, once the ingestion worker has completed it."""
    meta = w.sdk.folders.files.upload(folder_id, file=(name, b"# Notes\n\nAda likes tea.\n"))
    deadline = time.monotonic() + 30
    while meta.processing_status not in ("completed", "error"):
        assert time.monotonic() < deadline, "the file was not ingested"
        time.sleep(0.05)
        meta = w.sdk.folders.files.retrieve(meta.id, folder_id=folder_id)
    assert meta.processing_status == "completed", meta.error_message
    return meta


def _attached(w: World, name: str) -> tuple[str, str, str]:
    """(agent, folder, file): a new agent with a folder of one completed file attached."""
    folder = _folder(w, name)
    file = _file(w, folder).id
    agent = w.new_agent()
    w.sdk.agents.folders.attach(folder, agent_id=agent)
    return agent, folder, file


def _opened(w: World) -> Any:
    agent, _, file = _attached(w, "opened")
    return w.sdk.agents.files.open(file, agent_id=agent)


def _closed(w: World) -> Any:
    agent, _, file = _attached(w, "closed")
    w.sdk.agents.files.open(file, agent_id=agent)
    return w.sdk.agents.files.close(file, agent_id=agent)


def _closed_all(w: World) -> Any:
    agent, _, file = _attached(w, "closed-all")
    w.sdk.agents.files.open(file, agent_id=agent)
    assert w.sdk.agents.files.close_all(agent) == ["notes.md"]


def _agent_files(w: World) -> Any:
    agent, _, _ = _attached(w, "listed")
    page = w.sdk.agents.files.list(agent)
    assert [f.file_name for f in page.files] == ["notes.md"]


def _detached(w: World) -> Any:
    agent, folder, _ = _attached(w, "detached")
    return w.sdk.agents.folders.detach(folder, agent_id=agent)


def _deleted_file(w: World) -> Any:
    folder = _folder(w, "file-deleted")
    return w.sdk.folders.files.delete(_file(w, folder).id, folder_id=folder)


OPERATIONS += [
    Op("POST", "/v1/folders/", "folders.create", lambda w: _folder(w, "created")),
    Op("GET", "/v1/folders/", "folders.list", lambda w: every_item(w.sdk.folders.list())),
    Op("GET", "/v1/folders/{folder_id}", "folders.retrieve", lambda w: w.sdk.folders.retrieve(_folder(w, "got"))),
    Op(
        "PATCH",
        "/v1/folders/{folder_id}",
        "folders.update",
        lambda w: w.sdk.folders.update(_folder(w, "renamed"), name="renamed2", instructions="read"),
    ),
    Op("DELETE", "/v1/folders/{folder_id}", "folders.delete", lambda w: w.sdk.folders.delete(_folder(w, "gone"))),
    Op(
        "GET",
        "/v1/folders/{folder_id}/agents",
        "folders.agents.list",
        lambda w: w.sdk.folders.agents.list(_attached(w, "with-agent")[1]),
    ),
    Op("POST", "/v1/folders/{folder_id}/upload", "folders.files.upload", lambda w: _file(w, _folder(w, "upload"))),
    Op(
        "GET",
        "/v1/folders/{folder_id}/files",
        "folders.files.list",
        lambda w: every_item(w.sdk.folders.files.list(_attached(w, "files")[1], include_content=True)),
    ),
    Op(
        "GET",
        "/v1/folders/{folder_id}/files/{file_id}",
        "folders.files.retrieve",
        lambda w: (lambda f: w.sdk.folders.files.retrieve(_file(w, f).id, folder_id=f))(_folder(w, "file-got")),
    ),
    Op("DELETE", "/v1/folders/{folder_id}/{file_id}", "folders.files.delete", _deleted_file),
    Op(
        "GET",
        "/v1/agents/{agent_id}/folders",
        "agents.folders.list",
        lambda w: every_item(w.sdk.agents.folders.list(_attached(w, "agent-folders")[0])),
    ),
    Op(
        "PATCH",
        "/v1/agents/{agent_id}/folders/attach/{folder_id}",
        "agents.folders.attach",
        lambda w: _attached(w, "attached"),
    ),
    Op("PATCH", "/v1/agents/{agent_id}/folders/detach/{folder_id}", "agents.folders.detach", _detached),
    Op("GET", "/v1/agents/{agent_id}/files", "agents.files.list", _agent_files),
    Op("PATCH", "/v1/agents/{agent_id}/files/{file_id}/open", "agents.files.open", _opened),
    Op("PATCH", "/v1/agents/{agent_id}/files/{file_id}/close", "agents.files.close", _closed),
    Op("PATCH", "/v1/agents/{agent_id}/files/close-all", "agents.files.close_all", _closed_all),
]


# --- the organization's messages ----------------------------------------------------------------------------


def _retrieved_message(w: World) -> Any:
    newest = w.sdk.messages.list(limit=20)[0]
    found = w.sdk.messages.retrieve(newest.id)
    assert newest.id in [m.id for m in found], found
    return found


OPERATIONS += [
    Op("GET", "/v1/messages/", "messages.list", lambda w: w.sdk.messages.list(limit=5, order="asc")),
    Op("GET", "/v1/messages/{message_id}", "messages.retrieve", _retrieved_message),
]


# --- upload sessions and exports (O's own routes, over raw HTTP) --------------------------------------------


def _upload(w: World) -> dict[str, Any]:
    """A bundle upload session with its bytes sent to its upload URL (no API key: the URL's token)."""
    data = _bundle(w)
    session: dict[str, Any] = w.raw("POST", "/v1/uploads/", {"kind": "bundle", "size": len(data), "name": "sent"})
    sent = httpx.put(session["upload_url"], content=data, headers=session["upload_headers"])
    assert sent.status_code == 200, sent.text
    return session


def _completed_upload(w: World) -> Any:
    session = _upload(w)
    w.raw("POST", f"/v1/uploads/{session['id']}/complete")
    return _settled(w, f"/v1/uploads/{session['id']}")


def _settled(w: World, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (state := w.raw("GET", path))["status"] not in ("completed", "error"):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["status"] == "completed", state
    return dict(state)


def _export(w: World) -> dict[str, Any]:
    started = w.raw("POST", f"/v1/agents/{w.agent_id}/exports", expect=202)
    return _settled(w, f"/v1/exports/{started['id']}")


def _export_content(w: World) -> Any:
    response = w.http.get(_export(w)["download_url"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-msgpack")
    return response.content


OPERATIONS += [
    Op("POST", "/v1/uploads/", None, lambda w: w.raw("POST", "/v1/uploads/", {"kind": "bundle", "size": 1})),
    Op("GET", "/v1/uploads/{upload_id}", None, lambda w: w.raw("GET", f"/v1/uploads/{_upload(w)['id']}")),
    Op("PUT", "/v1/uploads/{upload_id}/content", None, _upload),
    Op("POST", "/v1/uploads/{upload_id}/complete", None, _completed_upload),
    Op("POST", "/v1/agents/{agent_id}/exports", None, _export),
    Op("GET", "/v1/exports/{export_id}", None, _export),
    Op("GET", "/v1/exports/{export_id}/content", None, _export_content),
]
