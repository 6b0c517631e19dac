"""`o evolve history AGENT --png FILE`: the agent's evolution history as a picture.

The top panel is each revision's shadow score: every evolution's candidate at its revision number, with the
95% interval the gate measured (the base's score plus the interval of the paired mean difference), coloured
by its decision, and the base it was tested against. The bottom panel, when any canary ran, is the canary's
weight at each of its live evaluations, in order (one per bake period). Drawn from what the API serves
(``/v1/agents/{id}/evolutions``), so it shows the same figures as the timeline.

matplotlib is an optional extra (``pip install 'o-agents[chart]'``, ~100 MB with its dependencies): only
this command needs it, and the Lambda layer never carries it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o.errors import InvalidInput, OError

WIDTH_IN, DPI = 10.0, 100
SCORES_HEIGHT_IN, CANARY_HEIGHT_IN = 4.0, 2.4
COLOURS = {"promoted": "#2e7d32", "rolled_back": "#c62828"}
RUNNING = "#1565c0"


class ChartUnavailable(OError):
    """matplotlib is not installed."""

    status_code = 501
    code = "chart_unavailable"


@dataclass(frozen=True, slots=True)
class Shadowed:
    """One evolution's shadow test: the revisions compared, their scores, the interval, the decision."""

    base: int
    candidate: int
    base_score: float
    score: float
    low: float | None
    high: float | None
    decision: str


def shadowed(evolutions: list[dict[str, Any]]) -> list[Shadowed]:
    """The evolutions that were shadow-tested, oldest first."""
    found = []
    for evo in sorted(evolutions, key=lambda e: str(e.get("created_at"))):
        shadow = (evo.get("figures") or {}).get("shadow") or {}
        score = (shadow.get("candidate") or {}).get("score")
        base_score = (shadow.get("current") or {}).get("score")
        if score is None or base_score is None or evo.get("candidate_revision") is None:
            continue
        interval = (shadow.get("evidence") or {}).get("ci95")
        low, high = (base_score + interval[0], base_score + interval[1]) if interval else (None, None)
        decision = str(evo.get("decision") or evo.get("status") or "")
        found.append(
            Shadowed(int(evo["base_revision"]), int(evo["candidate_revision"]), base_score, score, low, high, decision)
        )
    return found


def canary_weights(evolutions: list[dict[str, Any]]) -> list[tuple[int, list[float]]]:
    """Each evolution's canary weights at its live evaluations (candidate revision, weights), oldest first."""
    found = []
    for evo in sorted(evolutions, key=lambda e: str(e.get("created_at"))):
        trail = (evo.get("figures") or {}).get("canary_evaluations") or []
        weights = [float(t["weight"]) for t in trail if isinstance(t, dict) and t.get("weight") is not None]
        if weights:
            found.append((int(evo.get("candidate_revision") or 0), weights))
    return found


def write_png(path: Path, agent_name: str, evolutions: list[dict[str, Any]]) -> tuple[int, int]:
    """Draw the chart into ``path``; returns its size in pixels (width, height)."""
    tests = shadowed(evolutions)
    if not tests:
        raise InvalidInput(f"no evolution of {agent_name} has been shadow-tested yet: there is no score to chart")
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, whatever the environment says
        from matplotlib import pyplot
    except ImportError:
        raise ChartUnavailable("the chart needs matplotlib: pip install 'o-agents[chart]'") from None
    canaries = canary_weights(evolutions)
    heights = [SCORES_HEIGHT_IN] + ([CANARY_HEIGHT_IN] if canaries else [])
    figure, axes = pyplot.subplots(
        len(heights), 1, figsize=(WIDTH_IN, sum(heights)), dpi=DPI, height_ratios=heights, squeeze=False
    )
    try:
        _scores(axes[0][0], agent_name, tests)
        if canaries:
            _canary(axes[1][0], canaries)
        figure.tight_layout()
        figure.savefig(path, format="png", dpi=DPI)
        width, height = figure.canvas.get_width_height()
    finally:
        pyplot.close(figure)
    return int(width), int(height)


def _scores(ax: Any, agent_name: str, tests: list[Shadowed]) -> None:
    for test in tests:
        colour = COLOURS.get(test.decision, RUNNING)
        ax.plot([test.base, test.candidate], [test.base_score, test.score], color=colour, alpha=0.35, linewidth=1)
        ax.scatter([test.base], [test.base_score], facecolors="none", edgecolors="#555555", zorder=3)
        if test.low is not None and test.high is not None:
            below, above = max(test.score - test.low, 0.0), max(test.high - test.score, 0.0)
            ax.errorbar([test.candidate], [test.score], yerr=[[below], [above]], color=colour, capsize=4, zorder=2)
        ax.scatter([test.candidate], [test.score], color=colour, zorder=4)
        label = test.decision.replace("_", " ")
        ax.annotate(label, (test.candidate, test.score), textcoords="offset points", xytext=(6, 4), fontsize=8)
    for decision, colour in (*COLOURS.items(), ("undecided", RUNNING)):
        ax.scatter([], [], color=colour, label=decision.replace("_", " "))
    ax.scatter([], [], facecolors="none", edgecolors="#555555", label="base it was tested against")
    revisions = sorted({t.base for t in tests} | {t.candidate for t in tests})
    ax.set_xticks(revisions)
    ax.set_xlabel("revision")
    ax.set_ylabel("shadow score (95% interval)")
    ax.set_title(f"{agent_name}: shadow score per revision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _canary(ax: Any, canaries: list[tuple[int, list[float]]]) -> None:
    from matplotlib.ticker import MaxNLocator

    start = 1
    for revision, weights in canaries:
        xs = list(range(start, start + len(weights)))
        ax.step(xs, weights, where="post", marker="o", label=f"revision {revision}")
        start += len(weights)
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0.5, start - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("canary evaluation, in order (one per bake period)")
    ax.set_ylabel("canary weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
