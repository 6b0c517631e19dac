"""Cursor paging with Letta's semantics on every list: cursors relative to the requested order, each
item exactly once forwards and backwards (letta-client's auto-pagination), also while another client
inserts; bad cursors are a 4xx naming the cursor."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from letta_client import Letta

from o.store.db import Database
from tests.integration.conftest import new_org_key
from tests.integration.sdk.conftest import Live, live, raw_client, strict_client  # noqa: F401
from tests.integration.sdk.operations import TOOL_SOURCE
from tests.servers.script import call

Lister = Callable[..., Any]


@dataclass
class Org:
    sdk: Letta
    http: httpx.Client
    agent_id: str
    block_id: str
    run_id: str


@pytest.fixture(scope="module")
def org(live: Live, db: Database) -> Iterator[Org]:  # noqa: F811
    """One organization with 7 agents, 7 blocks, 5 tools; the first agent has 3 turns (runs, messages,
    steps), 7 passages and 4 blocks; the shared block is attached to 5 agents."""
    key = new_org_key(db)
    sdk = strict_client(live, key)
    with raw_client(live, key) as http:
        config = live.llm_config()
        agents = [
            sdk.agents.create(name=f"a{i}", llm_config=config, memory_blocks=[{"label": "human", "value": "x"}]).id  # type: ignore[arg-type]
            for i in range(7)
        ]
        shared = sdk.blocks.create(label="shared", value="s").id
        for i in range(6):
            sdk.blocks.create(label=f"b{i}", value="v")
        for agent in agents[:5]:
            sdk.agents.blocks.attach(shared, agent_id=agent)
        for label in ("persona", "notes"):
            sdk.agents.blocks.attach(sdk.blocks.create(label=label, value="v").id, agent_id=agents[0])
        for i in range(5):
            tool = sdk.tools.create(source_code=TOOL_SOURCE.replace("roll", f"roll{i}"))
            sdk.agents.tools.attach(tool.id, agent_id=agents[0])
        for i in range(7):
            sdk.agents.passages.create(agents[0], text=f"fact {i}")
        run_ids = []
        for turn in range(3):
            live.model.push(
                call("roll0", _text=f"thinking {turn}", sides=6, request_heartbeat=True),
                call("roll1", sides=4, request_heartbeat=True),
                call("send_message", message=f"answer {turn}"),
            )
            reply = sdk.agents.messages.create(agents[0], messages=[{"role": "user", "content": f"q{turn}"}])
            run_ids += reply.usage.run_ids or []
        yield Org(sdk, http, agents[0], shared, run_ids[0])


# (name, SDK lister, its arguments) for every list letta-client auto-paginates
LISTS: list[tuple[str, Callable[[Org], Lister], Callable[[Org], dict[str, Any]]]] = [
    ("agents", lambda o: o.sdk.agents.list, lambda o: {}),
    ("blocks", lambda o: o.sdk.blocks.list, lambda o: {}),
    ("tools", lambda o: o.sdk.tools.list, lambda o: {}),
    ("runs", lambda o: o.sdk.runs.list, lambda o: {}),
    ("agent blocks", lambda o: o.sdk.agents.blocks.list, lambda o: {"agent_id": o.agent_id}),
    ("agent tools", lambda o: o.sdk.agents.tools.list, lambda o: {"agent_id": o.agent_id}),
    ("agent messages", lambda o: o.sdk.agents.messages.list, lambda o: {"agent_id": o.agent_id}),
    ("block agents", lambda o: o.sdk.blocks.agents.list, lambda o: {"block_id": o.block_id}),
    ("run messages", lambda o: o.sdk.runs.messages.list, lambda o: {"run_id": o.run_id}),
    ("run steps", lambda o: o.sdk.runs.steps.list, lambda o: {"run_id": o.run_id}),
]


def _ids(items: Any) -> list[str]:
    """Item ids in order, one per stored item (a message may show as several Letta messages)."""
    out: list[str] = []
    for item in items:
        if not out or out[-1] != item.id:
            out.append(item.id)
    return out


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("name,lister,args", LISTS, ids=[n for n, _, _ in LISTS])
def test_auto_pagination_sees_each_item_once_both_ways(
    org: Org, name: str, lister: Callable[[Org], Lister], args: Callable[[Org], dict[str, Any]], order: str
) -> None:
    list_ = lister(org)
    whole = _ids(list_(**args(org), order=order, limit=1000).items)
    assert len(whole) >= 3, f"{name}: too few items to page through ({whole})"
    assert len(whole) == len(set(whole))
    forwards = _ids(list_(**args(org), order=order, limit=2))
    assert forwards == whole, f"{name} {order}: forwards {forwards} != {whole}"
    # backwards from the last item: pages of the items nearest before it, each in the requested order
    backwards = list_(**args(org), order=order, limit=2, before=whole[-1])
    pages = [_ids(page.items) for page in backwards.iter_pages()]
    assert [i for page in reversed(pages) for i in page] == whole[:-1], f"{name} {order}: {pages}"
    assert all(len(p) <= 2 for p in pages)


def test_cursors_follow_the_requested_order(org: Org) -> None:
    def ids(**params: Any) -> list[str]:
        r = org.http.get("/v1/agents/", params={"limit": 1000, **params})
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()]

    newest_first = ids(order="desc")
    oldest_first = ids(order="asc")
    assert newest_first == list(reversed(oldest_first))
    oldest, middle, newest = newest_first[-1], newest_first[3], newest_first[0]
    # with order=desc, "after" is older and "before" is newer
    assert ids(order="desc", after=middle) == newest_first[4:]
    assert ids(order="desc", before=middle) == newest_first[:3]
    assert ids(order="desc", before=oldest) == newest_first[:-1]
    assert ids(order="desc", after=newest, before=oldest) == newest_first[1:-1]
    assert ids(order="asc", after=middle) == oldest_first[oldest_first.index(middle) + 1 :]
    assert ids(order="asc", before=oldest) == []
    # with only "before", the page is the items nearest it, in the requested order
    assert ids(order="desc", before=oldest, limit=2) == newest_first[-3:-1]
    assert ids(order="asc", before=newest, limit=2) == oldest_first[-3:-1]
    # Letta's older flag and the sort column
    assert ids(ascending="true") == oldest_first
    assert ids(order_by="updated_at", order="asc")[0] in oldest_first
    r = org.http.get("/v1/agents/", params={"order_by": "name"})
    assert r.status_code == 422 and "order_by" in r.text


def test_archival_memory_pages_by_the_ascending_flag(org: Org) -> None:
    def texts(**params: Any) -> list[str]:
        r = org.http.get(f"/v1/agents/{org.agent_id}/archival-memory", params={"limit": 1000, **params})
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()]

    oldest_first = texts(ascending="true")
    newest_first = texts(ascending="false")
    assert newest_first == list(reversed(oldest_first)) and len(oldest_first) == 7
    assert texts(ascending="false", after=newest_first[2]) == newest_first[3:]
    assert texts(ascending="false", before=newest_first[-1], limit=2) == newest_first[-3:-1]
    seen, cursor = [], None
    while True:
        page = texts(ascending="false", limit=3, **({"after": cursor} if cursor else {}))
        if not page:
            break
        seen += page
        cursor = page[-1]
    assert seen == newest_first


INSERTS = 20


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_while_another_client_inserts(live: Live, db: Database, order: str) -> None:  # noqa: F811
    key = new_org_key(db)
    sdk = strict_client(live, key)
    before_ids = {sdk.blocks.create(label=f"old{i}", value="v").id for i in range(12)}
    asked, done, stop = threading.Semaphore(0), threading.Semaphore(0), threading.Event()
    inserted: list[str] = []

    def insert() -> None:
        """Another client: one insert each time the pager asks (then the pager goes on)."""
        with raw_client(live, key) as http:
            while asked.acquire(timeout=10) and not stop.is_set():
                inserted.append(http.post("/v1/blocks/", json={"label": "new", "value": "v"}).json()["id"])
                done.release()

    thread = threading.Thread(target=insert)
    thread.start()
    seen = []
    try:
        for block in sdk.blocks.list(limit=2, order=order):  # type: ignore[arg-type]
            seen.append(block.id)
            if len(inserted) < INSERTS:  # an insert between every two items the pager reads
                asked.release()
                assert done.acquire(timeout=10)
    finally:
        stop.set()
        asked.release()
        thread.join(10)
    assert len(inserted) >= 10, "the other client did not insert while the list was paged"
    if order == "asc":  # items inserted while paging come after the cursor: they are seen too
        assert set(inserted) <= set(seen)
    old_seen = [i for i in seen if i in before_ids]
    assert sorted(old_seen) == sorted(before_ids), "a pre-existing item was missed or seen twice"
    assert len(seen) == len(set(seen)), "an item was seen twice"


BAD_CURSOR_LISTS = [
    "/v1/agents/",
    "/v1/blocks/",
    "/v1/tools/",
    "/v1/runs/",
    "/v1/agents/{agent_id}/core-memory/blocks",
    "/v1/agents/{agent_id}/tools",
    "/v1/agents/{agent_id}/messages",
    "/v1/agents/{agent_id}/archival-memory",
    "/v1/blocks/{block_id}/agents",
    "/v1/runs/{run_id}/messages",
    "/v1/runs/{run_id}/steps",
]


@pytest.mark.parametrize("path", BAD_CURSOR_LISTS)
def test_bad_cursors_are_named(org: Org, live: Live, db: Database, path: str) -> None:  # noqa: F811
    url = path.format(agent_id=org.agent_id, block_id=org.block_id, run_id=org.run_id)
    # another organization's agent: a real id, but not an item of this list
    with raw_client(live, new_org_key(db)) as other:
        foreign = other.post("/v1/agents/", json={}).json()["id"]
    for param, cursor in (("after", "agent-00000000-0000-4000-8000-000000000000"), ("before", foreign)):
        r = org.http.get(url, params={param: cursor})
        assert r.status_code == 422, f"{path} {param}={cursor}: {r.status_code} {r.text}"
        assert cursor in r.json()["detail"] and param in r.json()["detail"], r.text


def test_revisions_page_by_number_in_the_requested_order(org: Org) -> None:
    agent = org.sdk.agents.create(name="revised").id
    for i in range(3):
        org.sdk.agents.update(agent, system=f"system prompt {i}")

    def numbers(**params: Any) -> list[int]:
        r = org.http.get(f"/v1/agents/{agent}/revisions", params=params)
        assert r.status_code == 200, r.text
        return [rev["number"] for rev in r.json()]

    assert numbers() == [4, 3, 2, 1]
    assert numbers(after=3) == [2, 1]
    assert numbers(before=2) == [4, 3]
    assert numbers(before=1, limit=2) == [3, 2]
    assert numbers(order="asc", after=1, limit=2) == [2, 3]
    assert numbers(order="asc", before=4, limit=2) == [2, 3]


def test_evolutions_page_by_cursor(org: Org) -> None:
    agent = org.sdk.agents.create(name="evolving").id
    started = []
    for _ in range(3):
        evo = org.http.post(f"/v1/agents/{agent}/evolutions", json={}).json()
        started.append(evo["id"])
        org.http.post(f"/v1/agents/{agent}/evolutions/{evo['id']}/stop").raise_for_status()

    def ids(**params: Any) -> list[str]:
        r = org.http.get(f"/v1/agents/{agent}/evolutions", params=params)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()]

    newest_first = list(reversed(started))
    assert ids() == newest_first
    assert ids(after=newest_first[0], limit=1) == newest_first[1:2]
    assert ids(order="asc", before=started[2]) == started[:2]
    assert org.http.get(f"/v1/agents/{agent}/evolutions", params={"after": org.agent_id}).status_code == 422
