"""SQL round trips and connection borrows per request, for the operations bench/floor.py measures.

The app is served in-process on a pool of ONE connection, traced by libpq (``PGconn.trace``): a round
trip is what the frontend sends before the backend answers (a statement and its Sync, BEGIN or COMMIT,
or a pipeline's statements and its Flush); the pool's liveness check is an empty Query per borrow,
which counts the borrows (checked on every borrow here, ``recheck_after_s=0``; in service a connection
back within ``o.store.db.FRESH_S`` is not checked again, and the check is not a round trip counted).

    python bench/round_trips.py [--requests 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def traced(db: object) -> Iterator[Path]:
    """Trace the pool's one connection into a file while the block runs."""
    with tempfile.NamedTemporaryFile("w+", suffix=".trace", delete=False) as out:
        with db._pool.connection() as conn:  # type: ignore[attr-defined]
            conn.pgconn.trace(out.fileno())
        yield Path(out.name)
        with db._pool.connection() as conn:  # type: ignore[attr-defined]
            conn.pgconn.untrace()


def count(trace: Path) -> tuple[int, int]:
    """(round trips, borrows) in a trace: a round trip is the frontend's messages followed by the
    backend's answer (a statement and its Sync; in a pipeline, several statements and a Flush)."""
    round_trips = borrows = 0
    last = "B"
    for line in trace.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 4:
            continue
        if fields[1] == "F" and fields[3] == "Query" and fields[4:5] == [' ""']:
            borrows += 1  # the pool's liveness check, not a statement of the request
            round_trips -= 1
        if fields[1] == "B" and last == "F":
            round_trips += 1
        last = fields[1]
    return round_trips, borrows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from api import seed_messages  # type: ignore[import-not-found]
    from fastapi.testclient import TestClient

    from o import runtime
    from o.config import settings_from
    from o.store import orgs
    from o.store.db import Database
    from o.store.embedded import EmbeddedPostgres
    from o.store.migrate import migrate

    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-round-trips-")), cleanup_mode="delete")
    try:
        migrate(pg.url)
        db = Database(pg.url, min_size=1, max_size=1, recheck_after_s=0).open()
        with db.transaction() as conn:
            org = orgs.get_or_create_org(conn, f"round-trips-{uuid.uuid4()}")
            _, key = orgs.create_api_key(conn, org["id"])
        settings = settings_from({})
        app = runtime.api_app(settings, runtime.api_services(settings, db))
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "O"}]
            ids = [
                client.post("/v1/agents/", json={"name": f"rt-{i}", "memory_blocks": blocks}).json()["id"]
                for i in range(3)
            ]
            seed_messages(pg.url, ids[0], 60)
            operations = {
                "GET agent": ("GET", f"/v1/agents/{ids[0]}", None),
                "PATCH block value": (
                    "PATCH",
                    f"/v1/agents/{ids[0]}/core-memory/blocks/human",
                    {"value": "Name: Ada L."},
                ),
                "GET messages (50)": ("GET", f"/v1/agents/{ids[0]}/messages?limit=50", None),
                "list agents (50)": ("GET", "/v1/agents/?limit=50", None),
            }
            print(f"per request, mean of {args.requests} after a warm-up (prepared statements, the key known):")
            for name, (method, path, body) in operations.items():
                for _ in range(5):
                    client.request(method, path, json=body)
                with traced(db) as trace:
                    for _ in range(args.requests):
                        assert client.request(method, path, json=body).status_code == 200
                statements, borrows = count(trace)
                trace.unlink()
                print(
                    f"  {name:<20} {statements / args.requests:4.1f} SQL round trips   "
                    f"{borrows / args.requests:4.1f} connection borrows"
                )
        db.close()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
