"""The migrator's decisions, without a database: what is pending, and what is refused."""

from __future__ import annotations

import pytest

from o.store.migrate import Applied, Migration, SchemaError, SchemaTooNew, failure_message, pending

KNOWN = [Migration(1, "001_a.sql", "A"), Migration(2, "002_b.sql", "B"), Migration(3, "003_c.sql", "C")]


def applied(*migrations: Migration, checksum: str | None = None) -> dict[int, Applied]:
    return {m.version: Applied(m.version, m.name, checksum or m.checksum) for m in migrations}


def test_pending_is_what_the_database_has_not_applied_in_order() -> None:
    assert pending(KNOWN, {}) == KNOWN
    assert pending(KNOWN, applied(*KNOWN[:2])) == KNOWN[2:]
    assert pending(KNOWN, applied(*KNOWN)) == []


def test_a_newer_schema_is_refused_naming_what_is_unknown() -> None:
    future = applied(*KNOWN, Migration(4, "004_future.sql", "D"))
    with pytest.raises(SchemaTooNew) as refused:
        pending(KNOWN, future)
    message = str(refused.value)
    assert "version 4 (004_future.sql)" in message and "version 3 (003_c.sql)" in message
    assert "004_future.sql" in message.split("unknown to it:")[1]


def test_an_applied_file_edited_since_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"002_b\.sql changed after it was applied"):
        pending(KNOWN, {**applied(KNOWN[0]), **applied(KNOWN[1], checksum="other")})


def test_the_failure_message_says_nothing_was_applied_and_where_the_database_is() -> None:
    message = failure_message(KNOWN[2], KNOWN[1:], applied(KNOWN[0]), 'relation "x" does not exist')
    assert message == (
        'migration 003_c.sql failed: relation "x" does not exist. Nothing was applied (rolled back: '
        "002_b.sql, 003_c.sql); the database is still at version 1 (001_a.sql), as it was before"
    )
    assert "an empty schema" in failure_message(KNOWN[0], KNOWN, {}, "boom")
