"""Pure parts of evolution: revision configs and diffs, scoring, the gate, proposal parsing, the ASL."""

from __future__ import annotations

import json

import pytest

from o.agent import revisions
from o.errors import InvalidInput
from o.evolution import evaluator, propose, statemachine

BASE = {
    "system": "Be helpful.\nUse send_message.",
    "blocks": [
        {"label": "persona", "limit": 500, "description": "who I am", "read_only": False},
        {"label": "human", "limit": 500, "description": None, "read_only": False},
    ],
    "tool_ids": ["tool-b", "tool-a"],
    "tool_rules": [],
    "llm_config": {"model": "gpt-4o-mini", "temperature": 0.7},
}


def test_normalize_sorts_and_validates() -> None:
    norm = revisions.normalize(BASE)
    assert [b["label"] for b in norm["blocks"]] == ["human", "persona"]
    assert norm["tool_ids"] == ["tool-a", "tool-b"]
    assert revisions.config_hash(norm) == revisions.config_hash(revisions.normalize(dict(reversed(BASE.items()))))
    bad_cases = [
        {**BASE, "gate": {}},
        {k: v for k, v in BASE.items() if k != "system"},
        {**BASE, "blocks": [{"label": "x", "value": "secret"}]},
        {**BASE, "blocks": [{"label": "x"}, {"label": "x"}]},
        {**BASE, "blocks": [{"label": " "}]},
        {**BASE, "blocks": [{"label": "x", "limit": 0}]},
        {**BASE, "llm_config": {}},
        {**BASE, "tool_rules": ["x"]},
        {**BASE, "system": 3},
    ]
    for bad in bad_cases:
        with pytest.raises(InvalidInput):
            revisions.normalize(bad)


def test_diff_names_every_change() -> None:
    old = revisions.normalize(BASE)
    new = revisions.normalize(
        {
            **BASE,
            "system": "Be helpful.\nAnswer in one word.",
            "blocks": [{"label": "persona", "limit": 900, "description": "who I am"}, {"label": "notes", "limit": 50}],
            "tool_ids": ["tool-a", "tool-c"],
            "tool_rules": [{"type": "exit_loop", "tool_name": "send_message"}],
            "llm_config": {"model": "gpt-4o-mini", "temperature": 0.2},
        }
    )
    d = revisions.diff(old, new)
    assert "-Use send_message." in d["system"] and "+Answer in one word." in d["system"]
    assert d["blocks"]["added"][0]["label"] == "notes" and d["blocks"]["removed"] == ["human"]
    assert d["blocks"]["changed"] == {"persona": {"limit": {"from": 500, "to": 900}}}
    assert d["tool_ids"] == {"added": ["tool-c"], "removed": ["tool-b"]}
    assert d["llm_config"] == {"temperature": {"from": 0.7, "to": 0.2}}
    assert "tool_rules" in d
    text = revisions.describe_diff(d)
    assert "block added: notes" in text and "llm_config.temperature: 0.7 -> 0.2" in text
    assert revisions.diff(old, old) == {} and revisions.describe_diff({}) == "no change"
    assert revisions.diff(None, old) == {}


def test_checks_and_combined_score() -> None:
    checks = evaluator.Checks(contains=["Paris"], not_contains=["London"], max_chars=10, regex=r"^[A-Z]")
    assert evaluator.check_score(checks, "Paris") == 1.0
    assert evaluator.check_score(checks, "paris, not London") == pytest.approx(1 / 4)
    assert evaluator.check_score(evaluator.Checks(), "anything") is None
    assert evaluator.combine(1.0, 0.5, 0.3, ok=True) == pytest.approx(0.85)
    assert evaluator.combine(None, 0.5, 0.3, ok=True) == pytest.approx(0.5)
    assert evaluator.combine(1.0, None, 0.3, ok=True) == pytest.approx(1.0)
    assert evaluator.combine(None, None, 0.3, ok=True) == 1.0
    assert evaluator.combine(1.0, 1.0, 0.3, ok=False) == 0.0


