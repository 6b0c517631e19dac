"""The agent loop reads its messages without their recall index (o.store.messages.STEP_COLUMNS):
every other column of the table must be in that list, or a column a migration adds would silently
be missing from the rows the loop builds its prompt and its replays from."""

from __future__ import annotations

from o.store.db import Database
from o.store.messages import STEP_COLUMNS

# the recall index: embedding vectors (one column per dimension) and the full-text vector
INDEX_COLUMNS = {"embedding_384", "embedding_768", "embedding_1024", "embedding_1536", "embedding_3072", "search_tsv"}


def test_the_step_reads_every_message_column_but_the_recall_index(db: Database) -> None:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'"
        ).fetchall()
    columns = {row["column_name"] for row in rows}
    assert columns >= INDEX_COLUMNS
    assert {c.strip() for c in STEP_COLUMNS.split(",")} == columns - INDEX_COLUMNS
