"""schemathesis over every operation of the live app, in the suite: no generated request may get a
5xx, and no response may be one the OpenAPI document does not declare (status, content type,
headers, body). In-process (ASGI) on the suite's Postgres, with a real API key, a fixed seed and a
few examples per operation; ``bench/fuzz.py`` runs the same campaign longer. It is the suite's longest
test (120-145 s on a quiet 2-core machine): its time is spread over schemathesis' generation and checks
and the real agent steps its message sends run, with no one hot spot (py-spy)."""

from __future__ import annotations

from o.store.db import Database
from tests.fuzz import campaign
from tests.integration.conftest import new_org_key

SEED = 12
EXAMPLES = 5


def test_no_request_gets_a_server_error_or_an_undeclared_response(db: Database) -> None:
    key = new_org_key(db)
    with campaign.live_app(db) as (app, _):
        figures = campaign.run(app, key, ids=campaign.seed(app, key), max_examples=EXAMPLES, seed=SEED)
    report = figures.report(with_requests=True)
    # nothing left out without saying so: each operation went through both per-operation phases
    assert not figures.errors and not figures.skipped, report
    for phase in ("coverage", "fuzzing"):
        assert len(figures.tested.get(phase, ())) == figures.operations, (phase, report)
    assert figures.tested.get("stateful"), report
    assert figures.operations >= 60 and figures.requests > 1000, report
    assert not figures.server_errors, report
    assert not figures.violations, report