def _case(name: str, score: float, checks: float | None = 1.0, ok: bool = True, ms: float = 100, tokens: int = 50):
    return evaluator.CaseResult(name, "in", "out", ok, score, checks, None, ms, tokens)


def _summary(scores: list[float], *, ms: float = 100, tokens: int = 50, failing: int = 0) -> evaluator.Summary:
    cases = [_case(f"c{i}", s, ms=ms, tokens=tokens) for i, s in enumerate(scores)]
    for i in range(failing):
        cases[i] = _case(f"c{i}", 0.0, ok=False, ms=ms, tokens=tokens)
    return evaluator.Summary(cases)


def test_gate_promotes_only_what_is_better_beyond_chance() -> None:
    g = evaluator.Gate()  # alpha 0.05, at least 6 paired cases
    current = _summary([0.5] * 8)
    better = evaluator.gate(g, current, _summary([1.0] * 8))
    assert better.passed, better.reasons
    assert better.figures["evidence"]["wins"] == 8 and better.figures["evidence"]["p_value"] == round(1 / 256, 6)
    # 5 better, 3 worse: could be chance (p = 0.36)
    mixed = evaluator.gate(g, current, _summary([1.0] * 5 + [0.0] * 3))
    assert not mixed.passed and any("not better beyond chance" in r for r in mixed.reasons)
    # four cases cannot show anything at alpha 0.05 (the best p is 1/16): unproven, whatever the scores
    few = evaluator.gate(g, _summary([0.0] * 4), _summary([1.0] * 4))
    assert not few.passed and any("needs 6" in r for r in few.reasons)
    # a case replayed several times counts once, with its samples' mean
    twice_current = evaluator.Summary([_case(f"c{i % 4}", 0.0 if i < 4 else 1.0) for i in range(8)])
    twice_candidate = evaluator.Summary([_case(f"c{i % 4}", 1.0) for i in range(8)])
    cur, cand, names = evaluator.per_case_scores(twice_current, twice_candidate)
    assert (cur, cand, names) == ([0.5] * 4, [1.0] * 4, ["c0", "c1", "c2", "c3"])
    assert evaluator.gate(g, twice_current, twice_candidate).figures["evidence"]["cases"] == 4


def test_gate_guards_and_optional_caps() -> None:
    g = evaluator.Gate(max_regressions=0, min_improvement=0.3)
    current = _summary([0.5] * 8)
    regressing = evaluator.gate(g, current, _summary([1.0] * 7 + [0.4]))
    assert not regressing.passed and any("regresses 1" in r for r in regressing.reasons)
    small = evaluator.gate(g, current, _summary([0.7] * 8))
    assert not small.passed and any("below the required +0.300" in r for r in small.reasons)
    plain = evaluator.Gate()
    slow = evaluator.gate(plain, current, _summary([1.0] * 8, ms=500))
    assert any("latency above 2.0x on 8 of 8" in r for r in slow.reasons)
    latency = slow.figures["guards"]["latency"]
    assert latency["p_value"] == round(1 / 256, 6) and not latency["passed"]
    assert latency["ci95"][0] <= latency["estimate"] <= latency["ci95"][1]
    costly = evaluator.gate(plain, current, _summary([1.0] * 8, tokens=500))
    assert any("cost above 2.0x" in r for r in costly.reasons)
    erroring = evaluator.gate(plain, current, _summary([1.0] * 8, failing=8))
    assert any("candidate errors more: 8 of 8" in r for r in erroring.reasons)


