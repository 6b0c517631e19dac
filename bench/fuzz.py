"""schemathesis over every operation of the API, longer than the suite's run.

Starts an embedded Postgres, wires the app as the composition root does (its LLM and embedding
calls held on local protocol servers), makes an API key and a few real things to address, and runs
schemathesis' engine (examples, coverage, fuzzing and stateful phases) in-process. Prints the
operations, the requests that reached the app, the distinct 5xx (by the exception behind them) and
the distinct schema violations (operation, check, status), each with one request that shows it.

    python bench/fuzz.py [--examples 100] [--seed 12] [--steps 10]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from o.observability import logger  # noqa: E402
from o.store import orgs  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402
from tests.fuzz import campaign  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="examples per operation and phase")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--steps", type=int, default=10, help="most calls in one stateful scenario")
    parser.add_argument("--show", action="store_true", help="print a request for every schema violation")
    args = parser.parse_args()
    # the 5xx are counted by their cause; the app's own log of each would bury the figures
    logger.setLevel(logging.CRITICAL)
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-fuzz-")), cleanup_mode="delete")
    try:
        migrate(server.url)
        db = Database(server.url, min_size=1, max_size=4).open()
        with db.transaction() as conn:
            org = orgs.get_or_create_org(conn, f"fuzz-{uuid.uuid4()}")
            _, key = orgs.create_api_key(conn, org["id"])
        with campaign.live_app(db) as (app, _):
            ids = campaign.seed(app, key)
            figures = campaign.run(app, key, ids=ids, max_examples=args.examples, seed=args.seed, max_steps=args.steps)
        db.close()
    finally:
        server.stop()
    print(f"schemathesis (seed {args.seed}, {args.examples} examples per operation and phase):")
    print(figures.report(with_requests=args.show))


if __name__ == "__main__":
    main()
