"""`o evolve history AGENT --png FILE`: a chart drawn from a real evolution history (one promoted through
its canary, one refused by the gate), read back over the API as the command does."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from PIL import Image

from o.cli import chart, main
from o.evolution import loop
from o.store import evolution as evolution_store
from o.store import orgs
from o.store.db import Database
from o.store.evolution import EvolutionStatus
from o.store.pages import Page
from tests import wiring
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.served import served
from tests.servers.openai_server import OpenAIServer


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_shows_scores_per_revision_and_the_canary(
    db: Database, server: OpenAIServer, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org, agent_id = task.make_agent(db, server)
    deps = task.make_deps(db, canary_steps=(0.75,))  # the canary steps 50% -> 75%, then promotes
    decisions = []
    for proposal in (task.BETTER, task.WORSE):
        world.propose(proposal)
        evo = loop.start(deps, org, agent_id, trigger="cli")
        final = loop.run_local(deps, evo.id, sleep=lambda _s: None, during_bake=task.live_traffic(deps))
        decisions.append(final.decision)
    assert decisions == [EvolutionStatus.PROMOTED, EvolutionStatus.ROLLED_BACK]
    with db.transaction() as conn:
        promoted = evolution_store.list_for_agent(conn, agent_id, Page(limit=5, order="asc"))[0]
    weights = [e["weight"] for e in promoted.figures["canary_evaluations"]]
    # the traffic's split is random (request ids carry the evolution's id): a canary step whose sample
    # was too small to decide bakes again at its weight (phases.evaluate), so a weight may repeat
    assert [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]] == [0.5, 0.75]
    with db.transaction() as conn:
        _, key = orgs.create_api_key(conn, org)

    png = tmp_path / "history.png"
    with served(wiring.app(db)) as url:
        assert main(["evolve", "history", agent_id, "--url", url, "--key", key, "--png", str(png)]) == 0
    out, err = capsys.readouterr()
    assert "decision promoted" in out and "decision rolled_back" in out
    # both panels: the scores and the canary's weights
    size = (int(chart.WIDTH_IN * chart.DPI), int((chart.SCORES_HEIGHT_IN + chart.CANARY_HEIGHT_IN) * chart.DPI))
    assert _png_size(png) == size and f"chart: {png} ({size[0]}x{size[1]} px)" in err
    with Image.open(png) as image:
        image.verify()  # a whole, valid PNG
    with Image.open(png) as image:
        colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    # the promoted candidate's green and the refused one's red were drawn
    assert (0x2E, 0x7D, 0x32) in colours and (0xC6, 0x28, 0x28) in colours


def test_what_the_chart_reads_from_an_evolution() -> None:
    evolutions = [
        {
            "created_at": "2026-01-02T00:00:00Z",
            "base_revision": 2,
            "candidate_revision": 3,
            "decision": "rolled_back",
            "figures": {"shadow": {"current": {"score": 0.8}, "candidate": {"score": 0.5}}},
        },
        {
            "created_at": "2026-01-01T00:00:00Z",
            "base_revision": 1,
            "candidate_revision": 2,
            "decision": "promoted",
            "figures": {
                "shadow": {
                    "current": {"score": 0.5},
                    "candidate": {"score": 0.8},
                    "evidence": {"ci95": [0.1, 0.5]},
                },
                "canary_evaluations": [{"weight": 0.05}, {"weight": 0.25}, {"weight": 0.5}],
            },
        },
        {"created_at": "2026-01-03T00:00:00Z", "base_revision": 3, "candidate_revision": None, "figures": {}},
    ]
    tests = chart.shadowed(evolutions)
    assert [(t.base, t.candidate, t.decision) for t in tests] == [(1, 2, "promoted"), (2, 3, "rolled_back")]
    assert (tests[0].low, tests[0].high) == (pytest.approx(0.6), pytest.approx(1.0))
    assert tests[1].low is None
    assert chart.canary_weights(evolutions) == [(2, [0.05, 0.25, 0.5])]


def test_nothing_to_chart_is_said_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(chart.InvalidInput, match="no evolution of geo has been shadow-tested yet"):
        chart.write_png(tmp_path / "x.png", "geo", [])
    assert not (tmp_path / "x.png").exists()