def test_guards_are_tests_not_thresholds() -> None:
    """One slow, costly or failing case among many is noise; the same excess on most cases is not."""
    plain = evaluator.Gate()
    current = _summary([0.0] * 20)
    one_error = evaluator.gate(plain, current, _summary([1.0] * 20, failing=1))
    assert one_error.passed, one_error.reasons
    guard = one_error.figures["guards"]["error_rate"]
    assert guard["above_limit"] == 1 and guard["p_value"] == pytest.approx(1 - 2**-20, abs=1e-6) and guard["passed"]
    assert guard["estimate"] == pytest.approx(1 / 20)
    # 15 of 20 cases twice as costly: p = P(Binomial(20, 1/2) >= 15) = 0.0207 < 0.05
    mixed = evaluator.Summary([_case(f"c{i}", 1.0, tokens=150 if i < 15 else 50) for i in range(20)])
    refused = evaluator.gate(plain, current, mixed)
    assert any("cost above" in r for r in refused.reasons)
    assert refused.figures["guards"]["cost"]["p_value"] == pytest.approx(0.020695, abs=1e-6)
    # 12 of 20: could be chance (p = 0.25), the candidate goes on to its canary
    lenient = evaluator.Summary([_case(f"c{i}", 1.0, tokens=150 if i < 12 else 50) for i in range(20)])
    assert evaluator.gate(plain, current, lenient).passed
    # a slowdown of a few milliseconds is never a latency regression, however many cases show it
    quick = evaluator.gate(plain, _summary([0.0] * 20, ms=3), _summary([1.0] * 20, ms=9))
    assert quick.passed and quick.figures["guards"]["latency"]["above_limit"] == 0


def test_suite_hash_is_canonical_and_sensitive() -> None:
    a = evaluator.Suite(cases=[evaluator.EvalCase(name="x", input="y")])
    b = evaluator.Suite.model_validate(json.loads(a.model_dump_json()))
    assert a.canonical_hash() == b.canonical_hash()
    c = a.model_copy(update={"gate": evaluator.Gate(min_improvement=0.1)})
    assert c.canonical_hash() != a.canonical_hash()
    with pytest.raises(ValueError):
        evaluator.Suite.model_validate({"cases": [{"name": "x", "input": "y", "checks": {"regex": "("}}]})


def test_parse_json_object() -> None:
    assert evaluator.parse_json_object('```json\n{"score": 1}\n```') == {"score": 1}
    assert evaluator.parse_json_object('Sure! {"score": 0.5} done') == {"score": 0.5}
    for bad in ("no json", "[1, 2]", "{broken"):
        with pytest.raises(ValueError):
            evaluator.parse_json_object(bad)


def test_parse_proposal() -> None:
    current = revisions.normalize(BASE)
    config, why = propose.parse_proposal(
        json.dumps({"rationale": "cooler", "changes": {"llm_config": {"temperature": 0.1}}}), current
    )
    assert config["llm_config"] == {"model": "gpt-4o-mini", "temperature": 0.1} and why == "cooler"
    with pytest.raises(propose.EvaluatorTampering):
        propose.parse_proposal(json.dumps({"rationale": "r", "changes": {"system": "x", "eval_cases": []}}), current)
    with pytest.raises(InvalidInput, match="changes nothing"):
        propose.parse_proposal(json.dumps({"rationale": "r", "changes": {"system": current["system"]}}), current)
    with pytest.raises(InvalidInput, match="expected shape"):
        propose.parse_proposal(json.dumps({"changes": {"system": "x"}}), current)
    with pytest.raises(InvalidInput):
        propose.parse_proposal(
            json.dumps({"rationale": "r", "changes": {"blocks": [{"label": "a", "value": "v"}]}}), current
        )


