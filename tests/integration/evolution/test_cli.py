"""`o evolve ...` against the real database, in-process."""

from __future__ import annotations

import json

import pytest

from o.cli import main
from o.config import load_settings
from o.evolution import loop
from o.store.db import Database
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.servers.openai_server import OpenAIServer


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OPENAI_API_KEY": "sk-test",
        # the agents' endpoint is the protocol server on loopback, which the operator lets them name
        "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1",
        "O_EVOLUTION_BAKE_SECONDS": "0",
        "O_LLM_RETRY_BASE_DELAY_S": "0.001",
    }.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()


def test_start_list_show_rollback_stop(
    pg_url: str, db: Database, server: OpenAIServer, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    org, agent_id = task.make_agent(db, server)
    flags = ["--database-url", pg_url, "--org", org]
    world.propose(task.WORSE)
    assert main(["evolve", "start", agent_id, *flags, "--max-seconds", "120"]) == 3
    out = capsys.readouterr().out
    phases = [line.split("]")[0].strip("[ ") for line in out.splitlines() if line.startswith("[")]
    assert phases[:4] == ["started", "started", "reflected", "proposed"] and phases[-1] == "rolled_back"
    assert "rolled_back: gate refused" in out

    assert main(["evolve", "list", agent_id, *flags]) == 0
    listing = capsys.readouterr().out
    assert "rolled_back" in listing and "1->2" in listing and "shadow" in listing
    evolution_id = listing.splitlines()[1].split()[0]
    assert main(["evolve", "show", agent_id, evolution_id, *flags]) == 0
    assert "[   proposed]" in capsys.readouterr().out

    assert main(["evolve", "rollback", agent_id, "1", *flags, "--rationale", "cli"]) == 0
    assert "now runs revision 3" in capsys.readouterr().out
    assert main(["evolve", "stop", "evolution-nope", *flags]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["evolve", "list", agent_id, "--database-url", pg_url, "--org", "no-such-org"]) == 1


def test_policy_and_approval(
    pg_url: str, db: Database, server: OpenAIServer, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    org, agent_id = task.make_agent(db, server)
    flags = ["--database-url", pg_url, "--org", org]
    assert (
        main(["evolve", "policy", agent_id, *flags, "--set", '{"approval": "canary", "max_tokens_per_day": 90000}'])
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["approval"] == "canary" and shown["max_tokens_per_day"] == 90000
    assert main(["evolve", "policy", agent_id, *flags, "--set", '{"approval": "always"}']) == 1
    assert "not a valid evolution policy" in capsys.readouterr().err

    deps = task.make_deps(db)
    world.propose(task.BETTER)
    evo = loop.start(deps, org, agent_id, trigger="cli")
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        result = loop.step(deps, evo.id, action)
    assert result.next == "await"
    assert main(["evolve", "approve", agent_id, evo.id, *flags, "--comment", "go"]) == 0
    assert "approved" in capsys.readouterr().out
    assert loop.step(deps, evo.id, "await").next == "canary"
    assert main(["evolve", "approve", agent_id, evo.id, *flags]) == 1  # nothing waits any more
    assert "not waiting for an approval" in capsys.readouterr().err
    loop.stop(deps, org, evo.id)
