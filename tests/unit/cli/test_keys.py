"""The table `o keys list` prints."""

from __future__ import annotations

from datetime import UTC, datetime

from o.cli.keys import key_json, key_lines

CREATED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def key(**fields: object) -> dict[str, object]:
    return {
        "id": "key-1",
        "name": None,
        "prefix": "sk-o-abcdefg",
        "organization_id": "org-1",
        "organization": "default",
        "created_at": CREATED,
        "last_used_at": None,
        "revoked_at": None,
        **fields,
    }


def test_one_aligned_row_per_key_under_a_header() -> None:
    lines = key_lines(
        [
            key(),
            key(id="key-22", name="ci", organization="acme", last_used_at=CREATED, revoked_at=CREATED),
        ]
    )
    assert lines == [
        "ID      NAME  ORGANIZATION  CREATED                  LAST USED                STATUS",
        "key-1   -     default       2026-12-01 09:30:00 UTC  -                        active",
        "key-22  ci    acme          2026-12-01 09:30:00 UTC  2026-12-01 09:30:00 UTC  revoked 2026-12-01 09:30:00 UTC",
    ]
    assert key_lines([]) == ["ID  NAME  ORGANIZATION  CREATED  LAST USED  STATUS"]


def test_json_has_iso_times() -> None:
    assert key_json(key(last_used_at=CREATED))["last_used_at"] == "2026-12-01T09:30:00+00:00"
