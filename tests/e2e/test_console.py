"""The console in a real Chromium against a real `o serve`, with a scripted model on the OpenAI wire.

One scenario, as an owner would go: sign in with a key, create an agent (model and embedding from the
pickers), chat with a streamed reply that edits memory, edit a block and find it in the next prompt the
model receives, rate a step, open the run's trace, view the evolution timeline after a scripted
evolution, roll back — then the same pages at phone width. ``CONSOLE_SCREENSHOTS=DIR`` saves the
README's pictures there.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import postgres_data_dir
from tests.e2e import browser
from tests.e2e.conftest import Server, start_serve
from tests.integration.evolution import task
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, call

playwright_api = pytest.importorskip("playwright.sync_api")
# a first reply loads the embedding model and the like: on a shared 2-core machine that takes seconds
playwright_api.expect.set_options(timeout=30_000)


def _system(body: dict[str, Any]) -> str:
    first = (body.get("messages") or [{}])[0]
    content = first.get("content")
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])


@pytest.fixture(scope="module")
def chromium() -> Path:
    path, why = browser.chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the console's browser tests must run in CI: {why}")
        pytest.skip(f"no browser for the console tests: {why}")
    return path


@pytest.fixture(scope="module")
def world() -> task.World:
    return task.World()


@pytest.fixture(scope="module")
def model(world: task.World) -> Iterator[OpenAIServer]:
    with OpenAIServer(Script(default=world)) as server:
        yield server


@pytest.fixture(scope="module")
def served(model: OpenAIServer) -> Iterator[Server]:
    path = postgres_data_dir("o-e2e-")
    process = start_serve(path, {"O_SLEEPTIME": "false", "O_LLM_OPENAI_BASE_URL": model.base_url})
    yield process.server
    process.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def page(chromium: Path) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(headless=True, executable_path=str(chromium))
        context = launched.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        launched.close()


def _key(served: Server) -> str:
    """A new key, once the server accepts it."""
    key = served.new_key()
    answers = []
    for _ in range(40):
        answer = httpx.get(f"{served.url}/v1/agents/", params={"limit": 1}, headers={"Authorization": f"Bearer {key}"})
        if answer.status_code == 200:
            return key
        answers.append(answer.status_code)
        time.sleep(0.5)
    raise AssertionError(f"the server never accepted the new key: {answers[-3:]}")


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _no_sideways_scroll(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "wider than the screen"


def test_console_scenario(page: Any, served: Server, model: OpenAIServer, world: task.World) -> None:
    expect = playwright_api.expect
    key = _key(served)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    refused: list[str] = []  # an API error the scenario did not expect, named in a failure's message
    page.on("response", lambda r: r.status >= 400 and refused.append(f"{r.status} {r.url}: {r.text()}"))

    # sign in, by keyboard: the key is kept in this tab's sessionStorage
    page.goto(f"{served.url}/console")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    try:
        expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    except AssertionError as exc:
        raise AssertionError(f"sign-in failed; the API answered: {refused}") from exc
    assert page.evaluate("sessionStorage.getItem('o-console-key')") == key

    # create an agent with the pickers fed by /v1/models/ and /v1/models/embedding
    page.get_by_label("Name", exact=True).fill("ada-agent")
    expect(page.get_by_label("Model", exact=True).locator("option[value='openai/gpt-4o-mini']")).to_have_count(1)
    page.get_by_label("Model", exact=True).select_option("openai/gpt-4o-mini")
    expect(page.get_by_label("Embedding model").locator("option")).not_to_have_count(1)
    page.get_by_label("Tags").last.fill("demo, chess")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name="ada-agent")).to_be_visible()
    agent_id = page.url.rsplit("/", 1)[1]
    assert agent_id.startswith("agent-")
    expect(page.get_by_label("<human>")).to_have_value("Nothing known yet.")

    # a streamed reply whose first step edits memory: the edit and the tool call are shown inline
    model.push(
        call("core_memory_append", label="human", content="Ada loves chess.", request_heartbeat=True),
        call("send_message", message="Noted: you love chess, Ada."),
    )
    page.get_by_role("textbox", name="Message").fill("I am Ada and I love chess.")
    page.get_by_role("textbox", name="Message").press("Enter")
    log = page.get_by_role("log", name="Conversation")
    expect(log).to_contain_text("Noted: you love chess, Ada.")
    expect(log).to_contain_text("✎ memory edit")
    expect(log).to_contain_text("core_memory_append")
    expect(page.get_by_label("<human>")).to_have_value("Nothing known yet.\nAda loves chess.")

    # feedback on the first step: thumbs up and a comment
    expect(page.locator("form.feedback")).to_have_count(2)
    page.locator("form.feedback").first.get_by_role("button", name="Good").click()
    page.locator("form.feedback").first.get_by_label("Comment").fill("remembered it right")
    page.locator("form.feedback").first.get_by_role("button", name="Send feedback").click()
    expect(page.locator("form.feedback").first).to_contain_text("Feedback saved")
    headers = {"Authorization": f"Bearer {key}"}
    rated = httpx.get(f"{served.url}/v1/steps/", params={"agent_id": agent_id, "has_feedback": True}, headers=headers)
    assert [s["feedback"] for s in rated.json()] == ["positive"], rated.text

    # edit a block; the next prompt the model receives has it
    page.get_by_label("<human>").fill("Name: Ada. Plays chess on Sundays.")
    page.get_by_role("button", name="Save human").click()
    expect(page.get_by_role("form", name="Memory block human")).to_contain_text("Saved")
    expect(page.locator("pre.compiled")).to_contain_text("Plays chess on Sundays", use_inner_text=False)
    asked = len(model.requests)
    page.get_by_role("textbox", name="Message").fill("What is the capital of France?")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log).to_contain_text("Paris")
    assert "Plays chess on Sundays" in _system(model.requests[asked])
    _shot(page, "agent.png")

    # the first run's trace: steps with tokens, latency, cost and the tool call
    page.get_by_role("link", name="Open this run's trace").first.click()
    expect(page.get_by_role("heading", name="2 step(s)")).to_be_visible()
    expect(page.locator("li.step").first).to_contain_text("core_memory_append")
    expect(page.locator("li.step").first).to_contain_text("Latency")
    expect(page.locator("li.step").first).to_contain_text("total")
    expect(page.locator("li.step").first).to_contain_text("positive")

    # a scripted evolution (as `o evolve` / the API starts one), then its timeline
    suite = task.suite().model_dump(mode="json")
    assert httpx.put(f"{served.url}/v1/agents/{agent_id}/evaluation", json=suite, headers=headers).status_code == 200
    world.propose(task.BETTER)
    budget = {"wait": True, "bake_seconds": 0, "canary_weight": 0.5, "canary_steps": [], "replay_sample": 2}
    started = httpx.post(f"{served.url}/v1/agents/{agent_id}/evolutions", json=budget, headers=headers, timeout=60)
    assert started.status_code == 202, started.text
    evolution = started.json()
    page.goto(f"{served.url}/console/#/agents/{agent_id}/evolution")
    expect(page.get_by_role("img", name="Evolution timeline")).to_be_visible()
    table = page.get_by_role("region", name="Evolutions")
    expect(table).to_contain_text(evolution["status"])
    expect(table).to_contain_text(task.BETTER["rationale"])
    expect(table).to_contain_text("95%")
    assert page.locator("svg.timeline path.weight").count() == 1
    expect(page.get_by_role("region", name="Compare revisions")).to_contain_text("changed line(s)")
    expect(page.get_by_role("region", name="Compare revisions")).to_contain_text("Answer in one word.")
    _shot(page, "evolution.png")

    # roll back to revision 1, as `o evolve rollback` does
    newest = httpx.get(f"{served.url}/v1/agents/{agent_id}/revisions", headers=headers).json()[0]["number"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to r2").click()
    expect(page.locator("#notice")).to_contain_text(f"now runs revision {newest + 1} (= revision 2)")
    now = httpx.get(f"{served.url}/v1/agents/{agent_id}/revisions/current", headers=headers).json()
    assert now["number"] == newest + 1 and "Answer in one word." in now["config"]["system"]

    # pause evolution: the owner's policy, as `o evolve policy --set` writes it
    page.get_by_role("button", name="Pause evolution").click()
    expect(page.get_by_role("button", name="Resume evolution")).to_be_visible()
    policy = httpx.get(f"{served.url}/v1/agents/{agent_id}/evolution-policy", headers=headers).json()
    assert policy["schedule"] == "manual"

    # phone width: the same pages, no sideways scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    _no_sideways_scroll(page)
    page.goto(f"{served.url}/console/#/agents/{agent_id}")
    expect(page.get_by_role("heading", name="ada-agent")).to_be_visible()
    _no_sideways_scroll(page)
    assert errors == [] and refused == [], (errors, refused)


def test_console_shows_api_errors_and_asks_again_for_a_refused_key(page: Any, served: Server) -> None:
    expect = playwright_api.expect
    page.goto(f"{served.url}/console/")
    page.get_by_label("API key").fill("sk-o-not-a-key")
    page.get_by_role("button", name="Open console").click()
    expect(page.locator("main [role=alert]")).to_contain_text("401")
    page.get_by_label("API key").fill(_key(served))
    page.get_by_role("button", name="Open console").click()
    page.goto(f"{served.url}/console/#/agents/agent-00000000-0000-0000-0000-000000000000")
    expect(page.locator("main [role=alert]")).to_contain_text("404")
