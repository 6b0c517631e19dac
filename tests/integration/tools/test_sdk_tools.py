"""Tools as Letta shows them, driven through letta-client in strict mode (every response validated
against the SDK's own types): base tools as records, include_base_tools, attach/detach of built-ins,
tools.search, agents.tools.run with the agent's secrets, and per-agent approval that pauses the loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import letta_client
import pytest
import uvicorn
from letta_client import Letta

from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.config import AgentSettings
from o.ids import new_id
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, call

BASE = {
    "send_message": "letta_core",
    "core_memory_append": "letta_memory_core",
    "core_memory_replace": "letta_memory_core",
    "memory_insert": "letta_memory_core",
    "memory_replace": "letta_memory_core",
    "memory_rethink": "letta_sleeptime_core",
    "archival_memory_insert": "letta_core",
    "archival_memory_search": "letta_core",
    "conversation_search": "letta_core",
}
V1 = {"send_message", "core_memory_append", "core_memory_replace", "archival_memory_insert"}
V1 |= {"archival_memory_search", "conversation_search"}

WEATHER = '''
def get_weather(city: str) -> str:
    """Look up the weather forecast for a city.

    Args:
        city: The city.
    """
    import os
    return f"{city}: sunny (key {os.environ['WEATHER_KEY'][:3]}...)"
'''
INVOICE = '''
def send_invoice(customer: str, amount: float) -> str:
    """Email an invoice to a customer for payment.

    Args:
        customer: Who pays.
        amount: How much.
    """
    raise RuntimeError("mail server down")
'''
ORDERS = '''
from typing import List
from pydantic import BaseModel, Field

class Order(BaseModel):
    """An order to place."""
    order_id: int
    quantity: int = Field(1, ge=1, description="How many")

def place_orders(orders: List[Order]) -> str:
    """Place orders.

    Args:
        orders: The orders.
    """
    return str(sum(o["quantity"] for o in orders))
'''


@dataclass
class Live:
    url: str
    model: OpenAIServer
    db: Database

    def client(self) -> Letta:
        return Letta(base_url=self.url, api_key=new_org_key(self.db), max_retries=0, _strict_response_validation=True)

    def llm_config(self) -> dict[str, Any]:
        return {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": self.model.base_url,
            "context_window": 128000,
        }


@pytest.fixture(scope="module")
def live(db: Database) -> Iterator[Live]:
    with OpenAIServer(Script(default=call("send_message", message="noted"))) as model:
        engine = Engine(
            db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, settings=AgentSettings(), prompts=PromptCache()
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        app = wiring.app(db, engine=engine)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            yield Live(f"http://127.0.0.1:{port}", model, db)
        finally:
            server.should_exit = True
            thread.join(5)


# the local model under a name the SDK's types know (O's default shows "local", which they do not)
EMBEDDING = {"embedding_endpoint_type": "hugging-face", "embedding_model": "all-MiniLM-L6-v2", "embedding_dim": 384}


def _agent(letta: Letta, live: Live, **extra: Any) -> Any:
    return letta.agents.create(
        name="tooled",
        llm_config=live.llm_config(),
        embedding_config=EMBEDDING,
        memory_blocks=[{"label": "human", "value": "Unknown user.", "limit": 2000}],
        **extra,
    )


def test_base_tools_are_records_in_the_list_and_in_each_agent(live: Live) -> None:
    letta = live.client()
    tools = {t.name: t for t in letta.tools.list(limit=100)}
    assert {name: tools[name].tool_type for name in BASE} == BASE
    letta_only = {t.name for t in letta.tools.list(return_only_letta_tools=True)}
    assert letta_only == set(BASE)
    custom = letta.tools.create(source_code=WEATHER)
    assert {t.name for t in letta.tools.list(exclude_tool_types=["letta_core", "letta_memory_core"])} == {
        "memory_rethink",
        custom.name,
    }
    assert [t.id for t in letta.tools.list(tool_ids=[custom.id, tools["send_message"].id])] != []

    # a v2 agent gets all nine, a memgpt_agent its six, and include_base_tools=False none
    agent = _agent(letta, live)
    assert {t.name for t in agent.tools} == set(BASE)
    assert {t.id for t in agent.tools} == {tools[n].id for n in BASE}
    legacy = _agent(letta, live, agent_type="memgpt_agent")
    assert {t.name for t in legacy.tools} == V1
    bare = _agent(letta, live, include_base_tools=False, tool_ids=[custom.id])
    assert [t.name for t in bare.tools] == ["get_weather"]
    assert [t.name for t in letta.agents.tools.list(bare.id)] == ["get_weather"]

    # attach and detach a built-in by id, like any tool
    after = letta.agents.tools.attach(tools["conversation_search"].id, agent_id=bare.id)
    assert {t.name for t in after.tools} == {"get_weather", "conversation_search"}
    after = letta.agents.tools.detach(tools["send_message"].id, agent_id=agent.id)
    assert "send_message" not in {t.name for t in after.tools}
    assert {t.name for t in letta.agents.retrieve(agent.id).tools} == set(BASE) - {"send_message"}


def test_what_the_model_is_offered_follows_the_records(live: Live) -> None:
    letta = live.client()
    tools = {t.name: t for t in letta.tools.list(limit=100)}
    bare = _agent(letta, live, include_base_tools=False, tool_ids=[tools["send_message"].id])
    live.model.script.reset()
    letta.agents.messages.create(bare.id, messages=[{"role": "user", "content": "hello"}])
    offered = {t["function"]["name"] for t in live.model.requests[0]["tools"]}
    assert offered == {"send_message"}
    letta.agents.tools.detach(tools["send_message"].id, agent_id=bare.id)
    letta.agents.tools.attach(tools["archival_memory_search"].id, agent_id=bare.id)
    live.model.script.reset()
    live.model.script.push(call("archival_memory_search", query="boats"), call("send_message", message="none"))
    letta.agents.messages.create(bare.id, messages=[{"role": "user", "content": "boats?"}])
    offered = {t["function"]["name"] for t in live.model.requests[0]["tools"]}
    assert offered == {"archival_memory_search"}


def test_base_tools_cannot_be_rewritten_nor_shadowed(live: Live) -> None:
    letta = live.client()
    send = next(iter(letta.tools.list(name="send_message")))
    with pytest.raises(letta_client.UnprocessableEntityError, match="base tools"):
        letta.tools.update(send.id, source_code=WEATHER)
    with pytest.raises(letta_client.UnprocessableEntityError, match="base tools"):
        letta.tools.delete(send.id)
    shadow = "def send_message(message: str) -> str:\n    '''Mine.'''\n    return message\n"
    with pytest.raises(letta_client.ConflictError):
        letta.tools.create(source_code=shadow)
    with pytest.raises(letta_client.ConflictError, match="base tools"):
        letta.tools.upsert(source_code=shadow)
    # its settings may change
    changed = letta.tools.update(send.id, tags=["core"], return_char_limit=500)
    assert changed.tags == ["core"] and changed.return_char_limit == 500


def test_pydantic_typed_tool_gets_its_schema_through_the_sdk(live: Live) -> None:
    letta = live.client()
    tool = letta.tools.create(source_code=ORDERS)
    orders = tool.json_schema["parameters"]["properties"]["orders"]
    assert orders == {
        "type": "array",
        "items": {
            "type": "object",
            "description": "An order to place.",
            "properties": {
                "order_id": {"type": "integer"},
                "quantity": {"type": "integer", "minimum": 1, "description": "How many", "default": 1},
            },
            "required": ["order_id"],
        },
        "description": "The orders.",
    }


def test_search_ranks_the_organizations_tools(live: Live) -> None:
    letta = live.client()
    weather = letta.tools.create(source_code=WEATHER, tags=["forecast"])
    invoice = letta.tools.create(source_code=INVOICE)
    other = live.client()
    other.tools.create(source_code=WEATHER.replace("get_weather", "their_weather"))
    for mode in ("fts", "vector", "hybrid"):
        hits = letta.tools.search(query="weather forecast", search_mode=mode, limit=5)  # type: ignore[arg-type]
        assert hits[0].tool.id == weather.id, mode
        assert "their_weather" not in {h.tool.name for h in hits}
        assert all(h.combined_score >= hits[-1].combined_score for h in hits)
    hybrid = letta.tools.search(query="email an invoice for payment", limit=3)
    assert hybrid[0].tool.id == invoice.id and hybrid[0].fts_rank == 1 and hybrid[0].vector_rank is not None
    only_core = letta.tools.search(query="memory", tool_types=["letta_memory_core"], search_mode="fts")
    assert only_core and {h.tool.tool_type for h in only_core} == {"letta_memory_core"}
    tagged = letta.tools.search(query="city", tags=["forecast"])
    assert [h.tool.id for h in tagged] == [weather.id]
    with pytest.raises(letta_client.UnprocessableEntityError):
        letta.tools.search(query="x", search_mode="fuzzy")  # type: ignore[arg-type]


def test_run_an_agents_tool_with_its_secrets(live: Live) -> None:
    letta = live.client()
    weather = letta.tools.create(source_code=WEATHER)
    invoice = letta.tools.create(source_code=INVOICE)
    agent = _agent(letta, live, tool_ids=[weather.id, invoice.id])
    # the agent's tool variables, sealed at rest (O's route: the SDK's secrets are set on agent create/update)
    put = httpx.put(
        f"{live.url}/v1/agents/{agent.id}/tool-environment",
        json={"variables": {"WEATHER_KEY": "abc-123"}},
        headers={"Authorization": f"Bearer {letta.api_key}"},
    )
    assert put.status_code == 200, put.text
    result = letta.agents.tools.run("get_weather", agent_id=agent.id, args={"city": "Oslo"})
    assert result.status == "success" and result.func_return == "Oslo: sunny (key abc...)"
    failed = letta.agents.tools.run("send_invoice", agent_id=agent.id, args={"customer": "ada", "amount": 3})
    assert failed.status == "error" and "mail server down" in str(failed.func_return)
    # a base tool runs against the agent's memory
    edited = letta.agents.tools.run(
        "core_memory_append", agent_id=agent.id, args={"label": "human", "content": "Likes tea."}
    )
    assert edited.status == "success"
    assert letta.agents.blocks.retrieve("human", agent_id=agent.id).value == "Unknown user.\nLikes tea."
    wrong = letta.agents.tools.run("core_memory_replace", agent_id=agent.id, args={"label": "human"})
    assert wrong.status == "error" and "missing required arguments" in str(wrong.func_return)
    with pytest.raises(letta_client.NotFoundError, match="no tool named 'place_orders'"):
        letta.agents.tools.run("place_orders", agent_id=agent.id, args={})
    # another organization sees neither the agent nor its tools
    other = live.client()
    with pytest.raises(letta_client.NotFoundError):
        other.agents.tools.run("get_weather", agent_id=agent.id, args={"city": "Oslo"})
    with pytest.raises(letta_client.NotFoundError):
        letta.agents.tools.run("get_weather", agent_id=new_id("agent"), args={"city": "Oslo"})


def test_approval_per_tool_per_agent_pauses_the_loop(live: Live) -> None:
    letta = live.client()
    agent = _agent(letta, live)
    state = letta.agents.tools.update_approval("core_memory_append", agent_id=agent.id, body_requires_approval=True)
    assert state is not None
    assert [r.tool_name for r in state.tool_rules or [] if r.type == "requires_approval"] == ["core_memory_append"]
    live.model.script.reset()
    live.model.script.push(call("core_memory_append", _id="call_gate", label="human", content="Owns a boat."))
    out = letta.agents.messages.create(agent.id, messages=[{"role": "user", "content": "I own a boat"}])
    assert out.stop_reason.stop_reason == "requires_approval"
    assert out.messages[-1].message_type == "approval_request_message"
    # the memory was not touched while the call waits
    assert letta.agents.blocks.retrieve("human", agent_id=agent.id).value == "Unknown user."
    live.model.script.push(call("send_message", message="Noted."))
    letta.agents.messages.create(
        agent.id,
        messages=[
            {"type": "approval", "approvals": [{"type": "approval", "tool_call_id": "call_gate", "approve": True}]}
        ],
    )
    assert "Owns a boat." in letta.agents.blocks.retrieve("human", agent_id=agent.id).value

    # turned off again: the rule goes, the tool runs at once
    state = letta.agents.tools.update_approval("core_memory_append", agent_id=agent.id, body_requires_approval=False)
    assert state is not None and not [r for r in state.tool_rules or [] if r.type == "requires_approval"]
    with pytest.raises(letta_client.NotFoundError):
        letta.agents.tools.update_approval("get_weather", agent_id=agent.id, body_requires_approval=True)


def test_a_tool_that_requires_approval_by_default_brings_its_rule(live: Live) -> None:
    letta = live.client()
    risky = letta.tools.create(source_code=INVOICE, default_requires_approval=True)
    agent = _agent(letta, live, include_base_tools=False)
    state = letta.agents.tools.attach(risky.id, agent_id=agent.id)
    assert [(r.tool_name, r.type) for r in state.tool_rules or []] == [("send_invoice", "requires_approval")]


def test_a_model_that_has_no_schema_is_refused_by_name(live: Live) -> None:
    letta = live.client()
    recursive = ORDERS.replace("order_id: int", "order_id: int\n    parts: List['Order']")
    with pytest.raises(letta_client.UnprocessableEntityError, match="'Order' refers to itself"):
        letta.tools.create(source_code=recursive)
    # a class body is read, not run: a call in a default only makes the field optional
    sneaky = ORDERS.replace("order_id: int", "order_id: int = __import__('os').getpid()")
    tool = letta.tools.create(source_code=sneaky)
    order = tool.json_schema["parameters"]["properties"]["orders"]["items"]
    assert "required" not in order and "default" not in order["properties"]["order_id"]