def test_state_machine_definition() -> None:
    asl = statemachine.evolution_definition("arn:aws:lambda:us-east-1:1:function:evo")
    states = asl["States"]
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {*statemachine.STEPS, "Rollback"}
    for name in statemachine.STEPS:
        assert tasks[name]["Catch"][0]["Next"] == "Rollback"
        assert tasks[name]["Parameters"]["Payload"]["action"] == name.lower()
    targets = {c["Next"] for c in states["Route"]["Choices"]}
    assert targets == {"Reflect", "Propose", "Shadow", "Gate", "Canary", "Bake", "AwaitApproval", "Done"}
    assert states["AwaitApproval"] == {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": "Await"}
    assert states["Route"]["Default"] == "Rollback"
    assert states["Bake"] == {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": "Evaluate"}
    assert "QueryLanguage" not in asl  # JSONPath: moto can run it
    # every state is reachable from the start
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        todo += [state[k] for k in ("Next", "Default") if k in state]
        todo += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    assert seen == set(states)


def test_latency_ratio_needs_a_slowdown_that_matters() -> None:
    # 3 ms against 7 ms is scheduling noise on a busy machine, not a slower candidate
    assert not evaluator.slower(3.0, 7.0, 2.0, 250.0)
    assert evaluator.slower(300.0, 900.0, 2.0, 250.0)
    assert not evaluator.slower(300.0, 500.0, 2.0, 250.0)
    assert not evaluator.slower(0.0, 900.0, 2.0, 250.0)


def test_reflection_figures_from_runs_and_feedback() -> None:
    runs = [
        {"status": "completed", "stop_reason": "end_turn", "error": None, "usage": {"total_tokens": 100}, "ms": 200},
        {"status": "failed", "stop_reason": "error", "error": "boom", "usage": None, "ms": None},
    ]
    assert propose.run_figures(runs) == {
        "runs": 2,
        "error_rate": 0.5,
        "errors": ["boom"],
        "mean_tokens": 50.0,
        "mean_latency_ms": 100.0,
    }
    assert propose.run_figures([])["error_rate"] == 0.0
    feedback = [
        {"score": 0.9, "comment": None, "revision": 1, "reply": "fine"},
        {"score": 0.1, "comment": "wrong", "revision": 1, "reply": None},
    ]
    assert propose.feedback_figures(feedback) == {
        "count": 2,
        "mean": 0.5,
        "low_scored": [{"score": 0.1, "comment": "wrong", "reply": ""}],
    }
    assert propose.feedback_figures([]) == {"count": 0, "mean": None, "low_scored": []}


def test_parse_proposals_keeps_usable_candidates_and_says_why_others_were_skipped() -> None:
    current = revisions.normalize(BASE)
    answer = {
        "candidates": [
            {"rationale": "shorter", "changes": {"system": "Be brief."}},
            {"rationale": "same again", "changes": {"system": "Be brief."}},
            {"rationale": "cooler", "changes": {"llm_config": {"temperature": 0.1}}},
            {"rationale": "no-op", "changes": {"system": current["system"]}},
        ]
    }
    found, skipped = propose.parse_proposals(json.dumps(answer), current, limit=4)
    assert [why for _, why in found] == ["shorter", "cooler"]
    assert skipped == ["a candidate repeats another of the same answer", "the proposal changes nothing"]
    # the owner allows only the model's settings: the prompt change is skipped, the other kept
    kept, refused = propose.parse_proposals(json.dumps(answer), current, ["llm_config"], limit=4)
    assert [why for _, why in kept] == ["cooler"] and "owner's policy" in refused[0]
    with pytest.raises(propose.NotAllowed):
        propose.parse_proposals(json.dumps(answer), current, ["tool_ids"], limit=2)
    # one candidate reaching for the evaluator refuses the whole answer
    tampering = {"candidates": [answer["candidates"][0], {"rationale": "easier", "changes": {"gate": {}}}]}
    with pytest.raises(propose.EvaluatorTampering):
        propose.parse_proposals(json.dumps(tampering), current, limit=2)
    # ``limit`` caps how many are read
    assert len(propose.parse_proposals(json.dumps(answer), current, limit=1)[0]) == 1


def test_pareto_front_lets_a_cheaper_equal_candidate_win() -> None:
    from o.evolution.candidates import Point, choose, front

    pricey = Point(2, score=0.9, tokens=500, latency_ms=100, passed=True)
    cheap = Point(3, score=0.9, tokens=200, latency_ms=100, passed=True)
    fast_but_worse = Point(4, score=0.7, tokens=200, latency_ms=50, passed=True)
    dominated = Point(5, score=0.6, tokens=600, latency_ms=200, passed=True)
    assert front([pricey, cheap, fast_but_worse, dominated]) == [cheap, fast_but_worse]
    assert choose([pricey, cheap, fast_but_worse, dominated]) == (cheap, [cheap, fast_but_worse])
    # the gate's verdict comes first: a higher score the gate refused does not win
    refused = Point(6, score=1.0, tokens=100, latency_ms=10, passed=False)
    assert choose([refused, pricey])[0] == pricey
    assert choose([refused])[0] == refused  # none passed: the best is kept for the record
