"""Evolution history in the agent's own memory: each decision becomes an archival passage.

The evolutions table is the system's record; the passage is the agent's: tagged ``evolution``
and the decision, it is found by archival search and fed back into the next reflection, so the
agent can reason about what it changed before and how that went.
"""

from __future__ import annotations

import json
from typing import Any

from o.agent import revisions
from o.ids import new_id
from o.memory import archival
from o.memory.embeddings import EmbedderSource
from o.observability import logger
from o.store import reflection as reflection_store
from o.store.db import Database
from o.store.evolution import Evolution


def summary_text(evolution: Evolution) -> str:
    figures = evolution.figures or {}
    shadow = figures.get("shadow") or {}
    canary = figures.get("canary") or {}
    decision = evolution.decision.value if evolution.decision is not None else "undecided"
    lines = [
        f"Self-evolution {evolution.id}: {decision.replace('_', ' ')} candidate revision "
        f"{evolution.candidate_revision or '-'} (from revision {evolution.base_revision}).",
        f"Reason: {evolution.reason or '-'}",
        f"Rationale: {evolution.rationale or '-'}",
        "Change:\n" + revisions.describe_diff(evolution.diff or {}),
    ]
    if shadow:
        lines.append(
            f"Shadow test: score {shadow.get('current', {}).get('score')} -> {shadow.get('candidate', {}).get('score')}"
            f", regressions {shadow.get('regressions')}"
        )
        lines += _tests(shadow)
    if canary:
        lines.append("Canary: " + json.dumps({k: canary[k] for k in ("base", "candidate") if k in canary}))
    judged = figures.get("live_judge") or {}
    if judged.get("judged"):
        lines.append(
            f"Live judge: {judged['judged']} sampled live replies scored (share {judged.get('fraction')}), "
            f"{judged.get('tokens', 0)} tokens, ${judged.get('usd', 0)} at list price"
        )
    return "\n".join(lines)


def _tests(shadow: dict[str, Any]) -> list[str]:
    """The gate's tests as lines: which test, on how many cases, the interval and the p-value."""
    lines = []
    evidence = shadow.get("evidence")
    if evidence:
        lines.append(
            f"Gate test: {evidence['test']}; {evidence['cases']} cases, {evidence['wins']} better, "
            f"{evidence['losses']} worse, mean difference {evidence['mean_delta']} (95% {evidence['ci95']}), "
            f"p = {evidence['p_value']} (alpha {evidence['alpha']})"
        )
    for name, guard in (shadow.get("guards") or {}).items():
        verdict = "passed" if guard["passed"] else "failed"
        lines.append(
            f"Guard {name} {verdict}: {guard['above_limit']} of {guard['cases']} cases beyond {guard['limit']}, "
            f"estimate {guard['estimate']} (95% {guard['ci95']}), p = {guard['p_value']}"
        )
    return lines


def remember(db: Database, evolution: Evolution, embedders: EmbedderSource) -> str:
    """Write the decision into the agent's archival memory; returns the passage id.

    Embedding may be unavailable (no local model, provider down); the decision is then stored as a
    plain passage row that the reflection still finds by its ``evolution`` tag, so it is never lost,
    though archival search (which needs the embedding and the indexed text) does not return it.
    """
    assert evolution.decision is not None
    text = summary_text(evolution)
    tags = ["evolution", evolution.decision.value]
    metadata = {
        "evolution_id": evolution.id,
        "decision": evolution.decision.value,
        "candidate_revision": evolution.candidate_revision,
    }
    try:
        with db.transaction() as conn:
            passages = archival.insert(
                conn,
                evolution.organization_id,
                evolution.agent_id,
                text,
                tags=tags,
                metadata=metadata,
                embedders=embedders,
            )
        return passages[0].id
    except Exception:
        logger.exception(
            "archival insert of an evolution decision failed; storing it without an embedding",
            extra={"evolution_id": evolution.id},
        )
    passage_id = new_id("passage")
    with db.transaction() as conn:
        reflection_store.insert_unembedded_passage(
            conn, passage_id, evolution.organization_id, evolution.agent_id, text, tags, metadata
        )
    return passage_id
